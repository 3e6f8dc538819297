"""Running out of a resource gives Linux's errno or signal and the program goes on (userland/src/exhaust.c),
compared with the same program natively where the host can do it: a tmpfs smaller than a file (natively
a tmpfs mounted with size=8m, under faultlab /tmp, whose size is half of --ram), RLIMIT_NOFILE, a full
disk, the OOM killer's choice when RAM and swap are full (userland/src/oomkill.c; natively only its
/proc files, the kill itself as mm/oom_kill.c ranks processes)."""
import os
import re
import subprocess
import tempfile

import pytest

from conftest import run_guest, run_native
from native_root import native_root_available, run_native_root

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
    from faultlab.kernel.block.params import DiskParams
    prog = os.path.join(userland, 'exhaust')
    expected = DISK_LINUX
    if small_ext4 is not None:
        code, expected, _ = run_native(prog, ['disk', small_ext4])
        assert code == 0
    r = run_guest(prog, ['disk', '/mnt'], disk=DiskParams(size_mb=DISK_MIB))
    assert r.exit_code == 0 and r.stdout == expected == DISK_LINUX


def test_full_disk_sigbus_report_says_why(userland):
    """Without a handler the store ends the run with a report naming ENOSPC, not the end of the file."""
    from faultlab.kernel.block.params import DiskParams
    r = run_guest(os.path.join(userland, 'exhaust'), ['disk', '/mnt'], disk=DiskParams(size_mb=DISK_MIB),
                  env=['EXHAUST_NO_HANDLER=1'])
    assert r.result.report is not None and 'SIGBUS' in r.result.report
    assert 'ENOSPC' in r.result.report and 'end of the mapped file' not in r.result.report


# ---- the OOM killer (kernel/mm/oom_kill.py) ------------------------------------------------------------
def test_oom_score_adj_files_as_natively(userland):
    """/proc/self/oom_score_adj and oom_score (userland/src/oomkill.c files) against native: the range
    check, kstrtoint's base 0, the score scaled by the adjustment, inheritance by fork and a non-root
    process's writes, all without CAP_SYS_RESOURCE (dropped first: a container's root may lack it)."""
    prog = os.path.join(userland, 'oomkill')
    code, out, _ = run_native(prog, ['files'])
    assert code == 0 and b'write 1001: EINVAL' in out and b'write -1000: EACCES' in out
    r = run_guest(prog, ['files'])
    assert r.exit_code == 0 and r.stdout == out


def test_oom_score_adj_with_cap_sys_resource(userland):
    """With CAP_SYS_RESOURCE (faultlab's root keeps it; fs/proc/base.c __set_oom_adj) a process may go
    below the minimum, -1000 makes oom_score 0 (oom_badness's LONG_MIN), and every write sets the
    minimum its children inherit: nobody's 200 under root's 300 is EACCES, 500 is fine."""
    r = run_guest(os.path.join(userland, 'oomkill'), ['files', 'keepcap'])
    out = r.stdout.decode()
    assert r.exit_code == 0
    for line in ('write -1000: ok', 'oom_score now: 0', 'write 300: ok', 'child inherits: 300',
                 'nobody writes 200: EACCES', 'nobody writes 500: ok', 'nobody writes 300: ok, now 300'):
        assert line + '\n' in out, out


# (hog MiB, small MiB, small's oom_score_adj, hog's) on 32 MiB of RAM and 16 MiB of swap: the hog alone
# would fit but not with the small one; who oom_badness picks, as mm/oom_kill.c ranks them
OOM_CASES = [
    ((64, 12, '0', '0'), b'hog: killed by KILL\nsmall: exited 0\n', 'hog'),          # the largest rss+swap
    ((40, 12, '1000', '0'), b'hog: exited 0\nsmall: killed by KILL\n', 'small'),     # adj 1000 outranks
    ((40, 12, '0', '-1000'), b'hog: exited 0\nsmall: killed by KILL\n', 'small'),    # -1000 is exempt
]


@pytest.mark.parametrize('args,expected,victim', OOM_CASES)
def test_swap_full_oom_kills_the_worst_process_and_the_rest_go_on(userland, args, expected, victim):
    r = run_guest(os.path.join(userland, 'oomkill'), ['kill'] + [str(a) for a in args], ram=32 << 20,
                  swap_bytes=16 << 20)
    assert r.result.report is None and r.exit_code == 0
    assert r.stdout == expected + b'parent goes on\n'
    kills = [w for w in r.warnings if 'invoked oom-killer' in w]
    assert kills and all('Out of memory: Killed process' in w for w in kills)
    victim_pid = 2 if victim == 'small' else 3
    assert 'Killed process %d (oomkill)' % victim_pid in kills[-1]
    assert 'oom_score_adj:%s' % args[2 if victim == 'small' else 3] in kills[-1]


# ---- limits on new tasks (kernel/fork_limits.py) -------------------------------------------------------
@pytest.mark.parametrize('limit', [1, 5])
def test_rlimit_nproc_gives_eagain_except_for_root(userland, limit):
    """userland/src/forklimit.c nproc: root forks past RLIMIT_NPROC 1; user 54321 forks limit - 1
    children (it counts itself), then EAGAIN, and again once they are reaped; against native."""
    prog = os.path.join(userland, 'forklimit')
    code, out, _ = run_native(prog, ['nproc', str(limit)])
    assert code == 0 and b'user 54321: %d forks, then EAGAIN' % (limit - 1) in out
    r = run_guest(prog, ['nproc', str(limit)])
    assert r.exit_code == 0 and r.stdout == out


def _pid_max_is_per_namespace():
    """Linux 6.14 made pid_max a pid namespace's own: only then may the native run write it."""
    major, minor = (int(x) for x in os.uname().release.split('.')[:2])
    return (major, minor) >= (6, 14)


