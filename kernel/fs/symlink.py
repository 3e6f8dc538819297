"""Symbolic links."""
from faultlab.kernel.fs.inode import Inode
from faultlab.kernel.fs.stat import S_IFLNK


class Symlink(Inode):
    """A symlink inode: mode lrwxrwxrwx, size = length of the target in bytes."""

    def __init__(self, sb, ino, target, uid=0, gid=0):
        """A symlink pointing at target (a str path)."""
        super().__init__(sb, ino, S_IFLNK | 0o777, uid, gid)
        self.target = target
        self.size = len(target.encode('utf-8', 'surrogateescape'))

    def readlink(self):
        """The link target (get_link)."""
        return self.target
