"""The last-level-cache charges of first touches do not depend on the order of the touches
(kernel/mm/llc.py)."""
import os

from conftest import run_guest, DATA

MOUNT = [(DATA, '/data', True)]


def _llc_misses(userland, order, fault_around_bytes=65536):
    r = run_guest(os.path.join(userland, 'filetouch'), ['/data/big.bin', order], mounts=MOUNT,
                  fault_around_bytes=fault_around_bytes)
    assert r.exit_code == 0, r.stderr
    # every frame the cache model found cold: cleared, copied or first touched by the user
    return r, r.machine.kernel.mmsvc.llc.misses


def test_random_and_sequential_first_touches_are_charged_the_same(userland):
    """Random and sequential first touches of the same file pages under fault-around are charged the
    same LLC misses: each page a fault mapped is charged once, if it is not cached, when the user first
    touches it, however many faults later that is (no record is dropped)."""
    seq, seq_misses = _llc_misses(userland, 'seq')
    rnd, rnd_misses = _llc_misses(userland, 'rand')
    assert seq.stdout == rnd.stdout
    assert seq.stats['fault_around_pages'] > 0 and rnd.stats['fault_around_pages'] > 0
    assert seq_misses > 0
    assert rnd_misses == seq_misses
