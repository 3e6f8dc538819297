"""Tests of the simulated block device (kernel/block)."""
import pytest

from faultlab.kernel.block import BlockDevice, DiskParams
from faultlab.kernel.events import EventQueue

FREQ = 3_000_000_000            # 3 GHz: 1 us = 3000 cycles


def make_dev(**overrides):
    events = EventQueue()
    return BlockDevice(DiskParams.from_dict(overrides), FREQ, events), events


def test_defaults_are_nvme():
    p = DiskParams()
    assert (p.read_latency_us, p.write_latency_us) == (80.0, 20.0)
    assert (p.read_bw_mbps, p.write_bw_mbps) == (3200.0, 2000.0)
    assert (p.queue_depth, p.block_size) == (64, 4096)


def test_single_read_is_latency_plus_transfer():
    dev, events = make_dev()
    req = dev.submit('read', 10, 1, 1000)
    # 80 us = 240000 cycles; 4096 B at 3.2e9 B/s = 1.28 us = 3840 cycles
    assert req.start_time == 1000
    assert req.complete_time == 1000 + 240_000 + 3_840
    assert not req.done
    assert events.next_time() == req.complete_time


def test_single_write_timing_and_size_scaling():
    dev, _ = make_dev()
    req = dev.submit('write', 0, 8, 0)
    # 20 us = 60000 cycles; 32768 B at 2e9 B/s = 16.384 us = 49152 cycles
    assert req.complete_time == 60_000 + 49_152
    assert dev.service_cycles('write', 16) == 60_000 + 2 * 49_152


def test_fractional_cycles_round_up():
    events = EventQueue()
    dev = BlockDevice(DiskParams(read_latency_us=0.1, read_bw_mbps=3000.0), 1_000_000_000, events)
    # 0.1 us = 100 cycles exactly at 1 GHz; 4096 B / 3e9 B/s * 1e9 = 1365.33 -> 1366
    assert dev.service_cycles('read', 1) == 100 + 1366


def test_queue_depth_one_serializes_fifo():
    dev, _ = make_dev(queue_depth=1)
    svc = dev.service_cycles('read', 1)
    reqs = [dev.submit('read', i, 1, 0) for i in range(3)]
    assert [r.start_time for r in reqs] == [0, svc, 2 * svc]
    assert [r.complete_time for r in reqs] == [svc, 2 * svc, 3 * svc]
    assert dev.stats.queue_wait_cycles == 0 + svc + 2 * svc
    assert [r.wait_cycles for r in reqs] == [0, svc, 2 * svc]


def test_parallel_slots_then_queueing():
    dev, _ = make_dev(queue_depth=2)
    svc = dev.service_cycles('read', 1)
    reqs = [dev.submit('read', i, 1, 100) for i in range(3)]
    assert [r.start_time for r in reqs] == [100, 100, 100 + svc]
    assert dev.stats.queue_wait_cycles == svc
    assert dev.stats.max_inflight == 3
    assert dev.idle_time() == 100 + 2 * svc


def test_later_submit_on_idle_device_does_not_wait():
    dev, _ = make_dev(queue_depth=1)
    svc = dev.service_cycles('read', 1)
    dev.submit('read', 0, 1, 0)
    r = dev.submit('read', 1, 1, svc + 500)
    assert r.start_time == svc + 500 and r.wait_cycles == 0


def test_fifo_order_even_if_submit_time_goes_backwards():
    dev, _ = make_dev(queue_depth=4)
    a = dev.submit('read', 0, 1, 1000)
    b = dev.submit('read', 1, 1, 500)
    assert b.start_time == a.start_time == 1000


