"""The faultlab command line: output passthrough, exit status, --stats, --stats-json, mounts."""
import importlib.metadata
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
    assert {'rwsem_wake', 'ipi_wake_idle', 'tlb_shootdown_cpu', 'exception_entry'} <= set(PLATFORMS['vm'])
    for name in PLATFORMS['vm']:
        assert vm.costs[name] == PLATFORMS['vm'][name][0] != metal.costs[name]
        assert 'KVM guest' in PLATFORMS['vm'][name][1]          # each says why the guest differs
    assert all(vm.costs[k] == metal.costs[k] for k in metal.costs if k not in PLATFORMS['vm'])
    f = tmp_path / 'c.txt'
    f.write_text('page_zero = 999\n')
    both = CostTable.from_file(str(f), 'vm')         # a file's overrides go on top of the platform's table
    assert both.page_zero == 999 and both.rwsem_wake == vm.rwsem_wake
    p = faultlab('costs', '--platform', 'vm')
    line = [ln for ln in p.stdout.decode().splitlines() if ln.startswith('rwsem_wake')][0]
    assert p.returncode == 0 and str(vm.rwsem_wake) in line and 'KVM guest' in line
    bad = faultlab('costs', '--platform', 'cloud')
    assert bad.returncode == 2 and b'unknown platform' in bad.stderr and b'Traceback' not in bad.stderr


def test_version_is_the_installed_distributions():
    p = faultlab('--version')
    assert p.returncode == 0 and p.stdout.decode() == 'faultlab %s\n' % importlib.metadata.version('faultlab')


BENCH_OPTIONS = {'speed': {'--quick', '--reps'}, 'prefetch': {'--quick'}, 'populate': {'--quick', '--size'},
                 'spf': {'--quick'}, 'elf-fuzz': {'--quick', '--count', '--seed'},
                 'soak': {'--quick', '--count', '--seed'}}


def test_each_bench_kind_has_its_own_help_and_options():
    every = set().union(*BENCH_OPTIONS.values())
    helps = set()
    for kind, options in BENCH_OPTIONS.items():
        p = faultlab('bench', kind, '--help')
        assert p.returncode == 0, p.stderr
        text = p.stdout.decode()
        assert text.startswith('usage: faultlab bench %s ' % kind)
        assert {o for o in every if o in text} == options, (kind, text)
        helps.add(text)
    assert len(helps) == len(BENCH_OPTIONS)
    p = faultlab('bench', 'populate', '--reps', '3')          # speed's option is not populate's
    err = p.stderr.decode()
    assert p.returncode == 2 and err.count('\n') == 1 and '--reps' in err and 'bench populate --help' in err


def test_demo_says_what_to_look_at_before_each_command():
    lines = open(os.path.join(ROOT, 'Makefile')).read().split('\ndemo:')[1].split('\n\n')[0].splitlines()[1:]
    runs = [i for i, ln in enumerate(lines) if '/faultlab ' in ln]
    assert runs
    for i in runs:
        assert i >= 2 and all(ln.strip().startswith('@echo ') for ln in lines[i - 2:i]), lines


def test_userland_programs_build_without_gcc_warnings(userland):
    """The userland's own flags (userland/Makefile) on pipes.c, which gcc used to warn about three times."""
    p = subprocess.run(['gcc', '-std=gnu11', '-O2', '-g', '-Wall', '-c', '-o', os.devnull,
                        os.path.join(ROOT, 'userland', 'src', 'pipes.c')], capture_output=True)
    assert p.returncode == 0 and p.stderr == b'', p.stderr.decode()
