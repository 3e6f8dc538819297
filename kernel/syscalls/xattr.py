"""Extended-attribute system calls (fs/xattr.c): setxattr/lsetxattr/fsetxattr, getxattr/lgetxattr/
fgetxattr, listxattr/llistxattr/flistxattr, removexattr/lremovexattr/fremovexattr.

The order of checks is Linux 6.12's: setxattr copies the flags, name and value in before the path
lookup (EINVAL, ERANGE for an empty or over-long name, E2BIG over XATTR_SIZE_MAX, EFAULT), the others
look the path up first; a write to a read-only mount is EROFS; the filesystems' rules are in
kernel/fs/xattr.py. An O_PATH descriptor is EBADF for the f* calls (fdget)."""
import errno

from faultlab.kernel.file import O_PATH, OpenFile
from faultlab.kernel.fs import FsError
from faultlab.kernel.fs.xattr import (XATTR_CREATE, XATTR_LIST_MAX, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX,
                             vfs_getxattr, vfs_listxattr, vfs_removexattr, vfs_setxattr)
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.fs import AT_FDCWD, AT_SYMLINK_NOFOLLOW, user_path_at


def _xattr_name(t, uname):
    """strncpy_from_user of an attribute name: the name, or -ERANGE (empty, or longer than
    XATTR_NAME_MAX), -EFAULT."""
    if not uname:
        return -errno.EFAULT
    raw = t.umem.read_cstr(uname, XATTR_NAME_MAX + 1)
    if raw is None:
        return -errno.EFAULT
    if not raw or len(raw) > XATTR_NAME_MAX:
        return -errno.ERANGE
    return raw.decode('utf-8', 'surrogateescape')


def _fd_target(t, fd):
    """fdget: the inode of an open file (or the host stream itself); -EBADF for a bad or O_PATH one."""
    f = t.files.get(s32(fd))
    if f is None or isinstance(f, OpenFile) and f.flags & O_PATH:
        return -errno.EBADF
    return f.inode if isinstance(f, OpenFile) else f


def _path_target(k, t, upath, follow):
    return user_path_at(k, t, AT_FDCWD, upath, 0 if follow else AT_SYMLINK_NOFOLLOW)


def _call(fn, *args):
    try:
        return fn(*args)
    except FsError as e:
        return -e.errno


# ---- set ----------------------------------------------------------------------------------------------
def setxattr_copy(t, uname, value, size, flags):
    """(name, value bytes) from the caller, or -errno."""
    if flags & ~(XATTR_CREATE | XATTR_REPLACE):
        return -errno.EINVAL
    name = _xattr_name(t, uname)
    if isinstance(name, int):
        return name
    data = b''
    if size:
        if size > XATTR_SIZE_MAX:
            return -errno.E2BIG
        data = t.umem.read(value, size)
        if data is None:
            return -errno.EFAULT
    return name, data


def do_setxattr(k, t, target, uname, value, size, flags):
    """setxattr once the target is known (an int target is an errno from its lookup)."""
    copied = setxattr_copy(t, uname, value, size, s32(flags))
    if isinstance(copied, int):
        return copied
    inode = target() if callable(target) else target
    if isinstance(inode, int):
        return inode
    name, data = copied
    return _call(lambda: vfs_setxattr(inode, name, data, s32(flags), t.cred.fs_cred()) or 0)


@syscall(188, 'setxattr')
def sys_setxattr(k, t, upath, uname, value, size, flags, *_):
    return do_setxattr(k, t, lambda: _path_target(k, t, upath, True), uname, value, size, flags)


@syscall(189, 'lsetxattr')
def sys_lsetxattr(k, t, upath, uname, value, size, flags, *_):
    return do_setxattr(k, t, lambda: _path_target(k, t, upath, False), uname, value, size, flags)


@syscall(190, 'fsetxattr')
def sys_fsetxattr(k, t, fd, uname, value, size, flags, *_):
    return do_setxattr(k, t, lambda: _fd_target(t, fd), uname, value, size, flags)


# ---- get ----------------------------------------------------------------------------------------------
def do_getxattr(k, t, inode, uname, value, size):
    """getxattr on a looked-up inode: the value's length; with a buffer, the value copied (ERANGE
    when it does not fit)."""
    if isinstance(inode, int):
        return inode
    name = _xattr_name(t, uname)
    if isinstance(name, int):
        return name
    size = min(size, XATTR_SIZE_MAX)
    try:
        data = vfs_getxattr(inode, name, t.cred.fs_cred())
    except FsError as e:
        return -e.errno
    if size:
        if len(data) > size:
            return -errno.ERANGE
        if data and not t.umem.write(value, data):
            return -errno.EFAULT
    return len(data)


@syscall(191, 'getxattr')
def sys_getxattr(k, t, upath, uname, value, size, *_):
    return do_getxattr(k, t, _path_target(k, t, upath, True), uname, value, size)


@syscall(192, 'lgetxattr')
def sys_lgetxattr(k, t, upath, uname, value, size, *_):
    return do_getxattr(k, t, _path_target(k, t, upath, False), uname, value, size)


@syscall(193, 'fgetxattr')
def sys_fgetxattr(k, t, fd, uname, value, size, *_):
    return do_getxattr(k, t, _fd_target(t, fd), uname, value, size)


# ---- list ---------------------------------------------------------------------------------------------
def do_listxattr(k, t, inode, ulist, size):
    """listxattr: the length of the NUL-separated name list; with a buffer, the list copied."""
    if isinstance(inode, int):
        return inode
    size = min(size, XATTR_LIST_MAX)
    try:
        data = vfs_listxattr(inode, t.cred.fs_cred())
    except FsError as e:
        return -e.errno
    if size:
        if len(data) > size:
            return -errno.E2BIG if size >= XATTR_LIST_MAX else -errno.ERANGE
        if data and not t.umem.write(ulist, data):
            return -errno.EFAULT
    return len(data)


@syscall(194, 'listxattr')
def sys_listxattr(k, t, upath, ulist, size, *_):
    return do_listxattr(k, t, _path_target(k, t, upath, True), ulist, size)


@syscall(195, 'llistxattr')
def sys_llistxattr(k, t, upath, ulist, size, *_):
    return do_listxattr(k, t, _path_target(k, t, upath, False), ulist, size)


@syscall(196, 'flistxattr')
def sys_flistxattr(k, t, fd, ulist, size, *_):
    return do_listxattr(k, t, _fd_target(t, fd), ulist, size)


# ---- remove -------------------------------------------------------------------------------------------
def do_removexattr(k, t, target, uname):
    """removexattr: the name is copied in before the lookup, as path_removexattr does."""
    name = _xattr_name(t, uname)
    if isinstance(name, int):
        return name
    inode = target()
    if isinstance(inode, int):
        return inode
    return _call(lambda: vfs_removexattr(inode, name, t.cred.fs_cred()) or 0)


@syscall(197, 'removexattr')
def sys_removexattr(k, t, upath, uname, *_):
    return do_removexattr(k, t, lambda: _path_target(k, t, upath, True), uname)


@syscall(198, 'lremovexattr')
def sys_lremovexattr(k, t, upath, uname, *_):
    return do_removexattr(k, t, lambda: _path_target(k, t, upath, False), uname)


@syscall(199, 'fremovexattr')
def sys_fremovexattr(k, t, fd, uname, *_):
    return do_removexattr(k, t, lambda: _fd_target(t, fd), uname)
