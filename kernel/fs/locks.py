"""POSIX record locks and open file description locks (fs/locks.c): fcntl F_GETLK/F_SETLK/F_SETLKW
and F_OFD_GETLK/F_OFD_SETLK/F_OFD_SETLKW.

A POSIX lock belongs to the descriptor table (fl_owner = current->files) and goes when that table
closes any descriptor of the file (locks_remove_posix) or the process exits; an OFD lock belongs to
the open file description and goes with its last reference (locks_remove_file). Locks of one owner
never conflict with each other: a new one replaces, splits or merges with the owner's old ranges.
F_SETLKW sleeps on the file's wait queue until the conflicting lock goes; a POSIX waiter whose
chain of blockers leads back to itself gets EDEADLK (posix_locks_deadlock).
"""
import errno
import struct
import weakref

from faultlab.kernel.wait import WaitQueue

F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
OFFSET_MAX = (1 << 63) - 1
FLOCK = struct.Struct('<hh4xqqi4x')           # struct flock on x86-64 (32 bytes)

# posix_locks_deadlock's blocked_hash: a sleeping POSIX owner -> the owner of the lock it waits for
_blocked_on = weakref.WeakKeyDictionary()


class FileLock:
    """struct file_lock: [start, end] (inclusive) of one type, its owner and the pid it reports."""

    def __init__(self, owner, ftype, start, end, pid, ofd):
        self.owner, self.type, self.start, self.end, self.pid, self.ofd = owner, ftype, start, end, pid, ofd

    def overlaps(self, other):
        return self.start <= other.end and other.start <= self.end

    def conflicts(self, other):
        """posix_locks_conflict: another owner's lock on an overlapping range, one of them a write lock."""
        return self.owner is not other.owner and self.overlaps(other) and F_WRLCK in (self.type, other.type)


class FileLockContext:
    """struct file_lock_context: the POSIX/OFD locks of one inode and the tasks waiting on them."""

    def __init__(self, k):
        self.k = k
        self.locks = []
        self.wait = WaitQueue()

    def test(self, req):
        """posix_test_lock: the first lock req conflicts with, or None."""
        return next((fl for fl in self.locks if req.conflicts(fl)), None)

    def apply(self, req):
        """posix_lock_inode's update: take req's range from its owner's locks (splitting them), then add
        req unless it is F_UNLCK, merged with the owner's touching locks of the same type."""
        keep = []
        for fl in self.locks:
            if fl.owner is not req.owner or not fl.overlaps(req):
                keep.append(fl)
                continue
            if fl.start < req.start:
                keep.append(FileLock(fl.owner, fl.type, fl.start, req.start - 1, fl.pid, fl.ofd))
            if fl.end > req.end:
                keep.append(FileLock(fl.owner, fl.type, req.end + 1, fl.end, fl.pid, fl.ofd))
        if req.type != F_UNLCK:
            new = FileLock(req.owner, req.type, req.start, req.end, req.pid, req.ofd)
            merged = []
            for fl in keep:
                if fl.owner is new.owner and fl.type == new.type and \
                        fl.start <= new.end + 1 and new.start <= fl.end + 1:
                    new.start, new.end = min(new.start, fl.start), max(new.end, fl.end)
                else:
                    merged.append(fl)
            keep = merged + [new]
        self.locks = keep

    def remove_owner(self, owner):
        """locks_remove_posix / locks_remove_file: every lock of owner goes; waiters look again."""
        if any(fl.owner is owner for fl in self.locks):
            self.locks = [fl for fl in self.locks if fl.owner is not owner]
            self.wait.wake_all(self.k)


def locks_inode_context(k, f, create=False):
    """locks_get_lock_context: the lock context of the file's inode (or of the stream itself)."""
    obj = getattr(f, 'inode', f)
    ctx = getattr(obj, 'i_flctx', None)
    if ctx is None and create:
        ctx = obj.i_flctx = FileLockContext(k)
    return ctx


