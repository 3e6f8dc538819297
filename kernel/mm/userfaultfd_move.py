"""UFFDIO_MOVE (mm/userfaultfd.c move_pages): move anonymous pages from one place to a registered
range without copying them.

Both ranges lie in private anonymous VMAs with the same access rights and mlock state, the source
writable, the destination registered with this context (EINVAL otherwise; ENOENT without a VMA).
Page by page: a destination already mapped is EEXIST; a source hole is ENOENT unless
UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES (then it counts as moved); a page that is not exclusively ours
(shared with a fork child, or pinned) is EBUSY. The page's PTE moves (the zero page stays the zero
page, a swap entry moves as it is), the page's rmap index follows. Returns the bytes moved or
-errno when none was.
"""
import errno

from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.mm.gup_pin import page_maybe_dma_pinned
from faultlab.kernel.mm.page_alloc import PG_anon, PG_anon_exclusive
from faultlab.kernel.mm.pgtable import _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, pte_pfn
from faultlab.kernel.mm.userfaultfd_k import userfaultfd_ctx_of
from faultlab.kernel.mm.vma import VM_EXEC, VM_HUGETLB, VM_LOCKED, VM_READ, VM_SHARED, VM_WRITE

UFFDIO_MOVE_MODE_DONTWAKE = 1 << 0
UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES = 1 << 1
_ACCESS = VM_READ | VM_WRITE | VM_EXEC


def validate_move_areas(mm, ctx, src_vma, dst_vma, dst):
    """0 or -EINVAL: both private anonymous, alike in rights and mlock, source writable,
    destination registered with ctx."""
    if (src_vma.vm_flags & _ACCESS) != (dst_vma.vm_flags & _ACCESS):
        return -errno.EINVAL
    if (src_vma.vm_flags & VM_LOCKED) != (dst_vma.vm_flags & VM_LOCKED):
        return -errno.EINVAL
    if not src_vma.vm_flags & VM_WRITE:
        return -errno.EINVAL
    if userfaultfd_ctx_of(mm, dst) is not ctx:
        return -errno.EINVAL
    for v in (src_vma, dst_vma):
        if not v.anon or v.vm_flags & (VM_SHARED | VM_HUGETLB):
            return -errno.EINVAL
    return 0


def _move_one(mm, src, dst, allow_holes):
    """move_pages_pte for one page: 0 or -errno."""
    svc = mm.svc
    ptes = mm.pgtables.ptes
    # a transparent huge page at src is split first (split_huge_pmd), then moved 4 KiB at a time
    sslot = mm.pgtables.pte_slot(src, create=(src >> 21) in mm.pgtables.thp)
    spte = ptes[sslot >> 3] if sslot is not None else 0
    dslot = mm.pgtables.pte_slot(dst, create=True)
    if ptes[dslot >> 3]:
        return -errno.EEXIST
    if not spte:
        return 0 if allow_holes else -errno.ENOENT
    if spte & _PAGE_PRESENT:
        page = svc.frames.pages[pte_pfn(spte)]
        if page is not svc.zero_page:
            if not page.flags & PG_anon or not page.flags & PG_anon_exclusive or page.mapcount != 1 or \
                    page_maybe_dma_pinned(page):
                return -errno.EBUSY
            page.index = dst >> PAGE_SHIFT
            spte |= _PAGE_DIRTY | _PAGE_RW       # pte_mkwrite(pte_mkdirty()): ours alone
    ptes[dslot >> 3] = spte
    ptes[sslot >> 3] = 0
    svc.charge('pte_set', 2)
    return 0


def move_pages(mm, ctx, dst, src, length, mode):
    """The bytes moved from [src, src + length) to [dst, dst + length), or -errno if none was."""
    if src & (PAGE_SIZE - 1) or dst & (PAGE_SIZE - 1) or length & (PAGE_SIZE - 1):
        return -errno.EINVAL
    dst_vma = mm.vmas.vma_lookup(dst)
    src_vma = mm.vmas.vma_lookup(src)
    if dst_vma is None or src_vma is None:
        return -errno.ENOENT
    if src + length > src_vma.vm_end or dst + length > dst_vma.vm_end:
        return -errno.EINVAL
    err = validate_move_areas(mm, ctx, src_vma, dst_vma, dst)
    if err:
        return err
    done = 0
    while done < length:
        err = _move_one(mm, src + done, dst + done, mode & UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES)
        if err:
            break
        done += PAGE_SIZE
    if done:
        dst_vma.anon_vma = True
        svc = mm.svc
        svc.stats['uffd_pages_moved'] += done >> PAGE_SHIFT
        svc.flush_tlb(mm)
    return done if done else err