def test_completions_fire_in_time_order_through_events():
    dev, events = make_dev(queue_depth=4)
    order = []
    big = dev.submit('read', 0, 256, 0, lambda r: order.append(('big', r.done)))
    small = dev.submit('read', 1000, 1, 0, lambda r: order.append(('small', r.done)))
    w = dev.submit('write', 2000, 1, 0, lambda r: order.append(('write', r.done)))
    assert w.complete_time < small.complete_time < big.complete_time
    assert dev.stats.inflight == 3
    assert events.run_due(small.complete_time - 1) == 1      # only the write
    assert order == [('write', True)]
    assert not small.done and not big.done
    assert dev.stats.inflight == 2
    events.run_due(big.complete_time)
    assert order == [('write', True), ('small', True), ('big', True)]
    assert small.done and big.done
    assert dev.stats.inflight == 0 and dev.stats.completed == 3


def test_completion_without_callback_marks_done():
    dev, events = make_dev()
    r = dev.submit('write', 5, 2, 0)
    events.run_due(r.complete_time)
    assert r.done


def test_stats_counts_bytes():
    dev, _ = make_dev()
    dev.submit('read', 0, 2, 0)
    dev.submit('read', 2, 1, 0)
    dev.submit('write', 9, 4, 0)
    s = dev.stats
    assert (s.reads, s.writes) == (2, 1)
    assert (s.read_bytes, s.write_bytes) == (3 * 4096, 4 * 4096)
    assert s.as_dict()['max_inflight'] == 3


def test_deterministic():
    def run():
        dev, events = make_dev(queue_depth=3)
        out = []
        for i in range(20):
            r = dev.submit('read' if i % 3 else 'write', i * 7, 1 + i % 5, i * 1000,
                           lambda r: out.append((r.block, r.complete_time)))
        events.run_due(10**12)
        return out
    assert run() == run()


@pytest.mark.parametrize('args', [
    ('erase', 0, 1, 0), ('read', -1, 1, 0), ('read', 0, 0, 0), ('read', 0, -2, 0),
    ('read', 0, 1, -5), ('read', 1.5, 1, 0), ('write', 0, True, 0),
])
def test_submit_validation(args):
    dev, _ = make_dev()
    with pytest.raises(ValueError):
        dev.submit(*args)
    assert dev.stats.reads == dev.stats.writes == 0


def test_capacity_limit():
    events = EventQueue()
    dev = BlockDevice(DiskParams(), FREQ, events, capacity_blocks=100)
    dev.submit('read', 99, 1, 0)
    with pytest.raises(ValueError, match='beyond the end'):
        dev.submit('read', 99, 2, 0)


def test_params_parse_overrides():
    p = DiskParams.parse('read_latency_us=100, queue_depth=8,write_bw_mbps=1e3')
    assert p.read_latency_us == 100.0 and p.queue_depth == 8 and p.write_bw_mbps == 1000.0
    assert p.write_latency_us == 20.0          # untouched default
    assert DiskParams.parse('') == DiskParams()
    q = DiskParams.from_dict({'queue_depth': 2}, base=p)
    assert q.read_latency_us == 100.0 and q.queue_depth == 2


@pytest.mark.parametrize('spec,msg', [
    ('read_latency=5', "unknown disk parameter 'read_latency'"),
    ('queue_depth=abc', "bad value for disk parameter 'queue_depth'"),
    ('queue_depth=2.5', "bad value for disk parameter 'queue_depth'"),
    ('queue_depth=0', 'queue_depth'),
    ('read_bw_mbps=0', 'read_bw_mbps'),
    ('read_latency_us=-1', 'read_latency_us'),
    ('block_size=1000', 'block_size'),
    ('read_latency_us=nan', 'read_latency_us'),
    ('queue_depth', 'expected NAME=VALUE'),
    ('queue_depth=1,queue_depth=2', 'given twice'),
])
def test_params_errors(spec, msg):
    with pytest.raises(ValueError, match=msg):
        DiskParams.parse(spec)


def test_bad_constructor_args():
    with pytest.raises(ValueError):
        BlockDevice(DiskParams(), 0, EventQueue())
    with pytest.raises(ValueError):
        BlockDevice(DiskParams(), FREQ, None)
