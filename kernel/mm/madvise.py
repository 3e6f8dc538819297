"""madvise(2) (mm/madvise.c)."""
import errno

from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.hostlimit import fatal_signal_pending
from faultlab.kernel.mm.gup import faultin_vma_page_range, faultin_page
from faultlab.kernel.mm.hugetlb_types import HPAGE_MASK, HPAGE_SIZE
from faultlab.kernel.mm.hugetlb_unmap import zap_huge_pmd_range
from faultlab.kernel.mm.huge_memory import VM_HUGEPAGE, VM_NOHUGEPAGE
from faultlab.kernel.mm.khugepaged import madvise_collapse
from faultlab.kernel.mm.khugepaged_file import madvise_collapse_file, shmem_vma
from faultlab.kernel.mm.khugepaged_scan import khugepaged_enter_vma
from faultlab.kernel.mm.ksm import ksm_madvise
from faultlab.kernel.mm.memory import fold_pte_dirty, memory_failure, zap_pte_range
from faultlab.kernel.mm.mmap import _isolate, vma_merge_around
from faultlab.kernel.mm.mm_types import VM_FAULT_ERROR
from faultlab.kernel.mm.mm_types import TASK_SIZE
from faultlab.kernel.mm.page_alloc import PG_lru
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, pte_pfn
from faultlab.kernel.mm.shmem import is_shmem_mapping
from faultlab.kernel.mm.shmem_punch import shmem_punch_hole
from faultlab.kernel.mm.userfaultfd_events import uffd_wp_zap_finish, uffd_wp_zap_prepare, userfaultfd_remove
from faultlab.kernel.mm.vma import VM_LOCKED, VM_PFNMAP, VM_SEQ_READ, VM_RAND_READ, VM_SHARED, VM_IO, VM_DONTCOPY, \
    VM_DONTDUMP, VM_HUGETLB, VM_MAYWRITE, VM_WIPEONFORK

MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED = 0, 1, 2, 3, 4
MADV_FREE, MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK = 8, 9, 10, 11
MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE = 12, 13, 14, 15
MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK = 16, 17, 18, 19
MADV_COLD, MADV_PAGEOUT = 20, 21
MADV_POPULATE_READ, MADV_POPULATE_WRITE = 22, 23
MADV_DONTNEED_LOCKED, MADV_COLLAPSE = 24, 25
MADV_HWPOISON = 100
_NOOP = {MADV_MERGEABLE, MADV_UNMERGEABLE}
_KNOWN = {MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE,
          MADV_COLD,
          MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_HWPOISON, MADV_DONTFORK, MADV_DOFORK,
          MADV_DONTDUMP, MADV_DODUMP, MADV_REMOVE, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_HUGEPAGE,
          MADV_NOHUGEPAGE, MADV_COLLAPSE} | _NOOP


def madvise_populate(mm, start, end, write, fatal_signal_pending=lambda: False):
    """MADV_POPULATE_(READ|WRITE): fault the range in VMA by VMA; stop at the first hole (-ENOMEM),
    keeping what was populated before it."""
    addr = start
    while addr < end:
        if fatal_signal_pending():
            return -errno.EINTR
        vma = mm.vmas.vma_lookup(addr)
        if vma is None:
            return -errno.ENOMEM
        stop = min(end, vma.vm_end)
        _done, err = faultin_vma_page_range(mm, vma, addr, stop, write)
        if err:
            return err
        addr = stop
    return 0


def madvise_hwpoison(mm, start, end):
    """MADV_HWPOISON: treat the pages as having a memory error (memory_failure): unmap, mark poisoned."""
    for addr in range(start, end, 4096):
        vma = mm.vmas.vma_lookup(addr)
        if vma is None:
            return -errno.EFAULT
        if faultin_page(mm, vma, addr, False) & VM_FAULT_ERROR:
            return -errno.EFAULT
        memory_failure(mm, vma, addr)
    return 0


def _present_pages(mm, start, end):
    """The evictable pages mapped in [start, end) (not the zero page or special mappings)."""
    frames = mm.svc.frames
    out = []
    for va, slot, pte in mm.pgtables.present_ptes(start, end):
        if pte & _PAGE_PRESENT:
            page = frames.pages[pte_pfn(pte)]
            if page.flags & PG_lru:
                out.append(page)
    return out


