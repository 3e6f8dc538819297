"""userfaultfd(2) (fs/userfaultfd.c SYSCALL_DEFINE1(userfaultfd)): a new context (kernel/fs/userfaultfd.py)."""
import errno

from faultlab.kernel.fs.userfaultfd import new_userfaultfd, userfaultfd_syscall_allowed
from faultlab.kernel.syscalls.registry import s32, syscall


@syscall(323, 'userfaultfd')
def sys_userfaultfd(k, t, flags, *_):
    flags = s32(flags)
    if not userfaultfd_syscall_allowed(t, flags):
        return -errno.EPERM
    return new_userfaultfd(k, t, flags)
