"""Attribute changes with their permission rules (fs/attr.c notify_change, setattr_prepare, chown_ok,
chgrp_ok, setattr_should_drop_sgid; fs/open.c chmod_common, chown_common; fs/utimes.c vfs_utimes)."""
import errno
from dataclasses import dataclass

from faultlab.kernel.capability import CAP_CHOWN
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.perm import MAY_WRITE, ROOT, in_group_or_capable, inode_owner_or_capable, inode_permission
from faultlab.kernel.fs.stat import S_IFMT, S_IFDIR, S_IFLNK, S_ISGID, S_ISUID, Timespec

# include/linux/fs.h ia_valid bits
ATTR_MODE, ATTR_UID, ATTR_GID, ATTR_SIZE, ATTR_ATIME, ATTR_MTIME, ATTR_CTIME = 1, 2, 4, 8, 16, 32, 64
ATTR_ATIME_SET, ATTR_MTIME_SET, ATTR_KILL_SUID, ATTR_KILL_SGID = 128, 256, 2048, 4096
ATTR_TIMES_SET, ATTR_TOUCH = 1 << 16, 1 << 17
S_IALLUGO = 0o7777
S_IXGRP = 0o010
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
INVALID_ID = 0xFFFFFFFF


@dataclass
class Iattr:
    """struct iattr: which attributes change (valid) and their new values."""
    valid: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    atime: tuple = None
    mtime: tuple = None


def chown_ok(inode, uid, cred):
    """The owner may "change" the owner to itself; anything else needs CAP_CHOWN."""
    return (cred.uid == inode.uid and uid == inode.uid) or cred.capable(CAP_CHOWN)


def chgrp_ok(inode, gid, cred):
    """The owner may give the file its own group or one it is a member of; anything else needs
    CAP_CHOWN."""
    if cred.uid == inode.uid and (gid == inode.gid or cred.in_group(gid)):
        return True
    return cred.capable(CAP_CHOWN)


def setattr_should_drop_sgid(inode, cred):
    """ATTR_KILL_SGID when a set-group-ID file is group-executable, or its group is not the caller's
    (and no CAP_FSETID)."""
    mode = inode.mode
    if not mode & S_ISGID:
        return 0
    if mode & S_IXGRP or not in_group_or_capable(inode.gid, cred):
        return ATTR_KILL_SGID
    return 0


def setattr_prepare(inode, attr, cred):
    """May the caller make these changes? EPERM if not; a set-group-ID bit the caller may not keep
    is dropped from a new mode."""
    valid = attr.valid
    if valid & ATTR_UID and not chown_ok(inode, attr.uid, cred):
        raise FsError(errno.EPERM)
    if valid & ATTR_GID and not chgrp_ok(inode, attr.gid, cred):
        raise FsError(errno.EPERM)
    if valid & ATTR_MODE:
        if not inode_owner_or_capable(inode, cred):
            raise FsError(errno.EPERM)
        if not in_group_or_capable(attr.gid if valid & ATTR_GID else inode.gid, cred):
            attr.mode &= ~S_ISGID
    if valid & (ATTR_MTIME_SET | ATTR_ATIME_SET | ATTR_TIMES_SET) and not inode_owner_or_capable(inode, cred):
        raise FsError(errno.EPERM)


def notify_change(inode, attr, cred=None):
    """Change an inode's attributes as the caller cred: EROFS on a read-only filesystem, the write
    permission a touch (utimes to now) needs, the set-ID bits a chown kills, setattr_prepare's
    checks, then the change (ctime always)."""
    cred = cred or ROOT
    inode.check_writable()
    valid = attr.valid
    if valid & ATTR_TOUCH and not inode_owner_or_capable(inode, cred):
        inode_permission(inode, MAY_WRITE, cred)
    if valid & ATTR_MODE and inode.mode & S_IFMT == S_IFLNK:
        raise FsError(errno.EOPNOTSUPP)
    if valid & ATTR_KILL_SUID and inode.mode & S_ISUID:
        valid |= ATTR_MODE
        attr.mode = inode.mode & ~S_ISUID
    if valid & ATTR_KILL_SGID and inode.mode & S_ISGID:
        if not valid & ATTR_MODE:
            valid |= ATTR_MODE
            attr.mode = inode.mode
        attr.mode &= ~S_ISGID
    attr.valid = valid
    if not valid & ~(ATTR_KILL_SUID | ATTR_KILL_SGID):
        return
    setattr_prepare(inode, attr, cred)
    now = inode.sb.now()
    inode.setattr(mode=attr.mode & S_IALLUGO if valid & ATTR_MODE else None,
                  uid=attr.uid if valid & ATTR_UID else None,
                  gid=attr.gid if valid & ATTR_GID else None,
                  atime=(attr.atime if valid & ATTR_ATIME_SET else now) if valid & ATTR_ATIME else None,
                  mtime=(attr.mtime if valid & ATTR_MTIME_SET else now) if valid & ATTR_MTIME else None)


def chmod_common(inode, mode, cred=None):
    """chmod/fchmod/fchmodat: the permission and set-ID bits of mode, the type kept."""
    notify_change(inode, Iattr(ATTR_MODE | ATTR_CTIME, (mode & S_IALLUGO) | (inode.mode & ~S_IALLUGO)), cred)


def chown_common(inode, uid, gid, cred=None):
    """chown family: -1 leaves an id; a non-directory loses its set-user-ID bit (and a set-group-ID
    bit setattr_should_drop_sgid names)."""
    cred = cred or ROOT
    attr = Iattr(ATTR_CTIME)
    if uid != INVALID_ID:
        attr.valid |= ATTR_UID
        attr.uid = uid
    if gid != INVALID_ID:
        attr.valid |= ATTR_GID
        attr.gid = gid
    if inode.mode & S_IFMT != S_IFDIR:
        attr.valid |= ATTR_KILL_SUID | setattr_should_drop_sgid(inode, cred)
    notify_change(inode, attr, cred)


def nsec_valid(nsec):
    """A tv_nsec of utimensat: UTIME_NOW, UTIME_OMIT or 0..999999999."""
    return nsec in (UTIME_NOW, UTIME_OMIT) or 0 <= nsec <= 999999999


def vfs_utimes(inode, times, cred=None):
    """utimensat's change: times None (or both UTIME_NOW) sets both to now and needs ownership or
    write permission; explicit times need ownership (or CAP_FOWNER); UTIME_OMIT leaves one."""
    if times is not None:
        (asec, ansec), (msec, mnsec) = times
        if not nsec_valid(ansec) or not nsec_valid(mnsec):
            raise FsError(errno.EINVAL)
        if ansec == mnsec == UTIME_NOW:
            times = None
    attr = Iattr(ATTR_CTIME | ATTR_MTIME | ATTR_ATIME)
    if times is None:
        attr.valid |= ATTR_TOUCH
    else:
        for (sec, nsec), present, is_set, field in ((times[0], ATTR_ATIME, ATTR_ATIME_SET, 'atime'),
                                                   (times[1], ATTR_MTIME, ATTR_MTIME_SET, 'mtime')):
            if nsec == UTIME_OMIT:
                attr.valid &= ~present
            elif nsec != UTIME_NOW:
                setattr(attr, field, Timespec(sec, nsec))
                attr.valid |= is_set
        attr.valid |= ATTR_TIMES_SET
    notify_change(inode, attr, cred)
