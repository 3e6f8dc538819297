"""prctl(2) (kernel/sys.c, security/commoncap.c cap_task_prctl): the options programs use.

Options of features faultlab's kernel is built without answer as such a kernel does: PR_SET_VMA is
EINVAL as without CONFIG_ANON_VMA_NAME. PR_SET/GET_MEMORY_MERGE set and read MMF_VM_MERGE_ANY
(mm/ksm.c ksm_enable_merge_any, ksm_disable_merge_any). Unknown options are EINVAL.
"""
import errno
import struct

from faultlab.kernel.cred import (CAP_LAST_CAP, CAP_SETPCAP, SECURE_KEEP_CAPS, SECURE_KEEP_CAPS_LOCKED, SUID_DUMP_DISABLE,
                         SUID_DUMP_USER, capable, commit_creds, get_dumpable, issecure)
from faultlab.kernel.mm.ksm import ksm_disable_merge_any, ksm_enable_merge_any
from faultlab.kernel.mm.mdwe import PR_GET_MDWE, PR_SET_MDWE, prctl_get_mdwe, prctl_set_mdwe
from faultlab.kernel.syscalls.registry import syscall

PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE = 1, 2, 3, 4
PR_GET_KEEPCAPS, PR_SET_KEEPCAPS = 7, 8
PR_SET_NAME, PR_GET_NAME = 15, 16
PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_GET_SECUREBITS = 23, 24, 27
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_GET_TID_ADDRESS = 38, 39, 40
PR_SET_THP_DISABLE, PR_GET_THP_DISABLE = 41, 42
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET, PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_LOWER, PR_CAP_AMBIENT_CLEAR_ALL = 1, 2, 3, 4
PR_GET_AUXV = 0x41555856
PR_SET_MEMORY_MERGE, PR_GET_MEMORY_MERGE = 67, 68
TASK_COMM_LEN = 16
_NSIG = 64
# mm->saved_auxv holds AT_VECTOR_SIZE words (x86-64: 2 * (AT_VECTOR_SIZE_ARCH 3 + AT_VECTOR_SIZE_BASE 22 + 1))
AT_VECTOR_SIZE = 2 * (3 + 22 + 1)


def thp_disabled(mm):
    """MMF_DISABLE_THP (dup_mm copies it)."""
    return getattr(mm, 'mmf_disable_thp', False)


def cap_valid(cap):
    return 0 <= cap <= CAP_LAST_CAP


def _cap_prctl(k, t, option, arg2, arg3, arg4, arg5):
    """cap_task_prctl: the bounding set, keep-caps, securebits and the ambient set; None if not one."""
    c = t.cred
    if option == PR_CAPBSET_READ:
        return int(c.cap_bset >> arg2 & 1) if cap_valid(arg2) else -errno.EINVAL
    if option == PR_CAPBSET_DROP:
        if not capable(t, CAP_SETPCAP):
            return -errno.EPERM
        if not cap_valid(arg2):
            return -errno.EINVAL
        return commit_creds(t, c.change(cap_bset=c.cap_bset & ~(1 << arg2)))
    if option == PR_GET_SECUREBITS:
        return c.securebits
    if option == PR_GET_KEEPCAPS:
        return int(issecure(c, SECURE_KEEP_CAPS))
    if option == PR_SET_KEEPCAPS:
        if arg2 > 1:
            return -errno.EINVAL
        if issecure(c, SECURE_KEEP_CAPS_LOCKED):
            return -errno.EPERM
        bits = c.securebits & ~(1 << SECURE_KEEP_CAPS) | (arg2 << SECURE_KEEP_CAPS)
        return commit_creds(t, c.change(securebits=bits))
    if option == PR_CAP_AMBIENT:
        if arg2 == PR_CAP_AMBIENT_CLEAR_ALL:
            return -errno.EINVAL if arg3 | arg4 | arg5 else commit_creds(t, c.change(cap_ambient=0))
        if not cap_valid(arg3) or arg4 or arg5:
            return -errno.EINVAL
        if arg2 == PR_CAP_AMBIENT_IS_SET:
            return int(c.cap_ambient >> arg3 & 1)
        if arg2 == PR_CAP_AMBIENT_RAISE:
            if not (c.cap_permitted & c.cap_inheritable) >> arg3 & 1:
                return -errno.EPERM
            return commit_creds(t, c.change(cap_ambient=c.cap_ambient | 1 << arg3))
        if arg2 == PR_CAP_AMBIENT_LOWER:
            return commit_creds(t, c.change(cap_ambient=c.cap_ambient & ~(1 << arg3)))
        return -errno.EINVAL
    return None


