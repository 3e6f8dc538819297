"""close_range(2) (fs/file.c, Linux 5.9+): close, or mark close-on-exec, every descriptor in
[fd, max_fd]; CLOSE_RANGE_UNSHARE first gives the task a private copy of a shared table
(unshare_fd). EINVAL for an unknown flag or fd > max_fd; descriptors that are not open are skipped."""
import errno

from faultlab.kernel.syscalls.registry import syscall

CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC = 1 << 1, 1 << 2
U32 = 0xFFFFFFFF


@syscall(436, 'close_range')
def sys_close_range(k, t, fd, max_fd, flags, *_):
    fd, max_fd, flags = fd & U32, max_fd & U32, flags & U32
    if flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC):
        return -errno.EINVAL
    if fd > max_fd:
        return -errno.EINVAL
    files = t.files
    if flags & CLOSE_RANGE_UNSHARE and files.users > 1:
        files.users -= 1
        files = t.files = files.dup_table()
    for n in sorted(n for n in files.fds if fd <= n <= max_fd):
        if flags & CLOSE_RANGE_CLOEXEC:
            files.cloexec.add(n)
        else:
            files.close(n)
    return 0
