"""getrusage counts context switches as kernel/sys.c does: RUSAGE_THREAD the calling thread's alone,
RUSAGE_SELF the sum over every thread of the process, ended threads included (__exit_signal adds
their counts to the signal struct). userland/src/rusagesum.c: a peer thread sleeps in read() N times
and exits; the main thread then compares RUSAGE_SELF with its own RUSAGE_THREAD and the peer's."""
import os

from conftest import run_guest, run_native_one_cpu, word_fields

N = 30


def test_rusage_self_sums_the_threads_rusage_thread_is_the_callers(userland):
    prog = os.path.join(userland, 'rusagesum')
    native = word_fields(run_native_one_cpu(prog, [str(N)]))
    # the rule, natively: RUSAGE_SELF is at least the main thread's plus the ended peer's (the peer may
    # switch once more between its last getrusage and its exit)
    assert native['peer'] >= N - 2 and native['self'] >= native['main'] + native['peer']
    for cpus in (1, 2):
        r = run_guest(prog, [str(N)], cpus=cpus)
        assert r.exit_code == 0, r.stderr
        got = word_fields(r.stdout.decode())
        assert got['peer'] >= N - 2, got                      # RUSAGE_THREAD: the peer's own sleeps
        assert got['main'] < got['self'], got              # RUSAGE_SELF is more than the caller's
        assert native['main'] + native['peer'] <= native['self'] <= native['main'] + native['peer'] + 3
        assert got['main'] + got['peer'] <= got['self'] <= got['main'] + got['peer'] + 3, (cpus, got, native)
