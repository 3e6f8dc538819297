"""`faultlab bench timing`: simulated user-mode time beside native time, kernel by kernel.

userland/timing_kernels times its own work with clock_gettime (natively: the host's clock; under faultlab:
simulated time through the vDSO), so the same binary gives both figures. Each kernel runs natively
`reps` times (the best counts: the host is shared) and once under faultlab per platform:
  * bare-metal: the flat prices per instruction class (IPC about 1),
  * generic: the out-of-order block model with the generic profile,
  * calibrated: the block model with this host's profile (`--profile FILE`, else measured now by
    faultlab calibrate).
It prints simulated/native per kernel and per platform, the spread (geometric mean and worst ratio), and
checks with the calibrated profile: every core kernel (data in L1) within 25% of native time, and the core
kernels in the same order by time (for every two whose native times differ by more than those 25%). The memory kernels (chase_llc, chase_dram) and the system-call kernel
are shown but not checked: the block model prices loads as L1 hits (cache and TLB misses are another
model's, per page: kernel/mm/llc.py), and a system call's time is the kernel cost table's. Exit status 1
when a check fails.
"""
import math
import os
import subprocess
import tempfile

from faultlab.api import Options, run
from faultlab.bench.report import bench_ready, write_rows
from faultlab.calibrate import CalibrateError, calibrate
from faultlab.srctree import userland_build

PROGRAM = 'timing_kernels'
# kernel: (what it is, kind): 'core' kernels keep their data in L1 and are checked; 'memory' ones are the
# cache and TLB model's (loads beyond L1), 'kernel' ones the kernel cost table's (system calls): shown, not
# checked against the block model's goal
KERNELS = {
    'intloop': ('integer multiply/shift/xor chains', 'core'),
    'fp': ('double polynomial (Horner) and dot product', 'core'),
    'memcpy': ('memcpy of 256 B and 2 KiB blocks in 64 KiB', 'core'),
    'chase_l1': ('pointer chase, 16 KiB ring (L1)', 'core'),
    'chase_llc': ('pointer chase, 4 MiB ring (L2/L3)', 'memory'),
    'chase_dram': ('pointer chase, 96 MiB ring (DRAM)', 'memory'),
    'sort': ('qsort of 64 Ki ints, insertion sorts', 'core'),
    'hash': ('open-addressing hash table, 2 Ki slots', 'core'),
    'matmul': ('40x40 double matrix multiply', 'core'),
    'syscall': ('getppid(2) in a loop', 'kernel'),
}
WHY_NOT_CHECKED = {
    'memory': 'loads are priced as L1 hits by the block model; LLC and TLB misses come from the per-page cache '
              'model (kernel/mm/llc.py), not per access',
    'kernel': 'the time is the system call path of the kernel cost table (syscall_entry, syscall_exit, '
              'syscall_dispatch: bare-metal figures), not user mode',
}
TOLERANCE = 0.25
NATIVE_REPS = 7


def parse(output, kernel):
    """(ns, check) from a kernel's output line, or None."""
    for line in output.splitlines():
        f = line.split()
        if len(f) == 5 and f[0] == kernel and f[1] == 'ns' and f[3] == 'check':
            try:
                return float(f[2]), f[4]
            except ValueError:
                return None
    return None


def native(prog, kernel, reps):
    """(best ns, check) of `reps` native runs, or None if the program failed."""
    best = None
    for _ in range(reps):
        p = subprocess.run([prog, kernel], capture_output=True, text=True, timeout=600)
        r = parse(p.stdout, kernel) if p.returncode == 0 else None
        if r is None:
            return None
        if best is None or r[0] < best[0]:
            best = r
    return best


def simulated(prog, kernel, platform):
    """(simulated ns, check, instructions) of one faultlab run, or None."""
    r = run(prog, [kernel], Options(platform=platform), faults=False)
    got = parse(r.stdout.decode(errors='replace'), kernel) if r.exit_code == 0 else None
    if got is None:
        return None
    return got[0], got[1], r.stats.get('instructions', 0)


def order_differences(native_ns, sim_ns, kernels):
    """[(a, b)]: a is faster than b natively by more than TOLERANCE, but not simulated (two kernels whose
    native times are closer than that may swap places within the tolerance each has)."""
    return [(a, b) for a in kernels for b in kernels
            if native_ns[a] * (1 + TOLERANCE) < native_ns[b] and not sim_ns[a] < sim_ns[b]]