# what kernel/pid.c does with pid_max 400 and ns_last_pid 100: pids 101..399, then none free from
# RESERVED_PIDS (300) on; proc_dointvec_minmax refuses 300 and PID_MAX_LIMIT + 1
PID_MAX_LINUX = b'''write 300: EINVAL
write 4194305: EINVAL
write 400: ok
ns_last_pid 100: ok
pid_max: 299 forks, then EAGAIN
pid_max: reaped 299
pid_max: fork after reaping: ok
'''


def test_pid_max_runs_out_with_eagain(userland):
    prog = os.path.join(userland, 'forklimit')
    expected = PID_MAX_LINUX
    if native_root_available() and _pid_max_is_per_namespace():
        code, expected, _ = run_native_root(prog, ['pidmax', '400'])
        assert code == 0
    r = run_guest(prog, ['pidmax', '400'])
    assert r.exit_code == 0 and r.stdout == expected == PID_MAX_LINUX


def test_threads_max_gives_eagain(userland):
    """threads-max (global on the host, so not written natively): sysctl_max_threads accepts 20..
    FUTEX_TID_MASK; copy_process refuses a task once nr_threads has reached it (the parent is one)."""
    r = run_guest(os.path.join(userland, 'forklimit'), ['threadsmax', '40'])
    assert r.exit_code == 0 and r.stdout == b'''write 19: EINVAL
write 1073741824: EINVAL
write 40: ok
threads-max: 39 forks, then EAGAIN
threads-max: reaped 39
threads-max: fork after reaping: ok
'''


# ---- page-table frames (userland/src/ptfull.c) ---------------------------------------------------------
@pytest.mark.parametrize('mode', ['fault', 'mlock', 'populate'])
def test_page_table_frames_run_out_in_a_child_and_the_parent_goes_on(userland, mode):
    """One byte every 2 MiB of a 64 GiB MAP_NORESERVE mapping needs a page-table frame per touch; mlock
    and MAP_POPULATE fill it page by page. On 24 MiB without swap the frames run out: the fault that
    finds none calls the OOM killer (as pagefault_out_of_memory), which picks the child; mlock's and
    MAP_POPULATE's population stops at the first frame it cannot get (__mm_populate) and the child's next
    fault is the one that kills it. Never an internal error."""
    r = run_guest(os.path.join(userland, 'ptfull'), [mode], ram=24 << 20, swap_bytes=0)
    assert r.result.report is None and r.exit_code == 0
    assert r.stdout.endswith(b'child: killed by KILL\nparent goes on\n'), r.stdout
    assert not any('internal error' in w for w in r.warnings)
    kill = [w for w in r.warnings if 'Out of memory: Killed process 2 (ptfull)' in w]
    assert kill, r.warnings
    if mode == 'fault':         # most of the memory went to page tables
        pgtables_kb = int(re.search(r'pgtables:(\d+)kB', kill[0]).group(1))
        assert pgtables_kb > 8 << 10
    elif mode == 'mlock':       # the mapping was made; mlock filled it, then the next fault had no frame
        assert r.stdout.startswith(b'mmap: ok\n')


# ---- the hugetlb pool (userland/src/hugepool.c, run with --hugepages 1) --------------------------------
# mm/hugetlb.c: hugetlb_reserve_pages fails the mmap (ENOMEM) when the pool cannot cover the mapping;
# with MAP_NORESERVE nothing is reserved and the fault that finds no free page is VM_FAULT_SIGBUS;
# shmget(SHM_HUGETLB) reserves as mmap does (newseg -> hugetlb_file_setup: ENOMEM); pages come back to
# the pool at munmap and IPC_RMID. (The host's pool is global, so there is no native run.)
HUGEPOOL_LINUX = b'''mmap 2 huge pages: ENOMEM
mmap 2 huge pages, MAP_NORESERVE: ok
touched 1, then SIGBUS BUS_ADRERR
shmget SHM_HUGETLB 2 huge pages: ENOMEM
shmget SHM_HUGETLB 1 huge page: ok
mmap while the segment holds the page: ENOMEM
mmap 1 huge page after: ok
filled it
'''


def test_empty_hugetlb_pool_gives_enomem_and_sigbus_and_the_run_goes_on(userland):
    from test_cli import faultlab
    p = faultlab('run', '--hugepages', '1', os.path.join(userland, 'hugepool'))
    assert p.returncode == 0 and p.stdout == HUGEPOOL_LINUX, p.stdout + p.stderr


# ---- file-max (kernel/fs/file_table.py; global on the host, so no native run) ----------------------------
FILEMAX_LINUX = b'''file-nr: in use > 0: yes, file-max >= 8192: yes
file-max -1: EINVAL
file-max used + 16: ok
nobody opens 16 more, then ENFILE
pipe: ENFILE
socket: ENFILE
memfd_create: ENFILE
dup (no new file): ok
open after a close: ok
root opens past the limit: ok
file-nr shows the new limit: yes
'''


def test_file_max_gives_enfile_to_all_but_cap_sys_admin(userland):
    """fs/file_table.c: file-max defaults to a tenth of memory in KiB, at least NR_FILE (8192), and
    takes 0..LONG_MAX; alloc_empty_file refuses a new file with ENFILE once the files in use reach it,
    unless the caller has CAP_SYS_ADMIN, and logs 'VFS: file-max limit N reached'; dup makes no file."""
    r = run_guest(os.path.join(userland, 'filemax'), ['16'])
    assert r.exit_code == 0 and r.stdout == FILEMAX_LINUX
    assert any(w.startswith('VFS: file-max limit') for w in r.warnings)
