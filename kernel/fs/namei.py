"""Path walking (fs/namei.c): components, '.', '..', mount points and symlinks, with Linux errnos."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.perm import MAY_EXEC, inode_permission

PATH_MAX = 4096
NAME_MAX = 255
MAXSYMLINKS = 40

LAST_NORM, LAST_ROOT, LAST_DOT, LAST_DOTDOT = 'norm', 'root', 'dot', 'dotdot'


def to_str_path(path):
    """A guest path as str (bytes are decoded as UTF-8 with surrogateescape, like os.fsdecode)."""
    if isinstance(path, (bytes, bytearray)):
        return bytes(path).decode('utf-8', 'surrogateescape')
    if not isinstance(path, str):
        raise TypeError(f'path must be str or bytes, not {type(path).__name__}')
    return path


def check_path(path):
    """getname checks: empty -> ENOENT, embedded NUL -> EINVAL, >= PATH_MAX bytes -> ENAMETOOLONG."""
    if path == '':
        raise FsError(errno.ENOENT)
    if '\0' in path:
        raise FsError(errno.EINVAL)
    if len(path.encode('utf-8', 'surrogateescape')) >= PATH_MAX:
        raise FsError(errno.ENAMETOOLONG)


def check_name(name):
    """A component longer than NAME_MAX bytes -> ENAMETOOLONG."""
    if len(name.encode('utf-8', 'surrogateescape')) > NAME_MAX:
        raise FsError(errno.ENAMETOOLONG, name[:32] + '...')


class Nameidata:
    """State of one path walk: the namespace, the caller's credentials and the symlink count."""

    def __init__(self, vfs, cred=None):
        """Walk in vfs as cred (None = root)."""
        self.vfs = vfs
        self.cred = cred
        self.links = 0

    def path_parentat(self, path, start):
        """Walk all but the last component: (dir, last_name, last_type, trailing_slash).

        dir is a searchable directory (ENOTDIR/EACCES otherwise) unless the path is just '/'.
        """
        path = to_str_path(path)
        check_path(path)
        cur = self.vfs.root if path.startswith('/') else start
        comps = [c for c in path.split('/') if c]
        if not comps:
            return cur, None, LAST_ROOT, False
        trailing = path.endswith('/')
        last = comps[-1]
        for name in comps[:-1]:
            self.may_lookup(cur)
            cur = self.step(cur, name, follow=True)
        self.may_lookup(cur)
        kind = LAST_DOT if last == '.' else LAST_DOTDOT if last == '..' else LAST_NORM
        return cur, last, kind, trailing

    def may_lookup(self, d):
        """The current inode must be a directory we may search."""
        if not d.is_dir():
            raise FsError(errno.ENOTDIR)
        inode_permission(d, MAY_EXEC, self.cred)

    def step(self, d, name, follow):
        """walk_component: one name inside directory d, crossing mounts and (if follow) symlinks."""
        if name == '.':
            return d
        if name == '..':
            return self.vfs.follow_dotdot(d)
        check_name(name)
        child = d.lookup(name)
        if child is None:
            raise FsError(errno.ENOENT, name)
        child = self.vfs.follow_mount(child)
        if follow and child.is_lnk():
            child = self.follow_link(child, d)
        return child

    def follow_link(self, link, d):
        """Resolve a symlink found in directory d (absolute targets start at the guest root)."""
        self.links += 1
        if self.links > MAXSYMLINKS:
            raise FsError(errno.ELOOP)
        magic = getattr(link, 'get_link_inode', None)     # proc's fd links (proc_fd_link): the open file
        if magic is not None and magic() is not None:
            return magic()
        target = link.readlink()
        link.touch_atime()
        if not target:
            raise FsError(errno.ENOENT)
        return self.resolve(target, d, follow=True)

    def resolve(self, path, start, follow=True):
        """path_lookupat: the inode path names (following a final symlink if follow)."""
        d, last, kind, trailing = self.path_parentat(path, start)
        return self.lookup_last(d, last, kind, trailing, follow)

    def lookup_last(self, d, last, kind, trailing, follow):
        """The last component; a trailing slash forces following and requires a directory."""
        if kind == LAST_ROOT or kind == LAST_DOT:
            return d
        if kind == LAST_DOTDOT:
            return self.vfs.follow_dotdot(d)
        node = self.step(d, last, follow or trailing)
        if trailing and not node.is_dir():
            raise FsError(errno.ENOTDIR)
        return node
