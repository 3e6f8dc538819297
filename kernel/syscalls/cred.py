"""User and group ids, supplementary groups and capabilities (kernel/sys.c, kernel/groups.c,
kernel/capability.c): the set*id/get*id calls, getgroups/setgroups, capget/capset."""
import errno
import struct
from typing import NamedTuple

from faultlab.kernel.cred import (CAP_SETGID, CAP_SETPCAP, CAP_SETUID, INVALID_ID, NGROUPS_MAX, capable, cap_task_fix_setuid,
                         commit_creds)
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.tasktable import find_task_by_vpid

_LINUX_CAPABILITY_VERSION_1 = 0x19980330
_LINUX_CAPABILITY_VERSION_2 = 0x20071026
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_KERNEL_CAPABILITY_VERSION = _LINUX_CAPABILITY_VERSION_3
_CAP_DATA = struct.Struct('<III')            # struct __user_cap_data_struct: effective, permitted, inheritable
U32 = 0xFFFFFFFF


def _id(v):
    """A uid_t/gid_t argument (the low 32 bits of the register)."""
    return v & U32


# ---- user ids -------------------------------------------------------------------------------------
@syscall(102, 'getuid')
def sys_getuid(k, t, *_):
    return t.cred.uid


@syscall(107, 'geteuid')
def sys_geteuid(k, t, *_):
    return t.cred.euid


@syscall(104, 'getgid')
def sys_getgid(k, t, *_):
    return t.cred.gid


@syscall(108, 'getegid')
def sys_getegid(k, t, *_):
    return t.cred.egid


class _IdKind(NamedTuple):
    """One kind of id in struct cred: its real, effective, saved and filesystem fields, the
    capability that lifts the rules, and whether a change goes through security_task_fix_setuid."""
    real: str
    eff: str
    saved: str
    fs: str
    cap: int
    fix_setuid: bool


UIDS = _IdKind('uid', 'euid', 'suid', 'fsuid', CAP_SETUID, True)
GIDS = _IdKind('gid', 'egid', 'sgid', 'fsgid', CAP_SETGID, False)


def _ids(cred, kind):
    """(real, effective, saved, filesystem) ids of this kind."""
    return getattr(cred, kind.real), getattr(cred, kind.eff), getattr(cred, kind.saved), getattr(cred, kind.fs)


def _commit(t, kind, new, old, fs_only=False):
    """commit_creds, a uid change first through cap_task_fix_setuid."""
    return commit_creds(t, cap_task_fix_setuid(new, old, fs_only) if kind.fix_setuid else new)


def _with_fs_from_eff(kind, new):
    """The filesystem id follows the effective one."""
    return new.change(**{kind.fs: getattr(new, kind.eff)})


def _setid(t, kind, value):
    """__sys_setuid/__sys_setgid: with the capability all four ids; otherwise the effective and
    filesystem ids to the real or saved one."""
    value = _id(value)
    if value == INVALID_ID:
        return -errno.EINVAL
    old = t.cred
    real, _, saved, _ = _ids(old, kind)
    if capable(t, kind.cap):
        new = old.change(**{kind.real: value, kind.saved: value})
    elif value in (real, saved):
        new = old
    else:
        return -errno.EPERM
    return _commit(t, kind, new.change(**{kind.eff: value, kind.fs: value}), old)


def _setreid(t, kind, rid, eid):
    """__sys_setreuid/__sys_setregid: the real id to the real or effective one, the effective id to
    any of the three (anything with the capability); the saved id follows a changed effective id."""
    rid, eid = _id(rid), _id(eid)
    old = t.cred
    real, eff, saved, _ = _ids(old, kind)
    new = old
    priv = capable(t, kind.cap)
    if rid != INVALID_ID:
        if rid not in (real, eff) and not priv:
            return -errno.EPERM
        new = new.change(**{kind.real: rid})
    if eid != INVALID_ID:
        if eid not in (real, eff, saved) and not priv:
            return -errno.EPERM
        new = new.change(**{kind.eff: eid})
    if rid != INVALID_ID or (eid != INVALID_ID and eid != real):
        new = new.change(**{kind.saved: getattr(new, kind.eff)})
    return _commit(t, kind, _with_fs_from_eff(kind, new), old)


