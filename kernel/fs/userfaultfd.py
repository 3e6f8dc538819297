"""The userfaultfd file (fs/userfaultfd.c): struct userfaultfd_ctx, its read/poll/ioctl and release.

A context belongs to the address space that created it. UFFDIO_API negotiates the features (it must
come first, once); UFFDIO_REGISTER/UNREGISTER mark ranges (kernel/mm/userfaultfd.py); faults in them
queue messages here (kernel/mm/userfaultfd_k.py handle_userfault) that read() returns in FIFO order
(32 bytes each, sleeping for the first unless O_NONBLOCK) and poll/epoll report (POLLIN, or POLLERR
for a blocking descriptor or one not initialized). UFFDIO_COPY/ZEROPAGE/CONTINUE/WRITEPROTECT
resolve them and, unless told DONTWAKE, wake the threads whose fault lies in the range; UFFDIO_WAKE
only wakes. The last close unregisters everything and wakes every waiter, whose fault then runs
as if nothing had been registered.
"""
import errno
import struct

from faultlab.kernel.capability import capable
from faultlab.kernel.file import O_CLOEXEC, O_NONBLOCK, O_RDONLY
from faultlab.kernel.fs.anon_inodes import AnonInode, anon_inode_getfd, anon_sb
from faultlab.kernel.fs.pipe import POLLERR, POLLIN
from faultlab.kernel.fs.userfaultfd_dev import userfaultfd_misc_register
from faultlab.kernel.mm.hugetlb_types import HPAGE_SIZE
from faultlab.kernel.mm.userfaultfd_events import (UFFD_FEATURE_EVENT_FORK, UFFD_FEATURE_EVENT_REMAP, UFFD_FEATURE_EVENT_REMOVE,
                                          UFFD_FEATURE_EVENT_UNMAP, userfaultfd_event_done)
from faultlab.kernel.mm.userfaultfd_move import UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES, UFFDIO_MOVE_MODE_DONTWAKE, move_pages
from faultlab.kernel.mm.userfaultfd import (MFILL_CONTINUE, MFILL_COPY, MFILL_POISON, MFILL_ZEROPAGE, mfill_atomic,
                                   mwriteprotect_range, userfaultfd_register_range, userfaultfd_release_all,
                                   userfaultfd_unregister_range, validate_range, validate_unaligned_range)
from faultlab.kernel.mm.userfaultfd_k import (UFFD_FEATURE_SIGBUS, UFFD_FEATURE_THREAD_ID, UFFD_FEATURE_WP_ASYNC,
                                     UFFD_FEATURE_WP_UNPOPULATED, UFFD_USER_MODE_ONLY, VM_UFFD_MINOR,
                                     VM_UFFD_MISSING, VM_UFFD_WP, userfaultfd_ctx_of, vma_is_shmem)
from faultlab.kernel.mm.vma import VM_HUGETLB, VM_IO, VM_MAYWRITE, VM_PFNMAP
from faultlab.kernel.wait import WaitQueue

UFFD_API = 0xAA
UFFD_MSG_SIZE = 32
# features (uapi linux/userfaultfd.h)
UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1 << 0
UFFD_FEATURE_MISSING_HUGETLBFS = 1 << 4
UFFD_FEATURE_MISSING_SHMEM = 1 << 5
UFFD_FEATURE_MINOR_HUGETLBFS = 1 << 9
UFFD_FEATURE_MINOR_SHMEM = 1 << 10
UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1 << 12
UFFD_FEATURE_POISON = 1 << 14
UFFD_FEATURE_MOVE = 1 << 16
# what this kernel implements, and so reports: faults (MISSING, WP, MINOR) on anonymous, shmem and
# hugetlbfs memory, uffd-wp on hugetlbfs and shmem (kept across fork with EVENT_FORK), asynchronous
# write-protection; not UFFD_FEATURE_EXACT_ADDRESS (fault addresses are reported page-aligned)
UFFD_API_FEATURES = (UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_SIGBUS |
                     UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_MISSING_HUGETLBFS |
                     UFFD_FEATURE_MINOR_HUGETLBFS | UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
                     UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_MOVE |
                     UFFD_FEATURE_POISON | UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM |
                     UFFD_FEATURE_WP_ASYNC)
UFFD_FEATURE_INITIALIZED = 1 << 31

