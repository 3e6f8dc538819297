"""Departures from Linux, each shown by a guest program whose output under faultlab must match the
same program run natively on this host (or, where the host cannot run it, Linux's documented result):
mremap(MREMAP_DONTUNMAP), mlockall(MCL_FUTURE | MCL_ONFAULT), madvise on hugetlb, tmpfs pages and
drop_caches, mmap_min_addr for root, commit accounting and max_map_count."""
import os

import pytest

from conftest import run_guest, run_native

HOST_NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages'


def _native_and_guest(userland, name, args=(), guest_args=None, cwd='/tmp', **kw):
    prog = os.path.join(userland, name)
    rc, out, _err = run_native(prog, args, cwd=cwd)
    g = run_guest(prog, args if guest_args is None else guest_args, **kw)
    return (rc, out.decode()), (g.exit_code, g.stdout.decode())


def test_mremap_dontunmap_moves_the_pages_and_leaves_the_old_range_mapped(userland):
    """Linux (mm/mremap.c, >= 5.13 for shared and file mappings) moves the pages to a new address;
    the old range stays mapped: empty for private memory, the same object for shared memory."""
    native, guest = _native_and_guest(userland, 'mremapdontunmap')
    assert guest == native
    assert 'anon-private: moved=1 new[0]=x old[0]=0' in guest[1]
    assert 'anon-shared: moved=1 new[0]=x old[0]=120' in guest[1]


def test_mlockall_future_onfault_locks_new_mappings_on_fault(userland):
    """A mapping made after mlockall(MCL_FUTURE | MCL_ONFAULT) is VM_LOCKED | VM_LOCKONFAULT (smaps
    VmFlags lo lf, Locked: what was touched), munlock of its middle splits it in three, and
    munlockall stops locking later mappings."""
    native, guest = _native_and_guest(userland, 'mlockfuture')
    assert guest == native
    assert 'future: locked=1 lockonfault=1' in guest[1] and 'vmas after munlock: 3' in guest[1]


def _host_free_hugepages():
    try:
        with open('/proc/meminfo') as f:
            return next(int(l.split()[1]) for l in f if l.startswith('HugePages_Free:'))
    except (OSError, StopIteration):
        return 0


MADVHUGE_LINUX = ('DONTNEED at +4K: Invalid argument\nDONTNEED 4K at 0: ok\nfirst page kept: 1\n'
                  'FREE: Invalid argument\nCOLD: Invalid argument\nPAGEOUT: Invalid argument\n'
                  'DONTNEED first huge page: ok\nfirst page now zero: 1, second kept: 1\n')


def test_madvise_hugetlb_alignment_rules(userland):
    """madvise_dontneed_free_valid_vma: an unaligned start is EINVAL, the end is rounded down to
    whole huge pages, only MADV_DONTNEED applies; can_madv_lru_vma refuses COLD/PAGEOUT."""
    from faultlab.core.cycles import CostTable
    from faultlab.machine import Machine
    from faultlab.kernel.kernel import KernelConfig
    prog = os.path.join(userland, 'madvhuge')
    out = []
    m = Machine(ram=64 << 20, costs=CostTable(), config=KernelConfig(stdout=out.append, nr_hugepages=2))
    res = m.run(prog, ['madvhuge'], ['PATH=/bin'])
    assert (res.exit_code, b''.join(out).decode()) == (0, MADVHUGE_LINUX)
    if _host_free_hugepages() >= 2:
        rc, nout, _ = run_native(prog)
        assert (rc, nout.decode()) == (0, MADVHUGE_LINUX)


def test_tmpfs_pages_stay_resident_across_drop_caches(userland):
    """tmpfs/memfd pages are the file's only copy: after fsync and drop_caches mincore still reports
    them resident (the native run does not drop the host's caches; Linux leaves shmem alone)."""
    native, guest = _native_and_guest(userland, 'tmpfsdrop', guest_args=['drop'])
    assert guest == native
    assert 'resident before touching: 16 of 16' in guest[1]


def test_root_may_map_below_mmap_min_addr(userland):
    """cap_mmap_addr: CAP_SYS_RAWIO (root) may map below mmap_min_addr, even at 0."""
    native, guest = _native_and_guest(userland, 'mmapminaddr')
    assert guest == native
    assert guest[1].startswith('0 -> ok\n')


def test_mmap_min_addr_needs_cap_sys_rawio():
    """Without CAP_SYS_RAWIO an address below mmap_min_addr is EPERM; the sysctl moves the line."""
    import errno
    from faultlab.kernel.mm.vm_sysctl import VmSysctl, cap_mmap_addr
    sc = VmSysctl()
    assert cap_mmap_addr(sc, 0x8000, False) == -errno.EPERM
    assert cap_mmap_addr(sc, 0x10000, False) == 0 and cap_mmap_addr(sc, 0, True) == 0
    sc.dac_mmap_min_addr = 4096
    assert cap_mmap_addr(sc, 0x1000, False) == 0 and cap_mmap_addr(sc, 0, False) == -errno.EPERM


def _host_overcommit():
    with open('/proc/sys/vm/overcommit_memory') as f:
        return int(f.read())


def test_overcommit_heuristic_matches_native(userland):
    """OVERCOMMIT_GUESS refuses one private writable mapping (or mprotect) larger than RAM + swap."""
    if _host_overcommit() != 0:
        pytest.skip('the host does not use the overcommit heuristic')
    native, guest = _native_and_guest(userland, 'overcommit')
    assert guest == native
    assert '1 TiB private writable: Cannot allocate memory' in guest[1]


def test_overcommit_never_keeps_commit_below_the_limit(userland):
    """overcommit_memory 2: CommitLimit = 50% of RAM + swap (here 32 + 64 MiB); MAP_NORESERVE is
    ignored; munmap gives the commit back."""
    g = run_guest(os.path.join(userland, 'overcommit'), ['never', '50'], ram=64 << 20, swap_bytes=64 << 20)
    assert g.exit_code == 0
    assert g.stdout.decode().splitlines() == [
        '1 TiB private writable: Cannot allocate memory', '1 TiB MAP_NORESERVE: Cannot allocate memory',
        '1 TiB read-only: ok', 'mprotect 1 TiB writable: Cannot allocate memory', '1 MiB private writable: ok',
        'below the limit: ok', 'twice below the limit, first: ok',
        'twice below the limit, second: Cannot allocate memory', 'again after munmap: ok',
        '1 TiB with overcommit_memory 1: ok']


def test_max_map_count_is_enforced(userland):
    """mmap stops one VMA past max_map_count (do_mmap checks map_count > max), and splitting a VMA
    at the limit (munmap of a middle or head, mprotect) is ENOMEM. The guest lowers the limit to 600."""
    native, guest = _native_and_guest(userland, 'maxmap', guest_args=['600'])
    assert guest == native
    assert 'maps - max_map_count = 1' in guest[1]


def test_larger_anonymous_mappings_are_thp_aligned_as_natively(userland):
    """A private anonymous mmap without a hint whose length is a multiple of 2 MiB starts on a 2 MiB
    boundary (Linux's THP alignment); other lengths and hinted ones are placed as before."""
    prog = os.path.join(userland, 'thpalign')
    code, out, _ = run_native(prog)
    assert code == 0 and b'64 MiB private: PMD-aligned 1' in out
    g = run_guest(prog)
    assert (g.exit_code, g.stdout) == (0, out)
