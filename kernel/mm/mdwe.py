"""Memory-Deny-Write-Execute (kernel/sys.c prctl_set_mdwe/prctl_get_mdwe, include/linux/mman.h
map_deny_write_exec, kernel/fork.c mmf_init_flags): a process that sets PR_MDWE_REFUSE_EXEC_GAIN
can no longer map memory writable and executable, nor make a mapping executable that was not; the
setting is an mm flag, kept by fork and execve unless PR_MDWE_NO_INHERIT was set with it, and it
cannot be cleared or changed once set."""
import errno

from faultlab.kernel.mm.ksm_types import ksm_fork
from faultlab.kernel.mm.vma import VM_EXEC, VM_WRITE

PR_SET_MDWE, PR_GET_MDWE = 65, 66
PR_MDWE_REFUSE_EXEC_GAIN = 1 << 0
PR_MDWE_NO_INHERIT = 1 << 1


def get_current_mdwe(mm):
    """The PR_MDWE_* bits of the mm (MMF_HAS_MDWE, MMF_HAS_MDWE_NO_INHERIT)."""
    return getattr(mm, 'mmf_mdwe', 0)


def prctl_set_mdwe(mm, bits, arg3, arg4, arg5):
    """PR_SET_MDWE: EINVAL for unknown bits, other arguments, or NO_INHERIT without REFUSE_EXEC_GAIN;
    EPERM for any change once set (the same bits again are accepted)."""
    if arg3 or arg4 or arg5:
        return -errno.EINVAL
    if bits & ~(PR_MDWE_REFUSE_EXEC_GAIN | PR_MDWE_NO_INHERIT):
        return -errno.EINVAL
    if bits & PR_MDWE_NO_INHERIT and not bits & PR_MDWE_REFUSE_EXEC_GAIN:
        return -errno.EINVAL
    current = get_current_mdwe(mm)
    if current and current != bits:
        return -errno.EPERM
    mm.mmf_mdwe = current | bits
    return 0


def prctl_get_mdwe(mm, arg2, arg3, arg4, arg5):
    """PR_GET_MDWE: the bits, EINVAL unless every other argument is 0."""
    if arg2 or arg3 or arg4 or arg5:
        return -errno.EINVAL
    return get_current_mdwe(mm)


def map_deny_write_exec(mm, old, new):
    """True when MDWE refuses vm_flags `new` for a mapping that had `old`: under MDWE a mapping may not
    become writable and executable, nor executable when it was not."""
    if not get_current_mdwe(mm) & PR_MDWE_REFUSE_EXEC_GAIN:
        return False
    if not new & VM_EXEC:
        return False
    return bool(new & VM_WRITE or not old & VM_EXEC)


def mmf_init_flags(new_mm, old_mm):
    """mm_init for fork and execve: the new mm keeps MDWE unless PR_MDWE_NO_INHERIT is set."""
    bits = get_current_mdwe(old_mm)
    new_mm.mmf_mdwe = 0 if bits & PR_MDWE_NO_INHERIT else bits
    ksm_fork(new_mm, old_mm)             # MMF_VM_MERGE_ANY is in MMF_INIT_MASK too
