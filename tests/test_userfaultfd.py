"""userfaultfd (kernel/fs/userfaultfd.py, kernel/mm/userfaultfd.py, kernel/mm/userfaultfd_k.py):
userland/src/uffdtest.c prints the same under faultlab as natively (the host kernel has userfaultfd
and the tests run as root), on 1 and 2 CPUs, and the same run twice gives the same counters."""
import os

import pytest

from tests.conftest import BUILD, run_guest, run_native
from tests.test_shm_mount import _native_huge_pages

PROG = os.path.join(BUILD, 'uffdtest')


def _native():
    code, native, err = run_native(PROG)
    if code != 0 and b'userfaultfd' in err:
        pytest.skip('the host does not allow userfaultfd')
    assert code == 0, err
    return native


@pytest.mark.parametrize('cpus', [1, 2])
def test_uffdtest_matches_native(userland, cpus):
    """MISSING faults resolved by a handler thread (COPY through poll and through epoll, ZEROPAGE),
    WP faults, MINOR faults on memfd pages, MISSING on shared anonymous memory, SIGBUS mode,
    THREAD_ID, /dev/userfaultfd, a closed userfaultfd waking its sleeping thread, MADV_REMOVE on memfd
    and shared anonymous memory (zeros, private copies kept, MISSING faults again), faults of the
    kernel's own accesses (write/read/pread copies, MADV_POPULATE) resolved by the handler, the events
    FORK (the handler follows the child's new descriptor), REMAP, REMOVE and UNMAP, fork without
    EVENT_FORK (the child's copy unregistered, its uffd-wp bits gone), UFFDIO_MOVE (holes, EEXIST, EBUSY
    for a page shared with a child, a fault resolved by a move), UFFDIO_POISON (SIGBUS on access,
    EEXIST, bad mode), uffd-wp on empty PTEs (WP_UNPOPULATED markers in pagemap, a write fault on one,
    the marker a zapped write-protected shmem page leaves),
    and bad input
    (wrong API, unknown features, unaligned and unmapped ranges, EBUSY, EEXIST, ENOENT)."""
    native = _native()
    g = run_guest(PROG, cpus=cpus)
    assert g.exit_code == 0, g.result.report
    assert g.stdout == native
    for line in (b'MISSING+COPY (poll): faults 16, first flags 0, wrong bytes 0, thread ids 16',
                 b'MISSING+COPY (epoll): faults 16', b'WP: read sum 4, faults 4, flags 0x3, values 7 7',
                 b'MINOR: faults 4, flags 0x4, sum 436', b'SIGBUS: si_code 2, address matches 1',
                 b'API wrong version: -1 EINVAL\n  zeroed: 0 0 0', b'another uffd on the range: -1 EBUSY',
                 b'  COPY again: -1 EEXIST\n  copy field -17', b'woken after close: value 0', b'\ndone\n',
                 # MADV_REMOVE
                 b'MADV_REMOVE memfd: 0 \n  size 16384 blocks 16\n  shared 114 0 0 114, private p 0 (had r)',
                 b'MADV_REMOVE private: -1 EACCES', b'MADV_REMOVE anon: -1 EINVAL',
                 b'  after remove: faults 4, wrong 0',
                 # faults of the kernel's own accesses
                 b'kernel read of user memory: write 200, read back 200, wrong 0, flags 0\n'
                 b'kernel write to user memory: read 12, text kernel-write, flags 0x1\n'
                 b'pread into missing page: 10, text pread-data\nMADV_POPULATE_WRITE: 0 \nMADV_POPULATE_READ: 0 \n'
                 b'  faults 6, page 3 byte 1\nread into user-mode-only range: -1 EFAULT',
                 # events
                 b'  child: ok\nevents: FORK(new fd 1) PF0 PF0 REMAP(len 4) UNMAP(4 pages) PF0 '
                 b'REMOVE(2 pages, unregister 0) UNMAP(4 pages); child status 0\n  remap event from 1 to 1\n'
                 b'fork without EVENT_FORK: child status 0, parent byte p',
                 # UFFDIO_MOVE
                 b'  moved 8192, dst A B, src now 0 0\nMOVE again (dst mapped): -1 EEXIST\n  move field -17\n'
                 b'MOVE from holes: -1 ENOENT\n  move field -2\nMOVE from holes, ALLOW_SRC_HOLES: 0 \n'
                 b'  move field 8192\nMOVE overlapping: -1 EEXIST\nMOVE from shared memory: -1 EINVAL\n'
                 b'MOVE of a page shared with a child: -1 EBUSY\n'
                 b'MISSING+MOVE: faults 1, byte D, source now 0, child status 0',
                 # UFFDIO_POISON
                 b'anon: POISON in range ioctls 1\n  POISON: 0 \n  updated 4096\n  POISON again: -1 EEXIST\n'
                 b'  updated -17\n  POISON bad mode: -1 EINVAL\n  read of the poisoned page: si_code 2, next page 0\n'
                 b'  in a fork child: si_code 2\nmemfd: POISON in range ioctls 1',
                 b'  in a fork child: si_code 0\n',
                 # uffd-wp markers on empty PTEs
                 b'anon WP_UNPOPULATED: protected empty page: wp 1 present 0\n  unprotected: wp 0 present 0\n'
                 b'  after MADV_DONTNEED: wp 0 present 0\n  after a read (0): wp 1 present 1\n'
                 b'  write: faults 1, flags 0x3, value 4, wp 0 present 1\n'
                 b'anon: protected empty page: wp 0 present 0\nmemfd: protected empty page: wp 1 present 0\n'
                 b'  unprotected: wp 0 present 0\n  protected page: wp 1 present 1\n'
                 b'  after MADV_DONTNEED: wp 1 present 0\n',
                 b'hpage_pmd_size 2097152\n'):
        assert line in native


