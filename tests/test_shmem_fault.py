"""shmem_fault as Linux 6.12 takes it (mm/shmem.c shmem_get_folio_gfp): a fault on a hole of shared
memory (MAP_SHARED|MAP_ANONYMOUS, memfd, a tmpfs file) allocates and clears one page, with no
read-ahead, read-around or zero page; fault-around maps only pages already in the page cache, so a
second mapping of populated shmem gets it. Fault counts are compared with the same program run
natively (ru_minflt); the allocation and clear per fault with faultlab's own counters, against a
run that maps the same memory and touches nothing."""
import os

import pytest

from conftest import run_guest, run_native

NPAGES = 256            # shmfault.c's NPAGES
KINDS = ('anon', 'memfd', 'tmpfs')
MODES = ('read', 'write', 'rw', 'remap')


def _guest(userland, kind, mode):
    r = run_guest(os.path.join(userland, 'shmfault'), [kind, mode, '/tmp'], check=True)
    assert r.exit_code == 0, r.stderr
    return r


def _delta(userland, kind, mode):
    """The counters of touching the memory in `mode`, less those of only mapping it."""
    base = _guest(userland, kind, 'map').stats
    run = _guest(userland, kind, mode)
    keys = ('pages_zeroed', 'minor_faults', 'major_faults', 'fault_around_pages', 'pagecache_misses',
            'disk_reads', 'kernel_faultins')
    return run.stdout, {k: run.stats[k] - base[k] for k in keys}


def test_first_touches_and_second_mapping_fault_as_natively(userland):
    """ru_minflt of first reads and writes of empty shared memory (one fault per page), of writes after
    reads (none: the read mapped the page writable) and of reading it through a second mapping once
    populated (fault-around: 16 pages a fault) are the host's."""
    prog = os.path.join(userland, 'shmfault')
    kinds = KINDS if os.path.isdir('/dev/shm') else KINDS[:2]
    lines = []
    for kind in kinds:
        for mode in MODES:
            code, out, err = run_native(prog, [kind, mode, '/dev/shm'])
            assert code == 0, err
            lines.append(out)
    native = b''.join(lines)
    guest = b''.join(_guest(userland, kind, mode).stdout for kind in kinds for mode in MODES)
    assert guest == native
    assert b'memfd read: %d faults for %d pages' % (NPAGES, NPAGES) in guest
    assert b'memfd rw: %d faults for %d pages' % (NPAGES, NPAGES) in guest


@pytest.mark.parametrize('kind', KINDS)
def test_a_first_read_of_empty_shmem_allocates_and_clears_one_page_per_fault(userland, kind):
    """No read-ahead (no page read or allocated beyond the one faulted), no fault-around (nothing is
    cached yet), no zero page: NPAGES minor faults, NPAGES pages cleared."""
    out, d = _delta(userland, kind, 'read')
    assert b'%s read: %d faults' % (kind.encode(), NPAGES) in out
    assert d['minor_faults'] == NPAGES and d['major_faults'] == 0
    assert d['pages_zeroed'] == NPAGES
    assert d['pagecache_misses'] == NPAGES
    assert d['fault_around_pages'] == 0 and d['disk_reads'] == 0


@pytest.mark.parametrize('mode', ('write', 'popread', 'popwrite'))
def test_writes_and_populate_of_empty_shmem_clear_one_page_each(userland, mode):
    """A first write, MADV_POPULATE_READ and MADV_POPULATE_WRITE each allocate and clear every page
    of an empty memfd, one fault (from the CPU or from GUP) per page, nothing read."""
    _out, d = _delta(userland, 'memfd', mode)
    assert d['pages_zeroed'] == NPAGES
    assert d['pagecache_misses'] == NPAGES
    assert d['fault_around_pages'] == 0 and d['disk_reads'] == 0
    if mode == 'write':
        assert d['minor_faults'] == NPAGES
    else:
        assert d['kernel_faultins'] == NPAGES


def test_a_second_mapping_of_populated_shmem_gets_fault_around(userland):
    """The pages written through one mapping are cached: reading them through another (64 KiB
    aligned) maps 16 a fault (fault_around_bytes 64 KiB), with no new page."""
    out, d = _delta(userland, 'memfd', 'remap')
    assert d['pages_zeroed'] == NPAGES            # the first mapping's writes, not the reads
    assert b'memfd remap: %d faults' % (NPAGES // 16) in out
    assert d['fault_around_pages'] == NPAGES      # every page of the second mapping, by fault-around


def test_populate_faults_count_in_ru_minflt_as_natively(userland):
    """mm_account_fault: a fault GUP takes for MADV_POPULATE_READ/WRITE (no regs) counts in the caller's
    min_flt, as a CPU fault does, though perf's page-fault event does not see it; ru_minflt of populating
    empty shared memory is the host's (one per page)."""
    prog = os.path.join(userland, 'shmfault')
    for mode in ('popread', 'popwrite'):
        code, native, err = run_native(prog, ['memfd', mode, '/dev/shm'])
        assert code == 0, err
        guest = _guest(userland, 'memfd', mode)
        assert guest.stdout == native
        assert b'memfd %s: %d faults' % (mode.encode(), NPAGES) in guest.stdout
        assert guest.stats['minor_faults'] < NPAGES        # perf's page-faults: the CPU's faults only
