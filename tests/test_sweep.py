"""faultlab sweep: a 2x2x2 grid of pagetouch (MiB x r/w x CPUs) on the local pool and on a Dask LocalCluster
gives the same records; each record is what `faultlab run --stats-json` of that point says; an interrupted
sweep and an extended grid run only the points the cache lacks; a point faultlab cannot run fails alone and
is run again next time; bad specifications are one line. The points are small (about a second each)."""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from faultlab.cli import main
from faultlab.srctree import cli_command, userland_build
from faultlab.sweep.progress import SweepProgress
from faultlab.sweep.records import flatten, read_records

PAGETOUCH = os.path.join(userland_build(), 'pagetouch')
HELLO = os.path.join(userland_build(), 'hello')
GRID = ['--grid', 'mib=1,2', '--grid', 'mode=r,w', '--grid', 'cpus=1,2']
PARSE = ['--parse', r'^pages (?P<pages>\d+)$', '--parse', r'^checksum (?P<checksum>[0-9a-f]+)$']

pytestmark = pytest.mark.skipif(not os.path.exists(PAGETOUCH), reason='userland programs not built (make -C userland)')


# the cache keys' version, fixed: faultlab's sources may change between two sweeps of a test when someone is
# editing the tree (by default a changed source is a new version and nothing is taken from the cache)
ENV = dict(os.environ, FAULTLAB_SWEEP_VERSION='test-sweep-1')


def sweep(*args, timeout=600, env=ENV):
    """Run `faultlab sweep ARGS`: the CompletedProcess."""
    return subprocess.run(cli_command() + ['sweep', '--no-progress'] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env)


def summary(p):
    """(points, from the cache, run, failed) from the summary line on stderr."""
    for line in p.stderr.splitlines():
        if ' points: ' in line:
            words = line.split()
            return int(words[2]), int(words[4]), int(words[8]), int(words[10])
    raise AssertionError('no summary line: %r' % p.stderr)


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def local(tmp_path_factory):
    """The 2x2x2 grid on the local pool with -j 2: (records of the JSON lines, CSV path, cache dir)."""
    d = tmp_path_factory.mktemp('sweep')
    cache = d / 'cache'
    p = sweep('--cache', str(cache), '-j', '2', *GRID, *PARSE, '-o', str(d / 'r.jsonl'), '-o', str(d / 'r.csv'),
              '--', PAGETOUCH, '{mib}', '{mode}')
    assert p.returncode == 0, p.stderr
    assert summary(p) == (8, 0, 8, 0)
    return jsonl(d / 'r.jsonl'), d / 'r.csv', cache


