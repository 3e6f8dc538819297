"""`faultlab bench uffd`: a page fault resolved by a userfaultfd handler thread against the same fault
resolved by the kernel, on 1 and 2 simulated CPUs, and a post-copy-like pull of pages from a remote.

Runs userland/build/uffd_bench in-process under faultlab (one fresh Machine per run). Every figure
comes from the runs: the program's own CLOCK_MONOTONIC (vDSO, simulated time) and the machine's
counters; DEFINITIONS (also printed) says how each column is made. The checks printed at the end
follow from the mechanism (fs/userfaultfd.c handle_userfault, userfaultfd_ioctl_copy, kernel/sched.py)
and the command exits 1 when one fails.
"""
import argparse
import os
import sys

from faultlab.bench.guest import run_guest
from faultlab.bench.report import bench_ready, figure_path, pool_map, write_rows
from faultlab.options import cpu_count
from faultlab.plot import save, subplots
from faultlab.srctree import userland_build

PROGRAM = os.path.join(userland_build(), 'uffd_bench')
RAM = 128 << 20
CASES = (('missing', 'MISSING + UFFDIO_COPY', 'do_anonymous_page'),
         ('minor', 'MINOR + UFFDIO_CONTINUE (memfd)', 'do_shared_fault'),
         ('wp', 'WP + UFFDIO_WRITEPROTECT', 'do_wp_page (reuse)'))
POSTCOPY_MODES = ('demand', 'populate', 'prefetch')
DEFAULT_PAGES = 32
DEFAULT_LATENCY_US = 50
DEFAULT_CPUS = (1, 2)
QUICK_PAGES = 8
GAP_US = 10                     # the writer's pause before each write (uffd_bench fault GAP_US)
# (a pause shorter than the simulated CPUs' drift, kernel/sched.py SLACK_CYCLES and MIN_SLICE_INSNS,
# lets a 2-CPU handler see the next message before it was raised: the early-reads check fails)

DEFINITIONS = """\
All times are simulated (3 GHz clock). A fault row comes from two runs of `uffd_bench fault CASE HOW
2P TOUCH GAP` (2P pages set up, the first TOUCH written, each write after a pause of GAP us, --gap-us,
so that the handler is asleep in poll() when the fault comes), TOUCH = P and 2P: counters are their
difference divided by P (one more fault, no set-up), the clock is the second run's.
  cycles/fault  the writing thread's CLOCK_MONOTONIC just before and just after each write, in cycles
  faults        #PF traps per fault (a handler-resolved fault traps once: VM_FAULT_RETRY, not counted
                as minor/major by mm_account_fault; the retry after the wake-up finds the PTE done)
  ctxsw         context switches per fault, every CPU (switching from idle to a task counts)
  wakeups       uffd wake-ups per fault (a sleeping faulting thread woken by the resolving ioctl)
  round trip    the faulting thread's sleep, from handle_userfault queueing the message to the wake-up
                (uffd_wait_cycles / uffd_wakeups): poll's return, read(), the ioctl, the switches
  idle IPIs     TLB shootdowns per fault that had to wake a halted CPU (ipi_wake_idle)
The kernel rows write the same pages unregistered: MISSING an empty anonymous page (do_anonymous_page),
MINOR a memfd page already in the page cache (do_shared_fault), WP a page whose PTE fork made read-only,
the child gone (do_wp_page reuses it).
post-copy: `uffd_bench postcopy MODE P LATENCY_US COMPUTE_US`: the handler sleeps LATENCY_US per page
it pulls (one page at a time: a single remote stream), the reader computes COMPUTE_US per page.
  T             the reader's loop, CLOCK_MONOTONIC;  LB = P * LATENCY_US (the stream is serial)
  demand        only the reader's own faults ask for pages
  populate      a second thread MADV_POPULATE_WRITEs every page in order (its gup faults queue the
                messages early; each call sleeps until the handler copied the page)
  prefetch      a second thread calls the vDSO's prefetch_page() on every page
  T/serial      T over P * (LATENCY_US + COMPUTE_US): 1 when nothing overlaps
  resent        messages the handler read for a page it had already pulled (it only woke the thread)
  pf fails      prefetch_page() calls that returned non-zero
  msgs          messages queued in all; a reader's fault on a page the populating thread asked for
                already queues a second one, which the copy wakes with the first (unread)
"""


