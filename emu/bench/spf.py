"""`faultlab bench spf`: the speculative-page-fault experiment of the SPF series, on simulated CPUs.

Runs the ebizzy-like benchmark (userland/src/ebizzy.c) as the series ran `ebizzy -mTRp`: two threads
per CPU (ebizzy's default), each mapping one page, touching it and unmapping it per record (ebizzy
0.3's -R always draws one record), on 1..16 simulated CPUs with and without speculative page faults,
on the vm platform (a KVM guest, as the series' 16-vCPU VM) and on bare metal; then the 16-CPU run
across vCPU wake-up latencies, ebizzy with the 1-512 KiB sizes it meant to draw, and a
will-it-scale-like page-fault test (userland/src/pfscale.c). It prints records (operations) per second
of simulated time, the fault counts, the speculative share, every abort reason, the mmap_lock wait per
CPU, the single-thread difference, and the series' criterion (3x on 16 CPUs).
"""
import os

from faultlab.bench.report import bench_ready, figure_path, pool_map, write_rows
from faultlab.core.cycles import CostTable
from faultlab.machine import Machine
from faultlab.kernel.kernel import KernelConfig
from faultlab.plot import save, subplots
from faultlab.srctree import userland_build

USERLAND = userland_build()


class SpfRun:
    """One run: the program's rate and the kernel's counters."""

    def __init__(self, rate, stats, stdout):
        self.rate = rate
        self.stats = stats
        self.stdout = stdout

    @property
    def spf_share(self):
        f = self.stats['page_faults']
        return self.stats['spf'] / f if f else 0.0

    @property
    def lock_wait_us_per_cpu(self):
        s = self.stats
        return s['mmap_lock_wait_cycles'] / s['freq_hz'] * 1e6 / max(1, s['nr_cpus'])


def run_one(program, args, cpus, spf, costs=None, **kconf):
    """Run a benchmark program on `cpus` simulated CPUs; returns an SpfRun."""
    out, err = [], []
    costs = costs or CostTable()
    config = KernelConfig(cpus=cpus, spf=spf, stdout=out.append, stderr=err.append, warn=lambda m: None, **kconf)
    m = Machine(ram=512 << 20, costs=costs, config=config)
    path = os.path.join(USERLAND, program)
    res = m.run(path, [program] + [str(a) for a in args], ['PATH=/bin', 'LANG=C'])
    stdout = b''.join(out).decode(errors='replace')
    if res.exit_code != 0 or res.report:
        raise RuntimeError('%s %s failed: %s %s' % (program, args, res.report or res.exit_code,
                                                   b''.join(err).decode(errors='replace')))
    rate = None
    for line in stdout.splitlines():
        if line.endswith('records/s') or line.endswith('ops/s'):
            rate = int(line.split()[0])
    if rate is None and program != 'pagetouch':
        raise RuntimeError('%s printed no rate: %r' % (program, stdout[-200:]))
    return SpfRun(rate, res.stats, stdout)


def _gain(off, on):
    """The SPF run's rate over the no-SPF run's."""
    return on.rate / off.rate if off.rate else 0.0


def _abort_str(stats):
    ab = stats['spf_aborts']
    return ', '.join('%s %d' % (k[4:], v) for k, v in sorted(ab.items())) or '-'


def _run_job(job):
    """run_one of one (program, args, cpus, spf, costs), for pool_map."""
    program, args, cpus, spf, costs = job
    return run_one(program, args, cpus, spf, costs=costs)


def _pairs(program, args_list, cpu_list, costs, jobs):
    """(run without SPF, run with SPF) for each CPU count, on `jobs` processes, in order."""
    todo = [(program, args, n, spf, costs) for args, n in zip(args_list, cpu_list) for spf in (False, True)]
    runs = iter(pool_map(_run_job, todo, jobs))
    for _n in cpu_list:
        yield next(runs), next(runs)


