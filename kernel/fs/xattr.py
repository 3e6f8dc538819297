"""Extended attributes (fs/xattr.c): the VFS checks every filesystem shares and each filesystem's store.

Which filesystems have them, as in Linux 6.12:
- tmpfs and devtmpfs (mm/shmem.c shmem_xattr_handlers) and ext4 (fs/ext4/xattr.c ext4_xattr_handlers):
  the user.*, trusted.* and security.* namespaces, kept in memory with the inode (simple_xattrs,
  fs/xattr.c; listed in name order as simple_xattr_list walks its rbtree). ext4 keeps them in one
  4 KiB block (no ea_inode feature): a set that does not fit is ENOSPC (ext4_xattr_set_entry).
  system.posix_acl_* read as ENODATA (ACLs are on, none is set); setting an ACL is EOPNOTSUPP here.
- 9p (the --mount and library-view host directories; fs/9p/xattr.c forwards every name to the server):
  the host file's own attributes, read and written on the host inode.
- proc, hugetlbfs, pidfs, pipes, sockets (no s_xattr handlers): getxattr/setxattr EOPNOTSUPP,
  listxattr an empty list (vfs_listxattr falls back to the security module, none here).
Every value is returned whole; the system-call layer applies the caller's buffer size.
"""
import errno
import weakref

from faultlab.kernel.capability import CAP_SYS_ADMIN
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.perm import MAY_READ, MAY_WRITE, ROOT, inode_owner_or_capable, inode_permission
from faultlab.kernel.fs.stat import S_IFMT, S_IFDIR, S_IFREG, S_ISVTX

XATTR_CREATE, XATTR_REPLACE = 1, 2
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = XATTR_LIST_MAX = 65536
XATTR_USER_PREFIX, XATTR_TRUSTED_PREFIX = 'user.', 'trusted.'
XATTR_SECURITY_PREFIX, XATTR_SYSTEM_PREFIX = 'security.', 'system.'
POSIX_ACL_NAMES = ('system.posix_acl_access', 'system.posix_acl_default')
SIMPLE_PREFIXES = (XATTR_USER_PREFIX, XATTR_TRUSTED_PREFIX, XATTR_SECURITY_PREFIX)
# ext4: header (32 bytes) and the end marker (4) of the one xattr block; each entry is a 16-byte
# descriptor plus the name without its prefix (EXT4_XATTR_LEN) and the value, each rounded to 4
EXT4_BLOCK, EXT4_HEADER, EXT4_ENTRY = 4096, 32 + 4, 16
SIMPLE_FILESYSTEMS = ('tmpfs', 'devtmpfs', 'ext4')

_stores = weakref.WeakKeyDictionary()       # inode -> {name: value} of the in-memory filesystems


def _round4(n):
    return (n + 3) & ~3


def _is_reg_or_dir(inode):
    return getattr(inode, 'mode', 0) & S_IFMT in (S_IFREG, S_IFDIR)


def xattr_permission(inode, name, mask, cred):
    """fs/xattr.c xattr_permission: security.* and system.* are left to the filesystem, trusted.*
    needs CAP_SYS_ADMIN (reading without it finds nothing), user.* exists only on regular files and
    directories (a sticky directory's only for its owner); then the inode's permission for mask."""
    if name.startswith((XATTR_SECURITY_PREFIX, XATTR_SYSTEM_PREFIX)):
        return
    if name.startswith(XATTR_TRUSTED_PREFIX):
        if not cred.capable(CAP_SYS_ADMIN):
            raise FsError(errno.EPERM if mask & MAY_WRITE else errno.ENODATA)
        return
    if name.startswith(XATTR_USER_PREFIX):
        if not _is_reg_or_dir(inode):
            raise FsError(errno.EPERM if mask & MAY_WRITE else errno.ENODATA)
        if inode.mode & S_IFMT == S_IFDIR and inode.mode & S_ISVTX and mask & MAY_WRITE and \
                not inode_owner_or_capable(inode, cred):
            raise FsError(errno.EPERM)
    if hasattr(inode, 'sb'):
        inode_permission(inode, mask, cred)


def _resolve_name(name):
    """xattr_resolve_name for the user/trusted/security handlers: a known prefix with an empty
    suffix is EINVAL, an unknown one EOPNOTSUPP."""
    for prefix in SIMPLE_PREFIXES:
        if name.startswith(prefix):
            if len(name) == len(prefix):
                raise FsError(errno.EINVAL)
            return prefix
    raise FsError(errno.EOPNOTSUPP)