def cpu_list(text):
    """argparse type of --cpus: comma-separated CPU counts (1,2): a sorted tuple without repeats."""
    try:
        out = tuple(sorted({cpu_count(t) for t in text.split(',') if t.strip()}))
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError('%s (example: 1,2)' % e)
    if not out:
        raise argparse.ArgumentTypeError('no CPU count in %r (example: 1,2)' % text)
    return out


def run_bench(args, cpus=1, costs=None):
    """Run uffd_bench ARGS under faultlab on `cpus` CPUs; a GuestRun (RuntimeError if it fails)."""
    run = run_guest(PROGRAM, args, RAM, costs, cpus=cpus)
    if run.values.get('check') != 'ok':
        raise RuntimeError('uffd_bench %s: the pages did not read back right: %s' % (' '.join(map(str, args)),
                                                                                  run.stdout))
    return run


def _traps(run):
    """Every #PF the kernel handled (fault_breakdown counts RETRY faults too)."""
    return sum(agg['count'] for agg in run.stats['fault_breakdown'].values())


def fault_row(case, how, cpus, pages, costs=None, gap_us=GAP_US):
    """One row: the per-fault figures of CASE resolved by HOW (uffd or kernel) on `cpus` CPUs."""
    a = run_bench(['fault', case, how, 2 * pages, pages, gap_us], cpus, costs)
    b = run_bench(['fault', case, how, 2 * pages, 2 * pages, gap_us], cpus, costs)
    freq = b.stats['freq_hz']

    def d(get):
        return (get(b) - get(a)) / pages

    wake = b.kstats.get('uffd_wakeups', 0) - a.kstats.get('uffd_wakeups', 0)
    wait = b.kstats.get('uffd_wait_cycles', 0) - a.kstats.get('uffd_wait_cycles', 0)
    handlers = {h: (b.stats['fault_breakdown'][h]['count'] - a.stats['fault_breakdown'].get(h, {}).get('count', 0))
                for h in b.stats['fault_breakdown']}
    return dict(case=case, how=how, cpus=cpus, pages=pages,
                cycles=b['fault_ns'] / (2 * pages) * freq / 1e9,
                faults=d(_traps), ctxsw=d(lambda r: r.stats['context_switches']),
                wakeups=wake / pages, round_trip=wait / wake if wake else None,
                idle_ipis=d(lambda r: r.kstats.get('tlb_shootdowns_idle', 0)),
                syscalls=d(lambda r: r.stats['syscalls']), handled=d(lambda r: r['handled']),
                early=a['early_reads'] + b['early_reads'],
                handlers={h: n for h, n in handlers.items() if n})


def postcopy_row(mode, cpus, pages, latency_us, compute_us, costs=None):
    """One post-copy run: the reader's time and what the handler and the second thread did; None if the
    mode does not apply (prefetch without prefetch_page in the vDSO)."""
    r = run_bench(['postcopy', mode, pages, latency_us, compute_us], cpus, costs)
    if 'elapsed_ns' not in r.values:
        return None
    return dict(mode=mode, cpus=cpus, compute_us=compute_us, t_ns=r['elapsed_ns'], handled=r['handled'],
                resent=r['resent'], prefetch_fail=r['prefetch_fail'], lb_ns=pages * latency_us * 1000,
                serial_ns=pages * (latency_us + compute_us) * 1000, preemptions=r.kstats.get('preemptions', 0),
                nowait=r.stats.get('nowait_faults', 0), uffd_faults=r.kstats.get('uffd_faults', 0))


def _f(v, fmt='%.0f'):
    return '-' if v is None else fmt % v


def print_fault_table(rows, out):
    fmt = '%-38s %-6s %4s %12s %7s %6s %8s %11s %9s'
    out(fmt % ('case', 'by', 'CPUs', 'cycles/fault', 'faults', 'ctxsw', 'wakeups', 'round trip', 'idle IPIs'))
    for r in rows:
        title = dict((c, t) for c, t, _k in CASES)[r['case']]
        out(fmt % (title if r['how'] == 'uffd' else '  the same by ' + dict((c, k) for c, _t, k in CASES)[r['case']],
                   'uffd' if r['how'] == 'uffd' else 'kernel', r['cpus'], _f(r['cycles']), _f(r['faults'], '%.2f'),
                   _f(r['ctxsw'], '%.2f'), _f(r['wakeups'], '%.2f'), _f(r['round_trip']), _f(r['idle_ipis'], '%.2f')))


