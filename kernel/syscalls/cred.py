"""User and group ids, supplementary groups and capabilities (kernel/sys.c, kernel/groups.c,
kernel/capability.c): the set*id/get*id calls, getgroups/setgroups, capget/capset."""
import errno
import struct

from kernel.cred import (CAP_SETGID, CAP_SETPCAP, CAP_SETUID, INVALID_ID, NGROUPS_MAX, capable, cap_task_fix_setuid,
                         commit_creds)
from kernel.syscalls import s32, syscall

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


def _fix_commit(t, new, old, fs_only=False):
    return commit_creds(t, cap_task_fix_setuid(new, old, fs_only))


@syscall(105, 'setuid')
def sys_setuid(k, t, uid, *_):
    """__sys_setuid: with CAP_SETUID all four ids; otherwise euid/fsuid to the real or saved uid."""
    uid = _id(uid)
    if uid == INVALID_ID:
        return -errno.EINVAL
    old = t.cred
    if capable(t, CAP_SETUID):
        new = old.change(uid=uid, suid=uid)
    elif uid in (old.uid, old.suid):
        new = old
    else:
        return -errno.EPERM
    return _fix_commit(t, new.change(euid=uid, fsuid=uid), old)


@syscall(113, 'setreuid')
def sys_setreuid(k, t, ruid, euid, *_):
    """__sys_setreuid: the real uid to the real or effective one, the effective uid to any of the
    three (anything with CAP_SETUID); the saved uid follows a changed effective uid."""
    ruid, euid = _id(ruid), _id(euid)
    old = t.cred
    new = old
    priv = capable(t, CAP_SETUID)
    if ruid != INVALID_ID:
        if ruid not in (old.uid, old.euid) and not priv:
            return -errno.EPERM
        new = new.change(uid=ruid)
    if euid != INVALID_ID:
        if euid not in (old.uid, old.euid, old.suid) and not priv:
            return -errno.EPERM
        new = new.change(euid=euid)
    if ruid != INVALID_ID or (euid != INVALID_ID and euid != old.uid):
        new = new.change(suid=new.euid)
    return _fix_commit(t, new.change(fsuid=new.euid), old)


@syscall(117, 'setresuid')
def sys_setresuid(k, t, ruid, euid, suid, *_):
    """__sys_setresuid: each id to any of the current three (anything with CAP_SETUID)."""
    ruid, euid, suid = _id(ruid), _id(euid), _id(suid)
    old = t.cred
    if ((ruid == INVALID_ID or ruid == old.uid) and (euid == INVALID_ID or euid == old.euid == old.fsuid)
            and (suid == INVALID_ID or suid == old.suid)):
        return 0
    ids = (old.uid, old.euid, old.suid)
    if any(v != INVALID_ID and v not in ids for v in (ruid, euid, suid)) and not capable(t, CAP_SETUID):
        return -errno.EPERM
    new = old
    if ruid != INVALID_ID:
        new = new.change(uid=ruid)
    if euid != INVALID_ID:
        new = new.change(euid=euid)
    if suid != INVALID_ID:
        new = new.change(suid=suid)
    return _fix_commit(t, new.change(fsuid=new.euid), old)


def _put_ids(t, ptrs, values):
    """getres[ug]id: each id to its pointer in turn; -EFAULT at the first that fails."""
    for p, v in zip(ptrs, values):
        if not t.umem.write(p, struct.pack('<I', v)):
            return -errno.EFAULT
    return 0


@syscall(118, 'getresuid')
def sys_getresuid(k, t, ruidp, euidp, suidp, *_):
    c = t.cred
    return _put_ids(t, (ruidp, euidp, suidp), (c.uid, c.euid, c.suid))


@syscall(122, 'setfsuid')
def sys_setfsuid(k, t, uid, *_):
    """__sys_setfsuid: always returns the old fsuid; changes it to one of the ids (any with CAP_SETUID)."""
    uid = _id(uid)
    old = t.cred
    if uid == INVALID_ID:
        return old.fsuid
    if (uid in (old.uid, old.euid, old.suid, old.fsuid) or capable(t, CAP_SETUID)) and uid != old.fsuid:
        _fix_commit(t, old.change(fsuid=uid), old, fs_only=True)
    return old.fsuid


# ---- group ids ------------------------------------------------------------------------------------
@syscall(106, 'setgid')
def sys_setgid(k, t, gid, *_):
    gid = _id(gid)
    if gid == INVALID_ID:
        return -errno.EINVAL
    old = t.cred
    if capable(t, CAP_SETGID):
        return commit_creds(t, old.change(gid=gid, egid=gid, sgid=gid, fsgid=gid))
    if gid in (old.gid, old.sgid):
        return commit_creds(t, old.change(egid=gid, fsgid=gid))
    return -errno.EPERM


@syscall(114, 'setregid')
def sys_setregid(k, t, rgid, egid, *_):
    rgid, egid = _id(rgid), _id(egid)
    old = t.cred
    new = old
    priv = capable(t, CAP_SETGID)
    if rgid != INVALID_ID:
        if rgid not in (old.gid, old.egid) and not priv:
            return -errno.EPERM
        new = new.change(gid=rgid)
    if egid != INVALID_ID:
        if egid not in (old.gid, old.egid, old.sgid) and not priv:
            return -errno.EPERM
        new = new.change(egid=egid)
    if rgid != INVALID_ID or (egid != INVALID_ID and egid != old.gid):
        new = new.change(sgid=new.egid)
    return commit_creds(t, new.change(fsgid=new.egid))


@syscall(119, 'setresgid')
def sys_setresgid(k, t, rgid, egid, sgid, *_):
    rgid, egid, sgid = _id(rgid), _id(egid), _id(sgid)
    old = t.cred
    if ((rgid == INVALID_ID or rgid == old.gid) and (egid == INVALID_ID or egid == old.egid == old.fsgid)
            and (sgid == INVALID_ID or sgid == old.sgid)):
        return 0
    ids = (old.gid, old.egid, old.sgid)
    if any(v != INVALID_ID and v not in ids for v in (rgid, egid, sgid)) and not capable(t, CAP_SETGID):
        return -errno.EPERM
    new = old
    if rgid != INVALID_ID:
        new = new.change(gid=rgid)
    if egid != INVALID_ID:
        new = new.change(egid=egid)
    if sgid != INVALID_ID:
        new = new.change(sgid=sgid)
    return commit_creds(t, new.change(fsgid=new.egid))


@syscall(120, 'getresgid')
def sys_getresgid(k, t, rgidp, egidp, sgidp, *_):
    c = t.cred
    return _put_ids(t, (rgidp, egidp, sgidp), (c.gid, c.egid, c.sgid))


@syscall(123, 'setfsgid')
def sys_setfsgid(k, t, gid, *_):
    gid = _id(gid)
    old = t.cred
    if gid == INVALID_ID:
        return old.fsgid
    if (gid in (old.gid, old.egid, old.sgid, old.fsgid) or capable(t, CAP_SETGID)) and gid != old.fsgid:
        commit_creds(t, old.change(fsgid=gid))
    return old.fsgid


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


def _find_task(k, pid):
    """find_task_by_vpid: a live task with this id, or None."""
    task = k.tasks.get(pid)
    return task if task is not None and not task.exited else None


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
    target = t if pid in (0, t.tid) else _find_task(k, pid)
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
