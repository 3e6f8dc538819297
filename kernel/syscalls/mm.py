"""Memory-management system calls: mmap, munmap, mprotect, mremap, brk, madvise, msync, mincore."""
import errno

from faultlab.kernel.file import O_PATH, OpenFile
from faultlab.kernel.mm.madvise import (do_madvise, MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_COLD, MADV_PAGEOUT,
                               MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_HWPOISON)
from faultlab.kernel.mm.memory import fold_pte_dirty
from faultlab.kernel.mm.mlock import mlock_check, mlock_future_ok, mlockall_check
from faultlab.kernel.mm.mmap import do_mmap, do_munmap, do_mprotect, do_mremap, do_brk, MAP_ANONYMOUS, MAP_HUGETLB, \
    page_align, mlock_fixup_range, mm_populate_locked
from faultlab.kernel.mm.mm_types import TASK_SIZE
from faultlab.kernel.mm.mmap_lock import mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock, \
    mmap_write_downgrade
from faultlab.kernel.mm.page_alloc import PG_uptodate
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, pte_to_swp_entry
from faultlab.kernel.mm.vm_sysctl import map_noreserve, shmem_acct_size
from faultlab.kernel.mm.vma import VM_SHARED, VM_LOCKED, VM_LOCKONFAULT
from faultlab.kernel.syscalls.registry import s32 as _s32, s64 as _s64, syscall
from faultlab.kernel.uaccess import access_ok

MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4


def mmap_write_locked(fn):
    """The call changes the address space: hold mmap_lock for write (modelled when threads share it)."""
    def locked(k, t, *args):
        mm = t.mm
        if mm.users == 1:
            return fn(k, t, *args)
        token = mmap_write_lock(mm)
        try:
            return fn(k, t, *args)
        finally:
            mmap_write_unlock(mm, token)
    locked.__name__ = fn.__name__
    locked.__doc__ = fn.__doc__
    return locked


@syscall(9, 'mmap')
@mmap_write_locked
def sys_mmap(k, t, addr, length, prot, flags, fd, off, *_):
    prot &= 0xFFFFFFFF
    flags &= 0xFFFFFFFF
    if off & 0xFFF:
        return -errno.EINVAL
    f = None
    if flags & MAP_ANONYMOUS and flags & 0xF == 1 and length and not flags & MAP_HUGETLB:
        if page_align(length) > TASK_SIZE:       # do_mmap refuses this before mmap_region makes the file
            return -errno.ENOMEM
        f = shmem_zero_setup(k, t, length, flags)
        if isinstance(f, int):
            return f
    elif not flags & MAP_ANONYMOUS:
        f = t.files.get(_s64(fd) if fd < (1 << 63) else -1)
        if f is None:
            return -errno.EBADF
        if not isinstance(f, OpenFile):
            f = NoMmapFile()
        elif f.flags & O_PATH:
            return -errno.EBADF                 # fget of an O_PATH descriptor fails
    if f is not None and flags & MAP_ANONYMOUS:
        r = do_mmap(t.mm, addr, length, prot, flags & ~MAP_ANONYMOUS, f, 0, lambda n: mlock_future_ok(t, n))
        f.put()
        return r
    f_mmap = getattr(f.inode, 'mmap', None) if f is not None else None
    if f_mmap is not None:                      # a file with its own ->mmap (secretmem)
        return f_mmap(t, addr, length, prot, flags, f, off >> 12)
    return do_mmap(t.mm, addr, length, prot, flags, f, off >> 12, lambda n: mlock_future_ok(t, n))


class NoMmapFile:
    """A descriptor without an inode of ours (the host's streams): a file without ->mmap, which do_mmap
    refuses with ENODEV after its other checks."""

    flags, readable, writable, inode = 0, True, True, None

    def check_mmap(self, shared, prot):
        return -errno.ENODEV


