"""kernel/locking.py's hold intervals kept in order of their end give the same answers as the plain list
of holds they replaced (a host-speed change only): the same release times, overlaps and forgotten holds."""
import random

from faultlab.kernel.locking import HISTORY, MAX_HOLDS, _Holds


class _PlainHolds:
    """The reference: holds in the order they came, every one scanned until nothing moves."""

    def __init__(self):
        self.spans = []

    def add(self, start, end, cpu):
        if end > start:
            self.spans.append((start, end, cpu))
            if len(self.spans) > 96:
                horizon = max(s[1] for s in self.spans) - HISTORY
                self.spans = [s for s in self.spans if s[1] >= horizon]
                if len(self.spans) > MAX_HOLDS:
                    self.spans.sort(key=lambda s: s[1])
                    del self.spans[:len(self.spans) - MAX_HOLDS // 2]

    def busy_until(self, t, cpu):
        end = t
        moved = True
        while moved:
            moved = False
            for s, e, c in self.spans:
                if c != cpu and s <= end < e:
                    end = e
                    moved = True
        return end

    def overlaps(self, t0, t1, cpu):
        return any(c != cpu and s <= t1 and e > t0 for s, e, c in self.spans)


def _workload(rng, hold_len, spread):
    """CPUs whose clocks drift apart, each adding holds near its own clock and asking about them."""
    clocks = [rng.randrange(spread) for _ in range(16)]
    for _ in range(3000):
        cpu = rng.randrange(16)
        clocks[cpu] += rng.randrange(1, hold_len)
        start = clocks[cpu] - rng.randrange(hold_len)
        end = start + rng.choice((0, 1, rng.randrange(hold_len), rng.randrange(3 * hold_len)))
        if rng.random() < 0.3:
            end = start + rng.randrange(2) * 0.25 + hold_len     # equal ends, fractional cycles
        yield cpu, start, end, clocks[cpu] - rng.randrange(2 * hold_len)


def test_same_answers_as_the_plain_list():
    rng = random.Random(7)
    for hold_len, spread in ((50, 100), (2_000, 50_000), (30_000, 3 * HISTORY)):
        fast, plain = _Holds(), _PlainHolds()
        for cpu, start, end, t in _workload(rng, hold_len, spread):
            fast.add(start, end, cpu)
            plain.add(start, end, cpu)
            assert sorted(fast.spans) == sorted(plain.spans)
            other = rng.randrange(16)
            assert fast.busy_until(t, other) == plain.busy_until(t, other)
            assert fast.busy_until(start, cpu) == plain.busy_until(start, cpu)
            assert fast.overlaps(t, t + hold_len, other) == plain.overlaps(t, t + hold_len, other)


def test_the_oldest_holds_are_forgotten_first():
    h = _Holds()
    for i in range(MAX_HOLDS + 1):
        h.add(i, i + 10, i % 2)
    assert len(h.spans) <= MAX_HOLDS
    assert h.spans[-1] == (MAX_HOLDS, MAX_HOLDS + 10, MAX_HOLDS % 2)
    assert min(s[1] for s in h.spans) > 10
