"""prefetch_bench under faultlab: prefetch_page() overlaps compute with I/O, what one call costs, native fallback.

The figures behind the bounds (default cost table, 3 GHz, disk latency 80 us: S = 81.28 us per one-page
read) are in emu/bench/prefetch.py's output; see DEFINITIONS there for C, S, k(D), IO(D) and LB(D).
"""
import os

import pytest

from conftest import run_native
from faultlab.bench import prefetch as bp
from faultlab.core.cycles import DEFAULT_FREQ_HZ, CostTable

N = 32                   # pages per run: enough for a steady state, fast to emulate
LATENCY_US = 80.0


def _s_ns(latency_us=LATENCY_US):
    return bp.service_cycles(bp.disk_params(latency_us), DEFAULT_FREQ_HZ) * 1e9 / DEFAULT_FREQ_HZ


@pytest.fixture(scope='module')
def cpi(userland):
    """Cycles of one COMPUTE_ITERS iteration (12 with gcc 12 -O2: an xorshift round and the loop)."""
    c = bp.cycles_per_iter()
    assert 3 <= c <= 100
    return c


def _iters_for(ratio, cpi, latency_us=LATENCY_US):
    """COMPUTE_ITERS making the compute per page `ratio` times S."""
    s_cycles = bp.service_cycles(bp.disk_params(latency_us), DEFAULT_FREQ_HZ)
    return int(round(ratio * s_cycles / cpi))


def test_without_prefetch_time_is_compute_plus_io(userland, cpi):
    """(a) D = 0: nothing overlaps, T(0) ~ C + N * S, and with little compute the I/O wait is most of it."""
    iters = _iters_for(0.05, cpi)
    disk = bp.disk_params(LATENCY_US)
    cold = bp.loop(N, iters, 0, disk=disk)
    warm = bp.loop(N, iters, 0, disk=disk, warm=True)
    s = _s_ns()
    t0, c = cold['elapsed_ns'], warm['elapsed_ns']
    serial = c + N * s
    # above the sum only by the kernel's major-fault path (~2 us a page against S = 81 us)
    assert serial <= t0 <= 1.05 * serial, (t0, c, serial)
    assert (t0 - c) / t0 > 0.9                               # I/O wait dominates
    assert cold.stats['major_faults'] >= N and cold.stats['disk_reads'] >= N     # one read per page
    assert cold.stats['iowait_cycles'] * 1e9 / DEFAULT_FREQ_HZ >= N * s
    assert warm.stats['disk_reads'] < N                      # the warm run really did no per-page I/O


@pytest.fixture(scope='module')
def comparable(cpi):
    """Compute per page = S (I/O and compute comparable): warm C, cold T(0), cold T(4)."""
    iters = _iters_for(1.0, cpi)
    disk = bp.disk_params(LATENCY_US)
    return dict(iters=iters,
                c=bp.loop(N, iters, 0, disk=disk, warm=True)['elapsed_ns'],
                t0=bp.loop(N, iters, 0, disk=disk)['elapsed_ns'],
                d4=bp.loop(N, iters, 4, disk=disk))


def test_prefetch_ahead_reaches_the_lower_bound(userland, comparable):
    """(b) D = 4 with compute ~ S: within 10% of LB = max(S + C, IO + c); without prefetch ~2x LB."""
    s = _s_ns()
    k, io, lb = bp.lower_bound(N, s, bp.disk_params().queue_depth, 4, comparable['c'])
    assert k == 5 and lb == pytest.approx(s + comparable['c'])        # compute-bound case
    run = comparable['d4']
    t = run['elapsed_ns']
    assert t <= 1.10 * lb, (t, lb)
    assert comparable['t0'] >= 1.7 * lb                                 # prefetching is what closed the gap
    assert run['prefetch_calls'] == N and run['prefetch_fail'] == N    # every page was cold when prefetched
    assert run.stats['nowait_faults'] >= N


