"""Collapsing shmem and tmpfs pages into a huge folio (mm/khugepaged.c hpage_collapse_scan_file,
collapse_file, collapse_pte_mapped_thp; Linux 6.12), for khugepaged's scan of a VMA that allows huge
pages (kernel/mm/khugepaged_scan.py) and for MADV_COLLAPSE of a shmem VMA (kernel/mm/khugepaged.py).

The scan looks at the 512 page-cache entries of the file behind an aligned 2 MiB of the VMA: at most
max_ptes_none holes (MADV_COLLAPSE: any), none in swap (faultlab does not swap them in here), no page
locked or held beyond its mappings and the cache. collapse_file then allocates a 2 MiB folio, unmaps
the old pages from every address space (try_to_unmap), copies them into it (holes are cleared),
replaces them in the page cache with the folio's pages (accounting the holes' blocks: ENOSPC fails
it) and frees them. The range's mappings fault the folio in again, with a PMD where their VMA allows
(retract_page_tables); MADV_COLLAPSE maps it with a PMD at once (collapse_pte_mapped_thp), which
also turns a huge folio mapped by PTEs into a PMD mapping.
"""
import errno

from faultlab.kernel.mm.huge_memory import HPAGE_PMD_MASK, HPAGE_PMD_NR, HPAGE_PMD_ORDER, PG_large_head, \
    PG_large_tail
from faultlab.kernel.mm.khugepaged import (SCAN_ALLOC_HUGE_PAGE_FAIL, SCAN_FAIL, SCAN_PAGE_COUNT,
                                           SCAN_PMD_MAPPED, SCAN_SUCCEED, madvise_collapse_errno)
from faultlab.kernel.mm.llc import charge_page_copy, charge_page_zero
from faultlab.kernel.mm.mm_types import VmFault
from faultlab.kernel.mm.page_alloc import PG_dirty, PG_locked, PG_uptodate
from faultlab.kernel.mm.memory import zap_pte_range
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, PAGE_SHIFT, PMD_SHIFT, PMD_SIZE, pte_pfn
from faultlab.kernel.mm.shmem import is_shmem_mapping
from faultlab.kernel.mm.shmem_fault import shmem_thp_eligible, vma_maps_writable_on_read
from faultlab.kernel.mm.shmem_huge import do_set_pmd, folio_head_of, shmem_allowable_huge, shmem_vma_suitable
from faultlab.kernel.mm.shmem_punch import unmap_mapping_range

SCAN_EXCEED_NONE_PTE, SCAN_EXCEED_SWAP_PTE = 'exceed_none_pte', 'exceed_swap_pte'
SCAN_PTE_MAPPED_HUGEPAGE = 'pte_mapped_hugepage'


def hpage_collapse_scan_file(mm, vma, haddr, max_none, is_khugepaged=True):
    """The file side of a scan: (result, cost in cycles); collapses the range when it may."""
    svc = mm.svc
    cost = HPAGE_PMD_NR * svc.cost('khugepaged_pte_scan')
    if (haddr >> PMD_SHIFT) in mm.pgtables.thp:
        return SCAN_PMD_MAPPED, 0
    mapping = vma.vm_file.mapping
    inode = mapping.inode
    hindex = vma.linear_page_index(haddr)
    swap = svc.pagecache.shmem_swap
    present = 0
    for i in range(hindex, hindex + HPAGE_PMD_NR):
        page = mapping.pages.get(i)
        if page is None:
            if swap is not None and swap.has_entry(inode, i):
                svc.stats['thp_scan_exceed_swap_pte'] += 1
                return SCAN_EXCEED_SWAP_PTE, cost
            continue
        present += 1
        if page.flags & (PG_large_head | PG_large_tail) and i == hindex:
            return SCAN_PTE_MAPPED_HUGEPAGE, cost       # already a huge folio: only its PMD is missing
        if page.flags & PG_locked or not page.flags & PG_uptodate or page.refcount != 1 + page.mapcount:
            return SCAN_PAGE_COUNT, cost
    if HPAGE_PMD_NR - present > max_none:
        svc.stats['thp_scan_exceed_none_pte'] += 1
        return SCAN_EXCEED_NONE_PTE, cost
    return collapse_file(mm, vma, haddr, is_khugepaged), cost


