"""vmsplice(2): the system call's checks (fs/splice.c); the work is in kernel/fs/splice.py."""
import errno
import struct

from faultlab.kernel.file import OpenFile
from faultlab.kernel.fs.pipe import PipeEnd
from faultlab.kernel.fs.splice import MAX_RW_COUNT, SPLICE_F_ALL, UIO_MAXIOV, vmsplice_to_pipe, vmsplice_to_user
from faultlab.kernel.syscalls.registry import s32, syscall


def import_iovec(t, uiov, nr_segs):
    """The (base, len) pairs of a user iovec array, the total capped at MAX_RW_COUNT; or -errno."""
    if nr_segs > UIO_MAXIOV:
        return -errno.EINVAL
    if not nr_segs:
        return []
    raw = t.umem.read(uiov, 16 * nr_segs)
    if raw is None:
        return -errno.EFAULT
    vecs = []
    room = MAX_RW_COUNT
    for i in range(nr_segs):
        base, ln = struct.unpack_from('<QQ', raw, 16 * i)
        if ln >= 1 << 63:
            return -errno.EINVAL
        ln = min(ln, room)
        room -= ln
        if ln:
            vecs.append((base, ln))
    return vecs


@syscall(278, 'vmsplice')
def sys_vmsplice(k, t, fd, uiov, nr_segs, flags, *_):
    """Only SPLICE_F_NONBLOCK makes it non-blocking: the pipe's O_NONBLOCK is not consulted."""
    flags &= 0xFFFFFFFF
    if flags & ~SPLICE_F_ALL:
        return -errno.EINVAL
    f = t.files.get(s32(fd))
    if not isinstance(f, OpenFile):
        return -errno.EBADF
    writing = f.writable
    if not writing and not f.readable:
        return -errno.EBADF                    # vmsplice_type: neither FMODE_WRITE nor FMODE_READ
    vecs = import_iovec(t, uiov, nr_segs)
    if isinstance(vecs, int):
        return vecs
    if not vecs:
        return 0
    if not isinstance(f.inode, PipeEnd):
        return -errno.EBADF                    # get_pipe_info: not a pipe
    if writing:
        return vmsplice_to_pipe(k, t, f, vecs, flags)
    return vmsplice_to_user(k, t, f, vecs, flags)
