"""The simulated disk: queue_depth parallel service slots, FIFO, latency + size/bandwidth per request.

A request starts at max(submit time, earliest free slot, previous request's start) and occupies its
slot for latency + bytes/bandwidth. Its completion runs from the event queue at complete_time.
"""
import heapq
import math
from fractions import Fraction

from faultlab.kernel.block.params import DiskParams
from faultlab.kernel.block.request import READ, WRITE, BlockStats, Request

__all__ = ['BlockDevice', 'DiskParams', 'Request', 'BlockStats', 'READ', 'WRITE']

_OPS = (READ, WRITE)
_NUMBER = (int, float)


def _exact(x):
    """A float parameter as an exact decimal fraction (so 0.1 us is exactly 1/10 us)."""
    return Fraction(repr(float(x)))


class BlockDevice:
    """A disk with a request queue timed in cycles of a `freq_hz` clock."""

    def __init__(self, params=None, freq_hz=3_000_000_000, events=None, capacity_blocks=None):
        """params: DiskParams; events: kernel.events.EventQueue; capacity_blocks: optional size limit."""
        if isinstance(freq_hz, bool) or not isinstance(freq_hz, (int, float)) or not freq_hz > 0 \
                or not math.isfinite(freq_hz):
            raise ValueError(f'freq_hz must be a positive number, got {freq_hz!r}')
        if events is None:
            raise ValueError('BlockDevice needs an event queue')
        if capacity_blocks is not None and (not isinstance(capacity_blocks, int) or capacity_blocks <= 0):
            raise ValueError(f'capacity_blocks must be a positive integer, got {capacity_blocks!r}')
        self.params = params if params is not None else DiskParams()
        self.freq_hz = freq_hz
        self.events = events
        self.capacity_blocks = capacity_blocks
        self.stats = BlockStats()
        self.tracer = None              # kernel.tracepoints observer (block_rq_issue), None: off
        self._slots = [0] * self.params.queue_depth   # min-heap of times each slot becomes free
        self._last_start = 0
        f = Fraction(freq_hz) if isinstance(freq_hz, int) else _exact(freq_hz)
        self._lat = {READ: _exact(self.params.read_latency_us) * f / 10**6,
                     WRITE: _exact(self.params.write_latency_us) * f / 10**6}
        self._per_byte = {READ: f / (_exact(self.params.read_bw_mbps) * 10**6),
                          WRITE: f / (_exact(self.params.write_bw_mbps) * 10**6)}
        self._service = {}              # (op, nblocks) -> service_cycles (exact arithmetic done once)

    def service_cycles(self, op, nblocks):
        """Cycles a request of nblocks takes once started: latency + bytes / bandwidth (rounded up)."""
        c = self._service.get((op, nblocks))
        if c is None:
            nbytes = nblocks * self.params.block_size
            c = self._service[(op, nblocks)] = max(1, math.ceil(self._lat[op] + nbytes * self._per_byte[op]))
        return c

    def submit(self, op, block, nblocks, now, on_complete=None):
        """Queue a request at time `now`; its completion fires from the event queue. Returns the Request."""
        if (type(block) is not int or type(nblocks) is not int or type(now) not in _NUMBER or op not in _OPS
                or block < 0 or nblocks <= 0 or now < 0
                or (self.capacity_blocks is not None and block + nblocks > self.capacity_blocks)):
            self._validate(op, block, nblocks, now)      # the request's fault, named (ValueError)
        start = max(now, self._slots[0], self._last_start)
        service = self.service_cycles(op, nblocks)
        complete = start + service
        heapq.heapreplace(self._slots, complete)
        self._last_start = start
        req = Request(op, block, nblocks, now, start, complete, False, on_complete)
        st = self.stats
        nbytes = nblocks * self.params.block_size
        if op == READ:
            st.reads += 1
            st.read_bytes += nbytes
        else:
            st.writes += 1
            st.write_bytes += nbytes
        st.queue_wait_cycles += start - now
        st.service_cycles += service
        st.inflight += 1
        st.max_inflight = max(st.max_inflight, st.inflight)
        self.events.schedule(complete, lambda _when, r=req: self._end_request(r))
        if self.tracer is not None:
            self.tracer.block_rq_issue(req)
        return req

    def _end_request(self, req):
        """blk_mq_end_request: mark the request done and call its completion callback."""
        req.done = True
        self.stats.inflight -= 1
        self.stats.completed += 1
        if req.on_complete is not None:
            req.on_complete(req)

    def idle_time(self):
        """The earliest time at which every submitted request has finished."""
        return max(self._slots)

    def _validate(self, op, block, nblocks, now):
        """Raise ValueError on a malformed request."""
        if op not in (READ, WRITE):
            raise ValueError(f"bad block op {op!r} (expected 'read' or 'write')")
        for name, v in (('block', block), ('nblocks', nblocks)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f'{name} must be an integer, got {v!r}')
        if isinstance(now, bool) or not isinstance(now, (int, float)):
            raise ValueError(f'now must be a number of cycles, got {now!r}')
        if block < 0:
            raise ValueError(f'negative block number {block}')
        if nblocks <= 0:
            raise ValueError(f'nblocks must be > 0, got {nblocks}')
        if now < 0:
            raise ValueError(f'negative submit time {now}')
        if self.capacity_blocks is not None and block + nblocks > self.capacity_blocks:
            raise ValueError(f'request [{block}, {block + nblocks}) beyond the end of the disk '
                             f'({self.capacity_blocks} blocks)')
