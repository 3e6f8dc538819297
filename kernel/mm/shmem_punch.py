"""Punching a hole in a tmpfs/memfd file (mm/shmem.c shmem_fallocate FALLOC_FL_PUNCH_HOLE, as
madvise(MADV_REMOVE) reaches it through vfs_fallocate).

unmap_mapping_range first takes the range's pages out of every page table that maps the file: the
PTEs of shared mappings, and of private mappings those that still map the page-cache page (their
anonymous copies stay, as with even_cows = 0). shmem_truncate_range then drops the cached pages and
the file's own store, zeroing the bytes of partial pages at the edges, so the next access faults
on a missing page (a MISSING userfault, or a zero-filled page).
"""
from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.mm.memory import fold_pte_dirty, zap_pte_range
from faultlab.kernel.mm.page_alloc import PG_anon
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, pte_pfn
from faultlab.kernel.mm.shmem_huge import HPAGE_PMD_NR, folio_head_of, split_folio_pmds, split_shmem_folio
from faultlab.kernel.mm.vma import VM_HUGETLB, VM_SHARED


def unmap_mapping_range(svc, inode, first, last):
    """Unmap file page indices [first, last) of inode from every address space; private COW copies stay."""
    pages = svc.frames.pages
    for mm in svc.reclaim.mms():
        for vma in list(mm.vmas):
            f = vma.vm_file
            if f is None or f.inode is not inode or vma.vm_flags & VM_HUGETLB:
                continue
            v_first = vma.vm_pgoff
            v_last = v_first + ((vma.vm_end - vma.vm_start) >> PAGE_SHIFT)
            s, e = max(first, v_first), min(last, v_last)
            if s >= e:
                continue
            start = vma.vm_start + ((s - v_first) << PAGE_SHIFT)
            end = vma.vm_start + ((e - v_first) << PAGE_SHIFT)
            if vma.vm_flags & VM_SHARED:
                fold_pte_dirty(mm, vma)
                zap_pte_range(mm, start, end)
                continue
            for va, _slot, pte in list(mm.pgtables.present_ptes(start, end)):
                if pte & _PAGE_PRESENT and not pages[pte_pfn(pte)].flags & PG_anon:
                    zap_pte_range(mm, va, va + PAGE_SIZE)


def shmem_truncate_range(svc, inode, start, end):
    """Drop the cached pages wholly inside [start, end), zero the cached bytes of the partial ones,
    and punch the file's store."""
    pc = svc.pagecache
    mapping = pc.mapping_of(inode)
    first, last = -(-start // PAGE_SIZE), end // PAGE_SIZE
    for index in (first, last):               # truncate_inode_partial_folio: a huge folio cut in two is split
        page = mapping.pages.get(index - (index == last))
        head = folio_head_of(svc.frames, page) if page is not None else None
        if head is not None and not (first <= head.index and head.index + HPAGE_PMD_NR <= last):
            split_folio_pmds(svc.frames, head, svc.reclaim.mms)
            split_shmem_folio(svc.frames, svc.stats, head)
    for idx in [i for i in mapping.pages if first <= i < last]:
        page = mapping.pages[idx]
        if page.mapcount == 0:
            pc.delete_from_page_cache(page)
    for a, b in ((start, min(end, first * PAGE_SIZE)), (max(start, last * PAGE_SIZE), end)):
        page = mapping.pages.get(a // PAGE_SIZE) if a < b else None
        if page is not None:
            off = a & (PAGE_SIZE - 1)
            svc.frames.phys.frame(page.pfn)[off:off + (b - a)] = bytes(b - a)
    inode.punch_hole(start, end - start)


def shmem_punch_hole(svc, inode, offset, length):
    """shmem_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): the range reads back as zeros."""
    end = offset + length
    unmap_mapping_range(svc, inode, -(-offset // PAGE_SIZE), end >> PAGE_SHIFT)    # whole pages only
    shmem_truncate_range(svc, inode, offset, end)
