"""Running out of a resource gives Linux's errno or signal and the program goes on (userland/src/exhaust.c),
compared with the same program natively: a tmpfs smaller than a file (natively a tmpfs mounted with
size=8m, under faultlab /tmp, whose size is half of --ram) and RLIMIT_NOFILE."""
import os
import subprocess
import tempfile

import pytest

from conftest import run_guest, run_native

TMPFS_PAGES_MIB = 8           # the tmpfs size: natively size=8m, under faultlab /tmp of 16 MiB of RAM


@pytest.fixture
def small_tmpfs():
    """A tmpfs of TMPFS_PAGES_MIB MiB mounted on a temporary directory (needs root), or None."""
    d = tempfile.mkdtemp()
    p = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%dm' % TMPFS_PAGES_MIB, 'tmpfs', d],
                       capture_output=True)
    yield d if p.returncode == 0 else None
    if p.returncode == 0:
        subprocess.run(['umount', d], capture_output=True)
    os.rmdir(d)


# what Linux documents (mm/shmem.c, mm/madvise.c), for a host where a tmpfs cannot be mounted
TMPFS_LINUX = b'''write until full: ENOSPC (wrote something: yes)
write when full: ENOSPC
fallocate past the size: ENOSPC
ftruncate past the size: ok
MADV_POPULATE_WRITE past the size: EFAULT
stores past the size: SIGBUS BUS_ADRERR
write after freeing: ok
'''


def test_full_tmpfs_gives_enospc_sigbus_and_efault(userland, small_tmpfs):
    prog = os.path.join(userland, 'exhaust')
    size = str(2 * TMPFS_PAGES_MIB)
    expected = TMPFS_LINUX
    if small_tmpfs is not None:
        code, expected, _ = run_native(prog, ['tmpfs', small_tmpfs, size])
        assert code == 0
    r = run_guest(prog, ['tmpfs', '/tmp', size], ram=2 * TMPFS_PAGES_MIB << 20, swap_bytes=0)
    assert r.exit_code == 0 and r.stdout == expected == TMPFS_LINUX


def test_full_tmpfs_of_a_bigger_machine_goes_on(userland):
    """--ram 64M: /tmp holds 32 MiB; a 48 MiB file is refused the same way and the run ends normally."""
    r = run_guest(os.path.join(userland, 'exhaust'), ['tmpfs', '/tmp', '48'], ram=64 << 20, swap_bytes=0)
    assert r.exit_code == 0 and r.stdout == TMPFS_LINUX


@pytest.mark.parametrize('limit', [16, 100])
def test_rlimit_nofile_gives_emfile(userland, limit):
    prog = os.path.join(userland, 'exhaust')
    code, out, _ = run_native(prog, ['nofile', str(limit)])
    r = run_guest(prog, ['nofile', str(limit)])
    assert code == 0 and b'EMFILE, highest fd %d' % (limit - 1) in out
    assert r.exit_code == 0 and r.stdout == out