@syscall(157, 'prctl')
def sys_prctl(k, t, option, arg2, arg3, arg4, arg5, *_):
    option &= 0xFFFFFFFF
    ret = _cap_prctl(k, t, option, arg2, arg3, arg4, arg5)
    if ret is not None:
        return ret
    if option == PR_SET_PDEATHSIG:
        if arg2 > _NSIG:
            return -errno.EINVAL
        t.pdeath_signal = arg2
        return 0
    if option == PR_GET_PDEATHSIG:
        return 0 if t.umem.write(arg2, struct.pack('<i', t.pdeath_signal)) else -errno.EFAULT
    if option == PR_GET_DUMPABLE:
        return get_dumpable(t.mm)
    if option == PR_SET_DUMPABLE:
        if arg2 not in (SUID_DUMP_DISABLE, SUID_DUMP_USER):
            return -errno.EINVAL
        t.mm.mmf_dumpable = arg2
        return 0
    if option == PR_SET_NAME:
        name = t.umem.read_cstr(arg2, TASK_COMM_LEN - 1)
        if name is None:
            return -errno.EFAULT
        old = t.comm
        t.set_comm(name)
        if k.tracer is not None:
            k.tracer.task_rename(k, t, old)
        return 0
    if option == PR_GET_NAME:
        comm = t.comm.encode()[:TASK_COMM_LEN - 1].ljust(TASK_COMM_LEN, b'\0')
        return 0 if t.umem.write(arg2, comm) else -errno.EFAULT
    if option == PR_SET_NO_NEW_PRIVS:
        if arg2 != 1 or arg3 or arg4 or arg5:
            return -errno.EINVAL
        t.no_new_privs = True
        return 0
    if option == PR_GET_NO_NEW_PRIVS:
        return -errno.EINVAL if arg2 or arg3 or arg4 or arg5 else int(t.no_new_privs)
    if option == PR_GET_TID_ADDRESS:
        return 0 if t.umem.write_u64(arg2, t.clear_child_tid) else -errno.EFAULT
    if option == PR_SET_THP_DISABLE:
        if arg3 or arg4 or arg5:
            return -errno.EINVAL
        t.mm.mmf_disable_thp = bool(arg2)
        return 0
    if option == PR_GET_THP_DISABLE:
        return -errno.EINVAL if arg2 or arg3 or arg4 or arg5 else int(thp_disabled(t.mm))
    if option == PR_GET_AUXV:
        if arg4 or arg5:
            return -errno.EINVAL
        words = [x for kv in getattr(t.mm, 'saved_auxv', ()) for x in kv][:AT_VECTOR_SIZE]
        data = struct.pack('<%dQ' % AT_VECTOR_SIZE, *(words + [0] * (AT_VECTOR_SIZE - len(words))))
        n = min(len(data), arg3)
        if n and not t.umem.write(arg2, data[:n]):
            return -errno.EFAULT
        return len(data)
    if option == PR_SET_MDWE:
        return prctl_set_mdwe(t.mm, arg2, arg3, arg4, arg5)
    if option == PR_GET_MDWE:
        return prctl_get_mdwe(t.mm, arg2, arg3, arg4, arg5)
    if option == PR_SET_MEMORY_MERGE:
        if arg3 or arg4 or arg5:
            return -errno.EINVAL
        return ksm_enable_merge_any(t.mm) if arg2 else ksm_disable_merge_any(t.mm)
    if option == PR_GET_MEMORY_MERGE:
        if arg2 or arg3 or arg4 or arg5:
            return -errno.EINVAL
        return int(bool(getattr(t.mm, 'mmf_vm_merge_any', False)))     # MMF_VM_MERGE_ANY
    # PR_SET_VMA (no CONFIG_ANON_VMA_NAME) and unknown options
    return -errno.EINVAL
