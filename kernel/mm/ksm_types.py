"""KSM's marks on pages, VMAs and mms (include/linux/ksm.h, include/linux/mm.h VM_MERGEABLE,
include/linux/sched/coredump.h MMF_VM_MERGEABLE / MMF_VM_MERGE_ANY), kept apart from mm/ksm.c's code
so that the fault path, fork and /proc/kpageflags can test them without importing the scanner."""

VM_MERGEABLE = 0x80000000        # the VMA's anonymous pages may be merged (MADV_MERGEABLE)

# folio_test_ksm: Linux keeps it in folio->mapping's low bits (PAGE_MAPPING_KSM); faultlab in a
# page flag above the page-flags.h ones, cleared with the others when the frame is freed
PG_ksm = 1 << 30


def PageKsm(page):
    """folio_test_ksm: the page is a KSM page (in the stable tree, write-protected everywhere)."""
    return bool(page.flags & PG_ksm)


def ksm_fork(new_mm, old_mm):
    """ksm_fork / ksm_execve with mmf_init_flags: MMF_VM_MERGE_ANY is in MMF_INIT_MASK, so the new mm
    of a fork or an execve keeps it and is registered with ksmd; a fork also registers the child of
    an mm that MADV_MERGEABLE registered (its VMAs keep VM_MERGEABLE)."""
    new_mm.mmf_vm_merge_any = getattr(old_mm, 'mmf_vm_merge_any', False)
    new_mm.mmf_vm_mergeable = new_mm.mmf_vm_merge_any or getattr(old_mm, 'mmf_vm_mergeable', False)
