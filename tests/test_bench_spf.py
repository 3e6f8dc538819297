"""faultlab bench spf: the table's rows come from real runs (a small configuration here)."""
from faultlab.bench import spf as bench_spf


def test_spf_table_rows_for_two_cpus():
    lines = []
    rows = bench_spf.bench_table('pfscale', lambda n: [n, 1], [2], lines.append)
    (n, off, on), = rows
    assert n == 2 and off.rate > 0 and on.rate > 0
    assert off.stats['spf'] == 0 and on.spf_share > 0.9
    assert on.stats['nr_cpus'] == 2
    row = lines[-1].split()
    assert row[0] == '2' and row[1] == '{:,}'.format(off.rate) and row[2] == '{:,}'.format(on.rate)


def test_single_thread_runs_never_speculate():
    lines = []
    d = bench_spf.single_thread_delta(lines.append)
    assert d < 0.02 and ' 0 speculative' in lines[0]


def test_the_series_ebizzy_setting_is_one_page_per_record_two_threads_per_cpu():
    """ebizzy as the series ran it: every record one mmap, one fault, one munmap; on the vm platform
    SPF pays off on 4 CPUs, and the 16-CPU criterion reads the last row."""
    from faultlab.core.cycles import CostTable
    lines = []
    rows = bench_spf.bench_table('ebizzy', bench_spf.ebizzy_args(1), [4], lines.append,
                                 costs=CostTable(platform='vm'), per_cpu=2)
    (n, off, on), = rows
    records = int(on.stdout.split('records ')[1].split()[0])
    assert on.stdout.startswith('threads 8 chunk 8 bytes')
    threads = 8
    # a fault per record, plus the start-up faults of the program and of each thread's stack
    assert records <= on.stats['page_faults'] <= records + 60 + 4 * threads
    # every record's fault tries the speculative path first: it speculates, or aborts for one of the
    # series' reasons (a new VMA without its anon_vma, a writer changing the VMA, the PTE lock taken)
    aborts = on.stats['spf_aborts']
    assert on.stats['spf'] + sum(aborts.values()) >= records
    assert set(aborts) <= {'spf_vma_noanon', 'spf_vma_changed', 'spf_pte_lock'}, aborts
    assert on.rate > off.rate and on.stats['spf'] > sum(aborts.values())
    crit = []
    assert not bench_spf.criterion(rows, crit.append) and 'NOT MET' in crit[1]   # only 4 CPUs
    assert '12,405 -> 91,104' in crit[0] and '{:,} -> {:,}'.format(off.rate, on.rate) in crit[0]


def test_an_idle_cpu_that_ran_the_mm_gets_the_shootdown_and_is_woken():
    """One worker mapping and unmapping on 2 CPUs while the main thread sleeps: the main thread's idle
    CPU is still in the mm's cpumask, so each munmap's shootdown waits for its wake-up."""
    from faultlab.core.cycles import CostTable
    fast = bench_spf.run_one('ebizzy', [1, 1, '8', 0], 2, True, costs=CostTable({'ipi_wake_idle': 0}))
    slow = bench_spf.run_one('ebizzy', [1, 1, '8', 0], 2, True, costs=CostTable({'ipi_wake_idle': 30000}))
    assert fast.stats['tlb_shootdowns_idle'] > 10
    assert slow.rate < fast.rate


def test_a_steady_rate_is_the_mean_of_the_last_windows_which_agree():
    """pfscale with windows (userland/src/steady.h): it stops once the last three windows agree within
    the tolerance, and the rate it prints is their mean."""
    run = bench_spf.run_one('pfscale', [2, 40, 1, 5], 2, True)
    rates = [float(line.split()[2]) for line in run.stdout.splitlines() if line.startswith('window ')]
    assert run.windows == len(rates) >= 4
    last = rates[-3:]
    mean = sum(last) / 3
    assert abs(run.rate - mean) <= 1
    assert abs(run.spread - (max(last) - min(last)) / mean) < 1e-3
    assert run.converged == (run.spread <= 0.05)
    assert run.steady.startswith('{:,}'.format(run.rate))


def test_the_steady_check_fails_on_a_rate_that_did_not_settle():
    class Run:
        def __init__(self, converged):
            self.converged = converged
    lines = []
    assert bench_spf.steady_check([Run(True), Run(True)], lines.append, quick=False)
    assert not bench_spf.steady_check([Run(True), Run(False)], lines.append, quick=False)
    assert 'FAILED' in lines[-1] and '1 of 2' in lines[-1]


def test_more_cpus_faulting_at_once_queue_longer_on_the_shared_lines():
    """page_fault2-like runs (each thread faults its own file pages, --spf-file): with SPF each fault
    writes the VMA-tree lock's line twice, without it mmap_lock's; the more CPUs, the longer each
    transfer waits behind the others' (kernel.locking.CacheLine)."""
    queue = {}
    for n in (4, 16):
        for spf in (False, True):
            r = bench_spf.run_one('pffile', [n, 2, 'private', 256], n, spf, spf_file=True)
            f = r.stats['page_faults']
            assert r.lines['cacheline_transfers'] > 0.5 * f          # about one per lock or unlock
            queue[n, spf] = r.lines['cacheline_queue_cycles'] / f
            key = 'cacheline_transfers_' + ('mm_rb_lock' if spf else 'mmap_lock')
            assert r.lines[key] > 0.5 * r.lines['cacheline_transfers']     # aborts take mmap_lock
    for spf in (False, True):
        assert queue[16, spf] > 2 * queue[4, spf], queue
