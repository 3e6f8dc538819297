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


DISK_MIB = 8                  # the disk filesystem: natively an ext4 image of 8 MiB, under faultlab --disk size_mb=8

# what Linux does on a full ext4 with 4 KiB blocks (fs/ext4: blocks are claimed at write_begin and
# ext4_page_mkwrite, so fsync has no error to report; mkdir needs a directory block, creat only an
# inode), for a host that cannot mount an image
DISK_LINUX = b'''write until full: ENOSPC (wrote something: yes)
write when full: ENOSPC
fsync after ENOSPC: ok
mkdir when full: ENOSPC
creat when full: ok
fallocate when full: ENOSPC
stores to a hole when full: SIGBUS BUS_ADRERR
mkdir after freeing: ok
write after freeing: ok
fsync after freeing: ok
'''


@pytest.fixture
def small_ext4():
    """An ext4 filesystem of DISK_MIB MiB (4 KiB blocks, no root reserve) loop-mounted on a temporary
    directory (needs root and mkfs.ext4), or None."""
    d = tempfile.mkdtemp()
    img = d + '.img'
    with open(img, 'wb') as f:
        f.truncate(DISK_MIB << 20)
    ok = subprocess.run(['mkfs.ext4', '-q', '-F', '-m', '0', '-b', '4096', img], capture_output=True).returncode == 0 \
        and subprocess.run(['mount', '-o', 'loop', img, d], capture_output=True).returncode == 0
    yield d if ok else None
    if ok:
        subprocess.run(['umount', d], capture_output=True)
    os.rmdir(d)
    os.unlink(img)


def test_full_disk_gives_enospc_sigbus_and_goes_on(userland, small_ext4):
    """write/fallocate/mkdir ENOSPC, creat and fsync fine, a store to a hole SIGBUS; freeing space helps."""
    from kernel.block.params import DiskParams
    prog = os.path.join(userland, 'exhaust')
    expected = DISK_LINUX
    if small_ext4 is not None:
        code, expected, _ = run_native(prog, ['disk', small_ext4])
        assert code == 0
    r = run_guest(prog, ['disk', '/mnt'], disk=DiskParams(size_mb=DISK_MIB))
    assert r.exit_code == 0 and r.stdout == expected == DISK_LINUX


def test_full_disk_sigbus_report_says_why(userland):
    """Without a handler the store ends the run with a report naming ENOSPC, not the end of the file."""
    from kernel.block.params import DiskParams
    r = run_guest(os.path.join(userland, 'exhaust'), ['disk', '/mnt'], disk=DiskParams(size_mb=DISK_MIB),
                  env=['EXHAUST_NO_HANDLER=1'])
    assert r.result.report is not None and 'SIGBUS' in r.result.report
    assert 'ENOSPC' in r.result.report and 'end of the mapped file' not in r.result.report
