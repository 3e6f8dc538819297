"""eventfd and eventfd2 (fs/eventfd.c do_eventfd): a new counter file (kernel/fs/eventfd.py)."""
import errno

from faultlab.kernel.file import O_CLOEXEC, O_NONBLOCK, O_RDWR
from faultlab.kernel.fs.anon_inodes import anon_inode_getfd, anon_sb
from faultlab.kernel.fs.eventfd import EFD_SEMAPHORE, EventfdCtx
from faultlab.kernel.syscalls.registry import syscall

EFD_CLOEXEC, EFD_NONBLOCK = O_CLOEXEC, O_NONBLOCK
EFD_FLAGS_SET = EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK


def do_eventfd(k, t, count, flags):
    """An eventfd with the initial count (an unsigned int) and EFD_* flags; the descriptor or -errno."""
    if flags & ~EFD_FLAGS_SET:
        return -errno.EINVAL
    ctx = EventfdCtx(anon_sb(k), count & 0xFFFFFFFF, bool(flags & EFD_SEMAPHORE))
    return anon_inode_getfd(t, 'eventfd', ctx, O_RDWR | (flags & (EFD_CLOEXEC | EFD_NONBLOCK)))


@syscall(284, 'eventfd')
def sys_eventfd(k, t, count, *_):
    return do_eventfd(k, t, count, 0)


@syscall(290, 'eventfd2')
def sys_eventfd2(k, t, count, flags, *_):
    return do_eventfd(k, t, count, flags & 0xFFFFFFFF)
