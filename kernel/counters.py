"""The machine's counters, each declared once: its key, event name, unit, meaning and how it is read.

`snapshot(kernel)` builds the dict `Machine.run` returns (RunResult.stats) and `--stats-json` writes, in
the order declared here. `faultlab stat`, `run --stats` and `stat -x` print the same declarations
(emu/observe/stat.py): a counter with an event name is a perf-stat-like event (`perf stat -x` lists it),
one with `row` set also has its own line in the human-readable block, with its `note` as the comment.
Every event name, derived ones included, is what `faultlab stat -e` accepts (EVENT_NAMES), as perf stat -e
takes perf's. The user, kernel and idle cycles are summed over every CPU, so their shares are of the
summed CPU time (cpu-time-cycles), which on one CPU is `cycles`. A counter whose `read` is None is
derived for display from the other events (`derive`) and is not part of the snapshot.
"""

__all__ = ['KernelCounter', 'COUNTERS', 'CPU_COUNTERS', 'EVENTS', 'EVENT_NAMES', 'BY_EVENT', 'snapshot', 'n', 'pct',
           'ms']


class KernelCounter:
    """One counter: snapshot key, event name (None: JSON only), unit, description, how it is read."""
    __slots__ = ('key', 'event', 'unit', 'description', 'read', 'aliases', 'row', 'note', 'derive')

    def __init__(self, key, event, unit, description, read, aliases=(), row=False, note=None, derive=None):
        self.key = key
        self.event = event
        self.unit = unit                # '' (a count), 's' (seconds) or 'B' (bytes)
        self.description = description
        self.read = read                # kernel -> value (per-CPU counters: run queue -> value)
        self.aliases = aliases          # snapshot keys older kernels used for the same figure
        self.row = row                  # its own line in the human-readable block
        self.note = note                # (values, freq_hz) -> the comment after the row, or None
        self.derive = derive            # values -> value, for a display-only counter (read is None)

    @property
    def keys(self):
        """The snapshot keys to look the counter up by, the current one first."""
        return (self.key,) + tuple(self.aliases)


def n(v):
    """A count with thousands separators, as perf prints it."""
    return '{:,}'.format(int(round(v)))


def pct(a, b):
    """a as a percentage of b (0 when b is 0)."""
    return 100.0 * a / b if b else 0.0


def ms(cycles, freq):
    """Cycles as milliseconds at freq."""
    return 1e3 * cycles / freq if freq else 0.0


def _stat(name):
    """Read one of the kernel's named event counts (Kernel.stats)."""
    return lambda k: k.stats[name]


def _rq_sum(attr):
    """Read the sum of one run-queue field over every CPU."""
    return lambda k: sum(getattr(rq, attr) for rq in k.sched.totals())


def _bs(attr):
    """Read one of the block device's counters."""
    return lambda k: getattr(k.blockdev.stats, attr)


def _spf_aborts(k):
    """The speculative faults that fell back to the classic path, by reason (spf_* but spf itself)."""
    return {key: v for key, v in sorted(k.stats.items()) if key.startswith('spf_') and v}


def _per_cpu(k):
    """One dict of CPU_COUNTERS per run queue."""
    return [{c.key: c.read(rq) for c in CPU_COUNTERS} for rq in k.sched.totals()]


def cpu_time(v):
    """The cycles of every CPU's clock summed (user + kernel + idle), the whole of the shares below;
    on one CPU the same as `cycles`."""
    return v['guest-cycles'] + v['kernel-cycles'] + v['idle-cycles'] or v['cycles']


def _cycles_note(v, freq):
    """The clock rate; with several CPUs also the summed CPU time the user/kernel/idle shares are of."""
    note = '%.3f GHz simulated clock' % (freq / 1e9)
    if cpu_time(v) > v['cycles']:            # (on one CPU the sum is at most the clock)
        note += "; every CPU's clock summed: %s (the %% below)" % n(cpu_time(v))
    return note


def _ipc_note(v, freq):
    """Instructions per cycle of the machine's clock and per user-mode cycle."""
    ipc = v['instructions'] / v['guest-cycles'] if v['guest-cycles'] else 0.0
    ipc_all = v['instructions'] / v['cycles'] if v['cycles'] else 0.0
    return '%6.2f  insn per cycle (%.2f per guest cycle)' % (ipc_all, ipc)


