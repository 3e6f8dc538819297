"""A page-granular model of the last-level cache, so that clearing, copying and first-touching memory
costs more when the memory involved is no longer cached (the working set outgrew the LLC).

The model is an LRU stack distance in bytes: every time a frame is touched (cleared, copied from or
to, or read by the user for the first time after a fault mapped it) a clock advances by one page; a
frame is cached if fewer than `llc_bytes` were touched since its own last touch. Repeated touches of
the same frame count as well, so the distance is an over-estimate: a frame's data falls out somewhat
early, never late. Reserved frames (the zero page, the vDSO) are always cached: every process keeps
touching them.

Costs (emu/core/cycles.py): page_zero / page_copy for the in-cache case, plus page_zero_dram and
page_copy_dram for each frame that is not cached; llc_miss for a user load of a page that is not
cached, which is charged lazily: a user fault that maps existing data records the frames it mapped,
and each later fault charges those whose Accessed bit the CPU has set in the meantime (the user did
touch them) and that were not cached; pages not touched yet stay recorded (up to PENDING_MAX). A
recorded page that two faults in a row found untouched (fault-around maps pages the program may never
use) moves to a stale list that only every STALE_EVERY-th fault looks at, so a fault does not pay for
re-reading dozens of idle PTEs.
"""
from array import array

from faultlab.kernel.mm.pgtable import _PAGE_ACCESSED, _PAGE_PRESENT, pte_pfn
from faultlab.kernel.mm.page_alloc import PG_reserved

PAGE_BYTES = 4096
PENDING_MAX = 64             # first touches remembered between faults (fault-around maps <= 16 per fault)
FRESH_SCANS = 2              # faults that look at a new record before it goes stale
STALE_EVERY = 16             # a fault in this many looks at the stale records
_NEVER = -(1 << 62)


class LlcModel:
    """The cache state: the byte clock and each frame's last touch."""

    def __init__(self, nr_frames, llc_bytes):
        self.llc_bytes = int(llc_bytes)
        self.clock = 0
        self.last = array('q', [_NEVER]) * nr_frames
        self.pending = []         # [(PTE slot, pfn, scans)] mapped by a user fault, first touch not charged
        self.stale = []           # [(PTE slot, pfn, scans)] found untouched FRESH_SCANS times
        self.scans = 0
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
    """A user fault mapped page at the PTE slot: its first user access is charged at the next fault."""
    llc = _llc(svc)
    if llc is None or page.flags & PG_reserved:
        return
    if len(llc.pending) >= PENDING_MAX:
        del llc.pending[:PENDING_MAX // 2]
    llc.pending.append((slot, page.pfn, 0))


def charge_first_touches(svc, faults=1):
    """Charge llc_miss for each recorded page the user has touched since (Accessed set) that was not
    cached; at the start of a fault (or of a batch of `faults` the CPU resolved natively)."""
    llc = _llc(svc)
    if llc is None:
        return
    before = llc.scans
    llc.scans += faults
    cold = 0
    if llc.pending:
        fresh, cold = _scan(svc, llc, llc.pending)
        llc.pending = [r for r in fresh if r[2] < FRESH_SCANS]
        aged = [r for r in fresh if r[2] >= FRESH_SCANS]
        if aged:
            llc.stale.extend(aged)
            if len(llc.stale) > PENDING_MAX:
                del llc.stale[:len(llc.stale) - PENDING_MAX]
    if llc.stale and llc.scans // STALE_EVERY != before // STALE_EVERY:
        llc.stale, more = _scan(svc, llc, llc.stale)
        cold += more
    if cold:
        svc.charge('llc_miss', cold)


def _scan(svc, llc, records):
    """Touch the recorded frames the user has accessed; (records still untouched, how many were cold)."""
    rd = svc.frames.phys.read64
    cold = 0
    keep = []
    for slot, pfn, scans in records:
        pte = rd(slot)
        if not pte & _PAGE_PRESENT or pte_pfn(pte) != pfn:
            continue                      # unmapped (or remapped) before the user touched it
        if not pte & _PAGE_ACCESSED:
            keep.append((slot, pfn, scans + 1))      # not touched yet
        elif not llc.touch(pfn):
            cold += 1
    return keep, cold
