"""faultlab bench spf: the table's rows come from real runs (a small configuration here)."""
from emu import bench_spf


def test_spf_table_rows_for_two_cpus():
    lines = []
    rows = bench_spf.bench_table('pfscale', lambda n: [n, 1], [2], lines.append)
    (n, off, on), = rows
    assert n == 2 and off.rate > 0 and on.rate > 0
    assert off.stats['spf'] == 0 and on.spf_share > 0.9
    assert on.stats['nr_cpus'] == 2
    row = lines[-1].split()
    assert row[0] == '2' and row[1] == '{:,}'.format(off.rate) and row[2] == '{:,}'.format(on.rate)


def test_single_thread_runs_never_speculate():
    lines = []
    d = bench_spf.single_thread_delta(lines.append)
    assert d < 0.02 and ' 0 speculative' in lines[0]