def _disk_wait_note(v, freq):
    """The disk queue's wait in milliseconds, and per request."""
    nreq = v['disk-reads'] + v['disk-writes']
    wait = ms(v['disk-queue-wait-cycles'], freq)
    return '%.3f ms, %.3f us per request' % (wait, 1e3 * wait / nreq if nreq else 0)


COUNTERS = (
    KernelCounter('instructions', 'instructions', '', 'guest instructions executed',
                  lambda k: k.cpu.insns, row=True, note=_ipc_note),
    KernelCounter('cycles', 'cycles', '', 'simulated time in cycles: the furthest CPU clock',
                  lambda k: k.sched.elapsed(), row=True, note=_cycles_note),
    KernelCounter('guest_cycles', 'guest-cycles', '', 'cycles in user mode, every CPU',
                  _rq_sum('guest_cycles'), row=True,
                  note=lambda v, f: '%5.1f%% user mode' % pct(v['guest-cycles'], cpu_time(v))),
    KernelCounter('kernel_cycles', 'kernel-cycles', '', 'cycles of kernel work, every CPU',
                  lambda k: int(_rq_sum('kcycles')(k)), row=True,
                  note=lambda v, f: '%5.1f%% kernel work' % pct(v['kernel-cycles'], cpu_time(v))),
    KernelCounter('idle_cycles', 'idle-cycles', '', 'cycles a CPU waited (I/O, sleep, locks), every CPU',
                  lambda k: int(_rq_sum('idle_cycles')(k)), row=True,
                  note=lambda v, f: '%5.1f%% idle (%s waiting for I/O)' % (pct(v['idle-cycles'], cpu_time(v)),
                                                                          n(v['iowait-cycles']))),
    KernelCounter('cpu_time_cycles', 'cpu-time-cycles', '', "every CPU's clock summed: user + kernel + idle cycles",
                  None, derive=cpu_time),
    KernelCounter('iowait_cycles', 'iowait-cycles', '', 'idle cycles spent waiting for the disk',
                  lambda k: int(_rq_sum('iowait_cycles')(k))),
    KernelCounter('freq_hz', None, '', 'the simulated clock frequency (Hz)', lambda k: k.costs.freq_hz),
    KernelCounter('sim_seconds', 'seconds-simulated', 's', 'simulated time: cycles / freq_hz',
                  lambda k: k.costs.seconds(k.sched.elapsed())),
    KernelCounter('nr_cpus', None, '', 'simulated CPUs', lambda k: len(k.sched.totals())),
    KernelCounter('cpus', None, '', 'the per-CPU counters (CPU_COUNTERS), one dict per CPU', _per_cpu,
                  aliases=('per_cpu',)),
    KernelCounter('threads_created', None, '', 'threads created (clone)', _stat('threads_created')),
    KernelCounter('context_switches', 'context-switches', '', 'context switches out of a task, every task (as '
                  'perf counts them: perf_event_task_sched_out)', lambda k: k.sched.task_switches, row=True),
    KernelCounter('page_faults', 'page-faults', '', 'user page faults resolved (minor + major)',
                  lambda k: k.stats['minor_faults'] + k.stats['major_faults'], row=True,
                  note=lambda v, f: '%s minor, %s major' % (n(v['minor-faults']), n(v['major-faults']))),
    KernelCounter('minor_faults', 'minor-faults', '', 'faults resolved without I/O (mm_account_fault)',
                  _stat('minor_faults'), row=True,
                  note=lambda v, f: '%5.1f%% of page faults' % pct(v['minor-faults'], v['page-faults'])),
    KernelCounter('major_faults', 'major-faults', '', 'faults that waited for I/O (mm_account_fault)',
                  _stat('major_faults'), row=True,
                  note=lambda v, f: '%5.1f%% of page faults' % pct(v['major-faults'], v['page-faults'])),
    KernelCounter('spf', 'speculative-faults', '', 'faults resolved speculatively, without mmap_lock',
                  _stat('spf'), aliases=('speculative_faults', 'spf_success'), row=True,
                  note=lambda v, f: '%s aborted to the classic path' % n(v['speculative-aborts'])),
    KernelCounter('spf_aborts', None, '', 'speculative faults that fell back to the classic path, by reason',
                  _spf_aborts),
    KernelCounter('spf_abort', 'speculative-aborts', '', 'speculative faults that fell back to the classic path',
                  lambda k: sum(v for key, v in k.stats.items() if key.startswith('spf_')),
                  aliases=('spf_aborts', 'speculative_aborts')),
    KernelCounter('nowait_faults', 'nowait-faults', '', 'faults taken with FAULT_FLAG_RETRY_NOWAIT (prefetch_page)',
                  _stat('nowait_faults'), row=True,
                  note=lambda v, f: 'FAULT_FLAG_RETRY_NOWAIT (prefetch_page); %s extable fixups' % n(v['vdso-fixups'])),
    KernelCounter('vdso_fixups', 'vdso-fixups', '', "faults the vDSO's exception table fixed up",
                  _stat('vdso_fixups')),
    KernelCounter('fault_around_pages', 'fault-around-pages', '', 'pages mapped next to a faulting page',
                  _stat('fault_around_pages'), row=True, note=lambda v, f: 'mapped next to a faulting page'),
    KernelCounter('kernel_faultins', 'kernel-faultins', '', 'pages faulted in by the kernel (uaccess, populate)',
                  _stat('kernel_faultins'), row=True, note=lambda v, f: 'faulted in by the kernel (uaccess, populate)'),
    KernelCounter('pages_zeroed', 'pages-zeroed', '', 'pages cleared for anonymous memory', _stat('pages_zeroed'),
                  row=True),
    KernelCounter('pages_copied', 'pages-copied', '', 'pages copied on write', _stat('pages_copied'), row=True,
                  note=lambda v, f: 'copy-on-write'),
    KernelCounter('ksm_pages_merged', 'ksm-pages-merged', '', 'pages ksmd mapped to a KSM page or the zero page '
                  'instead of their own (mm/ksm.c replace_page)', _stat('ksm_pages_merged')),
    KernelCounter('ksmd_cycles', 'ksmd-cycles', '', "kernel cycles of ksmd's scanning (checksums, compares, PTEs)",
                  _stat('ksmd_cycles')),
    KernelCounter('pagecache_hits', 'pagecache-hits', '', 'file pages found in the page cache',
                  _stat('pagecache_hits'), row=True),
    KernelCounter('pagecache_misses', 'pagecache-misses', '', 'file pages read from the disk',
                  _stat('pagecache_misses'), row=True),
    KernelCounter('tlb_flushes', 'tlb-flushes', '', 'TLB flushes', _stat('tlb_flushes'), row=True),
    KernelCounter('tlb_shootdowns', None, '', 'TLB flushes that sent IPIs to other CPUs', _stat('tlb_shootdowns')),
    KernelCounter('tlb_shootdowns_idle', None, '', 'TLB shootdowns that had to wake an idle CPU',
                  _stat('tlb_shootdowns_idle')),
    KernelCounter('disk_requests', 'disk-requests', '', 'disk requests (reads + writes)', None, row=True,
                  derive=lambda v: v['disk-reads'] + v['disk-writes'], note=lambda v, f: 'reads + writes'),
    KernelCounter('disk_reads', 'disk-reads', '', 'disk read requests', _bs('reads'), row=True,
                  note=lambda v, f: '%s bytes' % n(v['disk-read-bytes'])),
    KernelCounter('disk_writes', 'disk-writes', '', 'disk write requests', _bs('writes'), row=True,
                  note=lambda v, f: '%s bytes' % n(v['disk-write-bytes'])),
    KernelCounter('disk_read_bytes', 'disk-read-bytes', 'B', 'bytes read from the disk', _bs('read_bytes')),
    KernelCounter('disk_write_bytes', 'disk-write-bytes', 'B', 'bytes written to the disk', _bs('write_bytes')),
    KernelCounter('disk_queue_wait_cycles', 'disk-queue-wait-cycles', '', "cycles requests waited in the disk's queue",
                  _bs('queue_wait_cycles'), row=True, note=_disk_wait_note),
    KernelCounter('peak_frames', None, '', 'the most page frames allocated at once',
                  lambda k: k.frames.peak_allocated),
    KernelCounter('pswpin', 'swap-in-pages', '', 'pages read back from swap', _stat('pswpin'), row=True),
    KernelCounter('pswpout', 'swap-out-pages', '', 'pages written to swap', _stat('pswpout'), row=True),
    KernelCounter('pgscan', 'pages-scanned', '', 'pages reclaim looked at', _stat('pgscan'), row=True),
    KernelCounter('pgsteal', 'pages-reclaimed', '', 'pages reclaim freed', _stat('pgsteal'), row=True),
    KernelCounter('mmap_lock_wait_cycles', 'mmap-lock-wait-cycles', '', 'cycles spent waiting for mmap_lock',
                  lambda k: int(k.stats['mmap_lock_wait_cycles']), aliases=('mmap_lock_wait',), row=True,
                  note=lambda v, f: '%.3f ms' % ms(v['mmap-lock-wait-cycles'], f)),
    KernelCounter('syscalls', 'syscalls', '', 'system calls', _stat('syscalls'), row=True),
    KernelCounter('dtlb_load_misses', 'dTLB-load-misses', '', 'user loads and stores that missed the L1 data TLB '
                  '(kernel/mm/tlb_model.py)', _stat('dtlb_load_misses'), row=True),
    KernelCounter('dtlb_walks', 'dTLB-walks', '', 'page walks: user accesses that missed both data TLBs',
                  _stat('dtlb_walks'), row=True),
    KernelCounter('llc_misses_mapped', 'LLC-load-misses-mapped', '', 're-touches of mapped user pages no longer '
                  'in the last-level cache', _stat('llc_misses_mapped'), row=True),
    KernelCounter('fault_breakdown', None, '', 'per fault handler: count, cycles and cycles by cost name',
                  lambda k: {h: dict(c) for h, c in sorted(k.fault_breakdown.items())}),
)

