"""`faultlab stat`: `perf stat`-like counters of the simulated machine, from Kernel.snapshot().

Every figure is one of the kernel's own counters (nothing is recomputed here). Counters a kernel
version does not have yet print as 0; a snapshot with a per-CPU list (`cpus`, or `per_cpu`) adds a
per-CPU block like `perf stat -A`. With a separator (-x) the output is `value<SEP>unit<SEP>event`
lines, as perf's CSV mode, for scripts.
"""

# (event name, unit, snapshot keys tried in order)
EVENTS = (
    ('instructions', '', ('instructions',)),
    ('cycles', '', ('cycles',)),
    ('guest-cycles', '', ('guest_cycles',)),
    ('kernel-cycles', '', ('kernel_cycles',)),
    ('idle-cycles', '', ('idle_cycles',)),
    ('iowait-cycles', '', ('iowait_cycles',)),
    ('seconds-simulated', 's', ('sim_seconds',)),
    ('page-faults', '', ('page_faults',)),
    ('minor-faults', '', ('minor_faults',)),
    ('major-faults', '', ('major_faults',)),
    ('speculative-faults', '', ('spf', 'speculative_faults', 'spf_success')),
    ('speculative-aborts', '', ('spf_abort', 'spf_aborts', 'speculative_aborts')),
    ('nowait-faults', '', ('nowait_faults',)),
    ('vdso-fixups', '', ('vdso_fixups',)),
    ('fault-around-pages', '', ('fault_around_pages',)),
    ('kernel-faultins', '', ('kernel_faultins',)),
    ('tlb-flushes', '', ('tlb_flushes',)),
    ('disk-reads', '', ('disk_reads',)),
    ('disk-writes', '', ('disk_writes',)),
    ('disk-read-bytes', 'B', ('disk_read_bytes',)),
    ('disk-write-bytes', 'B', ('disk_write_bytes',)),
    ('disk-queue-wait-cycles', '', ('disk_queue_wait_cycles',)),
    ('swap-in-pages', '', ('pswpin',)),
    ('swap-out-pages', '', ('pswpout',)),
    ('mmap-lock-wait-cycles', '', ('mmap_lock_wait_cycles', 'mmap_lock_wait')),
    ('syscalls', '', ('syscalls',)),
)
PER_CPU_KEYS = ('cpus', 'per_cpu')


def get(s, keys, default=0):
    """The first of `keys` present in snapshot s (a tuple, or one key), else default."""
    for k in (keys,) if isinstance(keys, str) else keys:
        v = s.get(k)
        if v is not None:
            return v
    return default


def values(s):
    """{event name: value} for every event of EVENTS."""
    return {name: get(s, keys) for name, _unit, keys in EVENTS}


def per_cpu(s):
    """The snapshot's per-CPU list of dicts, or [] for a one-CPU kernel."""
    for k in PER_CPU_KEYS:
        v = s.get(k)
        if isinstance(v, (list, tuple)) and len(v) > 1 and all(isinstance(c, dict) for c in v):
            return list(v)
    return []


def _n(v):
    return '{:,}'.format(int(round(v)))


def _pct(a, b):
    return 100.0 * a / b if b else 0.0


def _ms(cycles, freq):
    return 1e3 * cycles / freq if freq else 0.0