def print_postcopy_table(rows, pages, latency_us, compute_us, out):
    out('post-copy: %d pages, %d us per page from the remote, %d us of compute per page' % (pages, latency_us,
                                                                                            compute_us))
    fmt = '  %-9s %4s %10s %8s %8s %7s %9s %8s'
    out(fmt % ('mode', 'CPUs', 'T_ms', 'T/LB', 'T/serial', 'resent', 'pf fails', 'msgs'))
    for r in rows:
        out(fmt % (r['mode'], r['cpus'], '%.3f' % (r['t_ns'] / 1e6), '%.3f' % (r['t_ns'] / r['lb_ns']) if r['lb_ns']
                   else '-', '%.3f' % (r['t_ns'] / r['serial_ns']) if r['serial_ns'] else '-', r['resent'],
                   r['prefetch_fail'] if r['mode'] == 'prefetch' else '-', r['uffd_faults']))


def _row(rows, case, how, cpus):
    return next((r for r in rows if r['case'] == case and r['how'] == how and r['cpus'] == cpus), None)


# why a 2-CPU row counts more switches than the mechanism makes (found with this benchmark)
SWITCH_ARTIFACT = (': kernel/sched.py switch_to charges context_switch whenever the host core moves between simulated '
                   'CPUs whose tasks differ (it compares with the core\'s loaded_task, not the CPU\'s previous task), '
                   'so a CPU that never left its thread pays a switch each time the core comes back to it')


# why a 2-CPU row can cost more than the 1-CPU one
IDLE_IPI_CAUSE = (': each unprotect flushes the TLB and the faulting thread\'s CPU is halted in idle but still in the '
                  'mm\'s cpumask (lazy TLB), so the shootdown waits for it to wake (%.2f idle IPIs per fault; this '
                  'model sends the IPI as 4.15 did, kernel/sched.py tlb_targets; from 4.19 on Linux skips CPUs in '
                  'lazy TLB mode, tlb_is_not_lazy, unless page tables were freed)')


# the handler name (Kernel.fault_breakdown) of each kernel-resolved case
_KERNEL_HANDLER = {'missing': 'do_anonymous_page', 'minor': 'do_shared_fault', 'wp': 'do_wp_page(reuse)'}


def _per_fault(handlers):
    return ', '.join('%s %.2f per fault' % (h, n) for h, n in sorted(handlers.items())) or 'none'


def _near(value, want):
    return abs(value - want) < 0.01


def _case_checks(title, n, u, k, case):
    """(ok, text) for the uffd row u and the kernel row k of one case on n CPUs."""
    checks = [(u['cycles'] > k['cycles'] and u['ctxsw'] >= 2 and u['syscalls'] >= 3,
               '%s, %d CPU(s): handler-resolved %.0f > kernel-resolved %.0f cycles/fault (the handler path adds '
               '%.2f context switches and %.2f system calls per fault: poll, read, the ioctl, the next poll)'
               % (title, n, u['cycles'], k['cycles'], u['ctxsw'], u['syscalls'])),
              (_near(u['faults'], 1) and _near(u['wakeups'], 1) and _near(u['handled'], 1),
               '%s, %d CPU(s): one trap, one message and one wake-up per fault (%.2f, %.2f, %.2f)'
               % (title, n, u['faults'], u['handled'], u['wakeups']))]
    for row, handler, who in ((u, 'handle_userfault', 'handler'), (k, _KERNEL_HANDLER[case], 'kernel')):
        got = {h: c / row['pages'] for h, c in row['handlers'].items()}
        checks.append((got == {handler: 1.0}, '%s, %d CPU(s): the %s-resolved faults went through %s (%s)'
                       % (title, n, who, handler, _per_fault(got))))
    skew = '' if u['early'] == 0 else (': the simulated CPUs ran apart in time (kernel/sched.py: a CPU may run '
                                       'MIN_SLICE_INSNS + SLACK_CYCLES past another)')
    checks.append((u['early'] == 0, '%s, %d CPU(s): no message seen by the handler (poll returned) before the '
                   'write that raised it, by the threads\' CLOCK_MONOTONIC (%d early)%s'
                   % (title, n, u['early'], skew)))
    how = 'writer -> handler -> writer' if n == 1 else 'idle -> handler on one CPU, idle -> writer on the other'
    checks.append((_near(u['ctxsw'], 2), '%s, %d CPU(s): %.2f context switches per fault; the mechanism makes 2 '
                   '(%s)%s' % (title, n, u['ctxsw'], how, '' if _near(u['ctxsw'], 2) else SWITCH_ARTIFACT)))
    return checks


