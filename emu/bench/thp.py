"""`faultlab bench thp`: touching N MiB of anonymous memory with transparent huge pages never / madvise /
always, and khugepaged collapsing N MiB that was faulted in with 4 KiB pages.

Runs userland/build/thp_bench in-process under faultlab (one fresh Machine per run). Every figure comes
from the runs: the program's CLOCK_MONOTONIC (vDSO, simulated time), its getrusage faults and
/proc/self/smaps, and the machine's counters; DEFINITIONS (also printed) says how each column is made.
The checks printed at the end follow from the mechanism (mm/huge_memory.c do_huge_pmd_anonymous_page,
mm/khugepaged.c khugepaged_scan_mm_slot) and the command exits 1 when one fails.
"""
import os
import sys

from faultlab.bench.guest import run_guest
from faultlab.core.cycles import CostTable
from faultlab.srctree import userland_build

PROGRAM = os.path.join(userland_build(), 'thp_bench')
MODES = ('never', 'madvise', 'always', 'collapse')
DEFAULT_MIB = 64
QUICK_MIB = 8

DEFINITIONS = """\
All times are simulated. One run of `thp_bench MODE N` per row on a fresh machine:
  faults      page faults of the touch loop (getrusage minflt): one write per 4 KiB page of N MiB
  touch_ms    the touch loop's CLOCK_MONOTONIC time
  huge_MiB    AnonHugePages of the range after the touch (collapse: after khugepaged)
  zeroed      pages cleared by the kernel (pages_zeroed); zero_Mcyc = zeroed * page_zero's cost
  copied      pages copied by the kernel (pages_copied); copy_Mcyc = copied * page_copy's cost
collapse: the range is touched with 4 KiB pages (enabled=madvise, no MADV_HUGEPAGE), then
khugepaged/pages_to_scan is set to the range's PTE count, scan_sleep_millisecs to 100, and
MADV_HUGEPAGE puts the mm on khugepaged's list; the program polls smaps every 10 ms until the range is huge.
  collapse_ms   MADV_HUGEPAGE to the range found huge;  khugepaged_Mcyc  the cycles khugepaged's
  scans cost (kernel work on the CPU that ran them);  collapsed  khugepaged/pages_collapsed
"""


def run_mode(mode, mib, costs=None):
    """One run of thp_bench MODE MIB: a dict of its figures (RuntimeError if the program fails)."""
    costs = costs or CostTable()
    # RAM for the range twice (a collapse allocates each huge page before the 512 small pages it
    # replaces are freed, and without compaction those freed pages rarely make a 2 MiB block) and 64 MiB
    run = run_guest(PROGRAM, [mode, mib], (2 * mib + 64) << 20, costs)
    if run.values.get('check') != 'ok':
        raise RuntimeError('thp_bench %s %d: the pages did not read back right: %s' % (mode, mib, run.stdout))
    k = run.kstats
    row = dict(mode=mode, mib=mib, faults=run['faults'], touch_ns=run['touch_ns'],
               huge_kb=run.values.get('collapsed_kb', run['anon_huge_kb']), touched_huge_kb=run['anon_huge_kb'],
               zeroed=k.get('pages_zeroed', 0), copied=k.get('pages_copied', 0),
               zero_cycles=k.get('pages_zeroed', 0) * costs.costs['page_zero'],
               copy_cycles=k.get('pages_copied', 0) * costs.costs['page_copy'],
               thp_fault_alloc=k.get('thp_fault_alloc', 0), thp_collapse_alloc=k.get('thp_collapse_alloc', 0),
               thp_collapse_alloc_failed=k.get('thp_collapse_alloc_failed', 0),
               khugepaged_cycles=k.get('khugepaged_cycles', 0))
    if mode == 'collapse':
        row.update(collapse_ns=run['collapse_ns'], collapsed=run['pages_collapsed'],
                   faults_after=run['faults_after'])
    return row


