"""`faultlab plot RESULTS -x COL -y COL [--series COL] [--facet COL] [--kind line|bar] -o FILE.svg|.png`:
a figure of sweep or bench records (CSV, JSON lines, Parquet) with matplotlib's Agg backend. Axis labels of
counters come from their declarations (faultlab.kernel.counters: the description and the unit), so a
figure says what `page_faults` counts. matplotlib is optional (the `plot` extra) and imported only to draw.
"""
import argparse
import math
import sys
import textwrap

from faultlab.kernel.counters import COUNTERS, CPU_COUNTERS
from faultlab.options import EXIT_USAGE
from faultlab.sweep.records import read_records

KINDS = ('line', 'bar')
FIGURE_SUFFIXES = ('.svg', '.png', '.pdf')
UNIT_WORDS = {'s': 'seconds', 'B': 'bytes'}
LABEL_WIDTH = 40


class PlotError(ValueError):
    """A figure that cannot be drawn (a missing column, no matplotlib); one line."""


def _declarations():
    """{name: KernelCounter} by snapshot key and by event name, per-CPU ones as cpus.N.key too."""
    out = {}
    for c in COUNTERS + CPU_COUNTERS:
        out.setdefault(c.key, c)
        if c.event:
            out.setdefault(c.event, c)
    return out


DECLARED = _declarations()


def counter_label(column, columns=()):
    """An axis label for a column: a counter's name with its description and unit, else the name. A column
    whose counter a sweep kept as stats.NAME (the grid took the name: cpus) is the grid's, not the counter."""
    if 'stats.' + column in columns:
        return column
    c = DECLARED.get(column) or DECLARED.get(column.removeprefix('stats.')) or DECLARED.get(column.rsplit('.', 1)[-1])
    if c is None:
        return column
    unit = UNIT_WORDS.get(c.unit)
    text = '%s: %s%s' % (column, c.description, ' (%s)' % unit if unit and unit not in c.description else '')
    return '\n'.join(textwrap.wrap(text, LABEL_WIDTH))


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); PlotError when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError('plotting needs matplotlib (pip install faultlab[plot])') from None
    return plt


def check_figure_path(path):
    """PlotError unless the file name ends in a format matplotlib writes here."""
    if not path.lower().endswith(FIGURE_SUFFIXES):
        raise PlotError('%s: the figure must be %s' % (path, ', '.join(FIGURE_SUFFIXES)))


def subplots(n, width=6.0, height=4.0):
    """(figure, list of n axes) in a grid of at most 3 columns."""
    plt = pyplot()
    cols = min(3, max(1, n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def save(fig, path):
    """Write the figure (format by suffix) and free it."""
    plt = pyplot()
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches='tight')      # legends below the axes included
    plt.close(fig)


def _sort_key(v):
    """Numbers in order, then text."""
    return (0, v, '') if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def _numeric(values):
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def group(records, x, y, series, facet):
    """{facet value: {series value: [(x, mean y, n)]}} with x sorted; records without y are left out."""
    acc = {}
    for r in records:
        yv = r.get(y)
        if yv is None or not _numeric([yv]):
            continue
        key = (r.get(facet) if facet else None, r.get(series) if series else None, r.get(x))
        acc.setdefault(key, []).append(yv)
    out = {}
    for (f, s, xv), ys in acc.items():
        out.setdefault(f, {}).setdefault(s, []).append((xv, sum(ys) / len(ys), len(ys)))
    for f in out:
        for s in out[f]:
            out[f][s].sort(key=lambda t: _sort_key(t[0]))
    return out


MAX_TICKS = 12


def draw(ax, lines, x, y, series, kind, xcats=None, columns=()):
    """One axes: a line per series, or grouped bars per x value."""
    if kind == 'line':
        xs_all = [p[0] for pts in lines.values() for p in pts]
        numeric = _numeric(xs_all)
        cats = sorted(set(xs_all), key=_sort_key)
        for s, pts in sorted(lines.items(), key=lambda kv: _sort_key(kv[0])):
            xs = [p[0] if numeric else cats.index(p[0]) for p in pts]
            ax.plot(xs, [p[1] for p in pts], marker='o', label=None if s is None else '%s=%s' % (series, s))
        if not numeric:
            ax.set_xticks(range(len(cats)), [str(c) for c in cats])
        elif len(cats) <= MAX_TICKS:         # the values swept, not matplotlib's round numbers between them
            ax.set_xticks(cats, ['%g' % c for c in cats])
    else:
        cats = xcats or sorted({p[0] for pts in lines.values() for p in pts}, key=_sort_key)
        names = sorted(lines, key=_sort_key)
        width = 0.8 / max(1, len(names))
        for i, s in enumerate(names):
            ys = dict((p[0], p[1]) for p in lines[s])
            pos = [c + (i - (len(names) - 1) / 2) * width for c in range(len(cats))]
            ax.bar(pos, [ys.get(c, 0) for c in cats], width, label=None if s is None else '%s=%s' % (series, s))
        ax.set_xticks(range(len(cats)), [str(c) for c in cats], rotation=30 if len(cats) > 6 else 0)
    ax.set_xlabel(counter_label(x, columns))
    ax.set_ylabel(counter_label(y, columns))
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize='small')