def shmem_zero_setup(k, t, length, flags):
    """Shared anonymous memory is a mapping of an unlinked tmpfs file (mm/shmem.c), committed by
    size unless MAP_NORESERVE (shmem_acct_size: -ENOMEM)."""
    inode = k.vfs.memfd_create()
    inode.ihold()
    inode.set_size(page_align(length))
    err = shmem_acct_size(t.mm, inode, page_align(length), map_noreserve(k.mmsvc.sysctl, flags))
    if err:
        inode.iput()
        return err
    return OpenFile(inode, 2, '/dev/zero (deleted)', k.pagecache)


@syscall(11, 'munmap')
def sys_munmap(k, t, addr, length, *_):
    mm = t.mm
    if mm.users == 1:
        return do_munmap(mm, addr, length)
    if not mm.svc.munmap_downgrade:
        return mmap_write_locked(lambda k_, t_: do_munmap(mm, addr, length))(k, t)
    token = mmap_write_lock(mm)
    read_from = []

    def downgrade():
        read_from.append(mmap_write_downgrade(mm, token))
    try:
        return do_munmap(mm, addr, length, downgrade)
    finally:
        if read_from:
            mmap_read_unlock(mm, read_from[0])
        else:
            mmap_write_unlock(mm, token)


@syscall(10, 'mprotect')
@mmap_write_locked
def sys_mprotect(k, t, addr, length, prot, *_):
    return do_mprotect(t.mm, addr, length, prot)            # unsigned long prot


@syscall(25, 'mremap')
@mmap_write_locked
def sys_mremap(k, t, old, old_len, new_len, flags, new_addr, *_):
    return do_mremap(t.mm, old, old_len, new_len, flags & 0xFFFFFFFF, new_addr)


@syscall(12, 'brk')
@mmap_write_locked
def sys_brk(k, t, brk, *_):
    return do_brk(t.mm, brk)


# advice that only zaps or faults pages takes mmap_lock for read; the rest changes VMA flags (write)
_MADV_READ_LOCKED = {MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ,
                     MADV_POPULATE_WRITE, MADV_HWPOISON}


@syscall(28, 'madvise')
def sys_madvise(k, t, start, length, advice, *_):
    advice = _s32(advice)                       # int behavior
    mm = t.mm
    if mm.users == 1:
        return do_madvise(mm, start, length, advice)
    if advice in _MADV_READ_LOCKED:
        t_acq = mmap_read_lock(mm)
        try:
            return do_madvise(mm, start, length, advice)
        finally:
            mmap_read_unlock(mm, t_acq)
    return mmap_write_locked(lambda k_, t_: do_madvise(mm, start, length, advice))(k, t)


@syscall(26, 'msync')
def sys_msync(k, t, start, length, flags, *_):
    flags &= 0xFFFFFFFF                         # int flags
    if start & 0xFFF or flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC) or \
            (flags & MS_ASYNC and flags & MS_SYNC):
        return -errno.EINVAL
    end = (start + (page_align(length) & ((1 << 64) - 1))) & ((1 << 64) - 1)   # the length may wrap to 0
    if end < start:
        return -errno.ENOMEM
    if end == start:
        return 0
    if end > TASK_SIZE:
        return -errno.ENOMEM
    mm = t.mm
    cur = start
    unmapped = False
    for vma in mm.vmas.overlapping(start, end):
        if vma.vm_start > cur:
            unmapped = True
        if vma.vm_flags & VM_SHARED and vma.vm_file is not None and flags & MS_SYNC:
            fold_pte_dirty(mm, vma)
            k.pagecache.filemap_write_and_wait(vma.vm_file.mapping)
        cur = vma.vm_end
    if cur < end:
        unmapped = True
    return -errno.ENOMEM if unmapped else 0