def print_table(rows, out):
    fmt = '%-9s %8s %9s %9s %8s %10s %8s %10s %12s %16s %10s'
    out(fmt % ('mode', 'faults', 'touch_ms', 'huge_MiB', 'zeroed', 'zero_Mcyc', 'copied', 'copy_Mcyc',
               'collapse_ms', 'khugepaged_Mcyc', 'collapsed'))
    for r in rows:
        c = r['mode'] == 'collapse'
        out(fmt % (r['mode'], r['faults'], '%.3f' % (r['touch_ns'] / 1e6), '%g' % (r['huge_kb'] / 1024), r['zeroed'],
                   '%.2f' % (r['zero_cycles'] / 1e6), r['copied'], '%.2f' % (r['copy_cycles'] / 1e6),
                   '%.3f' % (r['collapse_ns'] / 1e6) if c else '-',
                   '%.2f' % (r['khugepaged_cycles'] / 1e6) if c else '-', r['collapsed'] if c else '-'))


def checks(rows, mib):
    """(description, passed) for what the mechanism implies."""
    by = {r['mode']: r for r in rows}
    pages, hpages = mib * 256, mib // 2
    out = []
    if 'never' in by:
        r = by['never']
        out.append(('never: one fault per 4 KiB page (%d), nothing huge' % pages,
                    r['faults'] == pages and r['huge_kb'] == 0))
    for mode in ('madvise', 'always'):
        if mode in by:
            r = by[mode]
            out.append(('%s: one fault per 2 MiB (%d), all %d MiB huge, %d thp_fault_alloc' % (mode, hpages, mib, hpages),
                        r['faults'] == hpages and r['huge_kb'] == mib * 1024 and r['thp_fault_alloc'] == hpages))
    if 'never' in by and 'always' in by:
        a, n = by['always'], by['never']
        out.append(('always takes 512x fewer faults than never',
                    a['faults'] > 0 and n['faults'] == 512 * a['faults']))
        out.append(('always zeroes as many pages as never (the same memory, in 2 MiB clears)',
                    a['zeroed'] == n['zeroed']))
        out.append(('always touches faster than never', a['touch_ns'] < n['touch_ns']))
    if 'collapse' in by:
        r = by['collapse']
        out.append(('collapse: touched with 4 KiB pages (%d faults, nothing huge)' % pages,
                    r['faults'] == pages and r['touched_huge_kb'] == 0))
        out.append(('collapse: khugepaged made all %d MiB huge: %d collapses, thp_collapse_alloc %d'
                    % (mib, hpages, hpages), r['huge_kb'] == mib * 1024 and r['collapsed'] == hpages
                    and r['thp_collapse_alloc'] == hpages))
        base = by['never']['copied'] if 'never' in by else 0      # the program's own start-up copies
        out.append(('collapse: every page copied once (%d more than never)' % pages, r['copied'] - base == pages))
        out.append(('collapse: khugepaged took at least the copy cycles', r['khugepaged_cycles'] >= r['copy_cycles']))
        out.append(('collapse: writing the range again takes no fault', r['faults_after'] == 0))
    return out


def main(mib=None, quick=False, out=print):
    """Run every mode, print the table and the checks; 0 when every check passes, else 1."""
    mib = mib or (QUICK_MIB if quick else DEFAULT_MIB)
    if mib % 2:
        out('thp: the size must be a multiple of 2 MiB')
        return 2
    if not os.path.exists(PROGRAM):
        out('thp: %s is missing: run make -C userland' % PROGRAM)
        return 2
    rows = []
    for mode in MODES:
        try:
            rows.append(run_mode(mode, mib))
        except RuntimeError as e:
            out('thp: %s' % e)
            return 1
    out('transparent huge pages: touching %d MiB, and khugepaged collapsing %d MiB' % (mib, mib))
    print_table(rows, out)
    out('')
    out(DEFINITIONS.rstrip())
    out('')
    failed = 0
    for what, ok in checks(rows, mib):
        out('%s  %s' % ('ok  ' if ok else 'FAIL', what))
        failed += not ok
    sys.stdout.flush()
    return 1 if failed else 0
