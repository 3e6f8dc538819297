"""The faultlab command line: output passthrough, exit status, --stats, --stats-json, mounts."""
import json
import os
import subprocess
import sys

from conftest import ROOT, DATA


def faultlab(*args):
    return subprocess.run([sys.executable, '-m', 'faultlab.cli'] + list(args), capture_output=True, cwd=ROOT,
                          timeout=300)


def test_stats_block_and_json(userland, tmp_path):
    out = tmp_path / 's.json'
    p = faultlab('run', '--stats', '--stats-json', str(out), os.path.join(userland, 'hello'), 'x')
    assert p.returncode == 0
    assert p.stdout.startswith(b'hello, world\n')
    err = p.stderr.decode()
    for word in ('instructions', 'cycles', 'page-faults', 'pagecache-hits', 'disk-reads', 'seconds simulated'):
        assert word in err
    s = json.loads(out.read_text())
    assert s['exit_code'] == 0
    assert s['instructions'] > 1000 and s['cycles'] >= s['instructions']
    assert s['page_faults'] == s['minor_faults'] + s['major_faults'] > 0
    assert s['disk_reads'] > 0 and s['disk_read_bytes'] % 4096 == 0
    assert s['sim_seconds'] == s['cycles'] / s['freq_hz']


def test_exit_status_passthrough(userland):
    p = faultlab('run', os.path.join(userland, 'filemap'), '/no/such/file')
    assert p.returncode != 0
    native = subprocess.run([os.path.join(userland, 'filemap'), '/no/such/file'], capture_output=True)
    assert p.returncode == native.returncode


def test_read_only_mount_refuses_writes_rw_mount_allows(userland, tmp_path):
    (tmp_path / 'keep').write_text('x')
    ro = faultlab('run', '--mount', '%s:/work' % tmp_path, os.path.join(userland, 'fileio'), '/work')
    assert ro.returncode != 0
    assert sorted(os.listdir(tmp_path)) == ['keep']
    rw = faultlab('run', '--mount', '%s:/work:rw' % tmp_path, os.path.join(userland, 'fileio'), '/work')
    assert rw.returncode == 0, rw.stdout + rw.stderr
    assert rw.stdout.endswith(b'all ok\n')
    assert sorted(os.listdir(tmp_path)) == ['keep']       # fileio removes what it creates


def test_costs_override_changes_cycles(userland, tmp_path):
    f = tmp_path / 'costs.txt'
    f.write_text('page_zero = 4000  # a slow machine\n')
    base = tmp_path / 'a.json'
    slow = tmp_path / 'b.json'
    faultlab('run', '--stats-json', str(base), os.path.join(userland, 'pagetouch'), '1')
    faultlab('run', '--costs', str(f), '--stats-json', str(slow), os.path.join(userland, 'pagetouch'), '1')
    a, b = json.loads(base.read_text()), json.loads(slow.read_text())
    from faultlab.core.cycles import CostTable
    assert b['kernel_cycles'] - a['kernel_cycles'] == (4000 - CostTable().page_zero) * a['pages_zeroed']
    assert a['instructions'] == b['instructions']


def test_costs_listing():
    p = faultlab('costs')
    assert p.returncode == 0 and b'page_zero' in p.stdout and b'freq_hz' in p.stdout


def test_platform_vm_replaces_its_costs_and_says_why(tmp_path):
    from faultlab.core.cycles import PLATFORMS, CostTable
    metal, vm = CostTable(), CostTable(platform='vm')
    assert set(PLATFORMS['vm']) == {'rwsem_wake', 'ipi_wake_idle'}
    for name in PLATFORMS['vm']:
        assert vm.costs[name] == PLATFORMS['vm'][name][0] != metal.costs[name]
    assert all(vm.costs[k] == metal.costs[k] for k in metal.costs if k not in PLATFORMS['vm'])
    f = tmp_path / 'c.txt'
    f.write_text('page_zero = 999\n')
    both = CostTable.from_file(str(f), 'vm')         # a file's overrides go on top of the platform's table
    assert both.page_zero == 999 and both.rwsem_wake == vm.rwsem_wake
    p = faultlab('costs', '--platform', 'vm')
    line = [ln for ln in p.stdout.decode().splitlines() if ln.startswith('rwsem_wake')][0]
    assert p.returncode == 0 and str(vm.rwsem_wake) in line and 'KVM guest' in line
    bad = faultlab('costs', '--platform', 'cloud')
    assert bad.returncode != 0 and b'invalid choice' in bad.stderr and b'Traceback' not in bad.stderr
