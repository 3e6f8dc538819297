"""struct cred: a task's user and group ids, supplementary groups and capability sets
(include/linux/cred.h, include/uapi/linux/capability.h, security/commoncap.c).

A Cred is immutable: a change builds a new one (prepare_creds + commit_creds), so the threads and
children that share the old one keep it, as Linux's reference-counted creds behave.
"""
from dataclasses import dataclass, replace

from faultlab.kernel.capability import (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID,  # noqa: F401
                               CAP_FS_MASK, CAP_FULL_SET, CAP_IPC_LOCK, CAP_KILL, CAP_LAST_CAP, CAP_LINUX_IMMUTABLE,
                               CAP_MAC_OVERRIDE, CAP_MKNOD, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_ADMIN,
                               CAP_SYS_NICE, CAP_SYS_RESOURCE, capable)
from faultlab.kernel.fs.perm import Cred as FsCred

# include/uapi/linux/securebits.h
SECURE_NO_SETUID_FIXUP, SECURE_KEEP_CAPS, SECURE_KEEP_CAPS_LOCKED = 2, 4, 5
NGROUPS_MAX = 65536
SUID_DUMP_DISABLE = 0                  # fs.suid_dumpable's default, what a credential change leaves
SUID_DUMP_USER = 1                     # a process is dumpable until its credentials change
INVALID_ID = 0xFFFFFFFF                # (uid_t)-1: "leave unchanged", never a valid id
GLOBAL_ROOT_UID = 0


@dataclass(frozen=True)
class Cred:
    """The ids (real, effective, saved, filesystem), groups and capability sets of a task."""
    uid: int = 0
    euid: int = 0
    suid: int = 0
    fsuid: int = 0
    gid: int = 0
    egid: int = 0
    sgid: int = 0
    fsgid: int = 0
    groups: tuple = ()
    cap_inheritable: int = 0
    cap_permitted: int = CAP_FULL_SET
    cap_effective: int = CAP_FULL_SET
    cap_bset: int = CAP_FULL_SET
    cap_ambient: int = 0
    securebits: int = 0

    def fs_cred(self):
        """The credentials file permission checks use (fsuid, fsgid, groups, effective capabilities,
        and euid/egid for the checks that take those, as sysctl files do)."""
        return FsCred(self.fsuid, self.fsgid, self.groups, self.cap_effective, self.euid, self.egid)

    def change(self, **fields):
        """prepare_creds + the changes: a new Cred."""
        return replace(self, **fields)


INIT_CRED = Cred()          # the guest starts as root with every capability, as init does


def issecure(cred, bit):
    """issecure(): is securebit `bit` set?"""
    return bool(cred.securebits >> bit & 1)


def cap_emulate_setxuid(new, old):
    """security/commoncap.c: a set*uid call leaving no root id drops the permitted and effective
    sets (unless SECURE_KEEP_CAPS) and the ambient set; the effective set follows euid to and from 0."""
    root = GLOBAL_ROOT_UID
    if root in (old.uid, old.euid, old.suid) and root not in (new.uid, new.euid, new.suid):
        if not issecure(old, SECURE_KEEP_CAPS):
            new = new.change(cap_permitted=0, cap_effective=0)
        new = new.change(cap_ambient=0)
    if old.euid == root and new.euid != root:
        new = new.change(cap_effective=0)
    if old.euid != root and new.euid == root:
        new = new.change(cap_effective=new.cap_permitted)
    return new


def cap_task_fix_setuid(new, old, fs_only=False):
    """security_task_fix_setuid: the capability consequences of a uid change (LSM_SETID_FS when
    fs_only: the filesystem capabilities follow fsuid to and from 0)."""
    if issecure(old, SECURE_NO_SETUID_FIXUP):
        return new
    if not fs_only:
        return cap_emulate_setxuid(new, old)
    if old.fsuid == GLOBAL_ROOT_UID and new.fsuid != GLOBAL_ROOT_UID:
        return new.change(cap_effective=new.cap_effective & ~CAP_FS_MASK)
    if old.fsuid != GLOBAL_ROOT_UID and new.fsuid == GLOBAL_ROOT_UID:
        return new.change(cap_effective=new.cap_effective | (new.cap_permitted & CAP_FS_MASK))
    return new


def exec_creds(old):
    """The credentials after execve of a plain (not set-id, no file capabilities) program
    (cap_bprm_creds_from_file): the saved and filesystem ids follow the effective ones; with a root
    uid the permitted set becomes the bounding set plus the inheritable one, effective with euid 0;
    otherwise both are the ambient set. SECURE_KEEP_CAPS does not survive."""
    if GLOBAL_ROOT_UID in (old.uid, old.euid):
        permitted = old.cap_bset | old.cap_inheritable
        effective = permitted if old.euid == GLOBAL_ROOT_UID else 0
    else:
        permitted = effective = old.cap_ambient
    return old.change(suid=old.euid, fsuid=old.euid, sgid=old.egid, fsgid=old.egid, cap_permitted=permitted,
                      cap_effective=effective, securebits=old.securebits & ~(1 << SECURE_KEEP_CAPS))


def get_dumpable(mm):
    """The mm's MMF_DUMPABLE state (SUID_DUMP_USER until changed; dup_mm copies it)."""
    return getattr(mm, 'mmf_dumpable', SUID_DUMP_USER)


def commit_creds(task, new):
    """Install new credentials on the task (only this thread, as in Linux). A change of the
    effective or filesystem ids, or new permitted capabilities, makes the process non-dumpable
    (set_dumpable(mm, suid_dumpable), 0 by default): its /proc/PID files then belong to root."""
    old = task.cred
    if ((old.euid, old.egid, old.fsuid, old.fsgid) != (new.euid, new.egid, new.fsuid, new.fsgid)
            or new.cap_permitted & ~old.cap_permitted):
        task.mm.mmf_dumpable = SUID_DUMP_DISABLE
    task.cred = new
    return 0
