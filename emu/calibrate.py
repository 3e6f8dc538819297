"""`faultlab calibrate`: a core profile of the machine in front of the user, from native microbenchmarks.

userland/timing_calibrate (built by `make -C userland`, or compiled here with gcc when it is not) runs
dependency chains and independent streams of instruction classes in the CPU time of its thread and
prints, per instruction, the best time in ns and the median and least of its times over those of an add
chain run just before and after it (one cycle per dependent add on every x86-64 core: the ratio is in cycles, and
holds when the clock changes). The clock is the add chain's best time. Latencies come from the chains,
port counts from the independent streams (instructions per cycle, rounded). What is not measured (shuffles, vector integer,
conversions, the dividers' occupancy) comes from the profile of the same vendor (zen3 for AMD, skylake
for Intel, generic otherwise), and the file says which. `--platform FILE` loads the result.
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile

from faultlab.core.uarch.profiles import PROFILES, check_profile, merged
from faultlab.srctree import SOURCE_ROOT, userland_build

PROGRAM = 'timing_calibrate'
MEASURED = ('add_lat', 'add_tput', 'nop_tput', 'imul_lat', 'imul_tput', 'div64_lat', 'div32_lat', 'load_lat',
            'load_tput', 'store_forward', 'fp_add_lat', 'fp_add_tput', 'fp_mul_lat', 'fp_mul_tput', 'fp_mix_tput',
            'fp_fma_lat',
            'fp_div_lat', 'fp_div_tput', 'fp_sqrt_lat')


class CalibrateError(Exception):
    """The microbenchmarks could not be built or run (one line)."""


def cpuinfo_field(name):
    """The first value of a /proc/cpuinfo field of the host ('vendor_id', 'model name'), or ''."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(name):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return ''


def cpu_vendor():
    """'AuthenticAMD', 'GenuineIntel', or '' (from /proc/cpuinfo)."""
    return cpuinfo_field('vendor_id')


def cpu_model():
    """The host CPU's model name, or ''."""
    return cpuinfo_field('model name')


def program_path(workdir):
    """The microbenchmark program: the userland build's, or compiled with gcc into workdir."""
    built = os.path.join(userland_build(), PROGRAM)
    if os.path.exists(built):
        return built
    src = os.path.join(SOURCE_ROOT, 'userland', 'src', PROGRAM + '.c')
    gcc = shutil.which('gcc')
    if not gcc or not os.path.exists(src):
        raise CalibrateError('%s is not built and cannot be compiled (gcc: %s, source: %s)'
                             % (built, gcc or 'not found', src if os.path.exists(src) else 'not found'))
    out = os.path.join(workdir, PROGRAM)
    p = subprocess.run([gcc, '-std=gnu11', '-O2', '-static', '-o', out, src], capture_output=True, text=True)
    if p.returncode:
        raise CalibrateError('gcc failed on %s: %s' % (src, (p.stderr.strip().splitlines() or ['?'])[-1]))
    return out


def measure(runs=2, iterations=None):
    """{test: (ns, cycles) per instruction}: the best of `runs` runs of the microbenchmark program (cycles:
    its time over the add chain's measured around it, or -1 when the clock was never steady)."""
    with tempfile.TemporaryDirectory(prefix='faultlab-calibrate-') as tmp:
        prog = program_path(tmp)
        best = {}
        for _ in range(runs):
            cmd = [prog] + ([str(iterations)] if iterations else [])
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise CalibrateError('%s: %s' % (prog, e)) from None
            if p.returncode:
                raise CalibrateError('%s exited with status %d' % (prog, p.returncode))
            for line in p.stdout.splitlines():
                f = line.split()
                try:
                    # latencies: the median ratio; throughputs (short runs of cheap instructions, which
                    # anything else on the host only slows down): the least
                    ns, cyc = float(f[1]), float(f[3] if f[0].endswith('_tput') else f[2])
                except (ValueError, IndexError):
                    continue
                old = best.get(f[0])
                best[f[0]] = (min(old[0], ns) if old else ns,
                              cyc if old is None or old[1] <= 0 else (old[1] if cyc <= 0 else min(old[1], cyc)))
    missing = [k for k in MEASURED if not (k in best and best[k][0] > 0)]
    if missing:
        raise CalibrateError('%s printed no figure for %s' % (PROGRAM, ', '.join(missing)))
    return best


def _ports(first, n):
    """n port numbers from `first` on."""
    return list(range(first, first + max(1, n)))


