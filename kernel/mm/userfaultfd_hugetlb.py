"""The resolving side of userfaultfd on hugetlb ranges (mm/hugetlb.c hugetlb_mfill_atomic_pte,
mm/userfaultfd.c mfill_atomic_hugetlb, hugetlb_change_protection with uffd-wp).

A hugetlb range is filled one huge page at a time: the destination and length must be huge-page
aligned (EINVAL), ZEROPAGE does not exist there (EINVAL), a huge PMD already mapped is EEXIST and so
is, for COPY into a shared mapping, a page the file already has; a page past the file's end is
EFAULT, an empty pool ENOMEM. COPY into a shared mapping adds the page to the hugetlbfs file, into
a private one makes an anonymous huge page; CONTINUE maps the file's page (read-only in a private
mapping). Write protection sets the uffd-wp bit of the huge PMDs and clears their write bit, and
leaves a uffd-wp marker in each empty one.
"""
import errno

from faultlab.kernel.mm.hugetlb import alloc_hugetlb_folio, make_huge_pte, vma_hugecache_offset
from faultlab.kernel.mm.hugetlb_types import HPAGE_SHIFT, HPAGE_SIZE
from faultlab.kernel.mm.page_alloc import PG_anon, PG_dirty
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, PMD_PFN_MASK
from faultlab.kernel.mm.userfaultfd_k import POISON_MARKER, WP_MARKER, _PAGE_UFFD_WP
from faultlab.kernel.mm.vma import VM_MAYSHARE, VM_SHARED, VM_WRITE

MFILL_COPY, MFILL_ZEROPAGE, MFILL_CONTINUE, MFILL_POISON = 'copy', 'zeropage', 'continue', 'poison'


def _hugetlb_mfill_one(mm, vma, dst, src, mode, wp, umem):
    """hugetlb_mfill_atomic_pte for the huge page at dst: 0 or -errno."""
    svc = mm.svc
    phys = svc.frames.phys
    try:
        slot, freed = mm.pgtables.set_huge_pmd_slot(dst)
    except MemoryError:
        return -errno.ENOMEM
    if freed is not None:
        svc.frames.put_page(svc.frames.pages[freed])
    cur = phys.read64(slot)
    if cur and (cur != WP_MARKER | _PAGE_PSE or mode == MFILL_POISON):    # huge_pte_none_mostly
        return -errno.EEXIST
    if mode == MFILL_POISON:                 # a poison marker in the huge PMD
        phys.write64(slot, POISON_MARKER | _PAGE_PSE)
        svc.charge('pte_set')
        return 0
    inode = vma.vm_file.inode
    idx = vma_hugecache_offset(vma, dst)
    if idx >= (inode.size + HPAGE_SIZE - 1) >> HPAGE_SHIFT:
        return -errno.EFAULT
    shared = bool(vma.vm_flags & VM_MAYSHARE)
    head = inode.hpages.get(idx)
    if mode == MFILL_CONTINUE:
        if head is None:
            return -errno.EFAULT
        writable = shared and vma.vm_flags & VM_WRITE and not wp
        head.refcount += 1
        head.mapcount += 1
    else:
        if shared and head is not None:
            return -errno.EEXIST
        data = umem.read(src, HPAGE_SIZE)
        if data is None:
            return -errno.EFAULT
        head = inode.alloc_file_page(idx) if shared else alloc_hugetlb_folio(mm, vma, dst)
        if head is None:
            return -errno.ENOMEM
        phys.mv[head.pfn << 12:(head.pfn << 12) + HPAGE_SIZE] = data
        svc.charge('page_copy', HPAGE_SIZE >> 12)
        svc.stats['uffd_pages_copied'] += HPAGE_SIZE >> 12
        head.flags |= PG_dirty
        if shared:
            head.refcount += 1
            head.mapcount += 1
        else:
            head.flags |= PG_anon
            head.mapcount = 1
            head.rmap_mm = mm
            head.index = dst >> 12
        writable = vma.vm_flags & VM_WRITE and not wp
    entry = make_huge_pte(vma, head, bool(writable), mode != MFILL_CONTINUE)
    if wp:
        entry |= _PAGE_UFFD_WP
    phys.write64(slot, entry)
    svc.charge('pte_set')
    return 0


def mfill_atomic_hugetlb(mm, vma, dst, src, length, mode, wp, umem):
    """Fill [dst, dst + length) of a hugetlb VMA huge page by huge page: the bytes filled, or -errno
    if none was."""
    if mode == MFILL_ZEROPAGE:
        return -errno.EINVAL
    if dst & (HPAGE_SIZE - 1) or length & (HPAGE_SIZE - 1):
        return -errno.EINVAL
    done = 0
    err = 0
    while done < length:
        err = _hugetlb_mfill_one(mm, vma, dst + done, src + done, mode, wp, umem)
        if err:
            break
        done += HPAGE_SIZE
    return done if done else err


def hugetlb_uffd_writeprotect(mm, vma, start, end, enable):
    """hugetlb_change_protection with uffd-wp for the huge pages of [start, end): set the uffd-wp bit
    and drop write access, a uffd-wp marker in an empty PMD; or clear the bit (giving write access
    back where the mapping is shared or the page is ours alone) and drop the markers; the count."""
    svc = mm.svc
    phys = svc.frames.phys
    pages = svc.frames.pages
    changed = 0
    if enable:                           # huge_pte_alloc: every huge page of the range gets an entry
        for va in range(start, end, HPAGE_SIZE):
            try:
                slot, freed = mm.pgtables.set_huge_pmd_slot(va)
            except MemoryError:
                break
            if freed is not None:
                svc.frames.put_page(pages[freed])
            if not phys.read64(slot):
                phys.write64(slot, WP_MARKER | _PAGE_PSE)
                changed += 1
    for _va, slot, e in list(mm.pgtables.huge_pmds(start, end)):
        if not e & _PAGE_PRESENT:
            if not enable and e == WP_MARKER | _PAGE_PSE:
                phys.write64(slot, 0)
                changed += 1
            continue
        if enable:
            new = (e | _PAGE_UFFD_WP) & ~_PAGE_RW
        else:
            new = e & ~_PAGE_UFFD_WP
            head = pages[(e & PMD_PFN_MASK) >> 12]
            if vma.vm_flags & VM_WRITE and (vma.vm_flags & VM_SHARED or
                                            (head.flags & PG_anon and head.mapcount == 1)):
                new |= _PAGE_RW
        if new != e:
            phys.write64(slot, new)
            changed += 1
    return changed