@syscall(27, 'mincore')
def sys_mincore(k, t, start, length, vec, *_):
    if start & 0xFFF:
        return -errno.EINVAL
    n = page_align(length) >> 12
    if start + (n << 12) > TASK_SIZE:
        return -errno.ENOMEM
    mm = t.mm
    if not access_ok(vec, n):
        return -errno.EFAULT                   # access_ok(vec, pages): the range only
    cur, end = start, start + (n << 12)
    while cur < end:                           # do_mincore: one VMA, at most a page of vector, a time
        vma = mm.vmas.vma_lookup(cur)
        if vma is None:
            return -errno.ENOMEM
        stop = min(vma.vm_end, end, cur + (4096 << 12))     # PAGE_SIZE vector bytes
        out = bytearray((stop - cur) >> 12)
        for i in range(len(out)):
            out[i] = _mincore_page(k, mm, vma, cur + (i << 12))
        if not t.umem.write(vec, bytes(out)):
            return -errno.EFAULT               # copied out chunk by chunk
        vec += len(out)
        cur = stop
    return 0


def _mincore_page(k, mm, vma, va):
    """1 if the page at va is resident (mapped, in the swap cache or the file's page cache, uptodate)."""
    pte = mm.pgtables.get_pte(va)
    if pte & _PAGE_PRESENT:
        return 1
    if pte:                                    # swapped out: resident if in the swap cache, read in
        page = k.swapcache.pages.get(pte_to_swp_entry(pte)[1])
        return 1 if page is not None and page.flags & PG_uptodate else 0
    if vma.vm_file is not None:
        # like mincore_page(): resident means cached and uptodate (not still being read)
        page = vma.vm_file.mapping.pages.get(vma.linear_page_index(va))
        return 1 if page is not None and page.flags & PG_uptodate else 0
    return 0


MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4
MLOCK_ONFAULT = 1


def _set_locked(k, t, start, length, on, onfault=False):
    """apply_vma_lock_flags: VM_LOCKED (and VM_LOCKONFAULT) on [start, start+len), then populate."""
    length = page_align(length + (start & 0xFFF)) & ((1 << 64) - 1)   # do_mlock (unsigned long)
    start &= ~0xFFF
    end = start + length
    if end >= 1 << 64:
        return -errno.EINVAL
    if end == start:
        return 0
    r = mlock_fixup_range(t.mm, start, end, on, onfault)
    if r == 0 and on and not onfault:
        r = mm_populate_locked(t.mm, start, end)
    return r


@syscall(149, 'mlock')
def sys_mlock(k, t, start, length, *_):
    return mlock_check(t, start, length) or _set_locked(k, t, start, length, True)


@syscall(325, 'mlock2')
def sys_mlock2(k, t, start, length, flags, *_):
    flags &= 0xFFFFFFFF                         # int flags
    if flags & ~MLOCK_ONFAULT:
        return -errno.EINVAL
    return mlock_check(t, start, length) or _set_locked(k, t, start, length, True, bool(flags & MLOCK_ONFAULT))


@syscall(150, 'munlock')
def sys_munlock(k, t, start, length, *_):
    return _set_locked(k, t, start, length, False)


def apply_mlockall_flags(mm, flags):
    """mlockall/munlockall: MCL_FUTURE sets mm->def_flags for the mappings to come; every VMA gets
    exactly VM_LOCKED (| VM_LOCKONFAULT) with MCL_CURRENT, or loses them without it."""
    mm.def_flags &= ~(VM_LOCKED | VM_LOCKONFAULT)
    if flags & MCL_FUTURE:
        mm.def_flags |= VM_LOCKED | (VM_LOCKONFAULT if flags & MCL_ONFAULT else 0)
        if not flags & MCL_CURRENT:
            return 0
    for start, end in [(v.vm_start, v.vm_end) for v in mm.vmas]:
        mlock_fixup_range(mm, start, end, bool(flags & MCL_CURRENT), bool(flags & MCL_ONFAULT))
    return 0


@syscall(151, 'mlockall')
def sys_mlockall(k, t, flags, *_):
    if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
        return -errno.EINVAL
    err = mlockall_check(t, flags, MCL_CURRENT)
    if err:
        return err
    r = apply_mlockall_flags(t.mm, flags)
    if r == 0 and flags & MCL_CURRENT:
        mm_populate_locked(t.mm, 0, TASK_SIZE)
    return r


@syscall(152, 'munlockall')
def sys_munlockall(k, t, *_):
    return apply_mlockall_flags(t.mm, 0)
