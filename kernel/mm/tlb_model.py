"""What user loads and stores to mapped pages cost beyond an L1 hit: data TLB misses, page walks and
last-level-cache misses, from the pages the CPU reports the user touched.

The CPU hands over, every `interval` instructions and before every TLB flush, the set of pages user code
touched since the last report (emu/core/tlb.py reads them from the emulator's software TLB: no memory
hook). The model replays each report through a two-level data TLB (an L1 dTLB of `dtlb_l1_entries` and an
L2 TLB of `dtlb_l2_entries`, both fully associative LRU): within a report the order of touches is
unknown, so its pages are taken in page-number order, each once. The interval is kept short enough
that a report holds at most a quarter of the L2 TLB's pages (TARGET_FRACTION): a page touched twice
within a report then had fewer distinct pages than the L2 TLB between its touches, a hit on the
hardware too. Reports are sets, so the order in which a program touches the same pages within a
report never changes what it is charged. Pages a report lost (the software TLB is direct-mapped:
`evicted` counts the entries another page took) are charged at the rate of the pages it kept; the
interval then shrinks (QEMU grows its table at each flush). Which pages survive, and the table's size,
depend on QEMU's resizing, which follows host time: runs with the model do not repeat cycle for
cycle, so it is off unless KernelConfig(tlb_model=True).

Costs (emu/core/cycles.py), billed as user time: dtlb_stlb_hit per page that misses the L1 dTLB and hits
the L2 TLB, dtlb_walk per page that misses both (a page walk), llc_miss_mapped per touched page whose
page the user touched before whose data the user's share of the last-level cache (an LRU of `llc_bytes`
of the user's own pages, `cache`) no longer holds. A page a user fault mapped with existing
data is charged llc_miss instead at its first touch (kernel/mm/llc.py's `first` records, whose Accessed
bits are read at every report). perf's names:
dTLB-load-misses counts L1 dTLB misses (AMD's ls_l1_d_tlb_miss.all, loads and stores), dTLB-walks the
page walks.

Not modelled: 2 MiB and 1 GiB TLB entries (a huge page's 4 KiB pages count one entry each), the
instruction TLB (code pages count as data pages), the cache lines a page touch reads (one per page:
a loop reading a whole page is charged as if it read one line), and the overlap of misses with each
other (the costs are those of a dense touch loop, measured with userland/src/touchloop.c).
"""
from faultlab.kernel.mm.llc import charge_first_touches

TARGET_FRACTION = 4           # a report should hold at most dtlb_l2_entries / 4 pages
MIN_INTERVAL = 10_000         # instructions between reports, at least ...
MAX_INTERVAL = 1_000_000      # ... and at most (reached by doubling while every page hits)
STEADY_REPORTS = 1 << 30       # (off: billing skipped stretches at a rate lost charges at the end of a run)
STEADY_TOLERANCE = 0.25       # ... within this share: the program is in a steady phase
SKIP_FACTOR = 16              # then the next SKIP_FACTOR intervals are billed at that rate, not followed


class _Level:
    """One LRU level (of TLB entries, or of cached pages), stepped one report (a set of pages) at a
    time with set operations only: it holds the pages of the latest reports, newest first, up to
    `entries` distinct pages; of the report at that boundary it holds only a share, so a page of
    that report counts as a hit with that share's probability (the order within a report is unknown)."""

    MAX_REPORTS = 16

    def __init__(self, entries):
        self.entries = max(1, int(entries))
        self.reports = []              # disjoint sets of pages, newest first (a page is in its latest)

    def step(self, pages):
        """Touch the set `pages`; (how many missed, a float; the set of pages surely missed)."""
        sure = set(pages)
        hits = 0.0
        held = 0
        for rep in self.reports:
            inside = sure & rep
            sure -= inside
            if held + len(rep) <= self.entries:
                hits += len(inside)
                held += len(rep)
                continue
            hits += len(inside) * (self.entries - held) / len(rep)
            break
        missed = len(pages) - hits
        # the new report is the most recent: its pages leave the older reports
        keep = [set(pages)]
        held = len(keep[0])
        for rep in self.reports:
            if held >= self.entries:
                break
            rep -= keep[0]
            if rep:
                keep.append(rep)
                held += len(rep)
        if len(keep) > self.MAX_REPORTS:
            keep[-2:] = [keep[-2] | keep[-1]]
        self.reports = keep
        return missed, sure


