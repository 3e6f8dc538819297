"""MADV_COLLAPSE (mm/khugepaged.c madvise_collapse): collapse the 4 KiB pages of each aligned 2 MiB range
of an anonymous VMA into a new transparent huge page, synchronously, without khugepaged's limits
(max_ptes_none/swap/shared do not apply to MADV_COLLAPSE). khugepaged's scan, which collapses with the
same code, is kernel/mm/khugepaged_scan.py."""
import errno

from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT
from faultlab.kernel.mm.gup import faultin_page
from faultlab.kernel.mm.huge_memory import (HPAGE_PMD_NR, HPAGE_PMD_MASK, folio_maybe_pinned, mk_huge_pmd,
                                            set_huge_pmd, thp_state, vma_alloc_anon_folio_pmd, vma_thp_disabled)
from faultlab.kernel.mm.llc import charge_page_copy
from faultlab.kernel.mm.memory import zap_pte_range
from faultlab.kernel.mm.mm_types import VM_FAULT_ERROR
from faultlab.kernel.mm.page_alloc import PG_anon, PG_head, PG_swapcache, PG_tail
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, PMD_SHIFT, PMD_SIZE, pte_pfn
from faultlab.kernel.mm.userfaultfd_k import VM_UFFD_FLAGS, _PAGE_UFFD_WP
from faultlab.kernel.mm.vma import VM_HUGETLB, VM_IO, VM_PFNMAP, VM_SHARED

# the scan results madvise_collapse tells apart (enum scan_result)
SCAN_SUCCEED, SCAN_PMD_MAPPED, SCAN_PMD_NULL, SCAN_PTE_UFFD_WP = 'succeed', 'pmd_mapped', 'pmd_null', 'uffd_wp'
SCAN_PAGE_COUNT, SCAN_ALLOC_HUGE_PAGE_FAIL, SCAN_FAIL = 'page_count', 'alloc_fail', 'fail'
_CONTINUE = (SCAN_PMD_NULL, SCAN_PTE_UFFD_WP, SCAN_PAGE_COUNT)


def madvise_collapse_errno(result):
    """madvise_collapse_errno: ENOMEM when no huge page could be allocated, EAGAIN for pages held
    elsewhere, EINVAL otherwise."""
    if result == SCAN_ALLOC_HUGE_PAGE_FAIL:
        return -errno.ENOMEM
    if result == SCAN_PAGE_COUNT:
        return -errno.EAGAIN
    return -errno.EINVAL


def folio_of(svc, page):
    """The head pfn of the live transparent huge page that page is a frame of, or None (a small page)."""
    if not page.flags & (PG_head | PG_tail):
        return None
    st = thp_state(svc)
    head = page.pfn & ~(HPAGE_PMD_NR - 1)
    return head if st is not None and head in st.folios else None


def folio_likely_mapped_shared(svc, page):
    """folio_likely_mapped_shared (include/linux/mm.h, 6.12): a small page mapped more than once; a
    frame of a large folio that some PMD still maps (folio_entire_mapcount) while this PTE maps it too."""
    if folio_of(svc, page) is None:
        return page.mapcount > 1
    return True


def is_refcount_suitable(svc, page):
    """is_refcount_suitable: no references beyond the mappings (and the swap cache's); for a frame of a
    large folio, no frame of the folio holds more than the folio's and its PTE mappings'."""
    head = folio_of(svc, page)
    if head is not None:
        return not folio_maybe_pinned(svc, head)
    return page.refcount == page.mapcount + (1 if page.flags & PG_swapcache else 0)


def collapse_allowed(mm, vma):
    """thp_vma_allowable_order without TVA_ENFORCE_SYSFS: private anonymous memory not excluded by
    MADV_NOHUGEPAGE or PR_SET_THP_DISABLE, whatever 'enabled' says (but THP must exist)."""
    return (thp_state(mm.svc) is not None and vma.anon and not vma_thp_disabled(mm, vma)
            and not vma.vm_flags & (VM_SHARED | VM_HUGETLB | VM_PFNMAP | VM_IO))


