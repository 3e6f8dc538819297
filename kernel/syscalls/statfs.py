"""statfs(2) and fstatfs(2) (fs/statfs.c): the filesystem's struct statfs, from its superblock.

Each filesystem fills in its own numbers (SuperBlock.statfs: the magic, block size, sizes and free
space); a pipe is on pipefs. The host's standard streams are reported as pipes, what they are when a
program's output is captured.
"""
import errno

from faultlab.kernel.file import HostStream
from faultlab.kernel.fs import FsError, StatFs, pack_statfs
from faultlab.kernel.fs.pipe import PipeEnd
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.fs import _abs_at, _get_path, AT_FDCWD

PIPEFS_MAGIC = 0x50495045


def vfs_statfs_of(k, f):
    """The StatFs of the filesystem an open file is on."""
    if isinstance(f, HostStream) or isinstance(getattr(f, 'inode', None), PipeEnd):
        return StatFs(f_type=PIPEFS_MAGIC)
    return f.inode.sb.statfs()


def _copy(t, st, buf):
    return 0 if t.umem.write(buf, pack_statfs(st)) else -errno.EFAULT


@syscall(137, 'statfs')
def sys_statfs(k, t, upath, buf, *_):
    path = _get_path(t, upath)
    if isinstance(path, int):
        return path
    if not path:
        return -errno.ENOENT
    full = _abs_at(t, AT_FDCWD, path)
    try:
        st = k.vfs.statfs(full)
    except FsError as e:
        return -e.errno
    return _copy(t, st, buf)


@syscall(138, 'fstatfs')
def sys_fstatfs(k, t, fd, buf, *_):
    f = t.files.get(s32(fd))
    if f is None:
        return -errno.EBADF
    return _copy(t, vfs_statfs_of(k, f), buf)