def test_records_are_the_runs_of_the_grid(local, tmp_path):
    records, _csv, _cache = local
    assert [r['point'] for r in records] == list(range(8))
    # the last grid name varies fastest
    assert [(r['mib'], r['mode'], r['cpus']) for r in records[:3]] == [(1, 'r', 1), (1, 'r', 2), (1, 'w', 1)]
    for r in records:
        assert r['status'] == 'ok' and r['exit_code'] == 0 and r['error'] is None
        assert r['pages'] == 256 * r['mib']            # parsed from the guest's output
        assert r['nr_cpus'] == r['cpus']               # the option reached the machine
    # one point is exactly what a user's `faultlab run --stats-json` of it gives
    stats = tmp_path / 's.json'
    p = subprocess.run(cli_command() + ['run', '--stats-json', str(stats), '--cpus', '2', PAGETOUCH, '2', 'w'],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    want = json.loads(stats.read_text())
    rec = next(r for r in records if (r['mib'], r['mode'], r['cpus']) == (2, 'w', 2))
    assert rec['stats.cpus'] == want.pop('cpus')       # the grid's `cpus` took the per-CPU counters' name
    assert {k: rec[k] for k in want if k not in ('exit_code', 'killed_by')} == \
        {k: v for k, v in want.items() if k not in ('exit_code', 'killed_by')}
    assert len(rec['stats.cpus']) == 2
    assert rec['checksum'] == p.stdout.split('checksum ')[1].split()[0]
    # writing touches more pages than reading (the zero page serves reads)
    by = {(r['mib'], r['mode'], r['cpus']): r for r in records}
    assert by[(2, 'w', 1)]['pages_zeroed'] > by[(2, 'r', 1)]['pages_zeroed']


def test_csv_is_the_flattened_records(local):
    records, csv_path, _cache = local
    rows = read_records(str(csv_path))
    assert len(rows) == len(records)
    for row, rec in zip(rows, records):
        flat = flatten(rec)
        assert set(row) == set(flat)
        for k, v in flat.items():
            if isinstance(v, float):
                assert row[k] == pytest.approx(v)
            else:
                assert row[k] == v, k


def test_dask_local_cluster_gives_the_same_records(local, tmp_path):
    pytest.importorskip('distributed', reason='dask[distributed] is not installed (pip install faultlab[sweep])')
    records, _csv, _cache = local
    out = tmp_path / 'dask.jsonl'
    p = sweep('--engine', 'dask', '-j', '2', '--no-cache', *GRID, *PARSE, '-o', str(out), '--', PAGETOUCH,
              '{mib}', '{mode}')
    assert p.returncode == 0, p.stderr
    assert 'dask engine' in p.stderr
    assert summary(p) == (8, 0, 8, 0)
    assert jsonl(out) == records


def test_an_extended_grid_runs_only_the_new_points(local, tmp_path):
    records, _csv, cache = local
    ext = tmp_path / 'cache'
    shutil.copytree(cache, ext)
    out = tmp_path / 'ext.jsonl'
    p = sweep('--cache', str(ext), '-j', '2', '--grid', 'mib=1,2,3', '--grid', 'mode=r,w', '--grid', 'cpus=1',
              *PARSE, '-o', str(out), '--', PAGETOUCH, '{mib}', '{mode}')
    assert p.returncode == 0, p.stderr
    assert summary(p) == (6, 4, 2, 0)
    got = {(r['mib'], r['mode']): r for r in jsonl(out)}
    for r in records:
        if r['cpus'] == 1:
            want = dict(r, point=got[(r['mib'], r['mode'])]['point'])
            assert got[(r['mib'], r['mode'])] == want
    assert got[(3, 'w')]['pages'] == 768
    # another faultlab version: every point again
    p = sweep('--cache', str(ext), '--grid', 'mib=1', '--grid', 'mode=r', '--grid', 'cpus=1', '--', PAGETOUCH,
              '{mib}', '{mode}', env=dict(ENV, FAULTLAB_SWEEP_VERSION='test-sweep-2'))
    assert p.returncode == 0 and summary(p) == (1, 0, 1, 0), p.stderr


def test_an_interrupted_sweep_resumes_from_the_cache(local, tmp_path):
    records, _csv, _cache = local
    cache = tmp_path / 'cache'
    args = cli_command() + ['sweep', '--no-progress', '--cache', str(cache), '-j', '1', '--grid', 'mib=1,2',
                            '--grid', 'mode=r,w', '--grid', 'cpus=2', *PARSE, '-o', str(tmp_path / 'r.jsonl'),
                            '--', PAGETOUCH, '{mib}', '{mode}']
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 240
    while not list(cache.glob('*/*.json')) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=240)
    if proc.returncode == 0:
        pytest.skip('the sweep ended before it could be interrupted')
    assert proc.returncode == 130, err
    assert 'interrupted' in err and 'Traceback' not in err
    done = len(list(cache.glob('*/*.json')))
    assert 1 <= done < 4
    p = sweep(*args[len(cli_command()) + 2:])
    assert p.returncode == 0, p.stderr
    assert summary(p) == (4, done, 4 - done, 0)
    want = [dict(r, point=i) for i, r in enumerate(r for r in records if r['cpus'] == 2)]
    assert jsonl(tmp_path / 'r.jsonl') == want


