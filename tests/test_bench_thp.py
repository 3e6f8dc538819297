"""faultlab bench thp (emu/bench/thp.py): thp_bench under faultlab with THP never / always and a
khugepaged collapse, the checks it prints, and a check that fails making the command exit 1."""
import pytest

from faultlab.bench import thp as bt
from faultlab.cli import main as cli_main

MIB = 4


@pytest.fixture(scope='module')
def rows(userland):
    return {mode: bt.run_mode(mode, MIB) for mode in ('never', 'always', 'collapse')}


def test_always_faults_once_per_huge_page(rows):
    never, always = rows['never'], rows['always']
    assert never['faults'] == MIB * 256 and never['huge_kb'] == 0
    assert always['faults'] == MIB // 2 and always['huge_kb'] == MIB * 1024
    assert always['thp_fault_alloc'] == MIB // 2 and never['thp_fault_alloc'] == 0


def test_khugepaged_collapses_the_range(rows):
    r = rows['collapse']
    assert r['touched_huge_kb'] == 0 and r['faults'] == MIB * 256
    assert r['huge_kb'] == MIB * 1024
    assert r['collapsed'] == r['thp_collapse_alloc'] == MIB // 2
    assert r['copied'] - rows['never']['copied'] == MIB * 256
    assert r['khugepaged_cycles'] >= r['copy_cycles'] > 0
    assert r['faults_after'] == 0
    # simulated time: the collapse happens at the wake-up MADV_HUGEPAGE gives, within one poll
    assert 0 < r['collapse_ns'] < 100e6


def test_runs_are_deterministic(rows):
    again = bt.run_mode('collapse', MIB)
    assert again == rows['collapse']


def test_checks_fail_on_the_wrong_mechanism(rows):
    assert all(ok for _what, ok in bt.checks(list(rows.values()), MIB))
    # 'always' that faulted 4 KiB at a time (as never does) fails the per-2 MiB and 512x checks
    wrong = dict(rows['never'], mode='always')
    failed = [what for what, ok in bt.checks([rows['never'], wrong], MIB) if not ok]
    assert any('512x' in w for w in failed) and any('one fault per 2 MiB' in w for w in failed)


def test_command_exits_1_when_a_check_fails(userland, monkeypatch, capsys):
    monkeypatch.setattr(bt, 'MODES', ('never', 'always'))
    real = bt.run_mode
    # an 'always' that faults 4 KiB at a time, as 'never' does
    monkeypatch.setattr(bt, 'run_mode', lambda mode, mib, costs=None: dict(real('never', mib), mode='always')
                        if mode == 'always' else real(mode, mib))
    assert cli_main(['bench', 'thp', '--mib', '2']) == 1
    assert 'FAIL' in capsys.readouterr().out
