"""Unmapping huge pages (mm/hugetlb.c __unmap_hugepage_range): munmap, exit and madvise reach it
through the hugetlb core, truncate and hole punch through hugetlbfs (hugetlb_vmdelete_list)."""
from faultlab.kernel.mm.hugetlb_types import HPAGE_SHIFT
from faultlab.kernel.mm.page_alloc import PG_anon, PG_dirty
from faultlab.kernel.mm.pgtable import _PAGE_DIRTY, _PAGE_PRESENT, PMD_PFN_MASK
from faultlab.kernel.mm.vma import VM_MAYSHARE


def zap_huge_pmd_range(mm, start, end):
    """__unmap_hugepage_range: clear the huge PMDs inside [start, end) and drop their pages; the count.
    The last mapping of an anonymous page in a private mapping that owns reservations gets its
    reservation back (so the page cannot be stolen before it refaults), unless the pool has surplus
    pages; when munmap zaps, the VMA is gone already and its close releases them anyway."""
    h = getattr(mm.svc, 'hstate', None)
    if h is None:
        return 0
    phys = mm.svc.frames.phys
    pages = mm.svc.frames.pages
    resv = getattr(mm, 'hugetlb_resv', None)
    n = 0
    for va, slot, e in list(mm.pgtables.huge_pmds(start, end)):
        phys.write64(slot, 0)
        n += 1
        if not e & _PAGE_PRESENT:
            continue
        head = pages[(e & PMD_PFN_MASK) >> 12]
        if e & _PAGE_DIRTY and not head.flags & PG_anon:
            head.flags |= PG_dirty
        head.mapcount -= 1
        restore = False
        if resv and head.flags & PG_anon and not head.mapcount and not h.surplus_huge_pages:
            vpn = va >> HPAGE_SHIFT
            vma = mm.vmas.vma_lookup(va)
            if resv.get(vpn) is False and vma is not None and not vma.vm_flags & VM_MAYSHARE:
                resv[vpn] = restore = True
        h.put_huge_page(head, restore)
    if n:
        mm.svc.charge('pte_set', n)
        mm.svc.flush_tlb(mm)
    return n