def test_a_failed_point_fails_alone_and_runs_again(tmp_path):
    spec = tmp_path / 'knobs.toml'
    spec.write_text('program = %s\nargs = ["x"]\n[options]\nram = "64M"\n'
                    '[grid]\nsysctl = ["vm.overcommit_memory=1", "vm.no_such_knob=1"]\n' % json.dumps(HELLO))
    out = tmp_path / 'r.csv'
    cache = tmp_path / 'cache'
    p = sweep(str(spec), '--cache', str(cache), '-j', '2', '-o', str(out))
    assert p.returncode == 1, p.stderr
    assert summary(p) == (2, 0, 2, 1)
    ok, bad = read_records(str(out))
    assert ok['status'] == 'ok' and ok['exit_code'] == 0
    assert bad['status'] == 'failed' and 'no such sysctl' in bad['error'] and bad['exit_code'] is None
    assert 'point 1 (sysctl=vm.no_such_knob=1) failed' in p.stderr
    p = sweep(str(spec), '--cache', str(cache), '-j', '2', '-o', str(out))
    assert p.returncode == 1
    assert summary(p) == (2, 1, 1, 1)


def test_output_formats_and_stdout(local, tmp_path):
    records, _csv, cache = local
    p = sweep('--cache', str(cache), *GRID, *PARSE, '--', PAGETOUCH, '{mib}', '{mode}')
    assert p.returncode == 0 and summary(p) == (8, 8, 0, 0)
    header = p.stdout.splitlines()[0].split(',')
    assert header[:5] == ['point', 'mib', 'mode', 'cpus', 'status'] and 'page_faults' in header
    assert len(p.stdout.splitlines()) == 9


def test_parquet(local, tmp_path):
    pytest.importorskip('pandas', reason='Parquet needs pandas and pyarrow (the sweep extra)')
    pytest.importorskip('pyarrow', reason='Parquet needs pandas and pyarrow (the sweep extra)')
    records, _csv, cache = local
    pq = tmp_path / 'r.parquet'
    p = sweep('--cache', str(cache), *GRID, *PARSE, '-o', str(pq), '--', PAGETOUCH, '{mib}', '{mode}')
    assert p.returncode == 0, p.stderr
    rows = read_records(str(pq))
    assert [(r['mib'], r['mode'], r['page_faults']) for r in rows] == \
        [(r['mib'], r['mode'], r['page_faults']) for r in records]


BAD = [
    (['nosuch.toml'], 'nosuch.toml'),
    (['--grid', 'mib=1', '--', '/no/such/program', '{mib}'], 'no such file'),
    (['--grid', 'bogus=1,2', '--', HELLO], 'neither a faultlab run option nor an {bogus} placeholder'),
    (['--grid', 'cpus=0,1', '--', HELLO], 'cpus'),
    (['--grid', 'ram=lots', '--', HELLO], 'not a size'),
    (['--grid', 'mib=1', '--', HELLO, '{mib}', '{mode}'], '{mode} has no values'),
    (['--grid', 'mib', '--', HELLO], 'expected NAME=VALUE'),
    (['--grid', 'cpus=1', '--parse', '(\\d+)', '--', HELLO], 'no named group'),
    (['--grid', 'cpus=1', '--parse', '(?P<x>', '--', HELLO], 'parse'),
    (['--grid', 'cpus=1', '--set', 'stats-json=x', '--', HELLO], 'set by faultlab sweep itself'),
    (['--grid', 'cpus=1', '-o', 'r.xlsx', '--', HELLO], 'unknown format'),
    (['--grid', 'cpus=1', '--scheduler', 'tcp://127.0.0.1:1', '--', HELLO], '--scheduler is for --engine dask'),
    ([], 'no SPEC file or program'),
]


