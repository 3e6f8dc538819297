"""process_vm_readv(2) and process_vm_writev(2) (mm/process_vm_access.c): copy between the caller's
iovecs and another process's, page by page as pin_user_pages_remote pins them (no FOLL_FORCE: the
mapping's rights apply; secret memory is never pinned).

The result is the bytes copied when any were, so a transfer that meets an unpinnable remote page or a
bad local buffer part way is short; with nothing copied it is that error (EFAULT). The target must be
one the caller may ptrace-attach to (EPERM), and exist (ESRCH).
"""
import errno
import struct

from faultlab.kernel.arch.cpu_interface import PAGE_SIZE
from faultlab.kernel.mm.access_remote import access_remote_vm
from faultlab.kernel.ptrace import PTRACE_MODE_ATTACH, ptrace_may_access
from faultlab.kernel.syscalls.registry import syscall
from faultlab.kernel.tasktable import find_task_by_vpid

UIO_MAXIOV = 1024
MAX_RW_COUNT = 0x7FFFF000            # INT_MAX rounded down to a page: what one call transfers at most


class LocalIter:
    """The caller's side (struct iov_iter over its iovecs): where the next byte goes or comes from."""

    def __init__(self, umem, segs):
        self.umem = umem
        self.segs = [(b, n) for b, n in segs if n]
        self.count = sum(n for _b, n in self.segs)

    def _chunks(self, n):
        """(address, length) pieces of the next n bytes, none crossing a page, in order."""
        out = []
        for base, length in self.segs:
            while length and n:
                step = min(length, n, PAGE_SIZE - (base & (PAGE_SIZE - 1)))
                out.append((base, step))
                base, length, n = base + step, length - step, n - step
            if not n:
                break
        return out

    def _advance(self, n):
        """Move past n bytes."""
        self.count -= n
        while n:
            base, length = self.segs[0]
            step = min(length, n)
            n -= step
            self.segs[0] = (base + step, length - step)
            if not self.segs[0][1]:
                self.segs.pop(0)

    def copy_to(self, data):
        """copy_page_to_iter: data into the caller's buffers; the count copied (short at a fault)."""
        done = 0
        for addr, step in self._chunks(len(data)):
            if not self.umem.write(addr, data[done:done + step]):
                break
            done += step
        self._advance(done)
        return done

    def copy_from(self, n):
        """copy_page_from_iter: up to n bytes of the caller's buffers (short at a fault)."""
        out = []
        for addr, step in self._chunks(n):
            got = self.umem.read(addr, step)
            if got is None:
                break
            out.append(got)
        data = b''.join(out)
        self._advance(len(data))
        return data


def iovec_from_user(t, uvec, nr):
    """The nr struct iovec at uvec as (base, length) pairs: -EINVAL past UIO_MAXIOV or for a negative
    length, -EFAULT if they cannot be read."""
    if nr > UIO_MAXIOV:
        return -errno.EINVAL
    if not nr:
        return []
    raw = t.umem.read(uvec, 16 * nr)
    if raw is None:
        return -errno.EFAULT
    vecs = [struct.unpack_from('<QQ', raw, 16 * i) for i in range(nr)]
    if any(n >= 1 << 63 for _b, n in vecs):
        return -errno.EINVAL
    return vecs


def import_iovec(t, uvec, nr):
    """The caller's iovecs, their total capped at MAX_RW_COUNT (rw_verify_area's limit)."""
    vecs = iovec_from_user(t, uvec, nr)
    if isinstance(vecs, int):
        return vecs
    out, room = [], MAX_RW_COUNT
    for base, n in vecs:
        n = min(n, room)
        out.append((base, n))
        room -= n
    return out


def process_vm_rw_pages(mm, addr, n, it, vm_write):
    """One pinned page's part: n bytes at the remote addr to or from the caller; 0, or -EFAULT if the
    page cannot be pinned or the caller's buffer faults."""
    if vm_write:
        data = it.copy_from(n)
        if not data:
            return -errno.EFAULT
        done = access_remote_vm(mm, addr, data, gup_flags=0)
        if done < len(data):
            it.count += len(data) - done          # not transferred (iov_iter_revert's count)
            return -errno.EFAULT
        return 0 if len(data) == n else -errno.EFAULT
    data = access_remote_vm(mm, addr, None, n, gup_flags=0)
    if len(data) < n:
        return -errno.EFAULT
    return 0 if it.copy_to(data) == n else -errno.EFAULT


def process_vm_rw_single_vec(mm, addr, length, it, vm_write):
    """One remote iovec, a page at a time while the caller's buffers have room: 0 or -EFAULT."""
    while length and it.count:
        n = min(length, PAGE_SIZE - (addr & (PAGE_SIZE - 1)), it.count)
        rc = process_vm_rw_pages(mm, addr, n, it, vm_write)
        if rc:
            return rc
        addr, length = addr + n, length - n
    return 0


def process_vm_rw_core(k, t, pid, it, rvec, vm_write):
    """The target's memory for each remote iovec in turn: the bytes copied, or -errno when none were."""
    task = find_task_by_vpid(k, pid) if 0 < pid < 0x80000000 else None
    if task is None:
        return -errno.ESRCH
    if ptrace_may_access(t, task, PTRACE_MODE_ATTACH) or task.mm is None:
        return -errno.EPERM
    total = it.count
    rc = 0
    for base, length in rvec:
        if not it.count or rc:
            break
        rc = process_vm_rw_single_vec(task.mm, base, length, it, vm_write)
    copied = total - it.count
    return copied if copied else rc


def process_vm_rw(k, t, pid, lvec, liovcnt, rvec, riovcnt, flags, vm_write):
    """process_vm_rw: flags must be 0 (EINVAL); nothing to copy locally is 0."""
    if flags:
        return -errno.EINVAL
    local = import_iovec(t, lvec, liovcnt & 0xFFFFFFFFFFFFFFFF)
    if isinstance(local, int):
        return local
    it = LocalIter(t.umem, local)
    if not it.count:
        return 0
    remote = iovec_from_user(t, rvec, riovcnt & 0xFFFFFFFFFFFFFFFF)
    if isinstance(remote, int):
        return remote
    return process_vm_rw_core(k, t, pid & 0xFFFFFFFF, it, remote, vm_write)


@syscall(310, 'process_vm_readv')
def sys_process_vm_readv(k, t, pid, lvec, liovcnt, rvec, riovcnt, flags, *_):
    """Copy from the remote process's iovecs into the caller's."""
    return process_vm_rw(k, t, pid, lvec, liovcnt, rvec, riovcnt, flags, False)


@syscall(311, 'process_vm_writev')
def sys_process_vm_writev(k, t, pid, lvec, liovcnt, rvec, riovcnt, flags, *_):
    """Copy from the caller's iovecs into the remote process's."""
    return process_vm_rw(k, t, pid, lvec, liovcnt, rvec, riovcnt, flags, True)
