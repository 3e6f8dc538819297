"""Simulated-time event queue: things that happen later (I/O completions, timer expiries).

Time is in cycles of the machine's reference clock (see emu/core/cycles.py for the frequency).
Events at the same time run in the order they were scheduled, so a run is deterministic.
"""
import heapq
import itertools


class EventQueue:
    """A min-heap of (time, seq, callback) entries."""

    def __init__(self):
        self._heap = []
        self.pending = self._heap       # the same list: `if queue.pending` is the cheap emptiness test
        self._seq = itertools.count()

    def schedule(self, when, callback):
        """Run callback(when) once simulated time reaches `when` (cycles)."""
        heapq.heappush(self._heap, (int(when), next(self._seq), callback))

    def next_time(self):
        """The time of the earliest pending event, or None."""
        return self._heap[0][0] if self._heap else None

    def run_due(self, now):
        """Run every event whose time is <= now; return how many ran."""
        n = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, cb = heapq.heappop(heap)
            cb(when)
            n += 1
        return n

    def __len__(self):
        return len(self._heap)
