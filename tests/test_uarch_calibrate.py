"""faultlab calibrate on this host: a profile --platform FILE loads, with figures every x86-64 core has."""
import json
import subprocess
import sys

from faultlab.core.cycles import CostTable


def test_calibrate_writes_a_loadable_profile(tmp_path, userland):
    out = tmp_path / 'host.json'
    r = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'calibrate', '--quick', '-o', str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'profile written to' in r.stdout
    prof = json.loads(out.read_text())
    costs = CostTable(platform=str(out))
    assert costs.uarch['name'] == 'calibrated' and costs.freq_hz == prof['freq_hz']
    # the clock is the add chain's: a few GHz on any machine this runs on
    assert 0.5e9 < prof['freq_hz'] < 8e9
    lat = prof['latency']
    # imul r64 has a latency of 3 cycles on every x86-64 core of the last 15 years (Agner Fog's tables;
    # 4 on some older Atoms), a load from L1 3 to 5 (Skylake 4-5, Zen 4): loose bounds for a shared host
    assert 2 <= lat['imul'] <= 6 and 2 <= lat['load'] <= 8
    assert len(prof['ports']['alu']) >= 2 and len(prof['ports']['load']) >= 1
    assert all(k in prof['sources'] for k in ('freq_hz', 'latency', 'ports'))


def test_calibrate_bad_output_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'calibrate', '--quick', '-o',
                        str(tmp_path / 'no' / 'such' / 'dir.json')], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
