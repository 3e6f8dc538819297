"""--check's view of transparent huge pages (kernel/mm/huge_memory.py): a huge PMD of an anonymous VMA
maps the huge zero folio or a live compound page, with its deposited page table; every frame of a live
compound page holds one reference for the folio. A huge PMD of a shmem VMA maps the cached huge folio
at its file index (kernel/mm/shmem_huge.py), one mapping and reference on each of its pages."""
from faultlab.kernel.mm.huge_memory import (HPAGE_PMD_NR, PG_large_head, folio_entire_mapcount, is_huge_zero_pmd,
                                             thp_state)
from faultlab.kernel.mm.shmem import is_shmem_mapping
from faultlab.kernel.mm.page_alloc import PG_head, PG_pgtable, PG_tail
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_RW, PMD_PFN_MASK, PMD_SHIFT
from faultlab.kernel.mm.vma import VM_WRITE


class ThpViolation(Exception):
    """A huge PMD or compound page is inconsistent (the checker reports it as its own violation)."""


def check_thp_pmd(walk, e2, base):
    """A THP PMD leaf at base: present, inside an anonymous VMA that covers it, writable only in a
    writable VMA, mapping the huge zero folio or a live folio's head; its deposited table counts as
    one of the mm's tables. Returns the anonymous pages it adds to RSS."""
    mm = walk.mm
    svc = mm.svc
    vma = walk.vmas.vma_lookup(base)
    if not e2 & _PAGE_PRESENT:
        raise ThpViolation('transparent huge PMD %#x for %#x is not present' % (e2, base))
    if vma is not None and not vma.anon and (e2 & PMD_PFN_MASK) >> 12 in thp_state(svc).file_pmd:
        return check_shmem_pmd(walk, vma, e2, base)
    if vma is None or not vma.anon or vma.vm_start > base or vma.vm_end < base + (1 << PMD_SHIFT):
        raise ThpViolation('transparent huge PMD %#x for %#x is not inside an anonymous VMA (%r)' % (e2, base, vma))
    if e2 & _PAGE_RW and not vma.vm_flags & VM_WRITE:
        raise ThpViolation('writable huge PMD for %#x in %r' % (base, vma))
    deposit = mm.pgtables.thp[base >> PMD_SHIFT]
    if not walk.pages[deposit].flags & PG_pgtable or deposit not in mm.pgtables.table_pfns:
        raise ThpViolation('the table deposited with the huge PMD at %#x (%#x) is not a page table' % (base, deposit))
    walk.tables.add(deposit)
    if is_huge_zero_pmd(svc, e2):
        if e2 & _PAGE_RW:
            raise ThpViolation('writable huge PMD for %#x maps the huge zero folio' % base)
        return 0
    pfn = (e2 & PMD_PFN_MASK) >> 12
    head = walk.pages[pfn]
    if not head.flags & PG_head or folio_entire_mapcount(svc, pfn) < 1:
        raise ThpViolation('huge PMD for %#x maps %r, not a live compound page' % (base, head))
    return HPAGE_PMD_NR


def check_shmem_pmd(walk, vma, e2, base):
    """A PMD mapping a shmem huge folio (kernel/mm/shmem_huge.py): inside a shmem VMA that covers it at
    the file's alignment, writable only in a writable VMA, over its deposited table, mapping the cached
    folio whose head is at the VMA's file index for base; each of its 512 pages counts one mapping (and
    the mm 512 file pages). Returns 0 (no anonymous pages)."""
    svc = walk.mm.svc
    if vma.vm_start > base or vma.vm_end < base + (1 << PMD_SHIFT) or \
            ((vma.vm_start >> 12) - vma.vm_pgoff) & (HPAGE_PMD_NR - 1):
        raise ThpViolation('shmem huge PMD for %#x does not fit %r at its file alignment' % (base, vma))
    if not is_shmem_mapping(vma.vm_file.mapping):
        raise ThpViolation('huge PMD for %#x in %r, which is not a shmem mapping' % (base, vma))
    if e2 & _PAGE_RW and not vma.vm_flags & VM_WRITE:
        raise ThpViolation('writable huge PMD for %#x in %r' % (base, vma))
    deposit = walk.mm.pgtables.thp[base >> PMD_SHIFT]
    if not walk.pages[deposit].flags & PG_pgtable or deposit not in walk.mm.pgtables.table_pfns:
        raise ThpViolation('the table deposited with the huge PMD at %#x (%#x) is not a page table' % (base, deposit))
    walk.tables.add(deposit)
    pfn = (e2 & PMD_PFN_MASK) >> 12
    head = walk.pages[pfn]
    index = vma.linear_page_index(base)
    mapping = vma.vm_file.mapping
    if not head.flags & PG_large_head or head.index != index or mapping.pages.get(index) is not head:
        raise ThpViolation('shmem huge PMD for %#x maps %r, not the cached folio at index %d' % (base, head, index))
    for i in range(HPAGE_PMD_NR):
        walk.mapped[pfn + i] = walk.mapped.get(pfn + i, 0) + 1
    walk.file += HPAGE_PMD_NR
    return 0


def thp_folio_refs(svc, page):
    """The reference a frame of a live compound page holds for its folio (1), else 0."""
    if not page.flags & (PG_head | PG_tail):
        return 0
    return 1 if folio_entire_mapcount(svc, page.pfn & ~(HPAGE_PMD_NR - 1)) else 0
