"""getrusage counts context switches as kernel/sys.c does: RUSAGE_THREAD the calling thread's alone,
RUSAGE_SELF the sum over every thread of the process, ended threads included (__exit_signal adds
their counts to the signal struct). userland/src/rusagesum.c: a peer thread sleeps in read() N times
and exits; the main thread then compares RUSAGE_SELF with its own RUSAGE_THREAD and the peer's."""
import os
import subprocess

from conftest import run_guest

N = 30


def _native(program, args):
    cpu = min(os.sched_getaffinity(0))
    p = subprocess.run([program] + args, capture_output=True, timeout=60,
                       preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def _fields(line):
    words = line.split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}


def test_rusage_self_sums_the_threads_rusage_thread_is_the_callers(userland):
    prog = os.path.join(userland, 'rusagesum')
    native = _fields(_native(prog, [str(N)]))
    # the rule, natively: RUSAGE_SELF is at least the main thread's plus the ended peer's (the peer may
    # switch once more between its last getrusage and its exit)
    assert native['peer'] >= N - 2 and native['self'] >= native['main'] + native['peer']
    for cpus in (1, 2):
        r = run_guest(prog, [str(N)], cpus=cpus)
        assert r.exit_code == 0, r.stderr
        got = _fields(r.stdout.decode())
        assert got['peer'] >= N - 2, got                      # RUSAGE_THREAD: the peer's own sleeps
        assert got['main'] < got['self'], got              # RUSAGE_SELF is more than the caller's
        assert native['main'] + native['peer'] <= native['self'] <= native['main'] + native['peer'] + 3
        assert got['main'] + got['peer'] <= got['self'] <= got['main'] + got['peer'] + 3, (cpus, got, native)
