"""What the benches share beside their tables: --csv FILE and --json FILE (the rows as records, the formats of
`faultlab sweep`), --plot DIR (their figures, with faultlab.plot) and -j N (independent points on a pool of
processes, each with its own Machine; the rows come back in the order they were asked for, so the tables and
the files are the same for any N)."""
import concurrent.futures
import multiprocessing
import os
import sys

from faultlab.options import positive_int
from faultlab.plot import PlotError, check_figure_path, pyplot
from faultlab.sweep.records import write_records


def add_report_options(p, jobs=True, plot=True):
    """--csv, --json, (for benches with figures) --plot and (for benches whose points are independent) -j."""
    p.add_argument('--csv', metavar='FILE', help='write the rows as CSV')
    p.add_argument('--json', metavar='FILE', help='write the rows as JSON lines')
    if plot:
        p.add_argument('--plot', metavar='DIR', help='write the figures (PNG) into DIR')
    if jobs:
        p.add_argument('-j', '--jobs', type=positive_int, default=1, metavar='N',
                       help='independent runs at once, each in its own process (default 1)')


def report_options(a):
    """The keyword arguments of a bench's main() from its parsed options."""
    return dict(csv=a.csv, json=a.json, plot=getattr(a, 'plot', None), jobs=getattr(a, 'jobs', 1))


class ReportError(ValueError):
    """An output that cannot be written; one line."""


def check_outputs(csv=None, json=None, plot=None):
    """ReportError for an output that cannot be written, before the bench runs for minutes; makes --plot DIR."""
    if plot:
        try:
            pyplot()
            os.makedirs(plot, exist_ok=True)
        except PlotError as e:
            raise ReportError('--plot: %s' % e) from None
        except OSError as e:
            raise ReportError('--plot %s: %s' % (plot, e.strerror)) from None
    for path in (csv, json):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise ReportError('%s: no such directory' % os.path.dirname(os.path.abspath(path)))


def bench_ready(name, programs=(), csv=None, json=None, plot=None, out=print):
    """None when the bench can run: each program in `programs` is built and each output can be written; else the
    exit status 2 after one line saying why (on `out` for a missing program, stderr for an output)."""
    for path in programs:
        if not os.path.exists(path):
            out('bench: build the userland programs first (make -C userland)')
            return 2
    try:
        check_outputs(csv, json, plot)
    except ReportError as e:
        print('faultlab bench %s: %s' % (name, e), file=sys.stderr)
        return 2
    return None


def write_rows(rows, csv=None, json=None):
    """The rows to the files asked for (CSV, JSON lines)."""
    if csv:
        _write_as(csv, rows, 'csv')
    if json:
        _write_as(json, rows, 'jsonl')


def _write_as(path, rows, fmt):
    """Write rows in fmt whatever the file's suffix."""
    tmp = path + ('.csv' if fmt == 'csv' else '.jsonl')
    write_records(tmp, rows)
    os.replace(tmp, path)


def figure_path(folder, name):
    """DIR/NAME.png, checked as faultlab plot checks its -o."""
    path = os.path.join(folder, name + '.png')
    check_figure_path(path)
    return path


def pool_map(fn, items, jobs):
    """fn(item) for each item, yielded in the items' order as they are done: on `jobs` processes when jobs > 1
    (spawned: each builds its own Machine), else here one after the other."""
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        for x in items:
            yield fn(x)
        return
    ctx = multiprocessing.get_context('spawn')
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=ctx) as pool:
        yield from pool.map(fn, items)
