"""Context switches are counted per simulated CPU and per task, as Linux's __schedule counts them.

userland/src/ctxswitch.c prints each thread's switches (getrusage RUSAGE_THREAD, and the main thread's
/proc/self/status lines) over N rounds of a pipe ping-pong or N sleeps; natively it runs pinned to one
CPU. A CPU moving the host core to another CPU's task is no switch of either task."""
import os
import subprocess

import pytest

from conftest import run_guest, run_native_one_cpu, word_fields


@pytest.mark.parametrize('mode', ['pingpong', 'sleep'])
def test_each_task_counts_its_switches_out_as_natively(userland, mode):
    prog = os.path.join(userland, 'ctxswitch')
    n = 30
    native = word_fields(run_native_one_cpu(prog, [mode, str(n)]))
    for cpus in (1, 2):
        r = run_guest(prog, [mode, str(n)], cpus=cpus)
        assert r.exit_code == 0, r.stderr
        got = word_fields(r.stdout.decode())
        # every round each thread sleeps in read() (or nanosleep) once: one switch out of its CPU
        for who in got:
            if who != mode:
                assert got[who] == n, (cpus, got)
                # natively a wake-up may preempt the waker at either end of the run: one more or less
                assert abs(native[who] - got[who]) <= 3, (native, got)


def test_switches_by_task_and_by_cpu(userland):
    """Two more rounds of ping-pong add two task switches (one per thread), whatever the CPUs. On one
    CPU each is a direct switch to the other thread (two switches of the CPU); on two CPUs each thread
    has a CPU of its own, which goes idle and back at each sleep (four switches of the CPUs)."""
    prog = os.path.join(userland, 'ctxswitch')
    for cpus, per_round in ((1, 2), (2, 4)):
        a = run_guest(prog, ['pingpong', '10'], cpus=cpus).stats
        b = run_guest(prog, ['pingpong', '30'], cpus=cpus).stats
        assert b['context_switches'] - a['context_switches'] == 2 * 20
        by_cpu = sum(c['context_switches'] for c in b['cpus']) - sum(c['context_switches'] for c in a['cpus'])
        assert by_cpu == per_round * 20, (cpus, by_cpu)


def _perf_switches(argv):
    """perf stat -e context-switches of a native run pinned to one CPU, or None without a usable perf."""
    cpu = min(os.sched_getaffinity(0))
    try:
        p = subprocess.run(['perf', 'stat', '-x,', '-e', 'context-switches'] + argv, capture_output=True,
                           timeout=60, preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in p.stderr.decode().splitlines():
        f = line.split(',')
        if p.returncode == 0 and len(f) > 2 and f[2] == 'context-switches' and f[0].isdigit():
            return int(f[0])
    return None


def test_a_userfaultfd_round_trip_is_two_switches_as_perf_counts_it(userland):
    """A fault resolved by a handler thread: the faulting thread sleeps once and the handler sleeps in
    poll() once, two tasks switched out per fault on 1 CPU and on 2 (each CPU going idle and back there
    is no extra switch of a task), as perf's context-switches event counts uffd_bench natively."""
    from faultlab.bench import uffd
    for cpus in (1, 2):
        row = uffd.fault_row('missing', 'uffd', cpus, 4)
        assert row['ctxsw'] == 2.0 and row['wakeups'] == 1.0, (cpus, row)
    prog = os.path.join(userland, 'uffd_bench')
    # natively other processes' preemptions only add switches: the fewest of a few runs
    a = [_perf_switches([prog, 'fault', 'missing', 'uffd', '200', '100']) for _ in range(3)]
    b = [_perf_switches([prog, 'fault', 'missing', 'uffd', '200', '200']) for _ in range(3)]
    if None in a + b:
        pytest.skip('perf stat -e context-switches does not work here')
    assert abs((min(b) - min(a)) / 100 - 2.0) < 0.2, (a, b)