def _flock_to_posix_lock(f, l_type, whence, l_start, l_len):
    """flock_to_posix_lock: (start, end) of the lock or -errno; the type is checked last (assign_type)."""
    if whence == SEEK_SET:
        base = 0
    elif whence == SEEK_CUR:
        base = getattr(f, 'pos', 0)
    elif whence == SEEK_END:
        base = getattr(getattr(f, 'inode', None), 'size', 0)
    else:
        return -errno.EINVAL
    if l_start > OFFSET_MAX - base:
        return -errno.EOVERFLOW
    start = base + l_start
    if start < 0:
        return -errno.EINVAL
    if l_len > 0:
        if l_len - 1 > OFFSET_MAX - start:
            return -errno.EOVERFLOW
        end = start + l_len - 1
    elif l_len < 0:
        end = start - 1
        start += l_len
        if start < 0:
            return -errno.EINVAL
    else:
        end = OFFSET_MAX
    if l_type not in (F_RDLCK, F_WRLCK, F_UNLCK):
        return -errno.EINVAL
    return start, end


def _deadlock(req_owner, blocker_owner):
    """posix_locks_deadlock: does the chain of waiters starting at blocker_owner lead to req_owner?"""
    seen = 0
    while blocker_owner is not None and seen < 10:      # MAX_DEADLK_ITERATIONS
        if blocker_owner is req_owner:
            return True
        blocker_owner = _blocked_on.get(blocker_owner)
        seen += 1
    return False


def do_fcntl_lock(k, t, f, cmd, arg):
    """fcntl's lock commands: copy the struct flock in, test or set the lock, copy the result out."""
    raw = t.umem.read(arg, FLOCK.size)
    if raw is None:
        return -errno.EFAULT
    l_type, whence, l_start, l_len, l_pid = FLOCK.unpack(raw)
    ofd = cmd in (F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
    getlk = cmd in (F_GETLK, F_OFD_GETLK)
    if getlk and l_type not in (F_RDLCK, F_WRLCK):
        return -errno.EINVAL                 # fcntl_getlk: only a read or write lock can be tested
    rng = _flock_to_posix_lock(f, l_type, whence, l_start, l_len)
    if isinstance(rng, int):
        return rng
    if not getlk:
        if l_type == F_RDLCK and not getattr(f, 'readable', True) or \
                l_type == F_WRLCK and not getattr(f, 'writable', True):
            return -errno.EBADF              # check_fmode_for_setlk
    if ofd and l_pid != 0:
        return -errno.EINVAL
    owner = f if ofd else t.files
    req = FileLock(owner, l_type, rng[0], rng[1], -1 if ofd else t.tgid, ofd)
    if getlk:
        ctx = locks_inode_context(k, f)
        fl = ctx.test(req) if ctx is not None else None
        if fl is None:
            out = FLOCK.pack(F_UNLCK, whence, l_start, l_len, l_pid)
        else:
            length = 0 if fl.end == OFFSET_MAX else fl.end - fl.start + 1
            out = FLOCK.pack(fl.type, SEEK_SET, fl.start, length, fl.pid)
        return 0 if t.umem.write(arg, out) else -errno.EFAULT
    ctx = locks_inode_context(k, f, create=l_type != F_UNLCK)
    if ctx is None:
        return 0
    if l_type != F_UNLCK:
        fl = ctx.test(req)
        if fl is not None:
            if cmd in (F_SETLK, F_OFD_SETLK):
                return -errno.EAGAIN
            if not ofd and not fl.ofd and _deadlock(owner, fl.owner):
                _blocked_on.pop(owner, None)
                return -errno.EDEADLK
            if not ofd:
                _blocked_on[owner] = fl.owner
            return ctx.wait.sleep(k, t, 'file lock')
    _blocked_on.pop(owner, None)
    ctx.apply(req)
    ctx.wait.wake_all(k)
    return 0
