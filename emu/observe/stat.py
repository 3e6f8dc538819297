"""`faultlab stat` and `run --stats`: `perf stat`-like counters of the simulated machine, from Kernel.snapshot().

Every figure is one of the kernel's own counters, declared once in faultlab.kernel.counters (nothing is
recomputed here): each event there is a row of the block (or a figure in another row's comment) and a line
of the CSV. Counters a kernel version does not have yet print as 0; a snapshot with a per-CPU list (`cpus`,
or `per_cpu`) adds a per-CPU block like `perf stat -A`, one with a per-handler fault breakdown adds the
cost of each fault handler. With a separator (-x) the output is `value<SEP>unit<SEP>event` lines, as
perf's CSV mode, for scripts.

As with perf stat, `-e` picks the events to print (by the names declared in faultlab.kernel.counters) and
`-r N` prints the mean of N runs with the spread of each figure, `( +- x.xx% )`: the standard error of the
mean as a percentage of the mean, perf's own measure (the standard deviation over the runs divided by the
square root of their number).
"""
import argparse
import math
import sys

from faultlab.kernel.counters import BY_EVENT, COUNTERS, CPU_COUNTERS, EVENT_NAMES, EVENTS, n

PER_CPU_KEYS = ('cpus', 'per_cpu')
_DERIVED = tuple(c for c in COUNTERS if c.read is None)


def get(s, keys, default=0):
    """The first of `keys` present in snapshot s (a tuple, or one key), else default."""
    for k in (keys,) if isinstance(keys, str) else keys:
        v = s.get(k)
        if v is not None:
            return v
    return default


def values(s):
    """{event name: value} for every event of faultlab.kernel.counters, the derived ones included."""
    v = {c.event: get(s, c.keys) for c in EVENTS}
    for c in _DERIVED:
        v[c.event] = c.derive(v)
    return v


def per_cpu(s):
    """The snapshot's per-CPU list of dicts, or [] for a one-CPU kernel."""
    for k in PER_CPU_KEYS:
        v = s.get(k)
        if isinstance(v, (list, tuple)) and len(v) > 1 and all(isinstance(c, dict) for c in v):
            return list(v)
    return []


def parse_events(text):
    """argparse type of -e: comma-separated event names (a list), each one of EVENT_NAMES."""
    names = [e.strip() for e in text.split(',')]
    for e in names:
        if e not in BY_EVENT:
            raise argparse.ArgumentTypeError('unknown event %r; the events are: %s' % (e, ', '.join(EVENT_NAMES)))
    return names


def _zero_like(vals):
    """What a run that lacks a figure counts as: {} beside dicts, 0 beside numbers."""
    return {} if any(isinstance(v, dict) for v in vals) else 0


def _mean(vals):
    """The mean of one figure over the runs: numbers averaged, dicts key by key, lists item by item;
    a figure every run agrees on (a CPU's number) is kept as it is."""
    first = vals[0]
    if all(v == first for v in vals):
        return first
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return sum(vals) / len(vals)
    if all(isinstance(v, dict) or v is None for v in vals):
        keys = dict.fromkeys(k for v in vals if v for k in v)
        return {k: _mean([v[k] if v and k in v else None for v in vals]) for k in keys}
    if all(isinstance(v, (list, tuple)) for v in vals) and len({len(v) for v in vals}) == 1:
        return [_mean(list(col)) for col in zip(*vals)]
    if any(v is None for v in vals):
        return _mean([_zero_like(vals) if v is None else v for v in vals])
    return first


def mean_snapshot(snaps):
    """The snapshot of the mean run (`stat -r`): every figure averaged over the runs' snapshots."""
    keys = dict.fromkeys(k for s in snaps for k in s)
    return {k: _mean([s.get(k) for s in snaps]) for k in keys}