def _setresid(t, kind, rid, eid, sid):
    """__sys_setresuid/__sys_setresgid: each id to any of the current three (anything with the
    capability); nothing to do when none changes."""
    wanted = (_id(rid), _id(eid), _id(sid))
    rid, eid, sid = wanted
    old = t.cred
    real, eff, saved, fs = _ids(old, kind)
    if ((rid == INVALID_ID or rid == real) and (eid == INVALID_ID or eid == eff == fs)
            and (sid == INVALID_ID or sid == saved)):
        return 0
    if any(v != INVALID_ID and v not in (real, eff, saved) for v in wanted) and not capable(t, kind.cap):
        return -errno.EPERM
    new = old.change(**{f: v for f, v in zip((kind.real, kind.eff, kind.saved), wanted) if v != INVALID_ID})
    return _commit(t, kind, _with_fs_from_eff(kind, new), old)


def _getresid(t, kind, ptrs):
    """getresuid/getresgid: the real, effective and saved ids to the three pointers."""
    return _put_ids(t, ptrs, _ids(t.cred, kind)[:3])


def _setfsid(t, kind, value):
    """__sys_setfsuid/__sys_setfsgid: always returns the old filesystem id; changes it to one of the
    ids (any with the capability)."""
    value = _id(value)
    old = t.cred
    real, eff, saved, fs = _ids(old, kind)
    if value == INVALID_ID:
        return fs
    if (value in (real, eff, saved, fs) or capable(t, kind.cap)) and value != fs:
        _commit(t, kind, old.change(**{kind.fs: value}), old, fs_only=True)
    return fs


def _put_ids(t, ptrs, values):
    """getres[ug]id: each id to its pointer in turn; -EFAULT at the first that fails."""
    for p, v in zip(ptrs, values):
        if not t.umem.write(p, struct.pack('<I', v)):
            return -errno.EFAULT
    return 0


@syscall(105, 'setuid')
def sys_setuid(k, t, uid, *_):
    return _setid(t, UIDS, uid)


@syscall(113, 'setreuid')
def sys_setreuid(k, t, ruid, euid, *_):
    return _setreid(t, UIDS, ruid, euid)


@syscall(117, 'setresuid')
def sys_setresuid(k, t, ruid, euid, suid, *_):
    return _setresid(t, UIDS, ruid, euid, suid)


@syscall(118, 'getresuid')
def sys_getresuid(k, t, ruidp, euidp, suidp, *_):
    return _getresid(t, UIDS, (ruidp, euidp, suidp))


@syscall(122, 'setfsuid')
def sys_setfsuid(k, t, uid, *_):
    return _setfsid(t, UIDS, uid)


# ---- group ids ------------------------------------------------------------------------------------
@syscall(106, 'setgid')
def sys_setgid(k, t, gid, *_):
    return _setid(t, GIDS, gid)


@syscall(114, 'setregid')
def sys_setregid(k, t, rgid, egid, *_):
    return _setreid(t, GIDS, rgid, egid)


@syscall(119, 'setresgid')
def sys_setresgid(k, t, rgid, egid, sgid, *_):
    return _setresid(t, GIDS, rgid, egid, sgid)


@syscall(120, 'getresgid')
def sys_getresgid(k, t, rgidp, egidp, sgidp, *_):
    return _getresid(t, GIDS, (rgidp, egidp, sgidp))


@syscall(123, 'setfsgid')
def sys_setfsgid(k, t, gid, *_):
    return _setfsid(t, GIDS, gid)


@syscall(115, 'getgroups')
def sys_getgroups(k, t, gidsetsize, grouplist, *_):
    """The supplementary groups; with size 0 only their number; EINVAL when they do not fit."""
    size = s32(gidsetsize)
    if size < 0:
        return -errno.EINVAL
    groups = t.cred.groups
    if size:
        if len(groups) > size:
            return -errno.EINVAL
        if groups and not t.umem.write(grouplist, struct.pack('<%dI' % len(groups), *groups)):
            return -errno.EFAULT
    return len(groups)