def _cpus_check(title, one, two):
    """(ok, text): a fault costs the writer less on 2 CPUs than on 1, or more only for a known reason."""
    if two['cycles'] < one['cycles']:
        return (True, '%s: a fault costs the writer less on 2 CPUs (%.0f < %.0f cycles; round trip %.0f vs %.0f): '
                'it runs again as soon as the ioctl wakes it, while on 1 CPU it waits for the handler to return '
                'from the ioctl and sleep in poll() again'
                % (title, two['cycles'], one['cycles'], two['round_trip'], one['round_trip']))
    # longer on 2 CPUs only with a known cause: the resolving ioctl's TLB flush IPIs the faulting
    # thread's CPU, halted in idle (lazy TLB: kernel/sched.py tlb_targets)
    explained = two['idle_ipis'] > 0.99
    return (explained, '%s: a fault costs the writer more on 2 CPUs (%.0f >= %.0f cycles; round trip %.0f vs %.0f)%s'
            % (title, two['cycles'], one['cycles'], two['round_trip'], one['round_trip'],
               IDLE_IPI_CAUSE % two['idle_ipis'] if explained else ' with no idle-CPU shootdown to explain it'))


def fault_checks(rows, cpus_list):
    """(ok, text) for every check on the fault rows."""
    checks = []
    for case, title, _k in CASES:
        for n in cpus_list:
            u, k = _row(rows, case, 'uffd', n), _row(rows, case, 'kernel', n)
            if u is not None and k is not None:
                checks += _case_checks(title, n, u, k, case)
        one, two = _row(rows, case, 'uffd', 1), _row(rows, case, 'uffd', 2)
        if one is not None and two is not None:
            checks.append(_cpus_check(title, one, two))
    return checks


def postcopy_checks(rows):
    """(ok, text) for every check on the post-copy rows."""
    checks = []
    by = {(r['mode'], r['cpus']): r for r in rows if r is not None}
    for (mode, n), r in sorted(by.items()):
        checks.append((r['t_ns'] >= r['lb_ns'], '%s, %d CPU(s): T %.3f ms >= LB %.3f ms (one page at a time from the '
                       'remote)' % (mode, n, r['t_ns'] / 1e6, r['lb_ns'] / 1e6)))
    for n in sorted({k[1] for k in by}):
        dem, pop, pre = by.get(('demand', n)), by.get(('populate', n)), by.get(('prefetch', n))
        if pre is not None and dem is not None:
            checks.append((pre['prefetch_fail'] == pre['handled'] == pre['uffd_faults'] and pre['nowait'] > 0,
                           '%d CPU(s): prefetch_page() starts no pull: all %d calls fail and only the reader\'s %d '
                           'faults queue messages (handle_userfault returns VM_FAULT_RETRY for '
                           'FAULT_FLAG_RETRY_NOWAIT before queueing one); T %.3f ms vs demand %.3f ms'
                           % (n, pre['prefetch_fail'], pre['uffd_faults'], pre['t_ns'] / 1e6, dem['t_ns'] / 1e6)))
        if pop is None or dem is None:
            continue
        if n >= 2:
            checks.append((pop['t_ns'] < dem['t_ns'], '%d CPUs: populate in a second thread %.3f ms < demand %.3f ms '
                           '(the pull of page i+1 overlaps the reader\'s compute on page i%s)'
                           % (n, pop['t_ns'] / 1e6, dem['t_ns'] / 1e6,
                              '' if pop['compute_us'] else '; with no compute there is nothing to overlap')))
    return checks


def postcopy_notes(rows):
    """What the 1-CPU rows show, with the reason (not a check: the scheduler decides it)."""
    by = {(r['mode'], r['cpus']): r for r in rows if r is not None}
    dem, pop = by.get(('demand', 1)), by.get(('populate', 1))
    if dem is None or pop is None:
        return []
    gain = dem['t_ns'] / pop['t_ns']
    return ['1 CPU: populate / demand = %.3f. The populating thread, woken by UFFDIO_COPY, waits for the CPU while '
            'the reader computes: this scheduler preempts only at the end of a time slice (TIMESLICE_CYCLES, '
            '~1 ms; %d preemptions in the run) and has no wake-up preemption, so the next request goes out '
            'only when the reader blocks on its next fault' % (1 / gain, pop['preemptions'])]


def _fault_job(job):
    """fault_row(*job), for pool_map."""
    return fault_row(*job)


def _postcopy_job(job):
    """postcopy_row(*job), for pool_map."""
    return postcopy_row(*job)


_FAULT_FIELDS = ('cycles', 'faults', 'ctxsw', 'wakeups', 'round_trip', 'idle_ipis', 'syscalls', 'handled', 'early')


