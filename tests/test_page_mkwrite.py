"""Write faults on shared mappings of a disk file, dirty pages and writeback (mm/memory.c do_shared_fault,
do_wp_page -> wp_page_shared -> do_page_mkwrite, fault_dirty_shared_page; mm/page-writeback.c).

userland/src/shared_write.c maps a clean 4 MiB file MAP_SHARED, populates it for reading, then writes one
byte per page: first (every write faults: page_mkwrite, the page becomes dirty), again (no fault), msync
MS_SYNC (written back and waited for), after (the writeback write-protected the pages again: every write
faults again). It prints the minor faults and the change of Dirty in /proc/meminfo per phase; the same
program runs natively in a directory on this host's disk.
"""
import os
import re

import pytest

from conftest import on_disk_fs, run_guest, run_native
from faultlab.core.cycles import CostTable
from faultlab.kernel.kernel import KernelConfig
from faultlab.machine import Machine

MIB = 4
PAGES = MIB << 8


def _phases(out):
    text = out.decode() if isinstance(out, bytes) else out
    rows = {m[0]: {'minflt': int(m[1]), 'ns': int(m[2]), 'dirty_kb': int(m[3])}
            for m in re.findall(r'^(\w+) minflt (\d+) ns_per_page (\d+) dirty_kb (-?\d+)$', text, re.M)}
    pages = re.search(r'^pages (\d+)$', text, re.M)
    return rows, int(pages.group(1)) if pages else None


@pytest.fixture(scope='module')
def guest(userland):
    r = run_guest(os.path.join(userland, 'shared_write'), ['/home', str(MIB)], ram=128 << 20)
    assert r.exit_code == 0, r.stderr
    rows, pages = _phases(r.stdout)
    assert pages == PAGES
    return r, rows


def test_first_write_to_a_clean_shared_page_calls_page_mkwrite_and_dirties_it(guest):
    """Each first write to a clean page of a shared file mapping takes a write-protect fault that calls
    ->page_mkwrite (its cost is billed to the fault) and makes the page dirty: Dirty grows by the pages
    written; writing them again takes no fault and dirties nothing more."""
    r, rows = guest
    assert rows['first']['minflt'] == PAGES
    assert rows['first']['dirty_kb'] == PAGES * 4
    assert rows['again']['minflt'] == 0 and rows['again']['dirty_kb'] == 0
    shared = r.machine.kernel.fault_breakdown['do_wp_page(shared)']
    assert shared['count'] == 2 * PAGES
    assert shared['page_mkwrite'] == 2 * PAGES * CostTable().costs['page_mkwrite']


def test_after_writeback_the_next_write_faults_again(guest):
    """msync(MS_SYNC) writes the dirty pages back and waits (Dirty falls by all of them); the writeback
    cleaned and write-protected their PTEs (clear_page_dirty_for_io -> page_mkclean), so the next write
    to each faults again and dirties it again."""
    r, rows = guest
    assert rows['msync']['dirty_kb'] == -PAGES * 4 and rows['msync']['minflt'] == 0
    assert rows['after']['minflt'] == PAGES
    assert rows['after']['dirty_kb'] == PAGES * 4
    st = r.machine.kernel.stats
    assert st['nr_dirtied'] >= 2 * PAGES and st['nr_written'] >= PAGES


def test_like_native(guest, userland, tmp_path):
    """The same program natively on this host's disk: the same faults per phase (the first phase may take
    one more natively, outside the written range), and Dirty moves by the pages written (other writers on
    the host move it too: within a quarter)."""
    if not on_disk_fs(tmp_path):
        pytest.skip('%s is not on a disk file system' % tmp_path)
    code, out, err = run_native(os.path.join(userland, 'shared_write'), [str(tmp_path), str(MIB)])
    assert code == 0, err
    native, pages = _phases(out)
    _r, rows = guest
    assert pages == PAGES
    assert native['first']['minflt'] - rows['first']['minflt'] in (0, 1), (native, rows)
    for phase in ('again', 'msync', 'after'):
        assert rows[phase]['minflt'] == native[phase]['minflt'], (phase, native, rows)
    for phase in ('first', 'msync', 'after'):
        assert abs(native[phase]['dirty_kb'] - rows[phase]['dirty_kb']) <= PAGES, (phase, native, rows)


def _run_with_limits(userland, **knobs):
    out, err = [], []
    config = KernelConfig(stdout=out.append, stderr=err.append, warn=lambda *_: None)
    m = Machine(ram=128 << 20, costs=CostTable(), config=config)
    for name, value in knobs.items():
        setattr(m.kernel.mmsvc.sysctl, name, value)
    res = m.run(os.path.join(userland, 'shared_write'), ['shared_write', '/home', str(MIB)], ['PATH=/bin'])
    assert res.exit_code == 0, b''.join(err)
    rows, _pages = _phases(b''.join(out))
    return m, rows


def test_dirty_limits_start_background_writeback_and_throttle(userland, guest):
    """With vm.dirty_background_bytes = 256 KiB and vm.dirty_bytes = 512 KiB, dirtying 4 MiB crosses both
    limits: background writeback starts while the pages are being written (they are written back before
    the msync), writers over the hard limit wait for writes to complete, and Dirty never holds more than
    the pages dirtied since the limit was crossed; pages the background writeback cleaned fault again
    when written again."""
    m, rows = _run_with_limits(userland, dirty_background_bytes=256 << 10, dirty_bytes=512 << 10)
    st = m.kernel.stats
    assert st['nr_background_writeback'] > 0 and st['balance_dirty_pages_pauses'] > 0
    # every first write faults; a page the background writeback cleaned right after its fault faults again
    assert PAGES <= rows['first']['minflt'] < PAGES + PAGES // 8
    assert rows['first']['dirty_kb'] <= 512
    assert rows['again']['minflt'] > 0               # cleaned and write-protected by background writeback
    assert PAGES <= rows['after']['minflt'] < PAGES + PAGES // 8
    # the default limits (20% / 10% of the dirtyable memory, some 100 MiB) never throttle 4 MiB
    r2, rows2 = guest
    assert r2.machine.kernel.stats['nr_background_writeback'] == 0 and rows2['again']['minflt'] == 0


@pytest.mark.parametrize('sleep_s, written', [(20, False), (36, True)])
def test_flusher_writes_back_pages_dirtied_longer_ago_than_dirty_expire(userland, sleep_s, written):
    """The flusher wakes every vm.dirty_writeback_centisecs (5 s) and writes back what was dirtied more than
    vm.dirty_expire_centisecs (30 s) ago: after a 20 s sleep the pages are still dirty (msync writes them),
    after 36 s the flusher has written them (Dirty fell during the sleep, msync has nothing to do), and in
    both cases the next writes fault again."""
    r = run_guest(os.path.join(userland, 'shared_write'), ['/home', str(MIB), str(sleep_s)], ram=128 << 20)
    assert r.exit_code == 0, r.stderr
    rows, _pages = _phases(r.stdout)
    assert rows['sleep']['dirty_kb'] == (-PAGES * 4 if written else 0)
    assert rows['msync']['dirty_kb'] == (0 if written else -PAGES * 4)
    assert rows['after']['minflt'] == PAGES