def test_prefetch_that_waits_does_not_reach_the_bound(userland, comparable):
    """With the NOWAIT rule switched off, prefetch_page waits for each read and the case above fails."""
    import faultlab.kernel.arch.traps as traps          # where handle_page_fault applies the rule
    orig = traps.FAULT_FLAG_RETRY_NOWAIT
    try:
        traps.FAULT_FLAG_RETRY_NOWAIT = 0
        run = bp.loop(N, comparable['iters'], 4, disk=bp.disk_params(LATENCY_US))
    finally:
        traps.FAULT_FLAG_RETRY_NOWAIT = orig
    _, _, lb = bp.lower_bound(N, _s_ns(), bp.disk_params().queue_depth, 4, comparable['c'])
    assert run['elapsed_ns'] > 1.5 * lb


def _stats(case, reps):
    return bp.run_bench(['--cost-loop', case, reps]).stats


def test_prefetch_of_present_page_is_a_few_instructions_and_no_trap(userland):
    """(c) A present page: call + push/mov/xor/movzx/pop + ret = 7 instructions, 8 cycles in the model
    (1 per instruction + 1 for movzx's memory operand). The rdtsc delta around the call measured 11:
    gcc puts 3 cycles of register moves between the two reads. A trap adds at least the cost table's
    exception_entry + exception_exit, so a call that costs less took no trap and one that traps costs
    at least that; the counters confirm it: 800 more calls, not one more fault and not one more kernel
    cycle."""
    costs = CostTable().costs
    trap = costs['exception_entry'] + costs['exception_exit']
    one = bp.run_bench(['--cost'])
    assert one['cost_present_ret'] == 0
    assert one['cost_present_cycles'] < 20 < trap
    assert one['cost_noop_cycles'] <= one['cost_present_cycles']
    # the other cases do trap (and return -1 unless the page could be mapped without waiting)
    assert one['cost_cached_ret'] == 0 and one['cost_cached_cycles'] >= trap
    assert one['cost_cold_ret'] == -1 and one['cost_cold_cycles'] > one['cost_cached_cycles']
    assert one['cost_null_ret'] == -1 and one['cost_null_cycles'] >= trap

    lo, hi = 100, 900                       # same number of digits: the runs differ only by the calls
    p_lo, p_hi = _stats('present', lo), _stats('present', hi)
    n_lo, n_hi = _stats('noop', lo), _stats('noop', hi)
    for key in ('page_faults', 'vdso_fixups', 'nowait_faults', 'kernel_cycles', 'syscalls'):
        assert p_hi[key] == p_lo[key], key
    per_call = (p_hi['instructions'] - p_lo['instructions'] - (n_hi['instructions'] - n_lo['instructions'])) \
        / (hi - lo) + bp.NOOP_CALL_INSNS
    assert per_call == 7


def _host_vdso_has_prefetch_page():
    try:
        with open('/proc/self/maps') as f:
            line = next((ln for ln in f if ln.rstrip().endswith('[vdso]')), None)
        if line is None:
            return False
        start, end = (int(x, 16) for x in line.split()[0].split('-'))
        with open('/proc/self/mem', 'rb') as m:
            m.seek(start)
            return b'prefetch_page\0' in m.read(end - start)
    except OSError:
        return False


def test_native_run_reports_no_prefetch_page(userland, tmp_path):
    """(d) Natively (no __vdso_prefetch_page in the host vDSO) every mode prints `no prefetch_page`, exit 0."""
    if _host_vdso_has_prefetch_page():
        pytest.skip('the host vDSO has prefetch_page')
    prog = os.path.join(userland, 'prefetch_bench')
    f = tmp_path / 'bench.dat'
    for args in ([str(f), '4', '10', '1'], ['--cost', str(tmp_path)], ['--cost-loop', 'present', '10', str(tmp_path)]):
        code, out, _ = run_native(prog, args)
        assert (code, out) == (0, b'no prefetch_page\n'), args
    assert not f.exists() and not list(tmp_path.iterdir())          # gave up before touching any file
