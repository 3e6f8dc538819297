"""fork's copy of a hugetlb VMA's page tables (mm/hugetlb.c copy_hugetlb_page_range, mm/memory.c
vma_needs_copy).

Linux copies the huge PMDs of a private mapping (its anonymous pages become copy-on-write in both
processes: the parent's entries lose write access too) and of any mapping whose copy in the child
stays registered for userfaultfd write-protection (UFFD_FEATURE_EVENT_FORK): the uffd-wp bit and the
uffd-wp markers are kept there (UFFD_FEATURE_WP_HUGETLBFS_SHMEM), since the page cache cannot tell
them again; elsewhere the bit is cleared and markers are not copied. A shared mapping without that
is not copied: the child faults the file's pages in itself.
"""
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, PMD_PFN_MASK
from faultlab.kernel.mm.userfaultfd_k import POISON_MARKER, WP_MARKER, _PAGE_UFFD_WP
from faultlab.kernel.mm.vma import VM_MAYSHARE


def copy_hugetlb_page_range(dst, src, vma, keep_wp):
    """Copy the huge PMDs of vma from src to dst where vma_needs_copy says so (a private mapping, or
    keep_wp: the child's copy stays registered for userfaultfd write-protection); False on OOM."""
    cow = not vma.vm_flags & VM_MAYSHARE
    if not cow and not keep_wp:
        return True
    svc = src.svc
    phys = svc.frames.phys
    pages = svc.frames.pages
    n = 0
    wrprotected = False
    for va, slot, e in list(src.pgtables.huge_pmds(vma.vm_start, vma.vm_end)):
        try:
            dslot, freed = dst.pgtables.set_huge_pmd_slot(va)
        except MemoryError:
            return False
        if freed is not None:
            svc.frames.put_page(pages[freed])
        if not e & _PAGE_PRESENT:
            if e == WP_MARKER | _PAGE_PSE and not keep_wp:
                continue                         # copy_pte_marker: the uffd-wp marker only where kept
            if e == WP_MARKER | _PAGE_PSE or e == POISON_MARKER | _PAGE_PSE:
                phys.write64(dslot, e)
                n += 1
            continue                             # a poisoned page: the child faults (SIGBUS) itself
        head = pages[(e & PMD_PFN_MASK) >> 12]
        if cow and e & _PAGE_RW:
            e &= ~_PAGE_RW                       # huge_ptep_set_wrprotect: copy-on-write in both
            phys.write64(slot, e)
            wrprotected = True
        if not keep_wp:
            e &= ~_PAGE_UFFD_WP                  # huge_pte_clear_uffd_wp
        phys.write64(dslot, e)
        head.refcount += 1
        head.mapcount += 1
        n += 1
    if n:
        svc.charge('pte_set', n)
    if wrprotected:
        svc.flush_tlb(src)
    return True