# one dict of these per CPU in the snapshot's 'cpus' list (read from the CPU's run queue)
CPU_COUNTERS = (
    KernelCounter('cpu', None, '', 'the CPU number', lambda rq: rq.index, aliases=('index',)),
    KernelCounter('instructions', 'instructions', '', 'guest instructions executed', lambda rq: rq.insns),
    KernelCounter('cycles', 'cycles', '', "the CPU's clock", lambda rq: int(rq.clock())),
    KernelCounter('guest_cycles', 'guest-cycles', '', 'cycles in user mode', lambda rq: rq.guest_cycles),
    KernelCounter('kernel_cycles', 'kernel-cycles', '', 'cycles of kernel work', lambda rq: int(rq.kcycles)),
    KernelCounter('idle_cycles', 'idle-cycles', '', 'cycles the CPU waited', lambda rq: int(rq.idle_cycles)),
    KernelCounter('lock_wait_cycles', None, '', 'cycles waiting for mmap_lock and page-table locks',
                  lambda rq: int(rq.lock_wait_cycles)),
    KernelCounter('context_switches', None, '', "the CPU's context switches, to and from idle too "
                  '(rq->nr_switches)', lambda rq: rq.nr_switches),
    KernelCounter('page_faults', 'page-faults', '', 'user page faults resolved',
                  lambda rq: rq.minor_faults + rq.major_faults),
    KernelCounter('minor_faults', 'minor-faults', '', 'faults resolved without I/O', lambda rq: rq.minor_faults),
    KernelCounter('major_faults', 'major-faults', '', 'faults that waited for I/O', lambda rq: rq.major_faults),
)

# the perf-stat-like events (`stat -x` lists them; the display-only ones are not in the snapshot)
EVENTS = tuple(c for c in COUNTERS if c.event is not None and c.read is not None)
# every event by its perf-style name, the derived ones included (what `faultlab stat -e` accepts)
BY_EVENT = {c.event: c for c in COUNTERS if c.event is not None}
EVENT_NAMES = tuple(BY_EVENT)


def snapshot(kernel):
    """Every counter of the kernel, {key: value} in declaration order (RunResult.stats, --stats-json)."""
    return {c.key: c.read(kernel) for c in COUNTERS if c.read is not None}