def main(quick=False, profile=None, csv=None, json=None, out=print):
    """Run the kernels natively and simulated; the exit status (1: a check failed, 2: not ready)."""
    prog = os.path.join(userland_build(), PROGRAM)
    status = bench_ready('timing', [prog], csv=csv, json=json, out=out)
    if status is not None:
        return status
    kernels = [k for k in KERNELS if not (quick and k in ('chase_llc', 'chase_dram', 'sort'))]
    with tempfile.TemporaryDirectory(prefix='faultlab-timing-') as tmp:
        if profile is None:
            profile = os.path.join(tmp, 'host.json')
            out('calibrating this host (faultlab calibrate):')
            try:
                calibrate(profile, quick=quick, out=lambda s: out('  ' + s))
            except CalibrateError as e:
                out('bench timing: %s' % e)
                return 2
        platforms = [('bare-metal', 'bare-metal'), ('generic', 'generic'), ('calibrated', profile)]
        rows, failed = [], []
        native_ns, sim_ns = {}, {name: {} for name, _ in platforms}
        for k in kernels:
            nat = native(prog, k, 3 if quick else NATIVE_REPS)
            if nat is None:
                out('bench timing: %s failed natively' % k)
                return 2
            native_ns[k] = nat[0]
            row = {'kernel': k, 'native_ms': nat[0] / 1e6}
            for name, plat in platforms:
                sim = simulated(prog, k, plat)
                if sim is None or sim[1] != nat[1]:
                    failed.append('%s on %s: %s' % (k, name, 'failed' if sim is None else
                                                    'checksum %s, natively %s' % (sim[1], nat[1])))
                    continue
                sim_ns[name][k] = sim[0]
                row[name + '_ms'] = sim[0] / 1e6
                row[name + '_ratio'] = sim[0] / nat[0]
                row['instructions'] = sim[2]
            rows.append(row)
    _print_table(rows, platforms, out)
    failed += _checks(native_ns, sim_ns, platforms, out)
    write_rows(rows, csv, json)
    if failed:
        out('FAILED: ' + '; '.join(failed))
        return 1
    return 0


def _print_table(rows, platforms, out):
    """The table: native ms, then per platform simulated ms and simulated/native."""
    head = '%-11s %9s %10s' % ('kernel', 'insns', 'native ms')
    for name, _ in platforms:
        head += ' %12s %6s' % (name + ' ms', 'x')
    out(head)
    for r in rows:
        line = '%-11s %8.1fM %10.3f' % (r['kernel'], r.get('instructions', 0) / 1e6, r['native_ms'])
        for name, _ in platforms:
            if name + '_ms' in r:
                line += ' %12.3f %6.2f' % (r[name + '_ms'], r[name + '_ratio'])
            else:
                line += ' %12s %6s' % ('-', '-')
        kind = KERNELS[r['kernel']][1]
        out(line + ('' if kind == 'core' else '   (%s: not checked)' % kind))


def _spread(native_ns, sim, kernels):
    """(geometric mean of simulated/native, the worst ratio) over kernels."""
    ratios = [sim[k] / native_ns[k] for k in kernels if k in sim]
    if not ratios:
        return float('nan'), float('nan')
    gmean = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
    worst = max(ratios, key=lambda x: abs(math.log(x)))
    return gmean, worst


def _checks(native_ns, sim_ns, platforms, out):
    """Print the spread per platform and the calibrated profile's checks; [failures]."""
    checked = [k for k in native_ns if KERNELS[k][1] == 'core']
    out('')
    for name, _ in platforms:
        g, w = _spread(native_ns, sim_ns[name], checked)
        out('%-11s core kernels: geometric mean of simulated/native %.2f, worst %.2f' % (name, g, w))
    failures = []
    cal = sim_ns['calibrated']
    off = [k for k in checked if k in cal and abs(cal[k] / native_ns[k] - 1) > TOLERANCE]
    ok = not off and all(k in cal for k in checked)
    out('check (calibrated: every core kernel within %d%% of native): %s%s'
        % (TOLERANCE * 100, 'ok' if ok else 'FAILED', '' if ok else ' (%s)' % ', '.join(
            '%s %.2fx' % (k, cal[k] / native_ns[k]) for k in off)))
    if not ok:
        failures.append('kernels off by more than %d%%' % (TOLERANCE * 100))
    swapped = order_differences(native_ns, cal, [k for k in checked if k in cal])
    out('check (calibrated: core kernels in the same order by time, for every two whose native times differ by '
        'more than %d%%): %s' % (TOLERANCE * 100, 'ok' if not swapped else 'FAILED'))
    for a, b in swapped:
        out('  %s is faster than %s natively (%.3f < %.3f ms), not simulated (%.3f >= %.3f ms)'
            % (a, b, native_ns[a] / 1e6, native_ns[b] / 1e6, cal[a] / 1e6, cal[b] / 1e6))
    if swapped:
        failures.append('order of kernels by time differs')
    for kind, why in WHY_NOT_CHECKED.items():
        ks = [k for k in native_ns if KERNELS[k][1] == kind and k in cal]
        if ks:
            out('%s kernels (%s): simulated/native %s with the calibrated profile, not checked: %s'
                % (kind, ', '.join(ks), ', '.join('%.2f' % (cal[k] / native_ns[k]) for k in ks), why))
    return failures
