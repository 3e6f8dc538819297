"""`faultlab bench speed`: guest instructions per second and host cost per minor fault, side by side.

Everything is measured in one process, one run, and reported as ratios as well as absolute numbers
(the machines are shared and noisy, so only same-run ratios are comparable).
"""
import os
import shutil
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, 'userland', 'build')


def _faultlab_run(prog, args, prefault=False):
    """(wall seconds of the run itself, RunResult); prefault: host RAM faulted in before timing."""
    from emu.machine import Machine
    from kernel.kernel import KernelConfig
    m = Machine(ram=256 << 20, config=KernelConfig(stdout=lambda b: None))
    if prefault:
        m.phys.populate(0, m.phys.size)
    t0 = time.perf_counter()
    res = m.run(prog, [os.path.basename(prog)] + list(args), ['LANG=C'])
    return time.perf_counter() - t0, res


def _timed(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, timeout=600)
    return time.perf_counter() - t0, p.returncode


def _qiling_run(prog, args):
    try:
        from qiling import Qiling              # optional peer, never a dependency
        from qiling.const import QL_VERBOSE
    except ImportError:
        return None
    t0 = time.perf_counter()
    ql = Qiling([prog] + list(args), '/', verbose=QL_VERBOSE.DISABLED, console=False)
    ql.run()
    return time.perf_counter() - t0


def main(quick=False):
    compute = os.path.join(BUILD, 'compute')
    touch = os.path.join(BUILD, 'pagetouch')
    if not os.path.exists(compute):
        print('bench: build the userland programs first (make -C userland)')
        return 2
    scale = '1' if quick else '4'
    small, big = (2, 10) if quick else (4, 68)
    rows = []

    # (a) compute-bound
    wall, res = _faultlab_run(compute, [scale])
    insns = res.stats['instructions']
    native, _ = _timed([compute, scale])
    rows.append(('compute: faultlab (cycle model on)', '%.1f M insn/s' % (insns / wall / 1e6), wall))
    rows.append(('compute: native', '%.0f M insn/s (same insn count assumed)' % (insns / native / 1e6), native))
    qemu = shutil.which('qemu-x86_64')
    qemu_t = _timed([qemu, compute, scale])[0] if qemu else None
    if qemu_t:
        rows.append(('compute: qemu-x86_64', '%.0f M insn/s' % (insns / qemu_t / 1e6), qemu_t))
    ql_t = _qiling_run(compute, [scale])
    if ql_t:
        rows.append(('compute: qiling', '%.1f M insn/s' % (insns / ql_t / 1e6), ql_t))

    # (b) page touch: the marginal cost of (big - small) MiB of first-touch write faults
    ws, rs = _faultlab_run(touch, [str(small)])
    wb, rb = _faultlab_run(touch, [str(big)])
    faults = rb.stats['minor_faults'] - rs.stats['minor_faults']
    us_fault = (wb - ws) / faults * 1e6
    rows.append(('pagetouch: faultlab', '%.2f us per minor fault (%d faults)' % (us_fault, faults), wb))
    ws2, _ = _faultlab_run(touch, [str(small)], prefault=True)
    wb2, _ = _faultlab_run(touch, [str(big)], prefault=True)
    us_fault_warm = (wb2 - ws2) / faults * 1e6
    rows.append(('pagetouch: faultlab, host RAM prefaulted', '%.2f us per minor fault' % us_fault_warm, wb2))
    nat_s, _ = _timed([touch, str(small)])
    nat_b, _ = _timed([touch, str(big)])
    rows.append(('pagetouch: native', '%.2f us per minor fault' % ((nat_b - nat_s) / faults * 1e6), nat_b))
    ql_s, ql_b = _qiling_run(touch, [str(small)]), _qiling_run(touch, [str(big)])
    if ql_s and ql_b:
        rows.append(('pagetouch: qiling', '%.2f us per page' % ((ql_b - ql_s) / faults * 1e6), ql_b))

    print('faultlab bench speed (one run; wall-clock seconds on this host)')
    for name, what, secs in rows:
        print('  %-38s %-44s %8.3f s' % (name, what, secs))
    print('ratios (same run):')
    print('  faultlab / native time, compute     : %.1fx slower' % (wall / native))
    if qemu_t:
        print('  faultlab / qemu-x86_64 time, compute: %.2f' % (wall / qemu_t))
    else:
        print('  qemu-x86_64 not installed: skipped (apt-get install qemu-user)')
    if ql_t:
        print('  faultlab / qiling time, compute     : %.2f' % (wall / ql_t))
    else:
        print('  qiling not installed: skipped (pip install qiling)')
    return 0
