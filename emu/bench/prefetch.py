"""`faultlab bench prefetch`: software prefetching of a cold mmap'ed file with the vDSO's prefetch_page().

Runs userland/build/prefetch_bench in-process under faultlab (one fresh Machine per run; the file is
/home/bench.dat on the simulated disk), compares the simulated time of its loop with and without
prefetching against a lower bound (DEFINITIONS below, also printed), and measures what one
prefetch_page() call costs (cost_table).
"""
import os
import sys

from faultlab.bench.guest import run_guest
from faultlab.bench.report import bench_ready, figure_path, pool_map, write_rows
from faultlab.core.cycles import DEFAULT_FREQ_HZ, CostTable
from faultlab.kernel.block.params import DiskParams
from faultlab.kernel.kernel import KernelConfig
from faultlab.kernel.tracepoints import READ
from faultlab.machine import Machine
from faultlab.plot import save, subplots
from faultlab.srctree import userland_build

BUILD = userland_build()
PROGRAM = os.path.join(BUILD, 'prefetch_bench')
GUEST_FILE = '/home/bench.dat'
PAGE = 4096
DISK_MODEL_RAM = 4 << 20                # the machine that only answers for its disk model

DEFINITIONS = """\
All times are simulated; the guest times its loop with CLOCK_MONOTONIC (from the vDSO, exact).
  N      pages processed (NPAGES); c = C / N.
  S      service time of one read request on the disk model: read_latency + 4096 B / read_bw
         (BlockDevice.service_cycles). MADV_RANDOM: every fault or prefetch reads exactly one
         page, so every page costs one request.
  qd     the disk's queue depth (requests in service at once).
  C      total compute: the loop's time on a warm page cache (same N and COMPUTE_ITERS,
         DISTANCE 0, the file read with read() first): compute kernel, byte reads and the minor
         faults that map cached pages; no I/O.
  k(D)   reads the loop can have outstanding: 1 without prefetch (D = 0), else min(qd, D + 1):
         while it waits for page i, the reads of pages i .. i+D have been started (a prologue
         prefetches pages 0 .. D-1; iteration i prefetches page i+D, then reads page i).
  IO(D)  = N * S / k(D): the N reads need at least this long, at most k(D) being in service.
  LB(D)  = max(S + C, IO(D) + c): the first page's compute cannot start before its read is
         done (S after the loop starts), the last page's compute not before the last read is.
         Without the fill/drain terms this is max(C, IO(D)).
  T(D)   the measured loop time with distance D; T(0) is the loop without prefetch.
  T/LB   how close a run comes to the bound (1.000 = at the bound); T0/LB: no prefetch, same LB.
  serial C + N * S: the no-prefetch estimate (nothing overlaps); T(0)/serial shows the kernel's
         per-fault cost on top. When the I/O side dominates, T(D)/LB stays near 1 + c/S: while
         page i is computed on, only D reads are in flight (the next prefetch comes after the
         compute), so the loop's period is (S + c) / (D + 1), not S / (D + 1).
"""

LATENCIES_US = (20.0, 80.0, 500.0)
COMPUTE_RATIOS = (0.1, 1.0, 3.0)        # compute per page as a multiple of S: below, near, above
DISTANCES = (0, 1, 4, 16, 64)
NPAGES = 256
QUICK = dict(latencies=(80.0,), ratios=(0.1, 1.0, 3.0), distances=(0, 4, 64), npages=64)

COST_CASES = ('present', 'cached', 'cold', 'null')
COST_REPS = (10, 30)                    # same number of digits: the runs differ only by the calls
NOOP_CALL_INSNS = 3                     # call + `xor eax, eax` + ret of the empty function


def disk_params(read_latency_us=80.0, **kw):
    return DiskParams(read_latency_us=read_latency_us, **kw)


def run_bench(args, disk=None, ram=64 << 20, costs=None, check=True):
    """Run prefetch_bench ARGS under faultlab in this process; a GuestRun."""
    if not os.path.exists(PROGRAM):
        raise FileNotFoundError('%s: build the userland programs first (make -C userland)' % PROGRAM)
    return run_guest(PROGRAM, args, ram, costs, check, disk=disk or disk_params())