def madvise_cold_or_pageout(mm, vma, start, end, pageout):
    """MADV_COLD: deactivate the pages; MADV_PAGEOUT: reclaim them now (swap or drop). EINVAL where
    the LRU cannot take them (can_madv_lru_vma: locked, PFN-mapped or hugetlb memory)."""
    if vma.vm_flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB):
        return -errno.EINVAL
    rec = mm.svc.reclaim
    for page in _present_pages(mm, start, end):
        if fatal_signal_pending():
            return -errno.EINTR                # madvise_cold_or_pageout_pte_range
        if page.mapcount > 1:
            continue
        if pageout:
            rec.pageout(page, force=True)
        else:
            rec.page_referenced(page)
            mm.svc.lru.deactivate(page)
    mm.svc.flush_tlb()
    return 0


def madvise_dontneed_free_valid_vma(vma, start, end, behavior):
    """madvise_dontneed_free_valid_vma: the end to use, or None (EINVAL). Locked (unless
    MADV_DONTNEED_LOCKED) and PFN-mapped memory is refused; a hugetlb mapping takes only
    MADV_DONTNEED(_LOCKED) from a huge-page-aligned start, and its end is rounded down to whole
    huge pages (a caller unaware of them must not lose a partly covered one)."""
    if not vma.vm_flags & VM_HUGETLB:
        forbidden = VM_PFNMAP | (0 if behavior == MADV_DONTNEED_LOCKED else VM_LOCKED)
        return None if vma.vm_flags & forbidden else end
    if behavior not in (MADV_DONTNEED, MADV_DONTNEED_LOCKED) or start & (HPAGE_SIZE - 1):
        return None
    return end & HPAGE_MASK


def madvise_dontneed_single_vma(mm, vma, start, end):
    """Drop the pages: anonymous memory reads back as zero, file pages refault from the cache."""
    if vma.vm_flags & VM_HUGETLB:
        zap_huge_pmd_range(mm, start, end)       # unmap_single_vma: __unmap_hugepage_range only
        return 0
    if vma.vm_flags & VM_SHARED and vma.vm_file is not None:
        fold_pte_dirty(mm, vma)
    zap_pte_range(mm, start, end)
    return 0


def madvise_remove(mm, vma, start, end):
    """MADV_REMOVE: punch the file range behind [start, end) of a shared writable mapping (EINVAL when
    locked or anonymous, EACCES otherwise). hugetlbfs and tmpfs/memfd files punch holes as their
    fallocate does; other files are -EOPNOTSUPP."""
    if vma.vm_flags & VM_LOCKED or vma.vm_file is None:
        return -errno.EINVAL
    if vma.vm_flags & (VM_SHARED | VM_MAYWRITE) != VM_SHARED | VM_MAYWRITE:
        return -errno.EACCES
    userfaultfd_remove(mm, vma, start, end)
    inode = vma.vm_file.inode
    if is_shmem_mapping(mm.svc.pagecache.mapping_of(inode)):
        shmem_punch_hole(mm.svc, inode, start - vma.vm_start + (vma.vm_pgoff << PAGE_SHIFT), end - start)
        return 0
    if not vma.vm_flags & VM_HUGETLB:
        return -errno.EOPNOTSUPP
    inode.punch_hole(start - vma.vm_start + (vma.vm_pgoff << PAGE_SHIFT), end - start)
    return 0


def madvise_willneed(mm, vma, start, end):
    """Start read-ahead for the file pages behind [start, end)."""
    if vma.vm_file is None:
        return 0
    pc = mm.svc.pagecache
    pc.page_cache_ra_unbounded(vma.vm_file.mapping, vma.linear_page_index(start), (end - start) >> 12)
    return 0


# advice that changes vm_flags: (flags cleared, flags set)
_FLAG_ADVICE = {MADV_NORMAL: (VM_SEQ_READ | VM_RAND_READ, 0), MADV_RANDOM: (VM_SEQ_READ | VM_RAND_READ, VM_RAND_READ),
                MADV_SEQUENTIAL: (VM_SEQ_READ | VM_RAND_READ, VM_SEQ_READ), MADV_DONTFORK: (0, VM_DONTCOPY),
                MADV_DOFORK: (VM_DONTCOPY, 0), MADV_DONTDUMP: (0, VM_DONTDUMP), MADV_DODUMP: (VM_DONTDUMP, 0),
                MADV_WIPEONFORK: (0, VM_WIPEONFORK), MADV_KEEPONFORK: (VM_WIPEONFORK, 0),
                # hugepage_madvise: one of the two THP hints replaces the other
                MADV_HUGEPAGE: (VM_NOHUGEPAGE, VM_HUGEPAGE), MADV_NOHUGEPAGE: (VM_HUGEPAGE, VM_NOHUGEPAGE)}


