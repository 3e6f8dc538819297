"""Capabilities: their numbers (include/uapi/linux/capability.h), the set of those that follow fsuid
(CAP_FS_MASK, include/linux/capability.h), and the one check every privileged operation makes
(kernel/capability.c ns_capable -> security/commoncap.c cap_capable).

There is one user namespace (init_user_ns), so ns_capable(ns, cap) is capable(cap): is `cap` in the
task's effective set? Code running for no task (boot, the kernel's own work) has every capability,
as kernel threads run with init_cred.
"""

CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID = 0, 1, 2, 3, 4
CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_LINUX_IMMUTABLE = 5, 6, 7, 8, 9
CAP_IPC_LOCK, CAP_IPC_OWNER, CAP_SYS_RAWIO, CAP_SYS_PTRACE = 14, 15, 17, 19
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN, CAP_SYS_NICE, CAP_SYS_RESOURCE, CAP_MKNOD, CAP_MAC_OVERRIDE = 21, 23, 24, 27, 32
CAP_LAST_CAP = 40                      # CAP_CHECKPOINT_RESTORE
CAP_FULL_SET = (1 << (CAP_LAST_CAP + 1)) - 1
# the capabilities a change of fsuid to or from root drops or raises (CAP_FS_MASK)
CAP_FS_MASK = sum(1 << c for c in (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID,
                                   CAP_LINUX_IMMUTABLE, CAP_MKNOD, CAP_MAC_OVERRIDE))


def cap_valid(cap):
    """cap_valid(): a capability number Linux knows."""
    return 0 <= cap <= CAP_LAST_CAP


def cap_raised(caps, cap):
    """cap_raised(): is cap in the set?"""
    return bool(caps >> cap & 1)


def capable(task, cap):
    """capable() / ns_capable(&init_user_ns, cap) for `task` (the current task; None: the kernel
    itself): cap_capable's test of the effective set. An unknown cap is a kernel bug (Linux BUG()s)."""
    if not cap_valid(cap):
        raise ValueError('capable(): invalid capability %r' % (cap,))
    if task is None:
        return True
    return cap_raised(task.cred.cap_effective, cap)