def plot_records(records, x, y, output, series=None, facet=None, kind='line', title=None):
    """Draw records as `faultlab plot` does and write the figure to output."""
    check_figure_path(output)
    if kind not in KINDS:
        raise PlotError('--kind: one of %s' % ', '.join(KINDS))
    if not records:
        raise PlotError('no records to plot')
    known = set().union(*(r.keys() for r in records))
    for opt, col in (('-x', x), ('-y', y), ('--series', series), ('--facet', facet)):
        if col and col not in known:
            near = sorted(k for k in known if col.lower() in k.lower())[:8]
            raise PlotError('%s %s: no such column%s' % (opt, col, ' (did you mean %s?)' % ', '.join(near) if near
                                                         else '; the columns are ' + ', '.join(sorted(known)[:30])))
    groups = group(records, x, y, series, facet)
    if not groups:
        raise PlotError('-y %s: no numeric values' % y)
    facets = sorted(groups, key=_sort_key)
    fig, axes = subplots(len(facets))
    for ax, f in zip(axes, facets):
        draw(ax, groups[f], x, y, series, kind, columns=known)
        if facet:
            ax.set_title('%s = %s' % (facet, f))
    if title:
        fig.suptitle(title)
    save(fig, output)


def add_plot_parser(sub):
    """`faultlab plot`."""
    p = sub.add_parser('plot', help='plot sweep or bench records (CSV, JSON lines, Parquet) to SVG or PNG',
                       description=__doc__.split('\n\n')[0])
    p.add_argument('results', metavar='RESULTS', help='records: .csv, .jsonl/.json or .parquet')
    p.add_argument('-x', required=True, metavar='COL', help='the column along the x axis')
    p.add_argument('-y', required=True, metavar='COL', help='the column along the y axis (numbers; '
                   'records with the same x, series and facet are averaged)')
    p.add_argument('--series', metavar='COL', help='one line (or bar) per value of this column')
    p.add_argument('--facet', metavar='COL', help='one panel per value of this column')
    p.add_argument('--kind', choices=KINDS, default='line', help='line (default) or bar')
    p.add_argument('--title', help='a title over the figure')
    p.add_argument('-o', '--output', required=True, metavar='FILE', help='the figure: .svg, .png or .pdf')
    return p


def cmd_plot(a):
    """`faultlab plot`: 0, or 2 with one line saying what is wrong."""
    try:
        check_figure_path(a.output)
        try:
            records = read_records(a.results)
        except OSError as e:
            raise PlotError('%s: %s' % (a.results, e.strerror)) from None
        except ValueError as e:
            raise PlotError(str(e)) from None
        plot_records(records, a.x, a.y, a.output, series=a.series, facet=a.facet, kind=a.kind, title=a.title)
    except PlotError as e:
        print('faultlab plot: %s' % e, file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print('faultlab plot: cannot write %s: %s' % (a.output, e.strerror), file=sys.stderr)
        return EXIT_USAGE
    return 0


__all__ = ['plot_records', 'counter_label', 'add_plot_parser', 'cmd_plot', 'PlotError', 'argparse']