def bench_table(program, args_for, cpu_list, out, costs=None, per_cpu=1, jobs=1):
    """Rows for one program: rate without and with SPF per CPU count, counts, aborts, lock wait."""
    out('%s  (%s; rates per second of simulated time)'
        % (program, 'one thread per CPU' if per_cpu == 1 else '%d threads per CPU' % per_cpu))
    out('  %4s %14s %14s %6s %9s %7s %11s %11s  %s' % ('CPUs', 'no-SPF rate', 'SPF rate', 'gain', 'faults',
                                                      'spf %', 'lockwait/cpu', 'no-SPF wait', 'SPF aborts'))
    rows = []
    for n, (off, on) in zip(cpu_list, _pairs(program, [args_for(n) for n in cpu_list], cpu_list, costs, jobs)):
        gain = _gain(off, on)
        out('  %4d %14s %14s %5.2fx %9d %6.1f%% %9.1fus %9.1fus  %s'
            % (n, '{:,}'.format(off.rate), '{:,}'.format(on.rate), gain, on.stats['page_faults'],
               100 * on.spf_share, on.lock_wait_us_per_cpu, off.lock_wait_us_per_cpu, _abort_str(on.stats)))
        rows.append((n, off, on))
    return rows


def single_thread_delta(out):
    """A mono-threaded program never speculates: simulated time with and without SPF (16 CPUs)."""
    off = run_one('pagetouch', [16], 16, False)
    on = run_one('pagetouch', [16], 16, True)
    d = abs(on.stats['cycles'] - off.stats['cycles']) / off.stats['cycles']
    out('single-threaded pagetouch on 16 CPUs: %.6f s without SPF, %.6f s with (difference %.2f%%, %d speculative)'
        % (off.stats['sim_seconds'], on.stats['sim_seconds'], 100 * d, on.stats['spf']))
    return d


# ebizzy -mTRp as the series ran it: ebizzy 0.3's -R draws one 8-byte record every time (its generator
# multiplies a zero state), so each record maps, touches and unmaps one page; no -t, so ebizzy's
# default of two threads per CPU
EBIZZY_CHUNK = '8'
EBIZZY_THREADS_PER_CPU = 2
WAKE_SWEEP_US = (1, 5, 15, 30)


def ebizzy_args(ms):
    """ebizzy's arguments (THREADS MILLISECONDS CHUNK SEARCHES) as the series ran it, by CPU count."""
    return lambda n: [EBIZZY_THREADS_PER_CPU * n, ms, EBIZZY_CHUNK, 0]


def wake_latency_sweep(n, ms, out, jobs=1):
    """The largest CPU count on the vm platform with other vCPU wake-up latencies (rwsem_wake and
    ipi_wake_idle): how much of the gain the sleeping convoy behind mmap_lock makes."""
    out('ebizzy on %d CPUs (the series\' setting) by vCPU wake-up latency (rwsem_wake = ipi_wake_idle):' % n)
    out('  %8s %14s %14s %6s %7s' % ('wake-up', 'no-SPF rate', 'SPF rate', 'gain', 'spf %'))
    rows = []
    args = ebizzy_args(ms)(n)
    todo = []
    for us in WAKE_SWEEP_US:
        cyc = CostTable().cycles_for_ns(us * 1000)
        costs = CostTable({'rwsem_wake': cyc, 'ipi_wake_idle': cyc}, platform='vm')
        todo += [('ebizzy', args, n, False, costs), ('ebizzy', args, n, True, costs)]
    runs = iter(pool_map(_run_job, todo, jobs))
    for us in WAKE_SWEEP_US:
        off, on = next(runs), next(runs)
        gain = _gain(off, on)
        out('  %6dus %14s %14s %5.2fx %6.1f%%' % (us, '{:,}'.format(off.rate), '{:,}'.format(on.rate), gain,
                                                  100 * on.spf_share))
        rows.append((us, off, on))
    return rows


def criterion(rows, out):
    """The SPF series' claim: on 16 CPUs at least 3x with SPF and more than 95% of the faults speculative."""
    n, off, on = rows[-1]
    gain = _gain(off, on)
    ok = n >= 16 and gain >= 3 and on.spf_share > 0.95
    out('criterion (16 CPUs, vm platform: gain >= 3x with > 95%% of faults speculative): %d CPUs %.2fx, %.1f%% %s'
        % (n, gain, 100 * on.spf_share, 'ok' if ok else 'NOT MET'))
    return ok


