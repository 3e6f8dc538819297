"""`faultlab bench spf`: the speculative-page-fault experiment of the SPF series, on simulated CPUs.

Runs the ebizzy-like benchmark (userland/src/ebizzy.c, as `ebizzy -mTRp`: threads mmap a chunk of
random size up to 512 KiB, touch its pages, munmap it) and a will-it-scale-like page-fault test (userland/src/pfscale.c) with one thread per CPU
on 1..16 simulated CPUs, with and without speculative page faults, and prints records (operations)
per second of simulated time, the fault counts, the speculative share, every abort reason, and the
mmap_lock wait per CPU. A mono-threaded run with both settings shows the single-thread difference.
"""
import os

from emu.cycles import CostTable
from emu.machine import Machine
from kernel.kernel import KernelConfig

USERLAND = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'userland', 'build')


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


def _abort_str(stats):
    ab = stats['spf_aborts']
    return ', '.join('%s %d' % (k[4:], v) for k, v in sorted(ab.items())) or '-'


def bench_table(program, args_for, cpu_list, out):
    """Rows for one program: rate without and with SPF per CPU count, counts, aborts, lock wait."""
    out('%s  (one thread per CPU; rates per second of simulated time)' % program)
    out('  %4s %14s %14s %6s %9s %7s %11s %11s  %s' % ('CPUs', 'no-SPF rate', 'SPF rate', 'gain', 'faults',
                                                      'spf %', 'lockwait/cpu', 'no-SPF wait', 'SPF aborts'))
    rows = []
    for n in cpu_list:
        off = run_one(program, args_for(n), n, False)
        on = run_one(program, args_for(n), n, True)
        gain = on.rate / off.rate if off.rate else 0.0
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


VM_WAKE_CYCLES = 45_000     # ~15 us at 3 GHz: waking a halted vCPU (IPI, VM exit, host wake-up, VM entry)


def wake_latency_sensitivity(n, ms, out):
    """The largest CPU count once more with a virtual machine's wake-up latency for rw_semaphore
    sleepers (the seed measured in a 16-vCPU VM): the convoy behind mmap_lock grows with it."""
    costs = CostTable({'rwsem_wake': VM_WAKE_CYCLES})
    off = run_one('ebizzy', [n, ms, 512, 0], n, False, costs=costs)
    on = run_one('ebizzy', [n, ms, 512, 0], n, True, costs=costs)
    gain = on.rate / off.rate if off.rate else 0.0
    out("ebizzy on %d CPUs with rwsem_wake = %d cycles (a VM's vCPU wake-up): %s -> %s records/s, %.2fx, "
        '%.1f%% speculative' % (n, VM_WAKE_CYCLES, '{:,}'.format(off.rate), '{:,}'.format(on.rate), gain,
                                100 * on.spf_share))
    return off, on


def main(quick=False, out=print):
    cpus = [1, 2, 4] if quick else [1, 2, 4, 8, 16]
    ms = 1 if quick else 4
    out('faultlab bench spf: speculative page faults (seed 3: ebizzy -mTRp, 12,405 -> 91,104 records/s on 16 '
        'CPUs)')
    out('')
    bench_table('ebizzy', lambda n: [n, ms, 512, 0], cpus, out)
    out('')
    bench_table('pfscale', lambda n: [n, ms], cpus, out)
    out('')
    if not quick:
        wake_latency_sensitivity(cpus[-1], ms, out)
        out('')
    single_thread_delta(out)
    return 0