def collapse_huge_page(mm, vma, haddr):
    """hpage_collapse_scan_pmd + collapse_huge_page for one aligned 2 MiB range: swap the pages in,
    copy them (the zero page and holes as zeros) into a new compound page, unmap them and map the
    new page with one PMD over the emptied page table (deposited). A scan result."""
    svc = mm.svc
    pgt = mm.pgtables
    key = haddr >> PMD_SHIFT
    if key in pgt.thp:
        return SCAN_PMD_MAPPED
    slot = pgt.pmd_slot(haddr, create=False)
    if slot is None or not svc.frames.phys.read64(slot) & _PAGE_PRESENT:
        return SCAN_PMD_NULL
    if vma.vm_flags & VM_UFFD_FLAGS:
        return SCAN_PTE_UFFD_WP
    for va, _slot, pte in pgt.present_ptes(haddr, haddr + PMD_SIZE, split=False):
        if not pte & _PAGE_PRESENT:                  # __collapse_huge_page_swapin
            if faultin_page(mm, vma, va, False, account=False) & VM_FAULT_ERROR:
                return SCAN_FAIL
    pages = svc.frames.pages
    old = []
    for va, _slot, pte in pgt.present_ptes(haddr, haddr + PMD_SIZE, split=False):
        if not pte & _PAGE_PRESENT:
            return SCAN_FAIL
        if pte & _PAGE_UFFD_WP:
            return SCAN_PTE_UFFD_WP
        page = pages[pte_pfn(pte)]
        if page is svc.zero_page:
            continue
        if not page.flags & PG_anon:
            return SCAN_FAIL
        if not is_refcount_suitable(svc, page):
            return SCAN_PAGE_COUNT                   # pinned or held elsewhere
        old.append((va, page))
    pfn = vma_alloc_anon_folio_pmd(mm, vma, haddr, stat=False)
    if pfn is None:
        svc.stats['thp_collapse_alloc_failed'] += 1    # alloc_charge_folio
        return SCAN_ALLOC_HUGE_PAGE_FAIL
    phys = svc.frames.phys
    for va, page in old:                             # __collapse_huge_page_copy
        dst = pfn + ((va - haddr) >> PAGE_SHIFT)
        phys.copy_frame(dst, page.pfn)
        charge_page_copy(svc, dst, page.pfn)
    svc.stats['pages_copied'] += len(old)
    zap_pte_range(mm, haddr, haddr + PMD_SIZE)       # the old pages lose these mappings
    table = pgt.free_pte_table(haddr)                # pmdp_collapse_flush: unlinked, kept as the deposit
    pgt.table_pfns[table] = None
    set_huge_pmd(mm, slot, key, mk_huge_pmd(vma, pfn, True), table)
    mm.rss_add(anon=HPAGE_PMD_NR)
    svc.stats['thp_collapse_alloc'] += 1
    svc.flush_tlb(mm)
    return SCAN_SUCCEED


def madvise_collapse(mm, vma, start, end):
    """madvise(MADV_COLLAPSE) over [start, end) of vma: 0 when every aligned 2 MiB range inside is
    PMD-mapped at the end, else the errno of the last failure; EINVAL for a VMA THP cannot be used in."""
    if not collapse_allowed(mm, vma):
        return -errno.EINVAL
    hstart = (start + PMD_SIZE - 1) & HPAGE_PMD_MASK
    hend = end & HPAGE_PMD_MASK
    thps = 0
    last_fail = SCAN_FAIL
    for haddr in range(hstart, hend, PMD_SIZE):
        result = collapse_huge_page(mm, vma, haddr)
        if result in (SCAN_SUCCEED, SCAN_PMD_MAPPED):
            thps += 1
            continue
        last_fail = result
        if result not in _CONTINUE:
            break
    return 0 if thps == (hend - hstart) >> PMD_SHIFT else madvise_collapse_errno(last_fail)


__all__ = ['madvise_collapse']
