"""`faultlab stat` and `run --stats`: `perf stat`-like counters of the simulated machine, from Kernel.snapshot().

Every figure is one of the kernel's own counters, declared once in faultlab.kernel.counters (nothing is
recomputed here): each event there is a row of the block (or a figure in another row's comment) and a line
of the CSV. Counters a kernel version does not have yet print as 0; a snapshot with a per-CPU list (`cpus`,
or `per_cpu`) adds a per-CPU block like `perf stat -A`, one with a per-handler fault breakdown adds the
cost of each fault handler. With a separator (-x) the output is `value<SEP>unit<SEP>event` lines, as
perf's CSV mode, for scripts.
"""
from faultlab.kernel.counters import COUNTERS, CPU_COUNTERS, EVENTS, n

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


def _row(value, event, comment=''):
    """One line of the block: the value, the event, and the comment after '#'."""
    return ('%20s      %-26s%s' % (value, event, ('#  ' + comment) if comment else '')).rstrip()


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


def format_stat(s, name):
    """The human-readable block, perf stat style (`faultlab stat`, `run --stats`)."""
    v = values(s)
    freq = get(s, 'freq_hz', 0) or 1
    cpus = per_cpu(s)
    ncpu = len(cpus) or 1
    L = ['', " Performance counter stats for '%s' (faultlab, simulated %.3f GHz, %d CPU%s):"
         % (name, freq / 1e9, ncpu, '' if ncpu == 1 else 's'), '']
    for c in COUNTERS:
        if c.row:
            L.append(_row(n(v[c.event]), c.event, c.note(v, freq) if c.note is not None else ''))
    if cpus:
        L += _cpu_lines(cpus)
    if s.get('fault_breakdown'):
        L += _breakdown_lines(s['fault_breakdown'])
    L += ['', '%20.9f seconds simulated time' % v['seconds-simulated'],
          '%20.9f seconds waiting for I/O' % (v['iowait-cycles'] / freq), '']
    return '\n'.join(L) + '\n'


def format_stat_csv(s, sep=','):
    """perf stat -x style: value SEP unit SEP event, one per line (per-CPU lines prefixed CPUn SEP)."""
    def text(val, unit):
        return '%.9f' % val if unit == 's' else str(int(round(val)))

    out = []
    for c in EVENTS:
        out.append(sep.join((text(get(s, c.keys), c.unit), c.unit, c.event)))
    for i, cpu in enumerate(per_cpu(s)):
        label = 'CPU%s' % get(cpu, CPU_COUNTERS[0].keys, i)
        for c in EVENTS:
            if any(k in cpu for k in c.keys):
                out.append(sep.join((label, text(get(cpu, c.keys), c.unit), c.unit, c.event)))
    return '\n'.join(out) + '\n'


__all__ = ['format_stat', 'format_stat_csv', 'values', 'per_cpu', 'get']
