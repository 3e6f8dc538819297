"""The native anonymous-fault hook (emu/core/fastfault.py, kernel/fastfault.py) changes nothing but host speed:
every run must give the same output, instruction count, cycles, fault counts, per-handler breakdown and
memory use with it as without it."""
import pytest

import os

from conftest import run_guest

CASES = [
    ('pagetouch', ['8']),            # sequential writes: the hook's case, across PTE-table boundaries
    ('pagetouch', ['8', 'r']),       # reads map the zero page: never the hook's case
    ('oom', []),                     # reclaim and the OOM killer while faulting
    ('forktest', []),                # fork: two tasks, the hook stays off while both live
    ('mmtest', []),                  # mmap/munmap/mprotect/mremap between faults
    ('compute', ['1']),
]


def _observable(g):
    s = g.result.stats
    k = g.machine.kernel
    return {
        'stdout': g.stdout, 'exit': g.result.exit_code,
        'instructions': s['instructions'], 'cycles': s['cycles'],
        'minor_faults': s['minor_faults'], 'major_faults': s['major_faults'],
        'breakdown_counts': {h: agg['count'] for h, agg in k.fault_breakdown.items()},
        'breakdown_cycles': sum(agg['cycles'] for agg in k.fault_breakdown.values()),
        'frames_in_use': k.frames.nr_allocated, 'peak_frames': k.frames.peak_allocated,
    }


@pytest.mark.parametrize('prog,args', CASES, ids=lambda v: v if isinstance(v, str) else ' '.join(v))
def test_same_results_with_and_without_the_native_hook(userland, prog, args):
    path = os.path.join(userland, prog)
    off = run_guest(path, args, native_faults=False, ram=128 << 20)
    on = run_guest(path, args, native_faults=True, ram=128 << 20)
    assert off.machine.kernel.fastfaults.handled == 0
    assert _observable(on) == _observable(off)


@pytest.mark.parametrize('prog,args,cpus', [('pagetouch', ['8'], 4), ('forktest', [], 2), ('ebizzy', ['4', '1', '8', '0'], 2)],
                         ids=lambda v: v if isinstance(v, str) else ' '.join(v) if isinstance(v, list) else '%d cpus' % v)
def test_same_results_on_several_cpus(userland, prog, args, cpus):
    """A lone task on a machine of several CPUs gets the hook; threads and forked children stop it."""
    path = os.path.join(userland, prog)
    off = run_guest(path, args, native_faults=False, ram=128 << 20, cpus=cpus)
    on = run_guest(path, args, native_faults=True, ram=128 << 20, cpus=cpus)
    assert _observable(on) == _observable(off)
    rqs = [(rq.minor_faults, rq.major_faults, rq.clock()) for rq in on.machine.kernel.sched.totals()]
    assert rqs == [(rq.minor_faults, rq.major_faults, rq.clock()) for rq in off.machine.kernel.sched.totals()]
    if prog == 'pagetouch':
        assert on.machine.kernel.fastfaults.handled > 0.9 * 2048


def test_the_hook_takes_sequential_write_faults(userland):
    g = run_guest(os.path.join(userland, 'pagetouch'), ['8'])
    ff = g.machine.kernel.fastfaults
    faults = g.result.stats['minor_faults']
    # 2048 pages: all but the first of each pool and each new PTE table go native
    assert ff.handled > 0.9 * 2048
    assert ff.handled < faults


def test_frames_come_back_in_allocation_order(userland):
    """The pool's unused frames return so that later allocations get the same frames: the physical
    addresses a program sees (pagemap) do not depend on the hook."""
    after = []
    for native in (False, True):
        g = run_guest(os.path.join(userland, 'pagetouch'), ['3'], native_faults=native)
        frames = g.machine.kernel.frames
        after.append((frames.nr_free, frames.nr_allocated, [frames.alloc_page().pfn for _ in range(300)]))
    assert after[0] == after[1]


def test_not_armed_when_a_tracer_watches_every_fault(userland, tmp_path):
    from faultlab.core.cycles import CostTable
    from faultlab.machine import Machine
    from faultlab.observe.trace import ChromeTrace
    from faultlab.kernel.kernel import KernelConfig
    out = []
    m = Machine(ram=64 << 20, costs=CostTable(), config=KernelConfig(stdout=out.append))
    m.kernel.set_tracer(ChromeTrace(str(tmp_path / 't.json'), m))
    res = m.run(os.path.join(userland, 'pagetouch'), ['pagetouch', '2'], [])
    assert res.exit_code == 0
    assert m.kernel.fastfaults.handled == 0
    assert res.stats['minor_faults'] > 512
