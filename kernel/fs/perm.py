"""Credentials and DAC permission checks (fs/namei.c generic_permission, may_delete)."""
import errno
from dataclasses import dataclass

from kernel.fs.errors import FsError
from kernel.fs.stat import S_IFMT, S_IFDIR, S_ISVTX

MAY_EXEC = 1
MAY_WRITE = 2
MAY_READ = 4


@dataclass(frozen=True)
class Cred:
    """struct cred, reduced to what file permission checks use."""
    uid: int = 0
    gid: int = 0
    groups: tuple = ()

    def in_group(self, gid):
        """in_group_p: is gid the caller's group or a supplementary group?"""
        return gid == self.gid or gid in self.groups


ROOT = Cred()


def generic_permission(inode, mask, cred=None):
    """Check MAY_* bits against the inode mode; raise EACCES. Root bypasses all but exec of files."""
    cred = cred or ROOT
    mode = inode.mode
    if cred.uid == 0:
        if mask & MAY_EXEC and mode & S_IFMT != S_IFDIR and not mode & 0o111:
            raise FsError(errno.EACCES)
        return
    if cred.uid == inode.uid:
        bits = (mode >> 6) & 7
    elif cred.in_group(inode.gid):
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    if mask & ~bits & 7:
        raise FsError(errno.EACCES)


def check_sticky(dir_inode, victim, cred=None):
    """True if the sticky bit on dir forbids cred from removing/renaming victim."""
    cred = cred or ROOT
    if not dir_inode.mode & S_ISVTX or cred.uid == 0:
        return False
    return cred.uid not in (victim.uid, dir_inode.uid)


def may_delete(dir_inode, victim, cred=None):
    """Permission part of may_delete: write+search on the dir (EACCES), sticky bit (EPERM)."""
    generic_permission(dir_inode, MAY_WRITE | MAY_EXEC, cred)
    if check_sticky(dir_inode, victim, cred):
        raise FsError(errno.EPERM)


def may_create(dir_inode, cred=None):
    """Permission part of may_create: write+search on the directory (EACCES)."""
    generic_permission(dir_inode, MAY_WRITE | MAY_EXEC, cred)