def build_profile(ns, vendor='', model=''):
    """The profile of the measured core: a base profile of its vendor with the measured figures."""
    base_name = {'AuthenticAMD': 'zen3', 'GenuineIntel': 'skylake'}.get(vendor, 'generic')
    base = PROFILES[base_name]
    ghz = 1.0 / ns['add_lat'][0]

    def cyc(k):
        t, c = ns[k]
        return c if c > 0 else t * ghz

    def per_cycle(k):
        return max(1, int(1.0 / cyc(k) + 0.5))

    alus, loads, muls = per_cycle('add_tput'), per_cycle('load_tput'), per_cycle('imul_tput')
    fadd, fmul = per_cycle('fp_add_tput'), per_cycle('fp_mul_tput')
    bp = base['ports']
    alu = _ports(0, alus)
    load = _ports(16, loads)
    # additions and multiplications together: as many per cycle as the pipes that take either (a pool of
    # `both` ports, the add ports first, the multiply ports last, overlapping when both < fadd + fmul)
    both = min(fadd + fmul, max(fadd, fmul, per_cycle('fp_mix_tput')))
    fp_add = _ports(32, fadd)
    fp_mul = _ports(32 + both - fmul, fmul)
    vec = sorted(set(fp_add) | set(fp_mul))
    ports = {'alu': alu, 'shift': alu[:max(1, len(bp['shift']))], 'branch': alu[:max(1, len(bp['branch']))],
             'mul': alu[1:1 + muls] or alu[:1], 'div': alu[2 % len(alu):2 % len(alu) + 1], 'lea3': alu,
             'load': load, 'store_addr': load[:len(bp['store_addr'])], 'store_data': _ports(24, len(bp['store_data'])),
             'fp_add': fp_add, 'fp_mul': fp_mul, 'fp_div': fp_mul[:1], 'vec': vec, 'shuf': vec[:len(bp['shuf'])],
             'cvt': fp_add}
    r2 = lambda x: round(x, 2)  # noqa: E731
    latency = {'alu': 1, 'imul': r2(cyc('imul_lat')), 'div64': r2(max(1.0, cyc('div64_lat') - 1)),
               'div32': r2(max(1.0, cyc('div32_lat') - 1)), 'load': r2(cyc('load_lat')),
               'store_forward': r2(cyc('store_forward')), 'fp_add': r2(cyc('fp_add_lat')),
               'fp_mul': r2(cyc('fp_mul_lat')), 'fp_fma': r2(cyc('fp_fma_lat')), 'fp_div': r2(cyc('fp_div_lat')),
               'fp_sqrt': r2(cyc('fp_sqrt_lat'))}
    when = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    where = 'measured by faultlab calibrate (userland/src/timing_calibrate.c) on %s, %s' % (model or 'this host', when)
    over = {
        'name': 'calibrated', 'base': base_name, 'platform': 'bare-metal',
        'description': 'the host measured by faultlab calibrate: %s' % (model or vendor or 'unknown CPU'),
        'freq_hz': int(ghz * 1e9), 'dispatch_width': max(per_cycle('nop_tput'), alus),
        'ports': ports, 'latency': latency,
        'throughput': {'fp_div': r2(max(1.0, cyc('fp_div_tput') * len(ports['fp_div'])))},
        'measured': {k: {'ns': ns[k][0], 'cycles': ns[k][1]} for k in MEASURED},
        'sources': {
            'freq_hz': where + ': 1 / (ns per dependent add, the best run)',
            'dispatch_width': where + ': nops per cycle (at least the ALU count)',
            'ports': where + ': independent adds, loads, imuls, addsd, mulsd per cycle give the ALU, load, '
                     'multiplier and FP add/mul port counts, addsd and mulsd mixed how many pipes take either; '
                     'the other groups as in the %s profile' % base_name,
            'latency': where + ': dependency chains, each timed against the add chain run just before and '
                       'after it (div: less the add that keeps the dividend large; store_forward: a store and '
                       'the load of the same address)',
            'throughput': where + ': independent divsd; the integer dividers as in the %s profile' % base_name,
        },
    }
    return check_profile(merged(base, over), 'calibrated profile')


def describe(profile):
    """Lines of the figures that matter, for the terminal."""
    p = profile
    lat = p['latency']
    return ['clock               %.2f GHz' % (p['freq_hz'] / 1e9),
            'dispatch width      %d' % p['dispatch_width'],
            'ALU / load / mul    %d / %d / %d ports' % (len(p['ports']['alu']), len(p['ports']['load']),
                                                      len(p['ports']['mul'])),
            'FP add / mul pipes  %d / %d (%d in all)' % (len(p['ports']['fp_add']), len(p['ports']['fp_mul']),
                                                         len(set(p['ports']['fp_add']) | set(p['ports']['fp_mul']))),
            'latency (cycles)    imul %s, div32 %s, div64 %s, load %s, store->load %s' % (
                lat['imul'], lat['div32'], lat['div64'], lat['load'], lat['store_forward']),
            '                    addsd %s, mulsd %s, fma %s, divsd %s, sqrtsd %s' % (
                lat['fp_add'], lat['fp_mul'], lat['fp_fma'], lat['fp_div'], lat['fp_sqrt'])]


def calibrate(output, quick=False, out=print):
    """Measure this host, write its profile to `output`; the profile."""
    tmp = output + '.tmp'
    with open(tmp, 'w') as f:           # (before measuring: a path that cannot be written fails at once)
        try:
            ns = measure(runs=1 if quick else 2, iterations=10000 if quick else None)
            prof = build_profile(ns, cpu_vendor(), cpu_model())
        except BaseException:
            os.unlink(tmp)
            raise
        json.dump(prof, f, indent=1, sort_keys=True)
        f.write('\n')
    os.replace(tmp, output)
    for line in describe(prof):
        out(line)
    out('profile written to %s (use it with --platform %s)' % (output, output))
    return prof


def main(output='faultlab-host.json', quick=False):
    """`faultlab calibrate`: the exit status."""
    try:
        calibrate(output, quick)
    except CalibrateError as e:
        print('faultlab calibrate: %s' % e, file=sys.stderr)
        return 2
    except OSError as e:
        print('faultlab calibrate: cannot write %s: %s' % (output, e.strerror), file=sys.stderr)
        return 2
    return 0
