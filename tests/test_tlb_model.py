"""The data TLB and last-level-cache model of user loads and stores to mapped pages
(kernel/mm/tlb_model.py, emu/core/tlb.py)."""
import os

import pytest

from conftest import run_native
from faultlab.core import tlb
from faultlab.kernel.mm.tlb_model import _Level

RAM = 768 << 20


def _touch(userland, kib, passes, order):
    """(simulated ns per page, the run's counters) of touchloop KIB 4096 PASSES ORDER with the model."""
    from faultlab.machine import Machine
    from faultlab.kernel.kernel import KernelConfig
    out = []
    m = Machine(ram=RAM, config=KernelConfig(stdout=out.append, tlb_model=True))
    prog = os.path.join(userland, 'touchloop')
    res = m.run(prog, ['touchloop', str(kib), '4096', str(passes), order], ['LANG=C'])
    assert res.exit_code == 0, res.report
    return float(b''.join(out).split()[4]), res.stats


def _native(userland, kib, passes, order, runs=3):
    """The best native ns per page of touchloop over `runs` runs (the host is shared)."""
    best = None
    for _ in range(runs):
        code, out, err = run_native(os.path.join(userland, 'touchloop'), [str(kib), '4096', str(passes), order])
        assert code == 0, err
        v = float(out.split()[4])
        best = v if best is None else min(best, v)
    return best


def test_software_tlb_layout_calibrates():
    """The emulator's software TLB is read at the calibrated offsets (else nothing is modelled)."""
    assert tlb.calibrate()


def test_lru_level_sweep_beyond_its_entries_misses_every_page():
    """An LRU TLB of E entries: a cyclic sweep of N > E pages misses on every page, one of N <= E
    pages hits on every page after the first sweep (whatever the size of the reports)."""
    for n, report in ((6000, 1000), (3000, 1000), (3000, 250)):
        level = _Level(4096)
        pages = list(range(n))
        missed = 0.0
        for sweep in range(4):
            for i in range(0, n, report):
                m, _ = level.step(set(pages[i:i + report]))
                if sweep:
                    missed += m
        if n > 4096:
            assert missed == pytest.approx(3 * n)
        else:
            assert missed == 0


def test_touching_pages_beyond_the_l2_tlb_walks_once_per_page(userland):
    """Touching N already-mapped pages, N above the L2 TLB's entries (4096), costs at least one page
    walk per page and pass (dTLB-walks), and more time per page than pages the L2 TLB holds."""
    pages, passes = 16384, 4
    big_ns, big = _touch(userland, pages * 4, passes, 'seq')
    small_ns, small = _touch(userland, 256 * 4, 256, 'seq')
    # timed passes + the warm-up pass + the populating writes
    assert big['dtlb_walks'] >= 0.95 * pages * (passes + 2)
    assert big_ns > small_ns + 1.0


def test_touch_loop_time_per_page_follows_native(userland):
    """A touch loop's time per page over mapped memory, sizes in the L1 dTLB (64 KiB), in the L2 TLB
    (4 MiB) and beyond the L2 TLB and the last-level cache (64 MiB), in address and random order:
    the sizes come in the same order of time per page as natively, and what the size adds over
    64 KiB is within a factor of 3 of what it adds natively (or within 1.5 ns). The base (the loop's
    own instructions) is priced by the block model, not here."""
    sizes = ((64, 256), (4096, 64), (65536, 4))
    for order in ('seq', 'rand'):
        sim = [_touch(userland, kib, p, order)[0] for kib, p in sizes]
        nat = [_native(userland, kib, p, order) for kib, p in sizes]
        assert sorted(range(3), key=sim.__getitem__) == sorted(range(3), key=nat.__getitem__), (order, sim, nat)
        for i in (1, 2):
            ds, dn = sim[i] - sim[0], nat[i] - nat[0]
            assert dn / 3 - 1.5 <= ds <= 3 * dn + 1.5, (order, sizes[i], sim, nat)
