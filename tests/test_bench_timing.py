"""faultlab bench timing: its checks, and a short run of two kernels natively and simulated."""
import json
import os
import subprocess
import sys

from faultlab.bench import timing
from faultlab.core.uarch.profiles import PROFILES


def test_parse_reads_only_the_kernel_line():
    assert timing.parse('intloop ns 1234 check 99\n', 'intloop') == (1234.0, '99')
    assert timing.parse('fp ns 1234 check 99\n', 'intloop') is None
    assert timing.parse('intloop ns x check 99\n', 'intloop') is None
    assert timing.parse('', 'intloop') is None


def test_order_differences_ignore_kernels_closer_than_the_tolerance():
    native = {'a': 100.0, 'b': 110.0, 'c': 200.0}
    # a and b swap (10% apart natively: within the tolerance), c stays the slowest
    assert timing.order_differences(native, {'a': 120.0, 'b': 100.0, 'c': 300.0}, list(native)) == []
    # c simulated faster than a: a is faster natively by 2x
    assert timing.order_differences(native, {'a': 120.0, 'b': 100.0, 'c': 110.0}, list(native)) == [('a', 'c')]


def test_checks_fail_when_a_core_kernel_is_off(monkeypatch):
    lines = []
    native = {'intloop': 100.0, 'fp': 300.0, 'chase_dram': 1000.0}
    good = {'intloop': 110.0, 'fp': 280.0, 'chase_dram': 10.0}
    plats = [('calibrated', 'x')]
    assert timing._checks(native, {'calibrated': good}, plats, lines.append) == []
    assert any('memory kernels (chase_dram)' in s for s in lines)       # shown, not checked
    bad = dict(good, fp=150.0)            # 0.5x: off, and now faster than... still slower than intloop
    failures = timing._checks(native, {'calibrated': bad}, plats, lines.append)
    assert failures == ['kernels off by more than 25%']
    swapped = dict(good, fp=90.0)
    failures = timing._checks(native, {'calibrated': swapped}, plats, lines.append)
    assert 'order of kernels by time differs' in failures


def test_short_run(tmp_path, userland, monkeypatch):
    prof = tmp_path / 'host.json'
    prof.write_text(json.dumps(dict(PROFILES['zen3'], base='zen3')))
    monkeypatch.setattr(timing, 'KERNELS', {k: timing.KERNELS[k] for k in ('chase_l1', 'syscall')})
    lines = []
    status = timing.main(quick=True, profile=str(prof), out=lines.append, json=str(tmp_path / 'rows.jsonl'))
    text = '\n'.join(lines)
    assert status in (0, 1) and (status == 1) == ('FAILED' in text), text
    rows = [json.loads(x) for x in open(tmp_path / 'rows.jsonl')]
    assert [r['kernel'] for r in rows] == ['chase_l1', 'syscall']
    for r in rows:
        assert r['native_ms'] > 0 and all(r[p + '_ms'] > 0 for p in ('bare-metal', 'generic', 'calibrated'))
    # one L1 load latency per step of the chase: the model's, within the run's own figures
    chase = rows[0]
    steps = 2_000_000
    cycles = chase['calibrated_ms'] * 1e-3 * PROFILES['zen3']['freq_hz'] / steps
    assert abs(cycles - PROFILES['zen3']['latency']['load']) < 0.5
    assert 'kernel kernels (syscall)' in text


def test_bad_profile_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'bench', 'timing', '--profile',
                        str(tmp_path / 'missing.json')], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