@syscall(116, 'setgroups')
def sys_setgroups(k, t, gidsetsize, grouplist, *_):
    """Replace the supplementary groups (CAP_SETGID), kept sorted as groups_sort() does."""
    if not capable(t, CAP_SETGID):
        return -errno.EPERM
    n = gidsetsize & U32
    if n > NGROUPS_MAX:
        return -errno.EINVAL
    raw = t.umem.read(grouplist, 4 * n) if n else b''
    if raw is None:
        return -errno.EFAULT
    if any(g == INVALID_ID for g in struct.unpack('<%dI' % n, raw)):
        return -errno.EINVAL
    return commit_creds(t, t.cred.change(groups=tuple(sorted(struct.unpack('<%dI' % n, raw)))))


# ---- capabilities ---------------------------------------------------------------------------------
def cap_validate_magic(t, header):
    """The number of 32-bit data words of the header's version, or -errno (an unknown version gets
    the kernel's preferred one written back and EINVAL)."""
    raw = t.umem.read(header, 4)
    if raw is None:
        return -errno.EFAULT
    version = struct.unpack('<I', raw)[0]
    if version == _LINUX_CAPABILITY_VERSION_1:
        return 1
    if version in (_LINUX_CAPABILITY_VERSION_2, _LINUX_CAPABILITY_VERSION_3):
        return 2
    if not t.umem.write(header, struct.pack('<I', _KERNEL_CAPABILITY_VERSION)):
        return -errno.EFAULT
    return -errno.EINVAL


@syscall(125, 'capget')
def sys_capget(k, t, header, dataptr, *_):
    """The effective, permitted and inheritable sets of the caller or of task header->pid."""
    tocopy = cap_validate_magic(t, header)
    if not dataptr or tocopy < 0:
        return 0 if not dataptr and tocopy == -errno.EINVAL else min(tocopy, 0)
    raw = t.umem.read(header + 4, 4)
    if raw is None:
        return -errno.EFAULT
    pid = struct.unpack('<i', raw)[0]
    if pid < 0:
        return -errno.EINVAL
    target = t if pid in (0, t.tid) else find_task_by_vpid(k, pid)
    if target is None:
        return -errno.ESRCH
    c = target.cred
    data = b''.join(_CAP_DATA.pack(c.cap_effective >> s & U32, c.cap_permitted >> s & U32,
                                   c.cap_inheritable >> s & U32) for s in (0, 32)[:tocopy])
    return 0 if t.umem.write(dataptr, data) else -errno.EFAULT


@syscall(126, 'capset')
def sys_capset(k, t, header, data, *_):
    """cap_capset: the caller's sets may only shrink (inheritable within permitted unless
    CAP_SETPCAP, and within the bounding set); effective within the new permitted set."""
    tocopy = cap_validate_magic(t, header)
    if tocopy < 0:
        return tocopy
    raw = t.umem.read(header + 4, 4)
    if raw is None:
        return -errno.EFAULT
    pid = struct.unpack('<i', raw)[0]
    if pid not in (0, t.tgid):
        return -errno.EPERM
    raw = t.umem.read(data, _CAP_DATA.size * tocopy)
    if raw is None:
        return -errno.EFAULT
    words = [_CAP_DATA.unpack_from(raw, i * _CAP_DATA.size) for i in range(tocopy)] + [(0, 0, 0)]
    effective, permitted, inheritable = (words[0][i] | words[1][i] << 32 for i in range(3))
    old = t.cred
    if not capable(t, CAP_SETPCAP) and inheritable & ~(old.cap_inheritable | old.cap_permitted):
        return -errno.EPERM
    if inheritable & ~(old.cap_inheritable | old.cap_bset):
        return -errno.EPERM
    if permitted & ~old.cap_permitted or effective & ~permitted:
        return -errno.EPERM
    return commit_creds(t, old.change(cap_effective=effective, cap_permitted=permitted,
                                      cap_inheritable=inheritable,
                                      cap_ambient=old.cap_ambient & permitted & inheritable))
