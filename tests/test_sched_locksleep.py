"""A task that sleeps on mmap_lock leaves its CPU to a runnable task (rwsem_down_read_slowpath and
rwsem_down_write_slowpath call schedule(): the CPU picks the next task of its run queue and halts only
when there is none). userland/src/locksleep.c: eight threads map, write and unmap a page in a loop (they
sleep on mmap_lock behind each other's mmap/munmap) beside two threads that only count and never sleep.
On 2 CPUs at least two tasks are always runnable, so from the start of the loops on, no CPU idles
however long the faulters sleep on the lock: the idle time of a longer run is the same as that of a
shorter one (start-up and exit) while the lock waits grow with the run. (On bare metal the writers
mostly spin, on the vm platform they sleep: there a halting CPU idled as long as its task waited.)"""
import os

import pytest

from conftest import run_guest
from faultlab.core.cycles import CostTable


def _run(userland, ms, platform, faulters):
    r = run_guest(os.path.join(userland, 'locksleep'), [str(faulters), '2', str(ms)], cpus=2, spf=False,
                  costs=CostTable(platform=platform))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(b'records ')
    return r.stats


# bare metal: the writers mostly spin, so more faulters to make the sleeps measurable (1% of the CPU time)
@pytest.mark.parametrize('platform,faulters,min_wait', [('bare-metal', 32, 0.01), ('vm', 8, 0.05)])
def test_a_cpu_never_idles_while_a_task_is_runnable_even_when_its_task_sleeps_on_mmap_lock(userland, platform,
                                                                                          faulters, min_wait):
    short, long = _run(userland, 2, platform, faulters), _run(userland, 6, platform, faulters)
    elapsed = 2 * (long['cycles'] - short['cycles'])            # CPU time of the extra 4 ms, both CPUs
    waited = long['mmap_lock_wait_cycles'] - short['mmap_lock_wait_cycles']
    idled = long['idle_cycles'] - short['idle_cycles']
    assert waited > min_wait * elapsed, (waited, elapsed)       # the faulters did sleep on the lock
    assert idled < 0.1 * waited and idled < 0.02 * elapsed, (idled, waited, elapsed)
