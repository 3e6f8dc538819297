"""Kernel locks held over intervals of simulated time (rw_semaphore, spinlock, seqcount).

Kernel code runs atomically on the host, so a lock cannot be observed "held" the way it is on real
hardware. Instead each lock remembers the simulated-time intervals its holders held it for. A CPU whose
clock falls inside another CPU's hold waits (its clock advances to the release time); a trylock fails.
The scheduler runs the CPU with the lowest clock first and switches often (CPUs drift apart by far less
than HISTORY cycles), so holds from different CPUs are compared in nearly causal order. Holds that ended
more than HISTORY cycles before the newest one are forgotten (and beyond MAX_HOLDS, the oldest).
"""
from bisect import bisect_left, bisect_right

HISTORY = 1_000_000
MAX_HOLDS = 256


class _Holds:
    """The recent hold intervals [start, end) of one lock mode, by CPU, kept in order of their end (holds
    with the same end in the order they were added): the holds a time t can fall in are the tail that
    ends after t, found by bisection, and the forgotten ones are always a prefix."""
    __slots__ = ('spans', 'ends')

    def __init__(self):
        self.spans = []                 # [(start, end, cpu)], by end
        self.ends = []                  # their ends, for bisect

    def add(self, start, end, cpu):
        if end > start:
            ends = self.ends
            i = bisect_right(ends, end)
            ends.insert(i, end)
            spans = self.spans
            spans.insert(i, (start, end, cpu))
            if len(spans) > 96:
                drop = bisect_left(ends, ends[-1] - HISTORY)
                if len(spans) - drop > MAX_HOLDS:
                    drop = len(spans) - MAX_HOLDS // 2
                if drop:
                    del spans[:drop]
                    del ends[:drop]

    def busy_until(self, t, cpu):
        """The release time of a hold by another CPU that covers time t (t itself if none): the first
        time from t on that no such hold covers."""
        i = bisect_right(self.ends, t)
        if i == len(self.ends):
            return t
        live = self.spans[i:]           # only holds ending after t can cover t or a later release
        end = t
        moved = True
        while moved:
            moved = False
            for s, e, c in live:
                if c != cpu and s <= end < e:
                    end = e
                    moved = True
        return end

    def overlaps(self, t0, t1, cpu):
        """True if another CPU held it at some time in [t0, t1]."""
        for s, e, c in self.spans[bisect_right(self.ends, t0):]:
            if c != cpu and s <= t1:
                return True
        return False


class RwSemaphore:
    """struct rw_semaphore (mmap_lock): readers share, a writer excludes everyone, FIFO in time."""

    def __init__(self, name):
        self.name = name
        self.readers = _Holds()
        self.writers = _Holds()
        self.queued = _Holds()           # a woken writer's wake-up: the lock is free, readers wait
        self.wait_cycles = 0
        self.contended = 0
        self.last_cpu = None             # the CPU that wrote the lock word last (its cache line is there)
        self.line = SpinLock()           # transfers of that cache line, one at a time

    def read_wait(self, t, cpu):
        """When a reader asking at t gets the lock (after any writer holding it or woken to take it:
        readers 'will block as they will notice the queued writer', rwsem_mark_wake)."""
        end = t
        while True:
            e = max(self.writers.busy_until(end, cpu), self.queued.busy_until(end, cpu))
            if e == end:
                return end
            end = e

    def write_wait(self, t, cpu):
        """When a writer asking at t gets the lock (after readers and writers holding it then)."""
        end = t
        while True:
            e = max(self.writers.busy_until(end, cpu), self.readers.busy_until(end, cpu))
            if e == end:
                return end
            end = e

    def held_for_write(self, t0, t1, cpu):
        return self.writers.overlaps(t0, t1, cpu)


class SpinLock:
    """spinlock_t (a page-table lock): spin_lock waits for the holder; spin_trylock fails."""
    __slots__ = ('holds',)

    def __init__(self):
        self.holds = _Holds()

    def wait(self, t, cpu):
        return self.holds.busy_until(t, cpu)

    def is_locked(self, t, cpu):
        return self.holds.busy_until(t, cpu) != t


class SeqCount:
    """seqcount_t of a VMA: the intervals writers had it odd (write_seqcount_begin .. end)."""
    __slots__ = ('holds', 'seq')

    def __init__(self):
        self.holds = _Holds()
        self.seq = 0

    def write(self, start, end, cpu):
        """A writer changed the protected fields during [start, end)."""
        self.seq += 2
        self.holds.add(start, max(end, start + 1), cpu)

    def changed(self, t0, t1, cpu):
        """read_seqcount_begin at t0 .. read_seqcount_retry at t1 would see a change."""
        return self.holds.overlaps(t0, t1, cpu)
