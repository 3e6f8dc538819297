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
        self.word = CacheLine(name)      # the cache line of the lock's count (every lock and unlock writes it)

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


class CacheLine:
    """A cache line that CPUs write with atomics (a lock word, a reference count). The CPU that wrote it
    last owns it (MESI Modified); an atomic from another CPU first moves the line to it (a cache-line
    transfer, `cost` cycles), and the transfers of one line happen one at a time: a CPU asking while
    others' transfers are under way queues behind them (the contended line is a serialisation point
    of its own, the more so the more CPUs write it)."""
    __slots__ = ('name', 'times', 'cpus', 'transfers')
    KEEP = 64                           # recent writes remembered (the owner at a time is the last writer)

    def __init__(self, name):
        self.name = name
        self.times = []                 # recent writes in order of simulated time, and their CPUs
        self.cpus = []
        self.transfers = _Holds()

    def write(self, t, cpu, cost):
        """An atomic by cpu at time t: the [start, end) of the transfer it waits for, or None if cpu
        owns the line then (it wrote it last before t, in simulated time) or nobody wrote it yet."""
        times, cpus = self.times, self.cpus
        i = bisect_right(times, t)
        last = cpus[i - 1] if i else (cpus[0] if cpus else None)
        times.insert(i, t)
        cpus.insert(i, cpu)
        if len(times) > 2 * self.KEEP:
            del times[:self.KEEP]
            del cpus[:self.KEEP]
        if last is None or last == cpu:
            return None
        start = self.transfers.busy_until(t, cpu)
        self.transfers.add(start, start + cost, cpu)
        return start, start + cost


class SeqCount:
    """seqcount_t of a VMA: the intervals writers had it odd (write_seqcount_begin .. end); and the cache
    line of the VMA's reference count (vm_ref_count, which the SPF series' get_vma and put_vma change)."""
    __slots__ = ('holds', 'seq', 'ref')

    def __init__(self):
        self.holds = _Holds()
        self.seq = 0
        self.ref = CacheLine('vm_ref_count')

    def write(self, start, end, cpu):
        """A writer changed the protected fields during [start, end)."""
        self.seq += 2
        self.holds.add(start, max(end, start + 1), cpu)

    def changed(self, t0, t1, cpu):
        """read_seqcount_begin at t0 .. read_seqcount_retry at t1 would see a change."""
        return self.holds.overlaps(t0, t1, cpu)