def madvise_update_vma(mm, vma, start, end, behavior):
    """Set the advice's vm_flags on [start, end) of vma only: split off the rest, merge if possible."""
    clear, set_ = _FLAG_ADVICE[behavior]
    if behavior == MADV_DOFORK and vma.vm_flags & VM_IO:
        return -errno.EINVAL
    if behavior == MADV_WIPEONFORK and (vma.vm_file is not None or vma.vm_flags & VM_SHARED):
        return -errno.EINVAL                     # private anonymous memory only
    new = (vma.vm_flags & ~clear) | set_
    if new == vma.vm_flags:
        return 0
    for v in _isolate(mm, start, end):
        v.vm_flags = new
        v.vm_seq += 1
        v = vma_merge_around(mm, v)
        if behavior == MADV_HUGEPAGE:
            khugepaged_enter_vma(mm, v)              # hugepage_madvise
    return 0


def do_madvise(mm, start, len_in, behavior):
    """madvise(2): validate, then apply per VMA; -ENOMEM if the range had unmapped holes."""
    if start & (PAGE_SIZE - 1):
        return -errno.EINVAL
    if behavior not in _KNOWN:
        return -errno.EINVAL
    length = (len_in + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & ((1 << 64) - 1)    # PAGE_ALIGN may wrap to 0
    if len_in and not length:
        return -errno.EINVAL
    end = (start + length) & ((1 << 64) - 1)
    if end < start:
        return -errno.EINVAL
    if end == start:
        return 0                          # also in the kernel half: no VMA is looked for
    if end > TASK_SIZE:
        return -errno.ENOMEM
    if behavior in (MADV_POPULATE_READ, MADV_POPULATE_WRITE):
        return madvise_populate(mm, start, end, behavior == MADV_POPULATE_WRITE)
    if behavior == MADV_HWPOISON:
        return madvise_hwpoison(mm, start, end)
    unmapped = False
    cur = start
    for vma in mm.vmas.overlapping(start, end):
        if vma.vm_start > cur:
            unmapped = True
        s, e = max(start, vma.vm_start), min(end, vma.vm_end)
        if behavior in (MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE):
            e = madvise_dontneed_free_valid_vma(vma, s, e, behavior)
            if e is None:
                return -errno.EINVAL
            if behavior == MADV_FREE and (vma.vm_file is not None or vma.vm_flags & VM_SHARED):
                return -errno.EINVAL
            if vma.vm_flags & VM_IO:
                return -errno.EINVAL
            if s < e:
                userfaultfd_remove(mm, vma, s, e)
                wp_slots = uffd_wp_zap_prepare(mm, vma, s, e)
                madvise_dontneed_single_vma(mm, vma, s, e)
                uffd_wp_zap_finish(mm, wp_slots)
            e = min(end, vma.vm_end)
        elif behavior == MADV_WILLNEED:
            madvise_willneed(mm, vma, s, e)
        elif behavior == MADV_REMOVE:
            r = madvise_remove(mm, vma, s, e)
            if r:
                return r
        elif behavior in (MADV_COLD, MADV_PAGEOUT):
            r = madvise_cold_or_pageout(mm, vma, s, e, behavior == MADV_PAGEOUT)
            if r:
                return r
        elif behavior in (MADV_MERGEABLE, MADV_UNMERGEABLE):
            r = ksm_madvise(mm, vma, s, e, behavior)        # mm/ksm.c
            if r:
                return r
        elif behavior == MADV_COLLAPSE:
            r = madvise_collapse_file(mm, vma, s, e) if shmem_vma(vma) else madvise_collapse(mm, vma, s, e)
            if r:
                return r
        elif behavior in _FLAG_ADVICE:
            r = madvise_update_vma(mm, vma, s, e, behavior)
            if r:
                return r
        cur = e
    if cur < end:
        unmapped = True
    return -errno.ENOMEM if unmapped else 0