def _kind(inode):
    """'simple' (in-memory store), 'host' (the host inode's) or None (no xattr handlers)."""
    sb = getattr(inode, 'sb', None)
    if sb is None:
        return None
    if hasattr(inode, 'host_getxattr'):
        return 'host'
    return 'simple' if sb.fstype in SIMPLE_FILESYSTEMS else None


def _simple(inode):
    store = _stores.get(inode)
    if store is None:
        store = _stores[inode] = {}
    return store


def _ext4_fits(store):
    used = sum(EXT4_ENTRY + _round4(len(n.split('.', 1)[1].encode('utf-8', 'surrogateescape'))) +
               _round4(len(v)) for n, v in store.items())
    return used + EXT4_HEADER <= EXT4_BLOCK


def vfs_getxattr(inode, name, cred=ROOT):
    """The value of attribute name (bytes); raises ENODATA, EOPNOTSUPP, EACCES... as Linux does."""
    xattr_permission(inode, name, MAY_READ, cred)
    kind = _kind(inode)
    if kind is None:
        raise FsError(errno.EOPNOTSUPP)
    if kind == 'host':
        return inode.host_getxattr(name)
    if name in POSIX_ACL_NAMES:
        raise FsError(errno.ENODATA)
    _resolve_name(name)
    value = _stores.get(inode, {}).get(name)
    if value is None:
        raise FsError(errno.ENODATA)
    return value


def vfs_listxattr(inode, cred=ROOT):
    """The attribute names as listxattr(2) returns them (each NUL-terminated), as bytes; trusted.*
    names only for a caller with CAP_SYS_ADMIN on the in-memory filesystems."""
    kind = _kind(inode)
    if kind is None:
        return b''
    if kind == 'host':
        names = inode.host_listxattr()
    else:
        names = sorted(_stores.get(inode, {}))
        if not cred.capable(CAP_SYS_ADMIN):
            names = [n for n in names if not n.startswith(XATTR_TRUSTED_PREFIX)]
    return b''.join(n.encode('utf-8', 'surrogateescape') + b'\0' for n in names)


def _may_change(inode, name, cred):
    """What setxattr and removexattr check first: a writable mount (EROFS), xattr_permission for
    MAY_WRITE, a filesystem with attributes (EOPNOTSUPP); the inode's kind of store."""
    if getattr(inode, 'sb', None) is not None and inode.sb.readonly:
        raise FsError(errno.EROFS)
    xattr_permission(inode, name, MAY_WRITE, cred)
    kind = _kind(inode)
    if kind is None:
        raise FsError(errno.EOPNOTSUPP)
    return kind


def vfs_setxattr(inode, name, value, flags, cred=ROOT):
    """Set attribute name to value (XATTR_CREATE: EEXIST if present; XATTR_REPLACE: ENODATA if
    absent); the inode's ctime changes."""
    kind = _may_change(inode, name, cred)
    if kind == 'host':
        inode.host_setxattr(name, value, flags)
        inode.touch_ctime()
        return
    if name.startswith(XATTR_SYSTEM_PREFIX):
        raise FsError(errno.EOPNOTSUPP)
    _resolve_name(name)
    store = _simple(inode)
    if flags & XATTR_CREATE and name in store:
        raise FsError(errno.EEXIST)
    if flags & XATTR_REPLACE and name not in store:
        raise FsError(errno.ENODATA)
    if inode.sb.fstype == 'ext4':
        trial = dict(store)
        trial[name] = value
        if not _ext4_fits(trial):
            raise FsError(errno.ENOSPC)
    store[name] = bytes(value)
    inode.touch_ctime()


def vfs_removexattr(inode, name, cred=ROOT):
    """Remove attribute name (ENODATA if absent); the inode's ctime changes."""
    kind = _may_change(inode, name, cred)
    if kind == 'host':
        inode.host_removexattr(name)
        inode.touch_ctime()
        return
    if name.startswith(XATTR_SYSTEM_PREFIX):
        raise FsError(errno.EOPNOTSUPP if name not in POSIX_ACL_NAMES else errno.ENODATA)
    _resolve_name(name)
    store = _stores.get(inode, {})
    if name not in store:
        raise FsError(errno.ENODATA)
    del store[name]
    inode.touch_ctime()
