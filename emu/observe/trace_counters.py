"""Counter tracks of a `faultlab run --trace` file: memory over simulated time.

Each guest process gets an `RSS` counter (its mm's resident anonymous and file pages, in kB, as
/proc/PID/status's VmRSS: get_mm_rss); the "memory" process has `MemFree` and `Cached` (the page
cache), in kB as /proc/meminfo prints them. They are read at page faults, system calls and exits,
at most once per INTERVAL_S of simulated time, and a value is written only when it changed.
"""

INTERVAL_S = 10e-6          # simulated seconds between two looks at the counters


class MemoryCounters:
    """Writes counter events (ph C) into a ChromeTrace."""

    def __init__(self, trace, pid_memory):
        self.trace = trace
        self.kernel = trace.kernel
        self.pid_memory = pid_memory
        self.interval = max(1, int(trace.freq * INTERVAL_S))
        self.next_at = 0
        self.last = {}              # (pid, name) -> last value written

    def _counter(self, pid, name, value, ts):
        key = (pid, name)
        if self.last.get(key) == value:
            return
        self.last[key] = value
        self.trace._emit({'name': name, 'ph': 'C', 'pid': pid, 'ts': ts, 'args': {'kB': value}})

    def maybe_sample(self):
        """Look at the counters if INTERVAL_S went by since the last look."""
        now = self.kernel.now()
        if now >= self.next_at:
            self.next_at = now + self.interval
            self.sample(now)

    def sample(self, now=None):
        k = self.kernel
        ts = self.trace._us(k.now() if now is None else now)
        self._counter(self.pid_memory, 'MemFree', k.frames.nr_free * 4, ts)
        self._counter(self.pid_memory, 'Cached', sum(m.nrpages for m in k.pagecache.mappings.values()) * 4, ts)
        seen = set()
        for task in list(k.tasks.values()):
            group = task.group
            if id(group) in seen:
                continue
            seen.add(id(group))
            if group.exited:
                if (task.tgid, 'RSS') in self.last:
                    self._counter(task.tgid, 'RSS', 0, ts)
                continue
            mm = group.leader.mm if not group.leader.exited else task.mm
            self._counter(task.tgid, 'RSS', (mm.rss_anon + mm.rss_file) * 4, ts)
