"""System V shared memory and mount/umount2 (tmpfs, hugetlbfs) with /proc/self/mounts and mountinfo:
userland/src/shmtest.c and mounttest.c run natively (as root, in fresh IPC and mount namespaces made
by unshare(1), with 2 MiB pages reserved for the run) and under faultlab; the outputs must be equal."""
import contextlib
import os
import shutil

import pytest

from conftest import BUILD, run_guest, run_native
from test_cli import faultlab

NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages'
HUGE_POOL = 4


def _can_unshare():
    return os.geteuid() == 0 and shutil.which('unshare') is not None


@contextlib.contextmanager
def _native_huge_pages(n):
    """Reserve n more 2 MiB pages on the host for a native run (restored after); skips when it cannot."""
    try:
        with open(NR_HUGEPAGES) as f:
            old = int(f.read())
        with open(NR_HUGEPAGES, 'w') as f:
            f.write(str(old + n))
        with open(NR_HUGEPAGES) as f:
            got = int(f.read())
    except OSError as e:
        pytest.skip('cannot reserve huge pages natively: %s' % e)
    try:
        if got < old + n:
            pytest.skip('the host gave only %d of %d huge pages' % (got - old, n))
        yield
    finally:
        with open(NR_HUGEPAGES, 'w') as f:
            f.write(str(old))


def _native(prog, args, namespaces):
    """The program run natively in new namespaces (unshare -i / -m): (status, stdout)."""
    if not _can_unshare():
        pytest.skip('native run needs root and unshare(1)')
    code, out, err = run_native(shutil.which('unshare'), list(namespaces) + [prog] + list(args))
    assert code == 0, err
    return out


def _guest_cli(prog, args, hugepages):
    p = faultlab('run', '--hugepages', str(hugepages), prog, *args)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


# ---- System V shared memory ----------------------------------------------------------------------------
def test_shm_matches_native(userland):
    """shmget/shmat/shmdt/shmctl and their errors, the sysctls, /proc/sysvipc/shm, fork, IPC_RMID and
    shm_rmid_forced, SHM_HUGETLB: line for line as on Linux (ids from a fresh IPC namespace)."""
    prog = os.path.join(BUILD, 'shmtest')
    with _native_huge_pages(HUGE_POOL):
        native = _native(prog, ['huge'], ['-i'])
    guest = _guest_cli(prog, ['huge'], HUGE_POOL)
    assert guest.decode() == native.decode()
    assert b'forced, detached: IPC_STAT Invalid argument' in guest


def test_shm_without_huge_pages_in_process(userland):
    """The same program without the hugetlb part, in-process: matches native too."""
    prog = os.path.join(BUILD, 'shmtest')
    g = run_guest(prog)
    assert g.exit_code == 0, g.stderr
    assert g.stdout == _native(prog, [], ['-i'])
