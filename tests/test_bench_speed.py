"""`faultlab bench speed` (emu/bench/speed.py) at a small size; the peers are faked absent or present."""
import io
import shutil
import sys

from faultlab.bench import speed as bench
from faultlab.bench import speed_goals as goals


def _small(**kw):
    out = io.StringIO()
    fig = bench.run_bench(reps=1, scale=1, small=1, big=2, out=out, **kw)
    return fig, out.getvalue()


def test_missing_peers_are_skipped_with_a_note(userland, monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, 'which', lambda name, *a, **k: None if name == 'qemu-x86_64' else real_which(name, *a, **k))
    monkeypatch.setitem(sys.modules, 'qiling', None)          # `import qiling` raises ImportError
    fig, text = _small()
    assert 'qemu-x86_64 not installed: skipped' in text
    assert 'qiling not installed: skipped' in text
    assert set(fig['rows']) == {'native', 'faultlab'}
    # every pagetouch page beyond the small run is one minor fault under faultlab
    assert fig['pages'] == 256 and abs(fig['faults'] - fig['pages']) <= 2
    assert fig['insns'] > 10_000_000
    lines = {l.split()[0]: l for l in text.splitlines() if ' M/s ' in l}      # the table rows
    assert 'same as native' in lines['native'] and 'same as native' in lines['faultlab']
    assert 'compute >= 100 M insn/s with exact counting' in text
    assert 'faster than Qiling' not in text           # no Qiling criterion without Qiling


def test_a_peer_that_prints_something_else_is_flagged(userland, monkeypatch):
    # a fake "peer" that runs the program natively but with a different argument: its output differs
    monkeypatch.setattr(bench, 'find_peers', lambda progs, q, ql: (
        {'fake': lambda prog, args: bench.run_native(prog, [str(int(args[0]) + 1)])}, {}))
    fig, text = _small()
    fake = [l for l in text.splitlines() if l.startswith('  fake') and ' M/s ' in l]
    assert fake and 'DIFFERS from native' in fake[0]
    assert 'faultlab / fake' in text


def test_speed_exits_1_when_a_printed_check_fails_and_writes_its_rows(userland, monkeypatch, tmp_path):
    """main() prints the table (run_bench) and returns 1 when a criterion it printed was not met; the
    runners' rows go to --csv."""
    rows = [{'runner': 'faultlab', 'compute_minsn_per_s_cpu': 1.0}]
    for ok, status in ((True, 0), (False, 1)):
        monkeypatch.setattr(bench, 'run_bench', lambda **kw: {'checks': [('compute', ok)], 'records': list(rows)})
        monkeypatch.setattr(bench, 'single_step_check', lambda prog: (5, 5))
        monkeypatch.setattr(bench, 'run_goals', lambda fig, quick, peers: [('goal 1', True)])
        out = tmp_path / ('rows%d.csv' % status)
        assert bench.main(quick=True, csv=str(out)) == status
        assert out.read_text().splitlines() == ['runner,compute_minsn_per_s_cpu', 'faultlab,1.0']


def test_goals_are_printed_each_with_its_verdict_and_a_goal_not_met_fails(userland, monkeypatch):
    """run_goals at tiny sizes prints goals 1 to 6, each measured (or skipped, saying why) with met / NOT MET;
    goal 2 is not run with --quick, goal 4 is skipped without QEMU; a goal judged NOT MET is a failed check."""
    monkeypatch.setattr(goals.Sizes, '__init__', _tiny_sizes)
    out = io.StringIO()
    judged = goals.run_goals({}, True, {'qemu': None, 'qiling': False}, out)
    lines = [l for l in out.getvalue().splitlines() if l[:5].strip()[:1].isdigit()]
    assert [l.split('.')[0].strip() for l in lines] == ['1', '2', '3', '4', '5', '6']
    for line in lines:
        assert line.endswith(('  met', '  NOT MET', '  skipped')), line
    assert 'not run with --quick' in lines[1] and 'skipped' in lines[3]
    assert 'simulated in' in lines[0] and 'swap-ins' in lines[2] and 'peak RSS' in lines[5]
    assert [name for name, _ok in judged] == ['goal 1', 'goal 3', 'goal 5', 'goal 6']
    # a host where swapping is never fast enough: goal 3 is NOT MET and judged so
    monkeypatch.setattr(goals, 'SWAP_PAIR_US', 0.0)
    ok, text = goals.goal_swap(goals.Sizes(True))
    assert ok is False and 'same as native' in text


def _tiny_sizes(self, quick):
    self.quick = quick
    self.ebizzy_ms = 1
    self.swap_ram_mib = 4
    self.mem_ram, self.mem_mib = '16M', 24
    self.reps = 1