def service_cycles(disk, freq_hz):
    """S in cycles: what the disk model charges for one one-page read (asked of a machine with that disk
    and clock, which runs nothing)."""
    m = Machine(ram=DISK_MODEL_RAM, costs=CostTable(freq_hz=freq_hz), config=KernelConfig(disk=disk))
    return m.kernel.blockdev.service_cycles(READ, PAGE // disk.block_size)


def expected_checksum(npages):
    """The sum prefetch_bench prints: bytes 0, 1365, 2730 and 4095 of every page of the file."""
    total = 0
    for i in range(npages):
        for off in (0, 1365, 2730, 4095):
            o = i * PAGE + off
            total += ((o * 2654435761) >> 13) & 0xFF
    return total


def loop(npages, iters, distance, disk=None, warm=False):
    """One benchmark run; checks the checksum and the number of prefetch calls."""
    r = run_bench([GUEST_FILE, npages, iters, distance, 'warm' if warm else 'cold'], disk=disk)
    if r['checksum'] != expected_checksum(npages):
        raise RuntimeError('prefetch_bench: checksum %s, expected %s' % (r['checksum'], expected_checksum(npages)))
    want_calls = npages if distance > 0 else 0
    if r['prefetch_calls'] != want_calls:
        raise RuntimeError('prefetch_bench: %s prefetch calls, expected %s' % (r['prefetch_calls'], want_calls))
    return r


def cycles_per_iter(npages=8, iters=4000):
    """Cycles of one COMPUTE_ITERS iteration (two warm runs, differenced)."""
    a = loop(npages, 0, 0, warm=True)
    b = loop(npages, iters, 0, warm=True)
    return (b['loop_cycles'] - a['loop_cycles']) / (npages * iters)


def lower_bound(n, s_ns, qd, distance, compute_ns):
    """(k, IO, LB) as in DEFINITIONS (times in ns)."""
    k = 1 if distance == 0 else min(qd, distance + 1)
    io = n * s_ns / k
    return k, io, max(s_ns + compute_ns, io + compute_ns / n)


def group(npages, iters, latency_us, distances):
    """Every distance for one (N, COMPUTE_ITERS, latency): a dict with the rows and the group figures."""
    disk = disk_params(latency_us)
    s_ns = service_cycles(disk, DEFAULT_FREQ_HZ) * 1e9 / DEFAULT_FREQ_HZ
    warm = loop(npages, iters, 0, disk=disk, warm=True)
    c_ns = warm['elapsed_ns']
    rows = []
    t0 = None
    for d in distances:
        r = loop(npages, iters, d, disk=disk)
        t = r['elapsed_ns']
        if d == 0:
            t0 = t
        k, io, lb = lower_bound(npages, s_ns, disk.queue_depth, d, c_ns)
        rows.append(dict(distance=d, t_ns=t, k=k, io_ns=io, lb_ns=lb, fails=r['prefetch_fail'],
                         calls=r['prefetch_calls'], iowait=r.stats['iowait_cycles'], run=r))
    if t0 is None:
        t0 = loop(npages, iters, 0, disk=disk)['elapsed_ns']
    return dict(npages=npages, iters=iters, latency_us=latency_us, s_ns=s_ns, qd=disk.queue_depth,
                c_ns=c_ns, t0_ns=t0, serial_ns=c_ns + npages * s_ns, rows=rows)


def cost_table(latency_us=80.0):
    """The cost of one prefetch_page() call per case.

    cycles: rdtsc around one call (prefetch_bench --cost; minus an empty rdtsc pair, so it includes
    the call, the function, the return and ~3 cycles of register moves between the two reads).
    The other columns are differences of two `--cost-loop CASE REPS` runs (REPS 10 and 30), per call:
    instructions from `call` to `ret` (the loop's own instructions, measured with an empty function,
    are taken out), page faults, kernel cycles, disk reads.
    """
    disk = disk_params(latency_us)
    one = run_bench(['--cost'], disk=disk)
    lo, hi = COST_REPS

    def per_call(case):
        a = run_bench(['--cost-loop', case, lo], disk=disk)
        b = run_bench(['--cost-loop', case, hi], disk=disk)
        n = hi - lo
        return {key: (b.stats[key] - a.stats[key]) / n
                for key in ('instructions', 'cycles', 'kernel_cycles', 'page_faults', 'major_faults',
                            'disk_reads', 'vdso_fixups')}, (b['fail'] - a['fail']) / n

    noop, _ = per_call('noop')
    loop_insns = noop['instructions'] - NOOP_CALL_INSNS
    rows = []
    for case in COST_CASES + ('inflight', 'completed', 'pressure'):
        if 'cost_%s_cycles' % case not in one.values:
            continue
        row = dict(case=case, cycles=one['cost_%s_cycles' % case], ret=one['cost_%s_ret' % case])
        if case in COST_CASES:
            d, fail = per_call(case)
            row.update(insns=d['instructions'] - loop_insns, faults=d['page_faults'],
                       kernel_cycles=d['kernel_cycles'], disk_reads=d['disk_reads'], fail=fail)
        rows.append(row)
    return dict(rows=rows, noop_cycles=one['cost_noop_cycles'], loop_insns=loop_insns,
                noop_insns=noop['instructions'])


def _ms(ns):
    return '%.3f' % (ns / 1e6)


def _group_job(job):
    """group() of one (npages, iters, latency, distances), for pool_map; the runs' GuestRun objects left out."""
    g = group(*job)
    for row in g['rows']:
        run = row.pop('run')
        row.update(page_faults=run.stats['page_faults'], major_faults=run.stats['major_faults'],
                   disk_reads=run.stats['disk_reads'])
    return g


def records(groups):
    """One record per (latency, compute ratio, distance): the table's figures, times in ns."""
    out = []
    for g in groups:
        for row in g['rows']:
            out.append(dict(latency_us=g['latency_us'], c_over_s=round(g['c_ns'] / g['npages'] / g['s_ns'], 4),
                            compute_iters=g['iters'], npages=g['npages'], distance=row['distance'], k=row['k'],
                            s_ns=g['s_ns'], c_ns=g['c_ns'], t0_ns=g['t0_ns'], t_ns=row['t_ns'], io_ns=row['io_ns'],
                            lb_ns=row['lb_ns'], t_over_lb=row['t_ns'] / row['lb_ns'], serial_ns=g['serial_ns'],
                            prefetch_fail=row['fails'], prefetch_calls=row['calls'], iowait_cycles=row['iowait'],
                            page_faults=row['page_faults'], major_faults=row['major_faults'],
                            disk_reads=row['disk_reads']))
    return out


def plot_figure(groups, folder):
    """DIR/prefetch.png: the loop's time against the prefetch distance, one panel per disk latency, one colour
    per compute ratio c/S; the lower bound LB(D) dashed in the same colour."""
    path = figure_path(folder, 'prefetch')
    lats = sorted({g['latency_us'] for g in groups})
    fig, axes = subplots(len(lats))
    for ax, lat in zip(axes, lats):
        for i, g in enumerate(x for x in groups if x['latency_us'] == lat):
            ds = [r['distance'] for r in g['rows']]
            pos = list(range(len(ds)))
            label = 'c/S %.2f' % (g['c_ns'] / g['npages'] / g['s_ns'])
            line, = ax.plot(pos, [r['t_ns'] / 1e6 for r in g['rows']], marker='o', label='T(D), ' + label)
            ax.plot(pos, [r['lb_ns'] / 1e6 for r in g['rows']], linestyle='--', color=line.get_color(),
                    label='LB(D), ' + label)
            ax.set_xticks(pos, [str(d) for d in ds])
        ax.set_title('read latency %g us (S = %.1f us), %d pages' % (lat, g['s_ns'] / 1e3, g['npages']))
        ax.set_xlabel('prefetch distance D (pages; 0: no prefetch)')
        ax.set_ylabel('loop time (simulated ms)')
        ax.set_yscale('log')
        ax.grid(True, alpha=0.3, which='both')
        ax.legend(fontsize='x-small')
    fig.suptitle('faultlab bench prefetch: loop time T(D) and its lower bound LB(D)', fontsize='medium')
    save(fig, path)
    return path


def main(quick=False, csv=None, json=None, plot=None, jobs=1):
    """The table (and --csv, --json, --plot files); 2 when the programs are not built or an output cannot be
    written. A checksum or prefetch-count mismatch raises (faultlab's internal-error status)."""
    status = bench_ready('prefetch', (PROGRAM,), csv, json, plot)
    if status is not None:
        return status
    p = QUICK if quick else dict(latencies=LATENCIES_US, ratios=COMPUTE_RATIOS, distances=DISTANCES,
                                 npages=NPAGES)
    n = p['npages']
    cpi = cycles_per_iter()
    print('faultlab bench prefetch: prefetch_bench %s %d COMPUTE_ITERS DISTANCE (cold page cache, '
          'MADV_RANDOM, queue depth %d)' % (GUEST_FILE, n, disk_params().queue_depth))
    print(DEFINITIONS.rstrip())
    print('compute kernel: %.2f cycles per COMPUTE_ITERS iteration (calibrated on a warm cache); '
          'c/S chosen from %s' % (cpi, ', '.join('%g' % r for r in p['ratios'])))
    print()
    fmt = '%6s %7s %5s %3s %3s %9s %9s %9s %9s %9s %6s %6s %7s'
    print(fmt % ('lat_us', 'S_us', 'c/S', 'D', 'k', 'T(0)_ms', 'T(D)_ms', 'C_ms', 'IO(D)_ms', 'LB_ms',
                 'T0/LB', 'T/LB', 'fail'))
    jobs_list = []
    for lat in p['latencies']:
        s_cycles = service_cycles(disk_params(lat), DEFAULT_FREQ_HZ)
        for ratio in p['ratios']:
            jobs_list.append((n, max(0, int(round(ratio * s_cycles / cpi))), lat, p['distances']))
    groups = []
    for g in pool_map(_group_job, jobs_list, jobs):
        groups.append(g)
        lat, iters = g['latency_us'], g['iters']
        for row in g['rows']:
            print(fmt % ('%g' % lat, '%.2f' % (g['s_ns'] / 1e3), '%.2f' % (g['c_ns'] / n / g['s_ns']),
                         row['distance'], row['k'], _ms(g['t0_ns']), _ms(row['t_ns']), _ms(g['c_ns']),
                         _ms(row['io_ns']), _ms(row['lb_ns']), '%.3f' % (g['t0_ns'] / row['lb_ns']),
                         '%.3f' % (row['t_ns'] / row['lb_ns']), '%d/%d' % (row['fails'], row['calls'])))
        print('%6s COMPUTE_ITERS %d; no prefetch: T(0) = %s ms, serial C + N*S = %s ms, T(0)/serial = %.3f'
              % ('', iters, _ms(g['t0_ns']), _ms(g['serial_ns']), g['t0_ns'] / g['serial_ns']))
    print()
    ct = cost_table()
    print('cost of one prefetch_page() call (prefetch_bench --cost and --cost-loop, read latency 80 us)')
    print('  cycles: rdtsc around one call minus an empty rdtsc pair (call, function, ret and ~3 cycles of')
    print('  register moves; an empty function called the same way: %d cycles). insns, faults, kcycles'
          % ct['noop_cycles'])
    print('  (kernel cycles), reads (disk reads): per call, from two --cost-loop runs of %d and %d calls;'
          % COST_REPS)
    print('  insns counts call .. ret (the calling loop\'s %g instructions taken out).' % ct['loop_insns'])
    cfmt = '  %-10s %4s %7s %6s %7s %8s %6s'
    print(cfmt % ('case', 'ret', 'cycles', 'insns', 'faults', 'kcycles', 'reads'))
    for row in ct['rows']:
        if 'insns' in row:
            print(cfmt % (row['case'], row['ret'], row['cycles'], '%g' % row['insns'], '%g' % row['faults'],
                          '%g' % row['kernel_cycles'], '%g' % row['disk_reads']))
        else:
            print(cfmt % (row['case'], row['ret'], row['cycles'], '-', '-', '-', '-'))
    print('  present: a mapped page; cached: in the page cache, not mapped (fault-around maps 16 pages);')
    print('  cold: needs a read; inflight: the same page again at once; completed: the same page again')
    print('  after ~5 ms in user mode (its read has completed); null: NULL; pressure: a cold file page')
    print('  when almost all memory is locked (free pages below the min watermark): fails fast, no reclaim.')
    write_rows(records(groups), csv, json)
    if plot:
        print('figure: %s' % plot_figure(groups, plot))
    return 0


if __name__ == '__main__':
    sys.exit(main(quick='--quick' in sys.argv[1:]))
