"""Memory protection keys on a CPU without them (mm/mprotect.c, arch/x86/include/asm/pkeys.h).

The emulated CPU has no PKU/OSPKE, so as in Linux there: no key can be allocated (pkey_alloc takes
key 0, arch_set_user_pkey_access refuses it: EINVAL), none is allocated for pkey_free (EINVAL), and
pkey_mprotect accepts only pkey -1, with which it is mprotect.
"""
import errno

from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.mm import sys_mprotect

PKEY_DISABLE_ACCESS, PKEY_DISABLE_WRITE = 1, 2
PKEY_ACCESS_MASK = PKEY_DISABLE_ACCESS | PKEY_DISABLE_WRITE
PROT_GROWSDOWN, PROT_GROWSUP = 0x01000000, 0x02000000
PROT_VALID = 0x7 | 0x8                  # PROT_READ|WRITE|EXEC|SEM (arch_validate_prot)


@syscall(330, 'pkey_alloc')
def sys_pkey_alloc(k, t, flags, init_val, *_):
    if flags or init_val & ~PKEY_ACCESS_MASK:
        return -errno.EINVAL
    return -errno.EINVAL                  # arch_set_user_pkey_access without X86_FEATURE_OSPKE


@syscall(331, 'pkey_free')
def sys_pkey_free(k, t, pkey, *_):
    return -errno.EINVAL                  # mm_pkey_is_allocated: the allocation map is empty


@syscall(329, 'pkey_mprotect')
def sys_pkey_mprotect(k, t, start, length, prot, pkey, *_):
    """do_mprotect_pkey: the argument checks mprotect makes come first; a key other than -1 was never
    allocated (EINVAL); -1 is plain mprotect."""
    pkey = s32(pkey)
    if pkey == -1:
        return sys_mprotect(k, t, start, length, prot)
    prot &= 0xFFFFFFFF
    grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
    if grows == PROT_GROWSDOWN | PROT_GROWSUP or start & 0xFFF:
        return -errno.EINVAL
    if not length:
        return 0
    end = start + ((length + 0xFFF) & ~0xFFF)
    if end <= start or end >= 1 << 64:
        return -errno.ENOMEM
    return -errno.EINVAL
