"""Capabilities and memory accounting as Linux keeps them: one capable() behind every privileged
operation (kernel/capability.c, security/commoncap.c), commit accounting (mm/util.c
__vm_enough_memory, mm/shmem.c shmem_acct_size) with CommitLimit/Committed_AS in /proc/meminfo
(fs/proc/meminfo.c), and shmem pages going to swap under memory pressure (mm/shmem.c
shmem_writepage, shmem_swapin_folio). Guest programs are compared with native runs where the host
can show the same thing."""
import os

from conftest import run_guest, run_native


def _native_and_guest(userland, name, args=(), guest_args=None, **kw):
    prog = os.path.join(userland, name)
    rc, out, _err = run_native(prog, args, cwd='/tmp')
    g = run_guest(prog, args if guest_args is None else guest_args, **kw)
    return (rc, out.decode()), (g.exit_code, g.stdout.decode())


def test_dropping_to_nobody_loses_every_privilege_as_natively(userland):
    """After setuid(65534) the child has no capabilities: mmap below mmap_min_addr, sysctl writes,
    rlimits, mount, set*id, kill, mlock, nice, the bounding set, chown, System V shm and
    SCM_CREDENTIALS are refused with the errno Linux gives; root's parent may do them."""
    if os.geteuid() != 0:
        import pytest
        pytest.skip('the native run must start as root')
    native, guest = _native_and_guest(userland, 'capdrop')
    assert guest == native
    out = guest[1]
    assert 'root: mmap at 0: ok' in out and 'CapEff:\t0000000000000000' in out
    assert '\nmmap at 0: Operation not permitted' in out
    assert 'SCM_CREDENTIALS uid 0: Operation not permitted' in out


def _is_tmpfs(path):
    try:
        with open('/proc/self/mounts') as f:
            return any(line.split()[1] == path and line.split()[2] == 'tmpfs' for line in f)
    except OSError:
        return False


# What Linux does in the steps too slow to measure on a busy host (mm/shmem.c): pages of a
# VM_NORESERVE shmem object (MAP_NORESERVE shared memory, tmpfs and memfd files) are committed as
# they are allocated (shmem_acct_blocks) and given back as they are freed; an object committed by
# size (shmem_acct_size) is not charged again per page, and gives its size back at eviction.
COMMIT_SLOW_STEPS = {
    'shared anonymous': ['  ~every page touched: +0', '  ~unmapped: -1'],
    'shared anonymous MAP_NORESERVE': ['  ~every page touched: +1', '  ~unmapped: -1'],
    'tmpfs file, size set': ['  ~written: +1', '  ~truncated: -1'],
    'memfd, size set': ['  ~mapped and touched: +1', '  ~unmapped and closed: -1'],
}


def test_committed_as_moves_as_natively(userland):
    """Committed_AS after each step, in units of the mapping size: private writable memory, mremap
    growth, mprotect to writable, fork (the child's copy), shared anonymous and System V memory
    are committed; MAP_NORESERVE and read-only memory are not; CommitLimit follows
    vm_commit_limit. The guest's steps match the native run's (256 MiB units on the host's
    /dev/shm, 16 MiB in the guest's /tmp), the slow ones Linux's rules."""
    import pytest
    if not _is_tmpfs('/dev/shm'):
        pytest.skip('the host has no tmpfs at /dev/shm')
    prog = os.path.join(userland, 'commitacct')
    rc, nout, _ = run_native(prog, ['/dev/shm', '256'])
    g = run_guest(prog, ['/tmp', '16'], ram=64 << 20)
    assert (rc, g.exit_code) == (0, 0)
    native = [l for l in nout.decode().splitlines() if '~' not in l]
    guest = g.stdout.decode().splitlines()
    assert [l for l in guest if '~' not in l] == native
    assert native[0].endswith(': yes') and 'fork, in the child: +1' in native
    for head, rest in COMMIT_SLOW_STEPS.items():
        i = next(i for i, l in enumerate(guest) if l.split(':')[0] == head)
        assert guest[i + 1:i + 1 + len(rest)] == rest, head


def test_strict_overcommit_refuses_fork_and_shared_memory(userland):
    """overcommit_memory 2: dup_mmap commits the child's private writable memory again (fork is
    ENOMEM when it does not fit), shared anonymous memory and System V segments commit their size
    at creation (MAP_NORESERVE ignored); all fit again once the big mapping is gone. (The host's
    overcommit mode is not ours to change: Linux's documented results.)"""
    g = run_guest(os.path.join(userland, 'commitacct'), ['strict', '16'], ram=64 << 20, swap_bytes=64 << 20)
    assert g.exit_code == 0
    assert g.stdout.decode().splitlines() == [
        'more than half of the room: ok', 'fork: Cannot allocate memory',
        'shared anonymous as large: Cannot allocate memory',
        '  with MAP_NORESERVE (ignored): Cannot allocate memory',
        'System V segment as large: Cannot allocate memory', 'fork after munmap: ok',
        'shared anonymous after munmap: ok']


TMPFSSWAP_MEMINFO = ['Shmem below the file size: yes', 'Shmem + swap in use cover the file: yes',
                     'SwapCached within swap in use: yes']


def test_tmpfs_file_larger_than_ram_goes_to_swap_and_back(userland):
    """A 96 MiB tmpfs file on 64 MiB of RAM with 128 MiB of swap: its pages go to swap
    (shmem_writepage) and come back on read and on fault (shmem_swapin_folio) intact; /proc/meminfo
    shows the file split between Shmem and swap. Same output as natively on /dev/shm."""
    import pytest
    if not _is_tmpfs('/dev/shm'):
        pytest.skip('the host has no tmpfs at /dev/shm')
    prog = os.path.join(userland, 'tmpfsswap')
    rc, nout, _ = run_native(prog, ['/dev/shm', '96'])
    g = run_guest(prog, ['/mnt/big', '96', 'mount', 'meminfo'], ram=64 << 20, swap_bytes=128 << 20)
    out = g.stdout.decode().splitlines()
    assert (g.exit_code, [l for l in out if l not in TMPFSSWAP_MEMINFO]) == (rc, nout.decode().splitlines())
    assert out[1:4] == TMPFSSWAP_MEMINFO and 'read back: intact' in out
    excess = (96 - 64) << 8                     # pages that cannot all be in RAM at once
    assert g.stats['pswpout'] >= excess and g.stats['pswpin'] >= excess


def test_tmpfs_pages_without_swap_stay_until_the_oom_killer(userland):
    """With no swap, tmpfs pages cannot leave RAM (AOP_WRITEPAGE_ACTIVATE): filling a shared
    mapping of a tmpfs file larger than RAM (mounted with room for it) ends with the OOM killer's
    SIGKILL, not with pages silently dropped."""
    g = run_guest(os.path.join(userland, 'tmpfsswap'), ['/mnt/big', '96', 'mount', 'map'], ram=64 << 20,
                  swap_bytes=0)
    assert g.exit_code == 128 + 9
    assert 'out of memory' in g.result.report and b'filled' not in g.stdout