def test_uffd_faults_are_counted_and_deterministic(userland):
    """Every fault the handler resolved went through handle_userfault and slept; two runs give the
    same counters and the same simulated time."""
    runs = [run_guest(PROG, cpus=2) for _ in range(2)]
    for g in runs:
        assert g.exit_code == 0
    a, b = (g.machine.kernel for g in runs)
    base = 16 * 3 + 4 + 4 + 4 + 4 + 6 + 3 + 1 + 1 + 1
    # on 2 CPUs the child may touch the range its MADV_DONTNEED removed before the handler has
    # unregistered it: one more fault, which the UNREGISTER wakes (the same race exists on Linux)
    assert base <= a.stats['uffd_faults'] <= base + 1
    assert a.stats['uffd_wakeups'] == a.stats['uffd_faults']
    assert a.stats['uffd_wait_cycles'] > 0
    # the per-handler breakdown has the round trip to the handler thread: every sleep, whether the
    # fault was the CPU's or the kernel's own access
    assert a.fault_breakdown['handle_userfault']['wait_uffd'] == a.stats['uffd_wait_cycles']
    # the 6 faults of the kernel's own accesses are kernel fault-ins, not CPU page faults
    assert a.fault_breakdown['handle_userfault']['count'] == a.stats['uffd_faults'] - 6
    assert a.stats['uffd_events'] == 1 + 1 + 1 + 2      # FORK, REMAP, REMOVE, 2 UNMAP
    assert dict(a.stats) == dict(b.stats)
    assert runs[0].result.stats == runs[1].result.stats


def _run_guest_huge(prog, cpus):
    """prog under faultlab with 4 pages in the hugetlb pool: (exit code, stdout)."""
    from faultlab.core.cycles import CostTable
    from faultlab.machine import Machine
    from faultlab.kernel.kernel import KernelConfig
    out = []
    m = Machine(ram=64 << 20, costs=CostTable(),
                config=KernelConfig(stdout=out.append, stderr=out.append, nr_hugepages=4, cpus=cpus))
    res = m.run(prog, [os.path.basename(prog)], ['PATH=/bin'])
    return res.exit_code, b''.join(out)


@pytest.mark.parametrize('cpus', [1, 2])
def test_uffd_hugetlb_matches_native(userland, cpus):
    """hugetlb ranges: MISSING faults on a shared hugetlb memfd resolved with 2 MiB UFFDIO_COPY (the
    fault address huge-aligned), MINOR faults on a second mapping resolved with UFFDIO_CONTINUE,
    MISSING and WP on a private mapping, the basic range ioctls (no ZEROPAGE), and EINVAL for
    unaligned ranges, ZEROPAGE and a 4 KiB COPY, EEXIST for a page the file has; mremap moves shared
    and private huge pages (EINVAL for growth and unaligned addresses), as the events test needs;
    UFFDIO_POISON of a huge page (EINVAL for 4 KiB) is SIGBUS on access."""
    prog = os.path.join(BUILD, 'uffdhuge')
    with _native_huge_pages(4):
        code, native, err = run_native(prog)
    if code != 0 and b'userfaultfd' in err:
        pytest.skip('the host does not allow userfaultfd')
    assert code == 0, (native, err)
    gcode, guest = _run_guest_huge(prog, cpus)
    assert gcode == 0, guest
    assert guest == native
    for line in (b'register unaligned start: -1 EINVAL', b'register unaligned end: -1 EINVAL',
                 b'  range ioctls 0xc\nZEROPAGE: -1 EINVAL\nCOPY 4 KiB: -1 EINVAL',
                 b'MISSING shared: faults 2, flags 0, offsets 0 0x200000, bytes 0x40 0x41',
                 b'MINOR alias: faults 2, flags 0x4, offsets 0 0x200000',
                 b'private: faults 2, flags 0x3, bytes w x (read 64), file page seen 0x41',
                 b'mremap grow: -1 EINVAL\nmremap unaligned: -1 EINVAL\nmremap shared: moved 1, bytes 0x40 0x41\n'
                 b'mremap private: moved 1, bytes w x\n',
                 b'write-protect 4 KiB of a huge page: -1 EINVAL',
                 b'  range ioctls 0x10c\nPOISON 4 KiB: -1 EINVAL\nWAKE 4 KiB: 0 \nUNREGISTER 4 KiB: -1 EINVAL\n'
                 b'POISON huge page: 0 \n  updated 2097152\n'
                 b'  access: si_code 2 0\ndone'):
        assert line in native
