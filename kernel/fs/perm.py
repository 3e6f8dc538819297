"""Credentials and DAC permission checks (fs/namei.c inode_permission, generic_permission, may_delete,
may_create; fs/attr.c inode_owner_or_capable, in_group_or_capable; fs/proc/proc_sysctl.c test_perm)."""
import errno
from dataclasses import dataclass

from faultlab.kernel.capability import CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_FULL_SET
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.stat import S_IFMT, S_IFDIR, S_IFREG, S_ISVTX

MAY_EXEC = 1
MAY_WRITE = 2
MAY_READ = 4
S_IXUGO = 0o111


@dataclass(frozen=True)
class Cred:
    """struct cred, reduced to what file permission checks use: the filesystem ids (uid = fsuid,
    gid = fsgid), the supplementary groups, the effective capabilities (None: all for uid 0, none
    otherwise, the traditional superuser) and the effective ids (default: the filesystem ones)."""
    uid: int = 0
    gid: int = 0
    groups: tuple = ()
    caps: int = None
    euid: int = None
    egid: int = None

    def __post_init__(self):
        """Fill the defaults that depend on the ids."""
        if self.caps is None:
            object.__setattr__(self, 'caps', CAP_FULL_SET if self.uid == 0 else 0)
        if self.euid is None:
            object.__setattr__(self, 'euid', self.uid)
        if self.egid is None:
            object.__setattr__(self, 'egid', self.gid)

    def in_group(self, gid):
        """in_group_p: is gid the fsgid or a supplementary group?"""
        return gid == self.gid or gid in self.groups

    def in_egroup(self, gid):
        """in_egroup_p: is gid the egid or a supplementary group?"""
        return gid == self.egid or gid in self.groups

    def capable(self, cap):
        """capable_wrt_inode_uidgid in the initial namespace: is cap in the effective set?"""
        return bool(self.caps >> cap & 1)


ROOT = Cred()


def acl_permission_check(inode, mask, cred):
    """The mode bits of the class the caller falls in: owner (fsuid), else group (fsgid or a
    supplementary group), else other. True if they grant every MAY_* bit of mask."""
    mode = inode.mode
    if cred.uid == inode.uid:
        bits = mode >> 6
    elif cred.in_group(inode.gid):
        bits = mode >> 3
    else:
        bits = mode
    return not mask & ~bits & 7


def generic_permission(inode, mask, cred=None):
    """The DAC check, then the capabilities that override it: on directories CAP_DAC_READ_SEARCH
    for reading and searching, CAP_DAC_OVERRIDE for anything; on other files CAP_DAC_READ_SEARCH for
    reading, CAP_DAC_OVERRIDE for reading and writing, and for executing only when some x bit is
    set. Raises EACCES."""
    cred = cred or ROOT
    mask &= MAY_READ | MAY_WRITE | MAY_EXEC
    if acl_permission_check(inode, mask, cred):
        return
    if inode.mode & S_IFMT == S_IFDIR:
        if not mask & MAY_WRITE and cred.capable(CAP_DAC_READ_SEARCH):
            return
        if cred.capable(CAP_DAC_OVERRIDE):
            return
        raise FsError(errno.EACCES)
    if mask == MAY_READ and cred.capable(CAP_DAC_READ_SEARCH):
        return
    if (not mask & MAY_EXEC or inode.mode & S_IXUGO) and cred.capable(CAP_DAC_OVERRIDE):
        return
    raise FsError(errno.EACCES)


def inode_permission(inode, mask, cred=None):
    """inode_permission: nobody writes to an immutable inode (EPERM: a /proc/PID directory), then the
    inode's own ->permission (a sysctl file's) or generic_permission."""
    if mask & MAY_WRITE and getattr(inode, 'immutable', False):
        raise FsError(errno.EPERM)
    op = getattr(inode, 'permission', None)
    if op is not None:
        op(mask, cred or ROOT)
    else:
        generic_permission(inode, mask, cred)


def sysctl_perm(inode, mask, cred):
    """proc_sys_permission + test_perm: no executing a sysctl file; the mode's owner bits for euid 0,
    its group bits for a member of group 0, else the other bits, with no capability overriding
    them (a 0200 file is write-only even for root). Raises EACCES."""
    mode = inode.mode
    if mask & MAY_EXEC and mode & S_IFMT == S_IFREG:
        raise FsError(errno.EACCES)
    if cred.euid == 0:
        mode >>= 6
    elif cred.in_egroup(0):
        mode >>= 3
    if mask & ~mode & (MAY_READ | MAY_WRITE | MAY_EXEC):
        raise FsError(errno.EACCES)


def inode_owner_or_capable(inode, cred=None):
    """The caller owns the inode (fsuid) or has CAP_FOWNER."""
    cred = cred or ROOT
    return cred.uid == inode.uid or cred.capable(CAP_FOWNER)


def in_group_or_capable(gid, cred=None):
    """The caller is in group gid or has CAP_FSETID (may keep a set-group-ID bit)."""
    cred = cred or ROOT
    return cred.in_group(gid) or cred.capable(CAP_FSETID)


def check_sticky(dir_inode, victim, cred=None):
    """True if the sticky bit on dir forbids cred from removing/renaming victim: neither the
    victim's nor the directory's owner, and no CAP_FOWNER."""
    cred = cred or ROOT
    if not dir_inode.mode & S_ISVTX:
        return False
    if cred.uid in (victim.uid, dir_inode.uid):
        return False
    return not cred.capable(CAP_FOWNER)


def may_delete(dir_inode, victim, cred=None):
    """Permission part of may_delete: write+search on the dir (EACCES), sticky bit (EPERM)."""
    inode_permission(dir_inode, MAY_WRITE | MAY_EXEC, cred)
    if check_sticky(dir_inode, victim, cred):
        raise FsError(errno.EPERM)


def may_create(dir_inode, cred=None):
    """Permission part of may_create: write+search on the directory (EACCES)."""
    inode_permission(dir_inode, MAY_WRITE | MAY_EXEC, cred)
