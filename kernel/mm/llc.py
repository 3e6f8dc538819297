"""A page-granular model of the last-level cache, so that clearing, copying and first-touching memory
costs more when the memory involved is no longer cached (the working set outgrew the LLC).

The model is an LRU stack distance in bytes: every time a frame is touched (cleared, copied from or
to, or read by the user for the first time after a fault mapped it) a clock advances by one page; a
frame is cached if fewer than `llc_bytes` were touched since its own last touch. Repeated touches of
the same frame count as well, so the distance is an over-estimate: a frame's data falls out somewhat
early, never late. Reserved frames (the zero page, the vDSO) are always cached: every process keeps
touching them.

Costs (emu/core/cycles.py): page_zero / page_copy for the in-cache case, plus page_zero_dram and
page_copy_dram for each frame that is not cached; llc_miss for the first user access to a page a user
fault mapped with existing data (a page-cache page, a swapped-in page), if it is not cached. Those
pages are recorded by frame (`first`, no limit: every page a fault mapped is charged when the user
first touches it, in whatever order, however many faults later) and charged when the CPU reports the
pages the user touched (kernel/mm/tlb_model.py, from the CPU's software TLB) or, on a CPU that cannot
report them, at the next fault for each recorded page whose Accessed bit is set. Later touches of
already-mapped pages that are not cached are charged by kernel/mm/tlb_model.py (llc_miss_mapped).
"""
from array import array

from faultlab.kernel.mm.pgtable import _PAGE_ACCESSED, _PAGE_PRESENT, pte_pfn
from faultlab.kernel.mm.page_alloc import PG_reserved

PAGE_BYTES = 4096
_NEVER = -(1 << 62)


class LlcModel:
    """The cache state: the byte clock and each frame's last touch."""

    def __init__(self, nr_frames, llc_bytes):
        self.llc_bytes = int(llc_bytes)
        self.clock = 0
        self.last = array('q', [_NEVER]) * nr_frames
        self.first = {}           # pfn -> PTE slot: mapped by a user fault, first touch not charged yet
        self.sampled = False      # the CPU reports touched pages (tlb_model); no Accessed-bit scans
        self.misses = 0

    def touch(self, pfn):
        """Touch one frame; True if it was cached."""
        hot = self.clock - self.last[pfn] < self.llc_bytes
        self.clock += PAGE_BYTES
        self.last[pfn] = self.clock
        if not hot:
            self.misses += 1
        return hot

    def touch_range(self, pfn, n):
        """Touch n consecutive frames; how many of them were cached."""
        return sum(self.touch(p) for p in range(pfn, pfn + n))


def _llc(svc):
    return getattr(svc, 'llc', None)


def charge_page_zero(svc, pfn, n=1):
    """clear_page of n frames from pfn: the in-cache cost, plus the DRAM cost for the uncached ones."""
    charge_pages_zero(svc, range(pfn, pfn + n))


def charge_pages_zero(svc, pfns):
    """clear_page of each frame in pfns (consecutive ones, or a batch of faults the CPU resolved
    natively)."""
    llc = _llc(svc)
    svc.charge('page_zero', len(pfns))
    if llc is not None:
        cold = sum(1 for p in pfns if not llc.touch(p))
        if cold:
            svc.charge('page_zero_dram', cold)


def charge_page_copy(svc, dst, src, n=1):
    """copy_page of n frames src -> dst: in-cache cost, plus page_copy_dram per uncached frame of either."""
    llc = _llc(svc)
    svc.charge('page_copy', n)
    if llc is not None:
        cold = 2 * n - llc.touch_range(src, n) - llc.touch_range(dst, n)
        if cold:
            svc.charge('page_copy_dram', cold)


def note_user_mapped(svc, slot, page):
    """A user fault mapped page at the PTE slot: its first user access is charged when it happens."""
    llc = _llc(svc)
    if llc is None or page.flags & PG_reserved:
        return
    llc.first[page.pfn] = slot


def charge_first_touches(svc, faults=1, sample=False):
    """Charge llc_miss for each recorded page the user has touched since (its Accessed bit set) that
    was not cached: when the CPU reports touched pages (sample=True, kernel/mm/tlb_model.py), or at the
    start of a fault (or of a batch of `faults` the CPU resolved natively) on a CPU that does not."""
    llc = _llc(svc)
    if llc is None or llc.sampled != sample or not llc.first:
        return
    rd = svc.frames.phys.read64
    touched = []
    for pfn, slot in list(llc.first.items()):
        pte = rd(slot)
        if not pte & _PAGE_PRESENT or pte_pfn(pte) != pfn:
            del llc.first[pfn]            # unmapped (or remapped) before the user touched it
        elif pte & _PAGE_ACCESSED:
            touched.append(pfn)
    cold = touched_first(llc, touched)
    if cold:
        svc.charge('llc_miss', cold)


def touched_first(llc, pfns):
    """The user touched these recorded frames for the first time since a fault mapped them: forget
    their records and touch them; how many were not cached."""
    first = llc.first
    cold = 0
    for pfn in pfns:
        del first[pfn]
        if not llc.touch(pfn):
            cold += 1
    return cold