def table_records(table, rows, costs_name):
    """Records of a bench_table's rows: one per CPU count and SPF setting."""
    out = []
    for n, off, on in rows:
        for spf, r in ((False, off), (True, on)):
            out.append(dict(table=table, platform=costs_name, cpus=n, spf=spf, rate=r.rate,
                            gain=_gain(off, on) if spf else 1.0, page_faults=r.stats['page_faults'],
                            speculative=r.stats['spf'], spf_share=r.spf_share,
                            lock_wait_us_per_cpu=r.lock_wait_us_per_cpu, sim_seconds=r.stats['sim_seconds']))
    return out


def plot_figure(records, folder):
    """DIR/spf.png: the rate against the CPU count with and without speculative faults, one panel per table."""
    path = figure_path(folder, 'spf')
    tables = list(dict.fromkeys(r['table'] for r in records if r['table'] != 'ebizzy 512K, vm'))
    fig, axes = subplots(len(tables))
    for ax, table in zip(axes, tables):
        mine = [r for r in records if r['table'] == table]
        for spf, style in ((False, 's--'), (True, 'o-')):
            pts = sorted((r['cpus'], r['rate']) for r in mine if r['spf'] == spf)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label='SPF on' if spf else 'SPF off')
        cpus = sorted({r['cpus'] for r in mine})
        ax.set_xscale('log', base=2)
        ax.set_xticks(cpus, [str(c) for c in cpus])
        ax.set_xlabel('simulated CPUs')
        ax.set_ylabel('operations per simulated second')
        ax.set_title(table)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize='small')
    fig.suptitle('faultlab bench spf: rate vs CPUs with and without speculative page faults', fontsize='medium')
    save(fig, path)
    return path


def main(quick=False, out=print, csv=None, json=None, plot=None, jobs=1):
    """The tables (and --csv, --json, --plot files); 1 when the series' criterion is not met (full run), 2 when
    an output cannot be written. The runs of a table go on `jobs` processes."""
    status = bench_ready('spf', (), csv, json, plot)
    if status is not None:
        return status
    cpus = [1, 2, 4] if quick else [1, 2, 4, 8, 16]
    ms = 1 if quick else 8
    vm = CostTable(platform='vm')
    records = []
    out('faultlab bench spf: speculative page faults (Laurent Dufour\'s SPF v11 posting, "Speculative page '
        'faults": ebizzy -mTRp, 12,405 -> 91,104 records/s on a 16-CPU VM)')
    out('')
    out('ebizzy -mTRp as the series ran it (ebizzy 0.3: one page per record), vm platform (a KVM guest):')
    rows = bench_table('ebizzy', ebizzy_args(ms), cpus, out, costs=vm, per_cpu=EBIZZY_THREADS_PER_CPU, jobs=jobs)
    records += table_records('ebizzy -mTRp, vm', rows, 'vm')
    out('')
    out('the same on the bare-metal platform:')
    bare = bench_table('ebizzy', ebizzy_args(ms), cpus, out, per_cpu=EBIZZY_THREADS_PER_CPU, jobs=jobs)
    records += table_records('ebizzy -mTRp, bare-metal', bare, 'bare-metal')
    out('')
    if not quick:
        wake_latency_sweep(cpus[-1], ms, out, jobs=jobs)
        out('')
        out("ebizzy with the -R sizes ebizzy meant to draw (1 to 512 KiB), vm platform:")
        big = bench_table('ebizzy', lambda n: [EBIZZY_THREADS_PER_CPU * n, ms // 2, '512K', 0], [cpus[-1]], out,
                          costs=vm, per_cpu=EBIZZY_THREADS_PER_CPU, jobs=jobs)
        records += table_records('ebizzy 512K, vm', big, 'vm')
        out('')
    pf = bench_table('pfscale', lambda n: [n, ms // 2 or 1], cpus, out, jobs=jobs)
    records += table_records('pfscale, bare-metal', pf, 'bare-metal')
    out('')
    single_thread_delta(out)
    ok = True
    if not quick:
        out('')
        ok = criterion(rows, out)
    write_rows(records, csv, json)
    if plot:
        out('figure: %s' % plot_figure(records, plot))
    return 0 if ok else 1
