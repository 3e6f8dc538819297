"""userfaultfd's asynchronous write-protection with PAGEMAP_SCAN (kernel/mm/userfaultfd_k.py,
kernel/mm/pagemap_scan.py) and uffd-wp kept across fork on hugetlb and shmem
(kernel/mm/userfaultfd_events.py, kernel/mm/hugetlb_fork.py): userland/src/uffdasync.c prints the
same under faultlab as natively (the host kernel has userfaultfd and the tests run as root)."""
import os

import pytest

from tests.conftest import BUILD, run_guest, run_native
from tests.test_shm_mount import _native_huge_pages

PROG = os.path.join(BUILD, 'uffdasync')


def _native(tmp_path, args=()):
    code, native, err = run_native(PROG, args, cwd=str(tmp_path))
    if code != 0 and b'userfaultfd' in err:
        pytest.skip('the host does not allow userfaultfd')
    assert code == 0, err
    return native


@pytest.mark.parametrize('cpus', [1, 2])
def test_uffd_wp_async_matches_native(userland, tmp_path, cpus):
    """UFFDIO_API reports WP_ASYNC, WP_UNPOPULATED and WP_HUGETLBFS_SHMEM (WP_ASYNC alone is enough,
    a second API call is EINVAL); with WP_ASYNC a write to a write-protected page faults but queues no
    message, PAGEMAP_SCAN reports the written pages and PM_SCAN_WP_MATCHING protects them again (the
    uffd-wp bit in /proc/self/pagemap), over anonymous memory (markers in empty pages, the zero page
    of a read), shared and private memfd mappings (a read of a marker maps the page still protected)
    and a private file mapping (which only WP_ASYNC may register, and WP alone); max_pages with WP_MATCHING protects only what it reported; UNREGISTER
    clears the state; bad scans (flags, masks, size, ranges, vec) get Linux's errnos, and
    CHECK_WPASYNC is EPERM where no asynchronous WP is set up (no context, a context without WP_ASYNC,
    a WP_ASYNC context that registered MISSING only)."""
    native = _native(tmp_path)
    g = run_guest(PROG, cpus=cpus)
    assert g.exit_code == 0, g.result.report
    assert g.stdout == native
    for line in (b'API WP_ASYNC alone: ok, reported WP_ASYNC 1 WP_UNPOPULATED 1 WP_HUGETLBFS_SHMEM 1\n'
                 b'  API again: -1 EINVAL',
                 b'register WP on a private file mapping, sync: -1 EINVAL\n'
                 b'register MISSING|WP there, async: -1 EINVAL\nregister WP there, async: 0 ',
                 b'  after writes:  scan 3: [0+1 0x11] [1+2 0xb] [3+1 0x11] walk_end +4\n'
                 b'  reset:  scan 1: [1+2 0x2] walk_end +4\n  scan 0: walk_end +4',
                 b'scan unknown flag: -1 EINVAL', b'scan vec unmapped: -1 EFAULT',
                 b'scan CHECK_WPASYNC unregistered: -1 EPERM', b'scan CHECK_WPASYNC sync range: -1 EPERM',
                 b'  markers and pages:  scan 2: [0+2 0x9] [2+6 0x11] walk_end +8\n'
                 b'  read of an empty page 0:  scan 1: [6+1 0x29] walk_end +7',
                 b'  writes faulted: 1, wp bits 10100\n  message: -1 EAGAIN\n'
                 b'  scan 2: [1+1 0x2] [3+2 0x2] walk_end +8\n'
                 b'  reset:  scan 2: [1+1 0x2] [3+2 0x2] walk_end +8\n  scan 0: walk_end +8',
                 b'  max_pages 3:  scan 1: [0+3 0x2] walk_end +3\n  scan 1: [3+5 0x2] walk_end +8',
                 b'register MISSING, async: 0 \nscan CHECK_WPASYNC MISSING range: -1 EPERM\n'
                 b'  WRITEPROTECT there: -1 ENOENT',
                 b'memfd shared: register WP: 0 \n  WRITEPROTECT: 0 \n'
                 b'  read of a marker page 0:  scan 1: [7+1 0xd] walk_end +8\n  new:   scan 0: walk_end +8',
                 b'memfd private: register WP: 0 ', b'\ndone\n'):
        assert line in native


def test_uffd_wp_async_is_deterministic(userland):
    """The asynchronous resolution costs the same twice: equal counters, no userfaultfd message."""
    runs = [run_guest(PROG) for _ in range(2)]
    for g in runs:
        assert g.exit_code == 0, g.result.report
    a, b = (g.machine.kernel for g in runs)
    assert a.stats['uffd_faults'] == 0
    assert dict(a.stats) == dict(b.stats)
    assert runs[0].result.stats == runs[1].result.stats


@pytest.mark.parametrize('cpus', [1, 2])
def test_uffd_wp_hugetlb_and_fork_match_native(userland, tmp_path, cpus):
    """A shared hugetlb memfd with WP_ASYNC: markers in the empty huge page (PAGE_IS_HUGE|SWAPPED),
    a write resolved without a message, a partial WP_MATCHING scan backs out and ends at the huge
    page, a whole one protects it, MADV_DONTNEED of a protected huge page leaves a marker
    (__unmap_hugepage_range) and a read maps the page back still protected; uffd-wp across fork: with EVENT_FORK the child's hugetlb (shared
    and private) and shmem pages and markers keep it (UFFD_FEATURE_WP_HUGETLBFS_SHMEM), without it
    they do not; a child's write with WP_ASYNC clears its own bit."""
    with _native_huge_pages(2):
        native = _native(tmp_path, ['huge'])
    gcode, guest = _run_huge(cpus)
    assert gcode == 0, guest
    assert guest == native
    for line in (b'  empty:  scan 1: [0+512 0x51] walk_end +512\n  message: -1 EAGAIN\n'
                 b'  written:  scan 1: [0+512 0x4f] walk_end +512\n  partial reset:  scan 0: walk_end +1',
                 b'  MADV_DONTNEED of the protected huge page: 0 \n'
                 b'  wp bit 1 (a marker):  scan 1: [0+512 0x51] walk_end +512\n'
                 b'  byte 1, then:  scan 1: [0+512 0x4d] walk_end +512\n'
                 b'  written 7:  scan 1: [0+512 0x4f] walk_end +512',
                 b'hugetlb fork, EVENT_FORK: 0 \n  WRITEPROTECT: 0 \n  child wp 11 byte p; fork event 1',
                 b'hugetlb fork, no EVENT_FORK: 0 \n  WRITEPROTECT: 0 \n  child wp 00 byte p; fork event 0',
                 b'private hugetlb fork, EVENT_FORK: 0 \n  WRITEPROTECT: 0 \n  child wp 11 byte p',
                 b'shmem fork, EVENT_FORK: 0 \n  WRITEPROTECT: 0 \n  child wp 11 byte p',
                 b'shmem fork, no EVENT_FORK: 0 \n  WRITEPROTECT: 0 \n  child wp 00 byte p', b'\ndone\n'):
        assert line in native


def _run_huge(cpus):
    """uffdasync huge under faultlab with 4 pages in the hugetlb pool: (exit code, stdout)."""
    from faultlab.core.cycles import CostTable
    from faultlab.machine import Machine
    from faultlab.kernel.kernel import KernelConfig
    out = []
    m = Machine(ram=64 << 20, costs=CostTable(),
                config=KernelConfig(stdout=out.append, stderr=out.append, nr_hugepages=4, cpus=cpus))
    res = m.run(PROG, ['uffdasync', 'huge'], ['PATH=/bin'])
    return res.exit_code, b''.join(out)