def records(rows, prows, latency_us, compute_us, gap_us):
    """One record per table row: the fault rows (table 'fault', figures per fault) then the post-copy rows
    (table 'postcopy', times in ns)."""
    out = []
    for r in rows:
        rec = dict(table='fault', case=r['case'], how=r['how'], cpus=r['cpus'], pages=r['pages'], gap_us=gap_us)
        rec.update((f, r[f]) for f in _FAULT_FIELDS)
        rec['handler'] = ','.join(sorted(r['handlers']))
        out.append(rec)
    for r in prows:
        out.append(dict(table='postcopy', mode=r['mode'], cpus=r['cpus'], latency_us=latency_us,
                        compute_us=compute_us, t_ns=r['t_ns'], lb_ns=r['lb_ns'], serial_ns=r['serial_ns'],
                        resent=r['resent'], prefetch_fail=r['prefetch_fail'], messages=r['uffd_faults']))
    return out


def plot_figure(rows, folder):
    """DIR/uffd.png: cycles per fault resolved by the handler and by the kernel, one panel per CPU count."""
    path = figure_path(folder, 'uffd')
    cpus = sorted({r['cpus'] for r in rows})
    fig, axes = subplots(len(cpus))
    for ax, n in zip(axes, cpus):
        pos = list(range(len(CASES)))
        for shift, how in ((-0.2, 'uffd'), (0.2, 'kernel')):
            ys = [_row(rows, case, how, n)['cycles'] for case, _t, _k in CASES]
            ax.bar([p + shift for p in pos], ys, width=0.4, label='handler thread' if how == 'uffd' else 'kernel')
        ax.set_xticks(pos, [t.split(' (')[0].replace(' + UFFDIO_', '\n') for _c, t, _k in CASES], fontsize='small')
        ax.set_title('%d simulated CPU%s' % (n, 's' if n > 1 else ''))
        ax.set_ylabel('cycles per fault (the writer\'s clock)')
        ax.grid(True, axis='y', alpha=0.3)
        ax.legend(fontsize='small')
    fig.suptitle('faultlab bench uffd: a fault resolved by a userfaultfd handler vs by the kernel', fontsize='medium')
    save(fig, path)
    return path


def main(pages=None, latency_us=None, compute_us=None, cpus=None, quick=False, out=print, costs=None, gap_us=None,
         csv=None, json=None, plot=None, jobs=1):
    """Print the tables and the checks (and write --csv, --json, --plot); 0 if every check holds, 1 if one
    fails, 2 without the program or when an output cannot be written."""
    status = bench_ready('uffd', (PROGRAM,), csv, json, plot, out)
    if status is not None:
        return status
    pages = pages or (QUICK_PAGES if quick else DEFAULT_PAGES)
    latency_us = DEFAULT_LATENCY_US if latency_us is None else latency_us
    compute_us = latency_us if compute_us is None else compute_us
    cpus = tuple(cpus or DEFAULT_CPUS)
    gap_us = GAP_US if gap_us is None else gap_us
    out('faultlab bench uffd: uffd_bench fault CASE uffd|kernel %d N %d (N = %d and %d) and uffd_bench postcopy, '
        'on %s simulated CPU(s)' % (2 * pages, gap_us, pages, 2 * pages, ', '.join(map(str, cpus))))
    out(DEFINITIONS.rstrip())
    out('')
    rows = list(pool_map(_fault_job, [(case, how, n, pages, costs, gap_us) for case, _title, _k in CASES
                                      for how in ('uffd', 'kernel') for n in cpus], jobs))
    print_fault_table(rows, out)
    out('')
    prow = [r for r in pool_map(_postcopy_job, [(mode, n, pages, latency_us, compute_us, costs) for n in cpus
                                                for mode in POSTCOPY_MODES], jobs) if r is not None]
    print_postcopy_table(prow, pages, latency_us, compute_us, out)
    for note in postcopy_notes(prow):
        out(note)
    out('')
    checks = fault_checks(rows, cpus) + postcopy_checks(prow)
    out('checks:')
    for ok, text in checks:
        out('  %s %s' % ('ok  ' if ok else 'FAIL', text))
    failed = sum(1 for ok, _t in checks if not ok)
    out('%d of %d checks hold' % (len(checks) - failed, len(checks)))
    write_rows(records(rows, prow, latency_us, compute_us, gap_us), csv=csv, json=json)
    if plot:
        out('figure: %s' % plot_figure(rows, plot))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(quick='--quick' in sys.argv[1:]))