_UFFDIO_REGISTER, _UFFDIO_UNREGISTER, _UFFDIO_WAKE, _UFFDIO_COPY, _UFFDIO_ZEROPAGE = 0, 1, 2, 3, 4
_UFFDIO_MOVE, _UFFDIO_WRITEPROTECT, _UFFDIO_CONTINUE, _UFFDIO_POISON, _UFFDIO_API = 5, 6, 7, 8, 0x3F
UFFD_API_IOCTLS = 1 << _UFFDIO_REGISTER | 1 << _UFFDIO_UNREGISTER | 1 << _UFFDIO_API
UFFD_API_RANGE_IOCTLS = (1 << _UFFDIO_WAKE | 1 << _UFFDIO_COPY | 1 << _UFFDIO_ZEROPAGE | 1 << _UFFDIO_WRITEPROTECT |
                         1 << _UFFDIO_CONTINUE | 1 << _UFFDIO_MOVE | 1 << _UFFDIO_POISON)
UFFD_API_RANGE_IOCTLS_BASIC = (1 << _UFFDIO_WAKE | 1 << _UFFDIO_COPY | 1 << _UFFDIO_WRITEPROTECT |
                               1 << _UFFDIO_CONTINUE | 1 << _UFFDIO_POISON)       # hugetlb: no ZEROPAGE, MOVE
UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_WP, UFFDIO_REGISTER_MODE_MINOR = 1, 2, 4
UFFD_API_REGISTER_MODES = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP | UFFDIO_REGISTER_MODE_MINOR
UFFDIO_COPY_MODE_DONTWAKE, UFFDIO_COPY_MODE_WP = 1, 2
UFFDIO_ZEROPAGE_MODE_DONTWAKE = 1
UFFDIO_WRITEPROTECT_MODE_WP, UFFDIO_WRITEPROTECT_MODE_DONTWAKE = 1, 2
UFFDIO_CONTINUE_MODE_DONTWAKE, UFFDIO_CONTINUE_MODE_WP = 1, 2


def _iowr(nr, size):
    return (3 << 30) | (size << 16) | (UFFD_API << 8) | nr


def _ior(nr, size):
    return (2 << 30) | (size << 16) | (UFFD_API << 8) | nr


UFFDIO_API = _iowr(_UFFDIO_API, 24)
UFFDIO_REGISTER = _iowr(_UFFDIO_REGISTER, 32)
UFFDIO_UNREGISTER = _ior(_UFFDIO_UNREGISTER, 16)
UFFDIO_WAKE = _ior(_UFFDIO_WAKE, 16)
UFFDIO_COPY = _iowr(_UFFDIO_COPY, 40)
UFFDIO_ZEROPAGE = _iowr(_UFFDIO_ZEROPAGE, 32)
UFFDIO_WRITEPROTECT = _iowr(_UFFDIO_WRITEPROTECT, 24)
UFFDIO_CONTINUE = _iowr(_UFFDIO_CONTINUE, 32)
UFFDIO_MOVE = _iowr(_UFFDIO_MOVE, 40)
UFFDIO_POISON = _iowr(_UFFDIO_POISON, 32)
UFFDIO_POISON_MODE_DONTWAKE = 1
UFFD_SHARED_FCNTL_FLAGS = O_CLOEXEC | O_NONBLOCK
CAP_SYS_PTRACE = 19


