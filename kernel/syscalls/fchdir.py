"""fchdir(2) (fs/open.c): make an open directory the working directory.

fdget_raw (an O_PATH descriptor will do; EBADF for none), ENOTDIR unless it is a directory (a host
stream is not), then search permission (file_permission(MAY_EXEC | MAY_CHDIR)); the working directory
becomes the path the descriptor was opened with."""
import errno

from faultlab.kernel.file import OpenFile
from faultlab.kernel.fs import FsError
from faultlab.kernel.fs.perm import MAY_EXEC
from faultlab.kernel.syscalls.registry import s32, syscall


@syscall(81, 'fchdir')
def sys_fchdir(k, t, fd, *_):
    f = t.files.get(s32(fd))
    if f is None:
        return -errno.EBADF
    if not isinstance(f, OpenFile) or not getattr(f.inode, 'is_dir', lambda: False)():
        return -errno.ENOTDIR
    try:
        k.vfs.permission(f.inode, MAY_EXEC, t.cred.fs_cred())
    except FsError as e:
        return -e.errno
    t.cwd = f.path
    return 0
