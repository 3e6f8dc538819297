"""The read-ahead marker (PG_readahead) after read(): a page that carries it is skipped by fault-around
(filemap_map_pages -> next_uptodate_folio skips a folio with PG_readahead), so a marker left behind costs
a later mmap of the file one extra fault where the marked page is not the faulting one. Linux clears every
marker a read() reaches: filemap_get_read_batch ends a batch at a marked or not yet uptodate folio, and
filemap_get_pages passes the batch's last folio, when marked, to filemap_readahead -> page_cache_async_ra,
which clears the marker and starts the next window. That includes the miss path, where a read of at least
ra_pages pages gets a window whose marker is on its first page (async_size == size).

userland/src/ra_marker.c reads a cold file with read() calls of a given size, then maps it 32 KiB past a
2 MiB boundary and reads one byte per page: with every page cached and unmarked, fault-around maps 8 pages
at the first fault, 16 at each next one and 8 at the last: N/16 + 1 faults for N pages.
"""
import os
import re

import pytest

from conftest import on_disk_fs, run_guest, run_native

FAULT_AROUND_PAGES = 16


def _counts(out):
    text = out.decode() if isinstance(out, bytes) else out
    return {k: int(v) for k, v in re.findall(r'^(\w+) (\d+)$', text, re.M)}


def _guest(userland, mib, chunk_kib):
    r = run_guest(os.path.join(userland, 'ra_marker'), ['/home', str(mib), str(chunk_kib)], ram=128 << 20)
    assert r.exit_code == 0, r.stderr
    return _counts(r.stdout)


def _expected(mib):
    """Faults to touch every page of a mib MiB file mapped half a window off the window boundaries."""
    return (mib << 8) // FAULT_AROUND_PAGES + 1


@pytest.mark.parametrize('chunk_kib', [1024, 4])
def test_reads_leave_no_marker_for_fault_around(userland, chunk_kib):
    """After reading a file whole with read() (1 MiB calls, larger than the 128 KiB window, whose first page
    gets the marker on the miss path; or 4 KiB calls, which hit every marker), fault-around maps every page:
    N/16 + 1 faults for 8 MiB (a marker left at each window start costs 64 more)."""
    guest = _guest(userland, 8, chunk_kib)
    assert guest['pages'] == 8 << 8 and guest['touch_majflt'] == 0
    assert guest['touch_minflt'] == _expected(8), guest


def test_large_reads_then_touch_like_native(userland, tmp_path):
    """The same program natively on this host (in a directory on its disk) and in faultlab, 4 MiB read in
    1 MiB calls: the same minor faults for the touching. The host reads ahead up to read_ahead_kb (8 MiB
    here, 128 KiB in faultlab) into large folios (ext4 has them since 6.16, not in 6.12), and fault-around
    maps whole large folios, so larger files are not compared: what it maps then is no longer 6.12's."""
    if not on_disk_fs(tmp_path):
        pytest.skip('%s is not on a disk file system' % tmp_path)
    code, out, err = run_native(os.path.join(userland, 'ra_marker'), [str(tmp_path), '4', '1024'])
    assert code == 0, err
    native = _counts(out)
    guest = _guest(userland, 4, 1024)
    assert guest['sum'] == native['sum'] and guest['pages'] == native['pages']
    assert guest['touch_minflt'] == native['touch_minflt'], (guest, native)