def collapse_file(mm, vma, haddr, is_khugepaged):
    """collapse_file for the file range behind haddr: a scan result. retract_page_tables leaves the
    range's PMDs to be faulted in again; MADV_COLLAPSE maps the folio at once (collapse_pte_mapped_thp)."""
    svc = mm.svc
    pc = svc.pagecache
    mapping = vma.vm_file.mapping
    inode = mapping.inode
    hindex = vma.linear_page_index(haddr)
    holes = [i for i in range(hindex, hindex + HPAGE_PMD_NR) if i not in mapping.pages]
    sb = inode.sb
    if sb.max_pages is not None and sb.used_pages + sum(1 for i in holes if not inode.has_page(i)) > sb.max_pages:
        return SCAN_FAIL                                 # shmem_inode_acct_blocks: ENOSPC
    pfn = svc.frames.alloc_contig_pages(HPAGE_PMD_ORDER)
    if pfn is None:
        svc.stats['thp_collapse_alloc_failed'] += 1
        return SCAN_ALLOC_HUGE_PAGE_FAIL
    svc.charge('page_alloc')
    unmap_mapping_range(svc, inode, hindex, hindex + HPAGE_PMD_NR)     # try_to_unmap of the old pages
    phys = svc.frames.phys
    pages = svc.frames.pages
    now = svc.sched.now()
    copied = 0
    dirty = 0
    for i in range(HPAGE_PMD_NR):
        old = mapping.pages.get(hindex + i)
        new = pages[pfn + i]
        if old is None:
            phys.zero_frame(pfn + i)
            charge_page_zero(svc, pfn + i)
            inode.reserve_page(hindex + i)
        else:
            phys.copy_frame(pfn + i, old.pfn)
            charge_page_copy(svc, pfn + i, old.pfn)
            copied += 1
            dirty |= old.flags & PG_dirty
            pc.delete_from_page_cache(old)               # unmapped, so freed
        new.mapping = mapping
        new.index = hindex + i
        new.flags |= PG_uptodate | (PG_large_tail if i else PG_large_head)
        new.io_done_at = now
        mapping.pages[hindex + i] = new
        pc.lru.add(new)
    if dirty:
        for p in pages[pfn:pfn + HPAGE_PMD_NR]:
            p.flags |= PG_dirty
    svc.charge('pagecache_insert')
    svc.stats['pages_copied'] += copied
    svc.stats['pages_zeroed'] += HPAGE_PMD_NR - copied
    svc.stats['thp_collapse_alloc'] += 1
    svc.flush_tlb(mm)
    if not is_khugepaged:
        collapse_pte_mapped_thp(mm, vma, haddr, True)
    return SCAN_SUCCEED


def collapse_pte_mapped_thp(mm, vma, haddr, install_pmd):
    """A range whose file pages are one huge folio: every PTE of the range is none or maps the folio's
    page for its offset (else it fails: a private copy, a swap entry); they are cleared, and with
    install_pmd (MADV_COLLAPSE) the PMD is installed over the emptied table, while khugepaged leaves
    it to the next fault. True on success."""
    pgt = mm.pgtables
    if (haddr >> PMD_SHIFT) in pgt.thp:
        return True
    svc = mm.svc
    page = vma.vm_file.mapping.pages.get(vma.linear_page_index(haddr))
    head = folio_head_of(svc.frames, page) if page is not None else None
    if head is None or head is not page:
        return False
    ptes = list(pgt.present_ptes(haddr, haddr + PMD_SIZE, split=False))
    for va, _slot, pte in ptes:
        if not pte & _PAGE_PRESENT or pte_pfn(pte) != head.pfn + ((va - haddr) >> PAGE_SHIFT):
            return False
    if ptes:
        zap_pte_range(mm, haddr, haddr + PMD_SIZE)
    if not install_pmd:
        return True
    return do_set_pmd(mm, VmFault(vma, haddr, 0), page, vma_maps_writable_on_read(vma))


def shmem_collapse_allowed(mm, vma, force):
    """thp_vma_allowable_order for a shmem VMA: with the sysfs policy (khugepaged, TVA_ENFORCE_SYSFS) or
    without it (MADV_COLLAPSE: shmem_huge_force, only deny and MADV_NOHUGEPAGE refuse)."""
    if force:
        return shmem_allowable_huge(mm, vma, vma.vm_file.inode, vma.vm_pgoff, force=True)
    return shmem_thp_eligible(mm, vma)


def madvise_collapse_file(mm, vma, start, end):
    """MADV_COLLAPSE of a shmem VMA: 0 when every aligned 2 MiB range inside ends up PMD-mapped."""
    if not shmem_collapse_allowed(mm, vma, force=True):
        return -errno.EINVAL
    hstart = (start + PMD_SIZE - 1) & HPAGE_PMD_MASK
    hend = end & HPAGE_PMD_MASK
    thps = 0
    last_fail = SCAN_FAIL
    for haddr in range(hstart, hend, PMD_SIZE):
        if not shmem_vma_suitable(vma, haddr):
            last_fail = SCAN_FAIL
            continue
        result, cost = hpage_collapse_scan_file(mm, vma, haddr, HPAGE_PMD_NR, is_khugepaged=False)
        mm.svc.charge_cycles(cost)
        if result == SCAN_PTE_MAPPED_HUGEPAGE:
            result = SCAN_SUCCEED if collapse_pte_mapped_thp(mm, vma, haddr, True) else SCAN_FAIL
        if result in (SCAN_SUCCEED, SCAN_PMD_MAPPED):
            thps += 1
            continue
        last_fail = result
        if result == SCAN_ALLOC_HUGE_PAGE_FAIL:
            break
    return 0 if thps == (hend - hstart) >> PMD_SHIFT else madvise_collapse_errno(last_fail)


def shmem_vma(vma):
    """A VMA of a shmem file (tmpfs, memfd, shared anonymous, SysV shm)."""
    f = vma.vm_file
    return f is not None and getattr(f, 'mapping', None) is not None and is_shmem_mapping(f.mapping)
