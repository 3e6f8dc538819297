"""System V shared memory and mount/umount2 (tmpfs, hugetlbfs) with /proc/self/mounts and mountinfo:
userland/src/shmtest.c and mounttest.c run natively (as root, in fresh IPC and mount namespaces made
by unshare(1), with 2 MiB pages reserved for the run) and under faultlab; the outputs must be equal."""
import contextlib
import fcntl
import os
import shutil

import pytest

from conftest import BUILD, run_guest, run_native
from test_cli import faultlab

NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages'
HOST_LOCK = '/tmp/faultlab-hugepages.lock'        # as tests/test_hugetlb_selftests.py takes it
HUGE_POOL = 4


def _can_unshare():
    return os.geteuid() == 0 and shutil.which('unshare') is not None


@contextlib.contextmanager
def _native_huge_pages(n):
    """The host's pool set to exactly n free 2 MiB pages for a native run (one user at a time; restored
    after); skips when it cannot."""
    with open(HOST_LOCK, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(NR_HUGEPAGES) as f:
                old = int(f.read())
            with open(NR_HUGEPAGES, 'w') as f:
                f.write(str(n))
        except OSError as e:
            pytest.skip('cannot reserve huge pages natively: %s' % e)
        try:
            free = int(next(l.split()[1] for l in open('/proc/meminfo') if l.startswith('HugePages_Free:')))
            if free != n:
                pytest.skip('the host pool has %d free huge pages, not %d' % (free, n))
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


def _huge_run_matches_native(name, namespace):
    """userland program name with argument 'huge', natively in a new namespace (HUGE_POOL host huge
    pages reserved) and under the CLI with as many: the outputs must be equal; the guest's output."""
    prog = os.path.join(BUILD, name)
    with _native_huge_pages(HUGE_POOL):
        native = _native(prog, ['huge'], [namespace])
    guest = _guest_cli(prog, ['huge'], HUGE_POOL)
    assert guest.decode() == native.decode()
    return guest


def _in_process_matches_native(name, namespace):
    """userland program name without arguments, in-process and natively in a new namespace: equal."""
    prog = os.path.join(BUILD, name)
    g = run_guest(prog)
    assert g.exit_code == 0, g.stderr
    assert g.stdout == _native(prog, [], [namespace])


# ---- System V shared memory ----------------------------------------------------------------------------
def test_shm_matches_native(userland):
    """shmget/shmat/shmdt/shmctl and their errors, the sysctls, /proc/sysvipc/shm, fork, IPC_RMID and
    shm_rmid_forced, SHM_HUGETLB: line for line as on Linux (ids from a fresh IPC namespace)."""
    guest = _huge_run_matches_native('shmtest', '-i')
    assert b'forced, detached: IPC_STAT Invalid argument' in guest


def test_shm_without_huge_pages_in_process(userland):
    """The same program without the hugetlb part, in-process: matches native too."""
    _in_process_matches_native('shmtest', '-i')


# ---- mount / umount2 and the mount table in /proc --------------------------------------------------------
def test_mount_matches_native(userland):
    """tmpfs and hugetlbfs mounts: their mountinfo and mounts lines, size=/nr_inodes= limits, statfs,
    remount, EBUSY (open file, cwd, mapping, submount), MNT_EXPIRE, MNT_DETACH, ENODEV/ENOENT/ENOTDIR/
    EINVAL/EFAULT/EPERM, hugetlbfs pagesize=/size=/min_size= with the pool's reservations: as natively
    in a private mount namespace."""
    guest = _huge_run_matches_native('mounttest', '-m')
    assert b'hugetlbfs none rw,mode=1770,nr_inodes=3,pagesize=2M,size=4194304,min_size=2097152' in guest


def test_mount_without_huge_pages_in_process(userland):
    _in_process_matches_native('mounttest', '-m')


def test_proc_mountinfo_lists_the_guest_mount_table(userland, tmp_path):
    """/proc/self/mountinfo and /proc/mounts (fs/proc_namespace.c formats) list /, /tmp, /dev, /proc,
    --mount directories and the program's own file mount, each child's parent id being the root's;
    only 2 MiB pages are configured, so hugetlbfs pagesize=1G is EINVAL (as on a Linux without a
    1 GiB hstate)."""
    prog = os.path.join(BUILD, 'mounttest')
    g = run_guest(prog, ['show'], mounts=[(str(tmp_path), '/data', False)])
    assert g.exit_code == 0, g.stderr
    info = [line.split()[1:] for line in g.stdout.decode().splitlines() if line.startswith('mountinfo:')]
    mounts = [line.split()[1:] for line in g.stdout.decode().splitlines() if line.startswith('mounts:')]
    by_point = {f[4]: f for f in info}
    root = by_point['/']
    assert root[1] == root[0] and root[6:] == ['-', 'ext4', '/dev/nvme0n1p1', 'rw']
    for point, fstype, opts in (('/tmp', 'tmpfs', 'rw'), ('/dev', 'devtmpfs', 'rw,mode=755'),
                                ('/proc', 'proc', 'rw'), ('/data', '9p', 'rw'), ('/bin/mounttest', '9p', 'ro')):
        f = by_point[point]
        assert f[1] == root[0] and f[3] == '/' and f[6] == '-' and f[7] == fstype and f[9] == opts, f
        assert f[5] == opts.split(',')[0] + ',relatime'
    assert len({f[0] for f in info}) == len(info)                      # unique mount ids
    assert [m[1] for m in mounts] == [f[4] for f in info]              # same table, same order
    assert all(m[-2:] == ['0', '0'] for m in mounts)
    assert 'hugetlbfs pagesize=1G: Invalid argument' in g.stdout.decode()
