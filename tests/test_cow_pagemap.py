"""Copy-on-write against references and pins (fork, vmsplice, io_uring fixed buffers, MADV_WIPEONFORK
and MADV_DONTFORK) and the PAGEMAP_SCAN ioctl, compared with native runs of the same programs."""
import os

import pytest

from conftest import run_guest, run_native


@pytest.mark.parametrize('check', [False, True, pytest.param('full', marks=pytest.mark.slow)])
def test_cow_pins_match_native(userland, check):
    """userland/src/cowpin.c: no leak into a child or out of a pipe or pin, the errno of every bad call
    to vmsplice and io_uring; with the mm invariants checked too (within the checker's time budget, and
    after every fault and call in the slow run)."""
    path = os.path.join(userland, 'cowpin')
    code, nout, _ = run_native(path)
    g = run_guest(path, check=check)
    assert code == 0 and g.exit_code == 0, g.result.report
    assert g.stdout == nout
    assert b'LEAKED' not in nout and b'STALE' not in nout
    assert not [w for w in g.warnings if 'system call' in w]


def test_pagemap_scan_matches_native(userland):
    """userland/src/pmscan.c: PAGEMAP_SCAN's regions (present, written, zero page, file; inverted and
    any-of masks; max_pages, a short vec and walk_end; a hole between VMAs) and its EINVAL/EFAULT/EPERM."""
    path = os.path.join(userland, 'pmscan')
    code, nout, _ = run_native(path)
    g = run_guest(path)
    assert code == 0 and g.exit_code == 0, g.result.report
    # which pages of the mapped file are present depends natively on the host's page cache and its
    # fault-around at that moment (a page of it is sometimes missing): those two lines are compared
    # for their region span only
    def split(out):
        cached = (b'anon, hole, file:', b'file only:')
        lines = out.splitlines()
        return ([l for l in lines if not l.startswith(cached)],
                [l.split(b'[')[0].split(b':')[0] + l[l.index(b'walk_end'):].split(b':')[0]
                 for l in lines if l.startswith(cached)])
    assert split(g.stdout) == split(nout)
    assert b'present: 5 regions' in nout
    # the guest's /tmp is tmpfs: the write fault allocates page 0 of the file, the read fault page 2
    # (shmem_fault: one page per fault on a hole; fault-around maps only cached pages, so not 1 and 3)
    assert b'file only: 2 regions, walk_end +22: [18-19 0x4] [20-21 0x4]' in g.stdout