def format_stat(s, name):
    """The human-readable block, perf stat style."""
    v = values(s)
    freq = get(s, 'freq_hz', 0) or 1
    cycles = v['cycles']
    cpus = per_cpu(s)
    ncpu = len(cpus) or 1
    ipc = v['instructions'] / v['guest-cycles'] if v['guest-cycles'] else 0.0
    ipc_all = v['instructions'] / cycles if cycles else 0.0
    faults = v['page-faults']
    L = ['', " Performance counter stats for '%s' (faultlab, simulated %.3f GHz, %d CPU%s):"
         % (name, freq / 1e9, ncpu, '' if ncpu == 1 else 's'), '']

    def row(value, event, comment=''):
        L.append(('%20s      %-26s%s' % (value, event, ('#  ' + comment) if comment else '')).rstrip())

    row(_n(v['instructions']), 'instructions', '%6.2f  insn per cycle (%.2f per guest cycle)' % (ipc_all, ipc))
    row(_n(cycles), 'cycles', '%.3f GHz simulated clock' % (freq / 1e9))
    row(_n(v['guest-cycles']), 'guest-cycles', '%5.1f%% user mode' % _pct(v['guest-cycles'], cycles))
    row(_n(v['kernel-cycles']), 'kernel-cycles', '%5.1f%% kernel work' % _pct(v['kernel-cycles'], cycles))
    row(_n(v['idle-cycles']), 'idle-cycles', '%5.1f%% idle (%s waiting for I/O)'
        % (_pct(v['idle-cycles'], cycles), _n(v['iowait-cycles'])))
    row(_n(faults), 'page-faults', '%s minor, %s major' % (_n(v['minor-faults']), _n(v['major-faults'])))
    row(_n(v['minor-faults']), 'minor-faults', '%5.1f%% of page faults' % _pct(v['minor-faults'], faults))
    row(_n(v['major-faults']), 'major-faults', '%5.1f%% of page faults' % _pct(v['major-faults'], faults))
    row(_n(v['speculative-faults']), 'speculative-faults', '%s aborted to the classic path'
        % _n(v['speculative-aborts']))
    row(_n(v['nowait-faults']), 'nowait-faults', 'FAULT_FLAG_RETRY_NOWAIT (prefetch_page); %s extable fixups'
        % _n(v['vdso-fixups']))
    row(_n(v['fault-around-pages']), 'fault-around-pages', 'mapped next to a faulting page')
    row(_n(v['kernel-faultins']), 'kernel-faultins', 'faulted in by the kernel (uaccess, populate)')
    row(_n(v['tlb-flushes']), 'tlb-flushes')
    row(_n(v['disk-reads'] + v['disk-writes']), 'disk-requests', '%s reads (%s bytes), %s writes (%s bytes)'
        % (_n(v['disk-reads']), _n(v['disk-read-bytes']), _n(v['disk-writes']), _n(v['disk-write-bytes'])))
    nreq = v['disk-reads'] + v['disk-writes']
    row(_n(v['disk-queue-wait-cycles']), 'disk-queue-wait-cycles', '%.3f ms, %.3f us per request'
        % (_ms(v['disk-queue-wait-cycles'], freq), 1e3 * _ms(v['disk-queue-wait-cycles'], freq) / nreq if nreq else 0))
    row(_n(v['swap-in-pages']), 'swap-in-pages')
    row(_n(v['swap-out-pages']), 'swap-out-pages')
    row(_n(v['mmap-lock-wait-cycles']), 'mmap-lock-wait-cycles', '%.3f ms' % _ms(v['mmap-lock-wait-cycles'], freq))
    row(_n(v['syscalls']), 'syscalls')
    if cpus:
        L += ['', '  per CPU:']
        for i, c in enumerate(cpus):
            cv = values(c)
            cc = cv['cycles']
            L.append('    CPU%-3s %16s instructions %16s cycles %8.2f IPC %10s faults (%s major) %12s idle'
                     % (get(c, ('cpu', 'index'), i), _n(cv['instructions']), _n(cc),
                        cv['instructions'] / cc if cc else 0.0, _n(cv['page-faults']), _n(cv['major-faults']),
                        _n(cv['idle-cycles'])))
    L += ['', '%20.9f seconds simulated time' % v['seconds-simulated'],
          '%20.9f seconds waiting for I/O' % (v['iowait-cycles'] / freq), '']
    return '\n'.join(L) + '\n'


def format_stat_csv(s, sep=','):
    """perf stat -x style: value SEP unit SEP event, one per line (per-CPU lines prefixed CPUn SEP)."""
    def text(val, unit):
        return '%.9f' % val if unit == 's' else str(int(round(val)))

    out = []
    for name, unit, keys in EVENTS:
        out.append(sep.join((text(get(s, keys), unit), unit, name)))
    for i, c in enumerate(per_cpu(s)):
        cpu = 'CPU%s' % get(c, ('cpu', 'index'), i)
        for name, unit, keys in EVENTS:
            if any(k in c for k in keys):
                out.append(sep.join((cpu, text(get(c, keys), unit), unit, name)))
    return '\n'.join(out) + '\n'