class TlbModel:
    """The data TLBs of the CPU and the user's cache misses; `sample` is the CPU's TLB sink."""

    def __init__(self, costs, svc, charge_user, stats):
        c = costs.costs
        llc = svc.llc
        self.svc = svc
        self.costs = c
        self.l1 = _Level(c['dtlb_l1_entries'])
        self.l2 = _Level(c['dtlb_l2_entries'])
        self.cache = _Level(c['llc_bytes'] // 4096)     # the user's own pages in the last-level cache
        self.seen = set()                                # pages the cache level has held
        self.llc = llc
        self.charge_user = charge_user        # bill cycles as user time
        self.stats = stats
        self.target = max(1, int(c['dtlb_l2_entries']) // TARGET_FRACTION)
        self.interval = MAX_INTERVAL
        self._frac = 0.0
        self._totals = {'cycles': 0.0, 'l1': 0.0, 'walks': 0.0, 'cold': 0.0}
        self._billed = {'l1': 0, 'walks': 0, 'cold': 0}
        self.rate = None              # per instruction, of the last measured report
        self.steady = 0               # measured reports in a row with about the same rate
        self.mode = 'measure'         # 'skip': the next report covers a stretch not followed; 'warm'
        if llc is not None:
            llc.sampled = True

    def sample(self, pages, evicted, insns, capacity):
        """The CPU's report: {virtual page address: physical page address} touched over `insns`
        instructions, plus `evicted` more pages whose entries others took in the CPU's software TLB
        (of `capacity` entries). Charges the misses; returns the instructions until the next report."""
        if self.mode == 'skip':
            # a stretch the model did not follow: charged at the rate of the steady reports before it
            self._charge_rate(insns)
            self.mode = 'warm'
            return self.interval
        n = len(pages) + evicted
        before = dict(self._totals)
        walks = self._charge(pages, n / len(pages)) if pages else 0
        if self.mode == 'warm':
            # the first report after a skipped stretch only refills the model (its misses are
            # partly the skipped stretch's): billed at the rate, its own charges taken back
            self._undo(before)
            self._charge_rate(insns)
            self.mode = 'measure'
            return self.interval
        rate = {k: (v - before[k]) / max(insns, 1) for k, v in self._totals.items()}
        if not walks and 2 * n <= capacity:
            # every page hit the L2 TLB: nothing to count twice, report less often
            self.interval = min(MAX_INTERVAL, 2 * self.interval)
            self.steady = 0
        else:
            self.interval = max(MIN_INTERVAL, min(MAX_INTERVAL, int(max(insns, 1) * self.target / max(n, 1))))
            last = self.rate
            if last is not None and abs(rate['cycles'] - last['cycles']) <= STEADY_TOLERANCE * last['cycles']:
                self.steady += 1
            else:
                self.steady = 0
        self.rate = rate
        if self.steady >= STEADY_REPORTS:
            self.steady = 0
            self.mode = 'skip'
            return self.interval * SKIP_FACTOR
        return self.interval

    def _charge_rate(self, insns):
        """Bill `insns` instructions at the rate of the last measured report."""
        rate = self.rate
        if rate is None:
            return
        self._bill({k: v * insns for k, v in rate.items()})

    def _undo(self, before):
        """Take back what was billed since the totals were `before`."""
        self._bill({k: before[k] - v for k, v in self._totals.items()})

    def _bill(self, amounts):
        """Add to the totals and bill the cycles (as user time) and the counters."""
        t = self._totals
        for k, v in amounts.items():
            t[k] += v
        cycles = amounts['cycles'] + self._frac
        whole = int(cycles)
        self._frac = cycles - whole
        if whole:
            self.charge_user(whole)
        st = self.stats
        for k, key in (('l1', 'dtlb_load_misses'), ('walks', 'dtlb_walks'), ('cold', 'llc_misses_mapped')):
            new = int(t[k])
            st[key] += new - self._billed[k]
            self._billed[k] = new

    def _charge(self, pages, scale):
        """Charge the pages of one report; `scale` (>= 1) stands for the pages the report lost, which
        are taken to miss as often as those it kept. Returns the page walks."""
        c = self.costs
        vas = set(pages)              # (a virtual address may carry QEMU's flag bits: still one page)
        m1, _ = self.l1.step(vas)
        m2, _ = self.l2.step(vas)
        m1 *= scale
        m2 *= scale
        cycles = max(0.0, m1 - m2) * c['dtlb_stlb_hit'] + m2 * c['dtlb_walk']
        # re-touches of pages the user's share of the cache no longer holds (a page first touched
        # now was just mapped: cleared or copied by the kernel, or charged below as a first touch)
        _, gone = self.cache.step(vas)
        cold = len(gone & self.seen) * scale
        self.seen |= gone
        cycles += cold * c['llc_miss_mapped']
        self._bill({'cycles': cycles, 'l1': m1, 'walks': m2, 'cold': cold})
        # pages faults mapped with existing data, first touched since: their Accessed bits tell (a
        # report may have lost them)
        charge_first_touches(self.svc, sample=True)
        return m2