def spreads(snaps):
    """{event: the standard error of its mean over the runs, as a percentage of the mean} (perf stat -r)."""
    runs = [values(s) for s in snaps]
    out = {}
    for event in runs[0]:
        xs = [v[event] for v in runs]
        avg = sum(xs) / len(xs)
        var = sum((x - avg) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else 0.0
        out[event] = 100.0 * math.sqrt(var / len(xs)) / avg if avg else 0.0
    return out


def _noise(pct):
    """perf stat -r's spread after a row: ( +- x.xx% )."""
    return '  ( +-%6.2f%% )' % pct


def _text(c, value):
    """A value as its row shows it: seconds with nine decimals, counts and bytes with separators."""
    return '%.9f' % value if c.unit == 's' else n(value)


def _row(value, event, comment='', spread=None):
    """One line of the block: the value, the event, the comment after '#', and the spread of -r."""
    line = ('%20s      %-26s%s' % (value, event, ('#  ' + comment) if comment else '')).rstrip()
    return line if spread is None else line.ljust(96) + _noise(spread)


def _cpu_lines(cpus):
    """`perf stat -A`'s per-CPU block."""
    lines = ['', '  per CPU:']
    for i, c in enumerate(cpus):
        cv = {e.event: get(c, e.keys) for e in CPU_COUNTERS if e.event is not None}
        cc = cv['cycles']
        lines.append('    CPU%-3s %16s instructions %16s cycles %8.2f IPC %10s faults (%s major) %12s idle'
                     % (get(c, CPU_COUNTERS[0].keys, i), n(cv['instructions']), n(cc),
                        cv['instructions'] / cc if cc else 0.0, n(cv['page-faults']), n(cv['major-faults']),
                        n(cv['idle-cycles'])))
    return lines


def _breakdown_lines(breakdown):
    """The page faults by handler: how many, the mean cycles of one, and its costs by name."""
    lines = ['', '  page faults by handler (kernel cycles, mean per fault):']
    for h, c in breakdown.items():
        count = c.get('count', 0) or 1
        steps = ', '.join('%s %d' % (k, v / count) for k, v in sorted(c.items(), key=lambda kv: -kv[1])
                          if k not in ('count', 'cycles'))
        lines.append('    %-28s %8s faults %10.0f cycles/fault  [%s]' % (h, n(c.get('count', 0)),
                                                                       c.get('cycles', 0) / count, steps))
    return lines


def _header(name, freq, ncpu, runs):
    """The block's first line: the command, the clock, the CPUs and, with -r, the number of runs."""
    return (" Performance counter stats for '%s' (faultlab, simulated %.3f GHz, %d CPU%s%s):"
            % (name, freq / 1e9, ncpu, '' if ncpu == 1 else 's', ', %d runs' % runs if runs > 1 else ''))


def _time_line(seconds, spread, label):
    """A closing line in seconds; with -r the mean +- its standard error and the spread, as perf's."""
    if spread is None:
        return '%20.9f seconds %s' % (seconds, label)
    return '%20.9f +- %.9f seconds %s%s' % (seconds, seconds * spread / 100, label, _noise(spread))


def format_stat(s, name, events=None, runs=1, spread=None, note=None):
    """The human-readable block, perf stat style (`faultlab stat`, `run --stats`): every row, or only
    `events` (-e) in their order; with spread ({event: %}, -r) the spread after each row; note (a run cut
    short) under the header."""
    v = values(s)
    freq = get(s, 'freq_hz', 0) or 1
    cpus = per_cpu(s)
    L = ['', _header(name, freq, len(cpus) or 1, runs), '']
    if note:
        L[-1:] = ['  (%s)' % note, '']
    rows = [BY_EVENT[e] for e in events] if events else [c for c in COUNTERS if c.row]
    for c in rows:
        L.append(_row(_text(c, v[c.event]), c.event, c.note(v, freq) if c.note is not None else '',
                      None if spread is None else spread[c.event]))
    if cpus and not events:
        L += _cpu_lines(cpus)
    if s.get('fault_breakdown') and not events:
        L += _breakdown_lines(s['fault_breakdown'])
    sim = None if spread is None else spread['seconds-simulated']
    L += ['', _time_line(v['seconds-simulated'], sim, 'simulated time')]
    if not events:
        io = None if spread is None else spread['iowait-cycles']
        L.append(_time_line(v['iowait-cycles'] / freq, io, 'waiting for I/O'))
    return '\n'.join(L + ['']) + '\n'


def _csv_text(val, unit):
    """A CSV value: seconds with nine decimals, else a whole number."""
    return '%.9f' % val if unit == 's' else str(int(round(val)))


def format_stat_csv(s, sep=',', events=None, spread=None):
    """perf stat -x style: value SEP unit SEP event, one per line (per-CPU lines prefixed CPUn SEP); with
    spread (-r) a fourth field, the spread as perf prints it (x.xx%). `events` (-e): only those, in order."""
    chosen = [BY_EVENT[e] for e in events] if events else EVENTS
    v = values(s)
    out = []
    for c in chosen:
        fields = [_csv_text(v[c.event], c.unit), c.unit, c.event]
        out.append(sep.join(fields + ([] if spread is None else ['%.2f%%' % spread[c.event]])))
    for i, cpu in enumerate(per_cpu(s)):
        label = 'CPU%s' % get(cpu, CPU_COUNTERS[0].keys, i)
        for c in chosen:
            if any(k in cpu for k in c.keys):
                out.append(sep.join((label, _csv_text(get(cpu, c.keys), c.unit), c.unit, c.event)))
    return '\n'.join(out) + '\n'


def write_stat(path, text):
    """Write the counters to path (-o): '-' is standard output, as perf stat -o -; none, standard error."""
    if path == '-':
        sys.stdout.write(text)
        sys.stdout.flush()
    elif path:
        with open(path, 'w') as f:
            f.write(text)
    else:
        sys.stderr.write(text)


__all__ = ['format_stat', 'format_stat_csv', 'values', 'per_cpu', 'get', 'parse_events', 'mean_snapshot',
           'spreads', 'write_stat']
