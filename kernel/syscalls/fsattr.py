"""Attribute system calls (fs/open.c, fs/utimes.c): chmod/fchmod/fchmodat/fchmodat2,
chown/fchown/lchown/fchownat, utimensat/utimes/utime, with the caller's credentials."""
import errno
import struct

from faultlab.kernel.file import O_PATH, OpenFile
from faultlab.kernel.fs import FsError, Inode
from faultlab.kernel.fs.attr import UTIME_OMIT, chmod_common, chown_common, vfs_utimes
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.fs import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, user_path_at

U32 = 0xFFFFFFFF


def _fd_inode(t, fd):
    """fdget: the inode of an open file (not an O_PATH one), None for a host stream, or -EBADF."""
    f = t.files.get(s32(fd))
    if f is None or isinstance(f, OpenFile) and f.flags & O_PATH:
        return -errno.EBADF
    return f.inode if isinstance(f, OpenFile) else None


def _apply(change, inode, *args, t):
    """Run an attribute change as the task; 0 or -errno. A host stream has no inode to change."""
    if isinstance(inode, int):
        return inode
    if getattr(inode, 'no_setattr', False):
        return -errno.EOPNOTSUPP
    if not isinstance(inode, Inode):
        return 0
    try:
        change(inode, *args, t.cred.fs_cred())
    except FsError as e:
        return -e.errno
    return 0


def do_fchmodat(k, t, dirfd, upath, mode, flags):
    """chmod of the file a path names (a symlink itself with AT_SYMLINK_NOFOLLOW: EOPNOTSUPP)."""
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        return -errno.EINVAL
    return _apply(chmod_common, user_path_at(k, t, dirfd, upath, flags), mode & 0xFFFF, t=t)


@syscall(90, 'chmod')
def sys_chmod(k, t, upath, mode, *_):
    return do_fchmodat(k, t, AT_FDCWD, upath, mode, 0)


@syscall(268, 'fchmodat')
def sys_fchmodat(k, t, dirfd, upath, mode, *_):
    return do_fchmodat(k, t, dirfd, upath, mode, 0)


@syscall(452, 'fchmodat2')
def sys_fchmodat2(k, t, dirfd, upath, mode, flags, *_):
    return do_fchmodat(k, t, dirfd, upath, mode, flags & U32)


@syscall(91, 'fchmod')
def sys_fchmod(k, t, fd, mode, *_):
    return _apply(chmod_common, _fd_inode(t, fd), mode & 0xFFFF, t=t)


def do_fchownat(k, t, dirfd, upath, uid, gid, flags):
    """chown of the file a path names (-1 keeps an id)."""
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        return -errno.EINVAL
    return _apply(chown_common, user_path_at(k, t, dirfd, upath, flags), uid & U32, gid & U32, t=t)


@syscall(92, 'chown')
def sys_chown(k, t, upath, uid, gid, *_):
    return do_fchownat(k, t, AT_FDCWD, upath, uid, gid, 0)


@syscall(94, 'lchown')
def sys_lchown(k, t, upath, uid, gid, *_):
    return do_fchownat(k, t, AT_FDCWD, upath, uid, gid, AT_SYMLINK_NOFOLLOW)


@syscall(260, 'fchownat')
def sys_fchownat(k, t, dirfd, upath, uid, gid, flags, *_):
    return do_fchownat(k, t, dirfd, upath, uid, gid, flags & U32)


@syscall(93, 'fchown')
def sys_fchown(k, t, fd, uid, gid, *_):
    return _apply(chown_common, _fd_inode(t, fd), uid & U32, gid & U32, t=t)


def do_utimes(k, t, dirfd, upath, times, flags):
    """do_utimes: a NULL path with a descriptor changes that file (flags must be 0); otherwise the
    file the path names."""
    if not upath and s32(dirfd) != AT_FDCWD:
        if flags:
            return -errno.EINVAL
        inode = _fd_inode(t, dirfd)
    else:
        if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
            return -errno.EINVAL
        inode = user_path_at(k, t, dirfd, upath, flags)
    return _apply(vfs_utimes, inode, times, t=t)


@syscall(280, 'utimensat')
def sys_utimensat(k, t, dirfd, upath, utimes, flags, *_):
    times = None
    if utimes:
        raw = t.umem.read(utimes, 32)
        if raw is None:
            return -errno.EFAULT
        a_sec, a_nsec, m_sec, m_nsec = struct.unpack('<qqqq', raw)
        if a_nsec == m_nsec == UTIME_OMIT:
            return 0                         # nothing to do: the path is not even looked up
        times = ((a_sec, a_nsec), (m_sec, m_nsec))
    return do_utimes(k, t, dirfd, upath, times, flags & U32)


@syscall(235, 'utimes')
def sys_utimes(k, t, upath, utimes, *_):
    times = None
    if utimes:
        raw = t.umem.read(utimes, 32)
        if raw is None:
            return -errno.EFAULT
        a_sec, a_usec, m_sec, m_usec = struct.unpack('<qqqq', raw)
        if not (0 <= a_usec < 10 ** 6 and 0 <= m_usec < 10 ** 6):
            return -errno.EINVAL
        times = ((a_sec, a_usec * 1000), (m_sec, m_usec * 1000))
    return do_utimes(k, t, AT_FDCWD, upath, times, 0)


@syscall(132, 'utime')
def sys_utime(k, t, upath, utimbuf, *_):
    times = None
    if utimbuf:
        raw = t.umem.read(utimbuf, 16)
        if raw is None:
            return -errno.EFAULT
        actime, modtime = struct.unpack('<qq', raw)
        times = ((actime, 0), (modtime, 0))
    return do_utimes(k, t, AT_FDCWD, upath, times, 0)