@pytest.mark.parametrize('args,words', BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_is_one_line(args, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(['sweep', '--cache', str(tmp_path / 'c')] + args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('faultlab sweep: '), lines
    assert words in lines[0]
    assert not list((tmp_path / 'c').glob('*/*.json'))


def test_bad_input_from_the_shell_is_one_line(tmp_path):
    p = subprocess.run(cli_command() + ['sweep', '--grid', 'cpus=0', '--', HELLO], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.count('\n') == 1 and p.stderr.startswith('faultlab sweep: cpus'), p.stderr


@pytest.mark.parametrize('text,words', [
    ('foo = 1\nprogram = "%s"\n[grid]\ncpus = [1]\n', "unknown key 'foo'"),
    ('program = "%s"\n[grid]\ncpus = 1\n', 'non-empty list'),
    ('program = "%s"\n[grid]\ncpus = [1, 1]\n', 'listed twice'),
    ('program = "%s"\n[options]\ncpus = 2\n[grid]\ncpus = [1]\n', 'also set in options'),
    ('program = "%s"\n[options]\nwarp = 9\n', 'not a machine option'),
    ('program = "%s"\n[options]\nspf = "maybe"\n', 'true or false'),
    ('program = "%s"\ngrid = [', 'not TOML'),
    ('args = ["x"]\n', 'no program'),
])
def test_bad_spec_file_is_one_line(text, words, tmp_path, capsys):
    spec = tmp_path / 'bad.toml'
    spec.write_text(text % HELLO if '%s' in text else text)
    assert main(['sweep', '--no-cache', str(spec)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('faultlab sweep: %s: ' % spec), lines
    assert words in lines[0]


def test_options_and_placeholders_in_a_toml_spec(tmp_path):
    spec = tmp_path / 'study.toml'
    spec.write_text('program = %s\nargs = ["{cpus}-{fab}"]\nparse = ["argv\\\\[1\\\\]=(?P<arg>\\\\S+)"]\n'
                    '[options]\nspf = false\nram = "64M"\n[grid]\ncpus = [1, 2]\nfault_around_bytes = ["4K"]\n'
                    % json.dumps(HELLO))
    p = sweep(str(spec), '--no-cache', '--grid', 'fab=a', '-o', str(tmp_path / 'r.jsonl'))
    assert p.returncode == 0, p.stderr
    recs = jsonl(tmp_path / 'r.jsonl')
    assert [(r['cpus'], r['fault_around_bytes'], r['arg'], r['nr_cpus']) for r in recs] == \
        [(1, '4K', '1-a', 1), (2, '4K', '2-a', 2)]
    # fault-around off: no neighbours mapped, as `faultlab run --fault-around-bytes 4K` gives
    assert all(r['fault_around_pages'] == 0 for r in recs)


def test_progress_line_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, 'tqdm', None)          # as when tqdm is not installed
    buf = io.StringIO()
    bar = SweepProgress(5, 1, 2, stream=buf, show=True)
    assert bar._bar is None
    for _ in range(3):
        bar.started()
    assert bar.text() == 'faultlab sweep: 1/5 done, 2 running, 0 failed, ? left'   # running: at most the workers
    bar.finished(False)
    bar.finished(True)
    assert bar.text().startswith('faultlab sweep: 3/5 done, 1 running, 1 failed, 00:0')
    bar.close()
    assert buf.getvalue().endswith('\r') and 'faultlab sweep: 3/5 done' in buf.getvalue()
    quiet = io.StringIO()
    SweepProgress(5, 0, 2, stream=quiet, show=False).close()
    assert quiet.getvalue() == ''


def test_dask_scheduler_address(tmp_path):
    distributed = pytest.importorskip('distributed', reason='dask[distributed] is not installed')
    args = ['--no-cache', '--grid', 'cpus=1,2', '--parse', r'argv\[1\]=(?P<arg>\S+)']
    local = sweep(*args, '-j', '2', '-o', str(tmp_path / 'l.jsonl'), '--', HELLO, 'x')
    assert local.returncode == 0, local.stderr
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol='tcp://',
                                  host='127.0.0.1', dashboard_address=None, silence_logs=50) as cluster:
        assert cluster.scheduler_address.startswith('tcp://127.0.0.1:')
        p = sweep(*args, '--engine', 'dask', '--scheduler', cluster.scheduler_address, '-o',
                  str(tmp_path / 'd.jsonl'), '--', HELLO, 'x')
    assert p.returncode == 0 and 'dask engine' in p.stderr, p.stderr
    assert jsonl(tmp_path / 'd.jsonl') == jsonl(tmp_path / 'l.jsonl')
    assert [r['arg'] for r in jsonl(tmp_path / 'd.jsonl')] == ['x', 'x']
