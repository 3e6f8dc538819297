"""The OOM reaper's unmapping of a dying process's memory (mm/oom_kill.c __oom_reap_task_mm), which
process_mrelease runs on behalf of its caller."""
from faultlab.kernel.mm.memory import zap_pte_range
from faultlab.kernel.mm.vma import VM_HUGETLB, VM_PFNMAP, VM_SHARED


def __oom_reap_task_mm(mm):
    """Unmap the private memory of a process that is going away: every mapping that is anonymous or
    not shared, except hugetlb and PFN maps; shared file pages stay in their file. True when done."""
    for vma in list(mm.vmas):
        if vma.vm_flags & (VM_HUGETLB | VM_PFNMAP) or vma.vm_flags & VM_SHARED:
            continue
        zap_pte_range(mm, vma.vm_start, vma.vm_end)
    return True