class UserfaultfdCtx(AnonInode):
    """struct userfaultfd_ctx: the address space, flags and features, the queued faults."""

    def __init__(self, sb, k, mm, flags):
        super().__init__(sb)
        self.kernel = k
        self.mm = mm
        self.flags = flags
        self.nonblock = bool(flags & O_NONBLOCK)     # the file's O_NONBLOCK (poll sees no file here)
        self.features = 0               # UFFD_FEATURE_INITIALIZED once UFFDIO_API succeeded
        self.released = False
        self.fault_pending = []         # fault_pending_wqh: faults not read yet (oldest first)
        self.fault_wqh = []             # faults read, not woken yet
        self.event_pending = []         # event_wqh: FORK/REMAP/REMOVE/UNMAP messages not read yet
        self.wait_queue = WaitQueue()   # fd_wqh: readers and pollers

    # ---- the fault queue ----------------------------------------------------------------------
    def queue_fault(self, uwq):
        """A thread sleeps in a fault: its message waits for read()."""
        k = self.kernel
        self.fault_pending.append(uwq)
        k.stats['uffd_faults'] += 1
        self.wait_queue.wake_all(k, POLLIN)

    def queue_event(self, ev):
        """userfaultfd_event_wait_completion's queueing: the event waits for read()."""
        k = self.kernel
        self.event_pending.append(ev)
        k.stats['uffd_events'] += 1
        self.wait_queue.wake_all(k, POLLIN)

    def fork_ctx(self, mm):
        """dup_fctx: the context of a child's copy of the registered ranges, as this one."""
        new = UserfaultfdCtx(anon_sb(self.kernel), self.kernel, mm, self.flags)
        new.features = self.features
        return new

    def _read_event(self, t):
        """The oldest event's message; a FORK message installs the new context's descriptor in the
        reader (resolve_userfault_fork). None if that fails (the event stays)."""
        ev = self.event_pending[0]
        ufd = 0
        if ev.new_ctx is not None:
            ufd = anon_inode_getfd(t, 'userfaultfd', ev.new_ctx,
                                   O_RDONLY | (ev.new_ctx.flags & UFFD_SHARED_FCNTL_FLAGS))
            if ufd < 0:
                return None
        self.event_pending.pop(0)
        userfaultfd_event_done(ev)
        return ev.message(ufd)

    def wake_userfault(self, k, start, length):
        """__wake_userfault: wake the threads whose fault lies in [start, start + length) (all if
        length is 0), read or not."""
        now = k.now()
        for q in (self.fault_pending, self.fault_wqh):
            for uwq in list(q):
                if length and not start <= uwq.address < start + length:
                    continue
                q.remove(uwq)
                if k.sched.wake(uwq.task, uwq.ret, now):
                    k.stats['uffd_wakeups'] += 1
                    k.stats['uffd_wait_cycles'] += max(0, now - uwq.since)
                    k.account_fault_wait('handle_userfault', 'uffd', max(0, now - uwq.since))

    def poll(self):
        """userfaultfd_poll: POLLERR before UFFDIO_API and for a blocking descriptor (poll cannot
        promise that read will not block), else POLLIN while a fault is queued."""
        if not self.features & UFFD_FEATURE_INITIALIZED or not self.nonblock:
            return POLLERR
        return POLLIN if self.fault_pending or self.event_pending else 0

    # ---- file operations --------------------------------------------------------------------
    def fop_read(self, k, t, f, count):
        """userfaultfd_read_iter: as many queued messages as fit, sleeping only for the first."""
        self.nonblock = bool(f.flags & O_NONBLOCK)
        if not self.features & UFFD_FEATURE_INITIALIZED:
            return -errno.EINVAL
        if count < UFFD_MSG_SIZE:
            return -errno.EINVAL
        out = bytearray()
        while len(out) + UFFD_MSG_SIZE <= count:
            self.fault_pending = [u for u in self.fault_pending if not u.task.exited]
            if not self.fault_pending:
                if not self.event_pending:
                    break
                msg = self._read_event(t)     # events after faults, as userfaultfd_ctx_read
                if msg is None:
                    break
                out += msg
                continue
            uwq = self.fault_pending.pop(0)
            self.fault_wqh.append(uwq)      # read: it waits for the wake-up now
            out += uwq.msg
        if out:
            return bytes(out)
        if f.flags & O_NONBLOCK:
            return -errno.EAGAIN
        return self.wait_queue.sleep(k, t, 'userfaultfd_read')

    def release(self):
        """userfaultfd_release: unregister every range and wake every waiter and reader."""
        self.released = True
        k = self.kernel
        userfaultfd_release_all(self.mm, self)
        self.wake_userfault(k, 0, 0)
        events, self.event_pending = self.event_pending, []
        for ev in events:                   # unread events complete; unread forks' contexts go
            if ev.new_ctx is not None:
                ev.new_ctx.release()
            userfaultfd_event_done(ev)
        self.wait_queue.wake_all(k, POLLERR)

    def unlocked_ioctl(self, k, t, f, cmd, arg):
        """userfaultfd_ioctl."""
        self.nonblock = bool(f.flags & O_NONBLOCK)
        if cmd != UFFDIO_API and not self.features & UFFD_FEATURE_INITIALIZED:
            return -errno.EINVAL
        op = _IOCTLS.get(cmd)
        if op is None:
            return -errno.EINVAL
        return op(self, k, t, arg)

    # ---- ioctls -------------------------------------------------------------------------------
    def userfaultfd_api(self, k, t, arg):
        """UFFDIO_API: check the API and the requested features, report what is available."""
        raw = t.umem.read(arg, 24)
        if raw is None:
            return -errno.EFAULT
        api, features, _ioctls = struct.unpack('<QQQ', raw)
        if api != UFFD_API:
            return self._api_fail(t, arg, -errno.EINVAL)
        if features & UFFD_FEATURE_EVENT_FORK and not _capable_ptrace(t):
            return self._api_fail(t, arg, -errno.EPERM)
        if features & UFFD_FEATURE_WP_ASYNC:
            features |= UFFD_FEATURE_WP_UNPOPULATED
        if features & ~UFFD_API_FEATURES:
            return self._api_fail(t, arg, -errno.EINVAL)
        if not t.umem.write(arg, struct.pack('<QQQ', UFFD_API, UFFD_API_FEATURES, UFFD_API_IOCTLS)):
            return -errno.EFAULT
        if self.features:
            return self._api_fail(t, arg, -errno.EINVAL)
        self.features = features | UFFD_FEATURE_INITIALIZED
        return 0

    @staticmethod
    def _api_fail(t, arg, err):
        """err_out: the structure is zeroed for the caller."""
        return err if t.umem.write(arg, bytes(24)) else -errno.EFAULT

    def userfaultfd_register(self, k, t, arg):
        """UFFDIO_REGISTER: mark [start, start + len) for the modes; report the range's ioctls."""
        raw = t.umem.read(arg, 24)
        if raw is None:
            return -errno.EFAULT
        start, length, mode = struct.unpack('<QQQ', raw)
        if not mode or mode & ~UFFD_API_REGISTER_MODES:
            return -errno.EINVAL
        vm_flags = ((VM_UFFD_MISSING if mode & UFFDIO_REGISTER_MODE_MISSING else 0) |
                    (VM_UFFD_WP if mode & UFFDIO_REGISTER_MODE_WP else 0) |
                    (VM_UFFD_MINOR if mode & UFFDIO_REGISTER_MODE_MINOR else 0))
        vmas = self._span_vmas(start, length)
        if isinstance(vmas, int):
            return vmas
        mm = self.mm
        end = start + length
        basic_ioctls = False
        wp_async = bool(self.features & UFFD_FEATURE_WP_ASYNC)
        for cur in vmas:
            err = _vma_can_userfault(cur, vm_flags, wp_async)
            if err:
                return err
            if not cur.vm_flags & VM_MAYWRITE:
                return -errno.EPERM
            if cur.vm_flags & VM_HUGETLB:
                basic_ioctls = True
                if cur.vm_start < end <= cur.vm_end and end & (HPAGE_SIZE - 1):
                    return -errno.EINVAL        # and the last one's the end
            owner = userfaultfd_ctx_of(mm, max(start, cur.vm_start))
            if cur.vm_flags & (VM_UFFD_MISSING | VM_UFFD_WP | VM_UFFD_MINOR) and owner is not None and \
                    owner is not self:
                return -errno.EBUSY
        userfaultfd_register_range(mm, self, start, end, vm_flags)
        ioctls = UFFD_API_RANGE_IOCTLS_BASIC if basic_ioctls else UFFD_API_RANGE_IOCTLS
        if not mode & UFFDIO_REGISTER_MODE_WP:
            ioctls &= ~(1 << _UFFDIO_WRITEPROTECT)
        if not mode & UFFDIO_REGISTER_MODE_MINOR:
            ioctls &= ~(1 << _UFFDIO_CONTINUE)
        return 0 if t.umem.write(arg + 24, struct.pack('<Q', ioctls)) else -errno.EFAULT

    def _span_vmas(self, start, length):
        """The VMAs of [start, start + length) for (un)registering, or a negative errno: a valid range
        that some VMA overlaps, its start aligned to the first VMA's huge page size."""
        err = validate_range(start, length)
        if err:
            return err
        vmas = self.mm.vmas.overlapping(start, start + length)
        if not vmas:
            return -errno.EINVAL
        if vmas[0].vm_flags & VM_HUGETLB and start & (HPAGE_SIZE - 1):
            return -errno.EINVAL
        return vmas

    def userfaultfd_unregister(self, k, t, arg):
        """UFFDIO_UNREGISTER: the range's VMAs become ordinary; its sleeping faults are woken."""
        raw = t.umem.read(arg, 16)
        if raw is None:
            return -errno.EFAULT
        start, length = struct.unpack('<QQ', raw)
        vmas = self._span_vmas(start, length)
        if isinstance(vmas, int):
            return vmas
        mm = self.mm
        end = start + length
        wp_async = bool(self.features & UFFD_FEATURE_WP_ASYNC)
        for cur in vmas:
            if _vma_can_userfault(cur, cur.vm_flags & (VM_UFFD_MISSING | VM_UFFD_WP | VM_UFFD_MINOR), wp_async):
                return -errno.EINVAL
            if cur.vm_flags & VM_HUGETLB and cur.vm_start < end <= cur.vm_end and end & (HPAGE_SIZE - 1):
                return -errno.EINVAL
        userfaultfd_unregister_range(mm, start, end)
        self.wake_userfault(k, start, length)
        return 0

    def userfaultfd_wake(self, k, t, arg):
        """UFFDIO_WAKE: wake the faults in the range without resolving them."""
        raw = t.umem.read(arg, 16)
        if raw is None:
            return -errno.EFAULT
        start, length = struct.unpack('<QQ', raw)
        err = validate_range(start, length)
        if err:
            return err
        self.wake_userfault(k, start, length)
        return 0

    def _mfill_ioctl(self, k, t, arg, nin, mode, dontwake_bit, wp_bit):
        """UFFDIO_COPY/ZEROPAGE/CONTINUE: read the request, fill, write the count, wake."""
        raw = t.umem.read(arg, 8 * nin)
        if raw is None:
            return -errno.EFAULT
        vals = struct.unpack('<%dQ' % nin, raw)
        if mode == MFILL_COPY:
            dst, src, length, flags = vals
            err = validate_unaligned_range(src, length) or validate_range(dst, length)
        else:
            dst, length, flags = vals
            src = 0
            err = validate_range(dst, length)
        res_off = 8 * nin
        if not err and flags & ~(dontwake_bit | wp_bit):
            err = -errno.EINVAL
        if err:
            return err
        ret = mfill_atomic(self.mm, self, dst, src, length, mode, bool(flags & wp_bit), t.umem)
        if not t.umem.write(arg + res_off, struct.pack('<q', ret)):
            return -errno.EFAULT
        if ret < 0:
            return ret
        if not flags & dontwake_bit:
            self.wake_userfault(k, dst, ret)
        return 0 if ret == length else -errno.EAGAIN

    def userfaultfd_copy(self, k, t, arg):
        """UFFDIO_COPY."""
        return self._mfill_ioctl(k, t, arg, 4, MFILL_COPY, UFFDIO_COPY_MODE_DONTWAKE, UFFDIO_COPY_MODE_WP)

    def userfaultfd_zeropage(self, k, t, arg):
        """UFFDIO_ZEROPAGE."""
        return self._mfill_ioctl(k, t, arg, 3, MFILL_ZEROPAGE, UFFDIO_ZEROPAGE_MODE_DONTWAKE, 0)

    def userfaultfd_continue(self, k, t, arg):
        """UFFDIO_CONTINUE: map the cached page of a MINOR fault."""
        return self._mfill_ioctl(k, t, arg, 3, MFILL_CONTINUE, UFFDIO_CONTINUE_MODE_DONTWAKE,
                                 UFFDIO_CONTINUE_MODE_WP)

    def userfaultfd_poison(self, k, t, arg):
        """UFFDIO_POISON: poison markers in the empty PTEs of the range (a later access is SIGBUS)."""
        return self._mfill_ioctl(k, t, arg, 3, MFILL_POISON, UFFDIO_POISON_MODE_DONTWAKE, 0)

    def userfaultfd_move(self, k, t, arg):
        """UFFDIO_MOVE: move anonymous pages into the registered range, write the count, wake."""
        raw = t.umem.read(arg, 32)
        if raw is None:
            return -errno.EFAULT
        dst, src, length, mode = struct.unpack('<4Q', raw)
        err = validate_unaligned_range(src, length) or validate_range(dst, length)
        if not err and mode & ~(UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES | UFFDIO_MOVE_MODE_DONTWAKE):
            err = -errno.EINVAL
        if err:
            return err
        ret = move_pages(self.mm, self, dst, src, length, mode)
        if not t.umem.write(arg + 32, struct.pack('<q', ret)):
            return -errno.EFAULT
        if ret < 0:
            return ret
        if not mode & UFFDIO_MOVE_MODE_DONTWAKE:
            self.wake_userfault(k, dst, ret)
        return 0 if ret == length else -errno.EAGAIN

    def userfaultfd_writeprotect(self, k, t, arg):
        """UFFDIO_WRITEPROTECT: protect, or unprotect and wake."""
        raw = t.umem.read(arg, 24)
        if raw is None:
            return -errno.EFAULT
        start, length, mode = struct.unpack('<QQQ', raw)
        err = validate_range(start, length)
        if err:
            return err
        if mode & ~(UFFDIO_WRITEPROTECT_MODE_DONTWAKE | UFFDIO_WRITEPROTECT_MODE_WP):
            return -errno.EINVAL
        wp = mode & UFFDIO_WRITEPROTECT_MODE_WP
        dontwake = mode & UFFDIO_WRITEPROTECT_MODE_DONTWAKE
        if wp and dontwake:
            return -errno.EINVAL
        err = mwriteprotect_range(self.mm, self, start, length, bool(wp))
        if err:
            return err
        if not wp and not dontwake:
            self.wake_userfault(k, start, length)
        return 0


