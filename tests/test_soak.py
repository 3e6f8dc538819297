"""The option-combination soak: userland programs under random option combinations end as the default run."""
import pytest

from faultlab.bench import soak as bench_soak


def test_judge_flags_what_it_must():
    """The verdict itself: a host signal, an internal error and a different output all fail."""
    prog = bench_soak.Program('hello')
    base = bench_soak.Outcome(0, b'out\n', b'', 1.0)
    v = bench_soak.Variant()
    assert bench_soak.judge(prog, base, base, v) is None
    assert 'host signal 11' in bench_soak.judge(prog, base, bench_soak.Outcome(-11, b'', b'', 1.0), v)
    assert 'internal error' in bench_soak.judge(
        prog, base, bench_soak.Outcome(70, b'', b'faultlab: internal error: KeyError: 3 (at x.py:1)\n', 1.0), v)
    assert 'differs' in bench_soak.judge(prog, base, bench_soak.Outcome(0, b'other\n', b'', 1.0), v)
    assert 'exit status' in bench_soak.judge(prog, base, bench_soak.Outcome(1, b'out\n', b'', 1.0), v)
    oom = bench_soak.Outcome(137, b'', b'faultlab: x[1] out of memory: killed x[1] (page fault)\n', 1.0)
    assert bench_soak.judge(prog, base, oom, bench_soak.Variant(small_ram=True)) is None
    assert bench_soak.judge(prog, base, oom, v) is not None
    rates = bench_soak.Program('pf23', output='status')
    assert bench_soak.judge(rates, bench_soak.Outcome(0, b'ops 12\n5 ops/s\n', b'', 1),
                            bench_soak.Outcome(0, b'ops 13\n7 ops/s\n', b'', 1), v) is None


def test_soak_quick(capsys):
    """A dozen random combinations (every program once at most) end as their default runs."""
    runs, failures = bench_soak.soak(12, seed=2026)
    assert runs == 12
    assert failures == [], '\n'.join('%s %s: %s [%s]' % (p.name, ' '.join(p.args), r, v.describe())
                                     for p, v, r in failures)


@pytest.mark.slow
def test_soak_long():
    runs, failures = bench_soak.soak(400, seed=7)
    assert failures == [], '\n'.join('%s: %s [%s]' % (p.name, r, v.describe()) for p, v, r in failures)
