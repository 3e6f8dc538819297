"""--check's view of transparent huge pages (kernel/mm/huge_memory.py): a huge PMD of an anonymous VMA
maps the huge zero folio or a live compound page, with its deposited page table; every frame of a live
compound page holds one reference for the folio."""
from faultlab.kernel.mm.huge_memory import HPAGE_PMD_NR, folio_entire_mapcount, is_huge_zero_pmd
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


def thp_folio_refs(svc, page):
    """The reference a frame of a live compound page holds for its folio (1), else 0."""
    if not page.flags & (PG_head | PG_tail):
        return 0
    return 1 if folio_entire_mapcount(svc, page.pfn & ~(HPAGE_PMD_NR - 1)) else 0
