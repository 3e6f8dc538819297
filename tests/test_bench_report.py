"""The benches' --csv, --json, --plot and -j: records of real (small) runs, the same rows whatever -j is, the
figures written, an output that cannot be written refused before anything runs, and a failed acceptance
check making the exit status non-zero."""
import pytest

from faultlab.bench import populate as bp
from faultlab.bench import prefetch as bpf
from faultlab.bench import spf as bspf
from faultlab.bench.report import pool_map, write_rows
from faultlab.cli import main
from faultlab.sweep.records import read_records

PNG = b'\x89PNG\r\n\x1a\n'


def test_prefetch_records_and_figure(userland, tmp_path):
    pytest.importorskip('matplotlib')
    jobs = [(8, 0, 80.0, (0, 4)), (8, 200, 20.0, (0, 4))]
    serial = list(pool_map(bpf._group_job, jobs, 1))
    assert list(pool_map(bpf._group_job, jobs, 2)) == serial     # same rows, same order, on 2 processes
    recs = bpf.records(serial)
    assert [(r['latency_us'], r['distance']) for r in recs] == [(80.0, 0), (80.0, 4), (20.0, 0), (20.0, 4)]
    for r in recs:
        assert r['prefetch_calls'] == (8 if r['distance'] else 0)
        assert r['t_ns'] >= 0.9 * r['lb_ns']
    assert recs[1]['t_ns'] < recs[0]['t_ns']                      # prefetching overlaps the reads
    write_rows(recs, csv=str(tmp_path / 'p.csv'), json=str(tmp_path / 'p.json'))
    assert read_records(str(tmp_path / 'p.csv')) == read_records(str(tmp_path / 'p.json'))
    assert read_records(str(tmp_path / 'p.csv'))[1]['t_ns'] == recs[1]['t_ns']
    png = bpf.plot_figure(serial, str(tmp_path))
    assert png == str(tmp_path / 'prefetch.png') and open(png, 'rb').read(8) == PNG


def test_spf_rows_are_the_same_with_two_processes(userland, tmp_path):
    pytest.importorskip('matplotlib')
    one = bspf.bench_table('pfscale', lambda n: [n, 1], [2], lambda line: None, jobs=1)
    lines = []
    two = bspf.bench_table('pfscale', lambda n: [n, 1], [2], lines.append, jobs=2)
    assert [(n, a.rate, b.rate, b.stats) for n, a, b in one] == [(n, a.rate, b.rate, b.stats) for n, a, b in two]
    recs = bspf.table_records('pfscale', two, 'bare-metal')
    assert [(r['cpus'], r['spf']) for r in recs] == [(2, False), (2, True)]
    assert recs[1]['rate'] == two[0][2].rate and recs[1]['speculative'] > 0 and recs[0]['speculative'] == 0
    png = bspf.plot_figure(recs, str(tmp_path))
    assert open(png, 'rb').read(8) == PNG


def test_populate_records_and_figure(userland, tmp_path):
    pytest.importorskip('matplotlib')
    run = bp.run_bench('2M', reps=1, sharing='private', backings=['anon4k'])
    recs = bp.records('2M', run)
    assert len(recs) == len(run.rows)
    r = next(r for r in recs if (r['backing'], r['sharing'], r['method']) == ('anon4k', 'private', 'Write'))
    assert r['ns'] == run.rows[('anon4k', 'private', 'Write')] and r['posting_ms'] == 0.222
    png = bp.plot_figure(recs, str(tmp_path))
    assert open(png, 'rb').read(8) == PNG


class _FakeRun(bp.PopulateRun):
    pass


def test_populate_exits_non_zero_when_a_block_fails(monkeypatch, capsys, tmp_path):
    good = {('anon4k', 'private', m): ns for m, ns in zip(bp.ACCESS_METHODS, (119, 222, 380, 60, 158))}
    bad = dict(good)
    bad[('anon4k', 'private', 'Read')] = 1000          # reading slower than writing: the order fails
    # the posting's 2 MiB file block has Read < POPULATE_READ itself: that order alone does not count
    posting_file = {('file', 'private', m): ns for m, ns in zip(bp.ACCESS_METHODS, (33, 351, 408, 39, 290))}
    for rows, quick, status in ((good, False, 0), (bad, False, 1), (bad, True, 0), (posting_file, False, 0)):
        monkeypatch.setattr(bp, 'run_bench', lambda size, reps=3, rows=rows: bp.PopulateRun(
            dict(rows), {}, {'page_faults': 0}, 'done 1', '', 0))
        assert bp.main(size='2M', quick=quick, csv=str(tmp_path / 'r.csv')) == status
        out = capsys.readouterr().out
        assert ('acceptance: NOT MET' in out) == bool(status)
        assert ('fails: ' in out) == (rows is bad) and ('not judged with --quick' in out) == quick
        assert ('in the posting itself POPULATE_READ < Read does not hold' in out) == (rows is posting_file)
        assert len(read_records(str(tmp_path / 'r.csv'))) == 5


def test_spf_prints_the_criterion_and_exits_non_zero_when_a_rate_did_not_settle(monkeypatch):
    """The series' 3x criterion is printed met or NOT MET (the model's mechanisms decide the rates, so it is
    not a check of the model); the bench's own checks decide its status: a rate that did not settle."""
    def fake(gain, share, settled):
        def run_one(program, args, cpus, spf, costs=None, **kw):
            faults = 1000
            stats = dict(page_faults=faults, spf=int(share * faults) if spf else 0, mmap_lock_wait_cycles=0,
                         freq_hz=3000000000, nr_cpus=cpus, cycles=1000, sim_seconds=1e-6, spf_aborts={},
                         tlb_shootdowns=0)
            steady = 'steady 100 spread 1.0%% windows 4 %s\n' % ('converged' if settled else 'unsettled')
            return bspf.SpfRun(int(100 * (gain if spf and cpus >= 16 else 1)), stats, steady)
        return run_one
    monkeypatch.setattr(bspf, 'wake_latency_sweep', lambda *a, **k: [])
    for gain, share, settled, met, status in ((3.5, 0.99, True, True, 0), (2.0, 0.99, True, False, 0),
                                              (3.5, 0.5, True, False, 0), (3.5, 0.99, False, True, 1)):
        monkeypatch.setattr(bspf, 'run_one', fake(gain, share, settled))
        lines = []
        assert bspf.main(out=lines.append) == status
        crit = [ln for ln in lines if ln.startswith("the series' criterion")]
        assert len(crit) == 1 and crit[0].endswith('NOT MET') != met
        assert any(ln.startswith('steady-state check') and ('settled' in ln) for ln in lines)


@pytest.mark.parametrize('kind', ['prefetch', 'populate', 'spf'])
def test_unwritable_outputs_are_refused_first(kind, tmp_path, capsys):
    for opt in ('--csv', '--json'):
        assert main(['bench', kind, '--quick', opt, str(tmp_path / 'no' / 'r.csv')]) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and 'no such directory' in err, err
    with pytest.raises(SystemExit) as e:
        main(['bench', kind, '-j', '0'])
    assert e.value.code == 2 and '-j' in capsys.readouterr().err
