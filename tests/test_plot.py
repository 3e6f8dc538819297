"""faultlab plot: a figure of records (CSV, JSON lines) as PNG and SVG, axis labels from the counters'
declarations, one line for a bad request. The records are written here (no runs): the plot reads files."""
import json
import subprocess

import pytest

from faultlab.cli import main
from faultlab.kernel.counters import COUNTERS
from faultlab.plot import counter_label
from faultlab.srctree import cli_command
from faultlab.sweep.records import write_records

pytest.importorskip('matplotlib', reason='faultlab plot needs matplotlib (pip install faultlab[plot])')

RECORDS = [dict(point=i, mib=mib, mode=mode, cpus=cpus, page_faults=mib * 256 + (mode == 'w') * 7 + cpus,
                sim_seconds=mib * 1e-3, cpus_list=[{'cpu': 0}], spf_aborts={'spf_vma': cpus})
           for i, (mib, mode, cpus) in enumerate((m, o, c) for m in (1, 2, 4) for o in 'rw' for c in (1, 2))]


class Done:
    """What `faultlab plot ARGS` did, run in this process: its exit status and stderr."""

    def __init__(self, returncode, stderr):
        self.returncode = returncode
        self.stderr = stderr


@pytest.fixture
def plot(capsys, monkeypatch):
    def run(*args, cwd=None):
        if cwd:
            monkeypatch.chdir(cwd)
        status = main(['plot'] + list(args))
        return Done(status, capsys.readouterr().err)
    return run


def test_plot_from_the_shell(tmp_path):
    path = tmp_path / 'r.csv'
    write_records(str(path), RECORDS)
    p = subprocess.run(cli_command() + ['plot', str(path), '-x', 'mib', '-y', 'page_faults', '-o',
                                        str(tmp_path / 'f.svg')], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stderr == '' and (tmp_path / 'f.svg').stat().st_size > 1000
    p = subprocess.run(cli_command() + ['plot', str(path), '-x', 'mib', '-y', 'nope', '-o', str(tmp_path / 'f.png')],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count('\n') == 1 and 'no such column' in p.stderr


@pytest.fixture(params=['csv', 'jsonl'])
def results(request, tmp_path):
    path = tmp_path / ('r.' + request.param)
    write_records(str(path), RECORDS)
    return path


def test_png_and_svg(results, tmp_path, plot):
    png, svg = tmp_path / 'f.png', tmp_path / 'f.svg'
    p = plot(str(results), '-x', 'mib', '-y', 'page_faults', '--series', 'mode', '--facet', 'cpus', '-o', str(png))
    assert p.returncode == 0, p.stderr
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 5000
    p = plot(str(results), '-x', 'mode', '-y', 'sim_seconds', '--series', 'cpus', '--kind', 'bar', '-o', str(svg))
    assert p.returncode == 0, p.stderr
    text = svg.read_text()
    assert text.lstrip().startswith('<?xml') and '<svg' in text
    # the y label is the counter's declared description (matplotlib writes text as glyph paths; the
    # description is in the file as the text element's comment)
    desc = next(c.description for c in COUNTERS if c.key == 'sim_seconds')
    assert desc.split(':')[0] in text


@pytest.fixture
def csv_results(tmp_path):
    path = tmp_path / 'r.csv'
    write_records(str(path), RECORDS)
    return path


def test_flattened_columns_can_be_plotted(csv_results, tmp_path, plot):
    p = plot(str(csv_results), '-x', 'cpus', '-y', 'spf_aborts.spf_vma', '-o', str(tmp_path / 'a.png'))
    assert p.returncode == 0, p.stderr


def test_labels_come_from_the_declarations():
    c = next(c for c in COUNTERS if c.key == 'major_faults')
    assert counter_label('major_faults').replace('\n', ' ') == 'major_faults: %s' % c.description
    assert counter_label('major-faults').startswith('major-faults: ')
    assert counter_label('cpus.0.page_faults').startswith('cpus.0.page_faults: ')
    assert counter_label('mib') == 'mib'
    # a sweep over cpus keeps the per-CPU counters as stats.cpus: the column cpus is the grid's
    assert counter_label('cpus', ['cpus', 'stats.cpus']) == 'cpus'
    assert counter_label('stats.cpus', ['cpus', 'stats.cpus']).startswith('stats.cpus: ')


@pytest.mark.parametrize('args,words', [
    (['-x', 'mib', '-y', 'page_fault', '-o', 'f.png'], "-y page_fault: no such column (did you mean page_faults?)"),
    (['-x', 'nope', '-y', 'page_faults', '-o', 'f.png'], '-x nope: no such column'),
    (['-x', 'mib', '-y', 'mode', '-o', 'f.png'], 'no numeric values'),
    (['-x', 'mib', '-y', 'page_faults', '-o', 'f.txt'], 'the figure must be'),
    (['-x', 'mib', '-y', 'page_faults', '-o', 'no/such/dir/f.png'], 'cannot write'),
])
def test_bad_requests_are_one_line(csv_results, tmp_path, args, words, plot):
    p = plot(str(csv_results), *args, cwd=tmp_path)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('faultlab plot: ') and words in lines[0], p.stderr


def test_bad_files_are_one_line(tmp_path, plot):
    bad = tmp_path / 'bad.jsonl'
    bad.write_text('{"a": 1}\nnot json\n')
    for path, words in ((bad, 'not JSON lines'), (tmp_path / 'missing.csv', 'No such file'),
                        (tmp_path / 'r.xlsx', 'unknown format')):
        p = plot(str(path), '-x', 'a', '-y', 'a', '-o', str(tmp_path / 'f.png'))
        assert p.returncode == 2
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], p.stderr
    empty = tmp_path / 'e.jsonl'
    empty.write_text(json.dumps([]))
    p = plot(str(empty), '-x', 'a', '-y', 'a', '-o', str(tmp_path / 'f.png'))
    assert p.returncode == 2 and 'no records' in p.stderr