_IOCTLS = {
    UFFDIO_API: UserfaultfdCtx.userfaultfd_api,
    UFFDIO_REGISTER: UserfaultfdCtx.userfaultfd_register,
    UFFDIO_UNREGISTER: UserfaultfdCtx.userfaultfd_unregister,
    UFFDIO_WAKE: UserfaultfdCtx.userfaultfd_wake,
    UFFDIO_COPY: UserfaultfdCtx.userfaultfd_copy,
    UFFDIO_ZEROPAGE: UserfaultfdCtx.userfaultfd_zeropage,
    UFFDIO_WRITEPROTECT: UserfaultfdCtx.userfaultfd_writeprotect,
    UFFDIO_CONTINUE: UserfaultfdCtx.userfaultfd_continue,
    UFFDIO_MOVE: UserfaultfdCtx.userfaultfd_move,
    UFFDIO_POISON: UserfaultfdCtx.userfaultfd_poison,
}


def _vma_can_userfault(vma, vm_flags, wp_async=False):
    """vma_can_userfault as an errno: anonymous, shmem or hugetlb memory, MINOR only on shmem and
    hugetlb; with UFFD_FEATURE_WP_ASYNC, WP alone on any memory (a private file mapping too)."""
    if vma.vm_flags & (VM_IO | VM_PFNMAP):     # hugetlb VMAs are VM_DONTEXPAND: not refused for that
        return -errno.EINVAL
    hugetlb = vma.vm_flags & VM_HUGETLB
    if vm_flags & VM_UFFD_MINOR and not (hugetlb or vma_is_shmem(vma)):
        return -errno.EINVAL
    if wp_async and vm_flags & (VM_UFFD_MISSING | VM_UFFD_WP | VM_UFFD_MINOR) == VM_UFFD_WP:
        return 0
    return 0 if vma.anon or hugetlb or vma_is_shmem(vma) else -errno.EINVAL


def _capable_ptrace(t):
    return capable(t, CAP_SYS_PTRACE)


def new_userfaultfd(k, t, flags):
    """A new context for the caller's address space and its descriptor (O_RDONLY, anon_inode:[userfaultfd])."""
    if flags & ~(UFFD_SHARED_FCNTL_FLAGS | UFFD_USER_MODE_ONLY):
        return -errno.EINVAL
    ctx = UserfaultfdCtx(anon_sb(k), k, t.mm, flags)
    return anon_inode_getfd(t, 'userfaultfd', ctx, O_RDONLY | (flags & UFFD_SHARED_FCNTL_FLAGS))


def userfaultfd_syscall_allowed(t, flags):
    """User-mode-only contexts are always allowed; kernel faults need CAP_SYS_PTRACE or the
    vm.unprivileged_userfaultfd sysctl (0 here, as by default)."""
    return bool(flags & UFFD_USER_MODE_ONLY) or _capable_ptrace(t)


userfaultfd_misc_register(new_userfaultfd)
