"""The hugetlb cases of Linux's mm selftests and what they rely on: the pool's accounting (reservations,
surplus pages, nr_overcommit_hugepages, /sys/kernel/mm/hugepages and /proc/sys/vm knobs), hugetlbfs
files growing on a writable mmap, hole punching and MADV_REMOVE reaching private copies, O_TMPFILE |
O_DIRECT written from a huge page (userland/src/hugeacct.c, compared with a native run when this host
can lend 4 huge pages), the selftest programs themselves when `make selftests` has built them, and the
thread tables that keep 10,000 thread create/join rounds fast."""
import contextlib
import fcntl
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, run_native

SELFTESTS = os.path.join(ROOT, '.cache', 'selftests', 'build', 'static')
HOST_LOCK = '/tmp/faultlab-hugepages.lock'


def _run(prog, args, nr_hugepages, ram):
    """A program under faultlab with a pool of nr_hugepages: (exit code, stdout)."""
    from faultlab.core.cycles import CostTable
    from faultlab.machine import Machine
    from faultlab.kernel.kernel import KernelConfig
    out = []
    m = Machine(ram=ram, costs=CostTable(), config=KernelConfig(stdout=out.append, stderr=out.append,
                                                                nr_hugepages=nr_hugepages))
    res = m.run(prog, [os.path.basename(prog)] + list(args), ['PATH=/bin', 'LANG=C'])
    return res.exit_code, b''.join(out).decode()


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _write(path, value):
    with open(path, 'w') as f:
        f.write(value)


@contextlib.contextmanager
def host_pool(n):
    """This host's hugetlb pool set to exactly n free pages and no overcommit for the block (as root,
    one user at a time), put back afterwards; skips when the host cannot lend them."""
    if os.geteuid() != 0 or not os.path.exists('/proc/sys/vm/nr_hugepages'):
        pytest.skip('native comparison needs root and hugetlb')
    with open(HOST_LOCK, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = _read('/proc/sys/vm/nr_hugepages'), _read('/proc/sys/vm/nr_overcommit_hugepages')
        try:
            _write('/proc/sys/vm/nr_overcommit_hugepages', '0')
            _write('/proc/sys/vm/nr_hugepages', str(n))
            free = int(next(l.split()[1] for l in open('/proc/meminfo') if l.startswith('HugePages_Free:')))
            if free != n or int(_read('/proc/sys/vm/nr_hugepages')) != n:
                pytest.skip('host pool busy or short: %d free huge pages' % free)
            yield
        finally:
            _write('/proc/sys/vm/nr_hugepages', old[0])
            _write('/proc/sys/vm/nr_overcommit_hugepages', old[1])


# lines of the guest's output that Linux 6.12 gives (checked even when the host cannot run it)
HUGEACCT_LINUX = [
    r'private dontneed \(resv restored\)\s+meminfo T4 F4 R2 S0 \| sys nr4 free4 resv2 surp0 oc0',
    r'size after writable shared mmap: 4194304',
    r'after punch \(private copy too\)\s+meminfo T4 F2 R1 S0',
    r'after punch: shared 0 private 0, page 1 shared s private p',
    r'MADV_REMOVE private: Permission denied',
    r'after remove: shared 0 private 0',
    r'mmap 7 pages: Cannot allocate memory',
    r'6 pages mapped\s+meminfo T6 F6 R6 S2 \| sys nr6 free6 resv6 surp2 oc2 mp6 \| node nr6 free6 surp2 '
    r'\| proc nr4 oc2',
    r'pool shrunk under use\s+meminfo T3 F0 R0 S2 \| sys nr3 free0 resv0 surp2 oc2 mp3 \| node nr3 free0 '
    r'surp2 \| proc nr1 oc2',
    r'in-use pages freed\s+meminfo T1 F1 R0 S0',
    r"sys nr_hugepages ' 4': Invalid argument",
    r'sys free_hugepages: Permission denied',
    r'tmpfile: regular 1 nlink 0 size 12288 mode 644',
    r'read back: 12288, same 1',
    r'free huge pages back: 1',
    r'O_TMPFILE in /proc: Operation not supported',
]


def test_pool_accounting_sysfs_tmpfile_match_native(userland):
    """hugeacct under faultlab (pool of 4, /tmp) prints what Linux prints (the host's pool of 4,
    /dev/shm: a tmpfs like the guest's /tmp)."""
    prog = os.path.join(userland, 'hugeacct')
    rc, out = _run(prog, ['/tmp'], 4, 96 << 20)
    assert rc == 0, out
    for pattern in HUGEACCT_LINUX:
        assert re.search(pattern, out), (pattern, out)
    with host_pool(4):
        nrc, nout, _ = run_native(prog, ['/dev/shm'])
    assert (rc, out) == (nrc, nout.decode())


HUGEFORK_LINUX = [
    "private child reads: 'parent data' second page ''",
    "private child wrote: 'Carent data'",
    "private parent after child: 'parent data' second page ''",
    "private parent wrote: 'pPrent data'",
    "shared child reads: 'parent data' second page ''",
    "shared parent after child: 'Carent data' second page 'child second'",
    "shared parent wrote: 'CPrent data'",
]


def test_fork_copies_private_hugetlb_page_tables_and_shares_shared_pages(userland):
    """hugefork: after fork a private hugetlb mapping's pages are the parent's data, copy-on-write on
    both sides (copy_hugetlb_page_range); a shared one's are the same pages; as on the native host."""
    prog = os.path.join(userland, 'hugefork')
    rc, out = _run(prog, [], 8, 64 << 20)
    assert rc == 0, out
    for line in HUGEFORK_LINUX:
        assert line in out.splitlines(), (line, out)
    with host_pool(8):
        nrc, nout, _ = run_native(prog)
    assert (rc, out) == (nrc, nout.decode())


def test_sys_tree_is_sysfs():
    """/sys is a sysfs mount (SYSFS_MAGIC, nosuid,nodev,noexec) whose directories are 0755 and whose
    attributes are 4096 bytes, with the files mm/hugetlb.c creates for the 2 MiB size and, after it,
    the 1 GiB one (a CPU with pdpe1gb, as this host's), which also has demote and demote_size."""
    from faultlab.core.cycles import CostTable
    from faultlab.machine import Machine
    from faultlab.kernel.kernel import KernelConfig
    from faultlab.kernel.fs.sysfs import SYSFS_MAGIC
    m = Machine(ram=64 << 20, costs=CostTable(), config=KernelConfig(nr_hugepages=2))
    vfs = m.kernel.vfs
    d = vfs.lookup('/sys/kernel/mm/hugepages')
    assert [name for name, _ in d.entries()] == ['hugepages-2048kB', 'hugepages-1048576kB']
    names = sorted(n for n, _ in vfs.lookup('/sys/kernel/mm/hugepages/hugepages-2048kB').entries())
    assert names == sorted(['nr_hugepages', 'nr_hugepages_mempolicy', 'free_hugepages', 'resv_hugepages',
                            'surplus_hugepages', 'nr_overcommit_hugepages'])
    attr = vfs.lookup('/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages')
    assert (attr.size, attr.mode & 0o777, d.mode & 0o777) == (4096, 0o644, 0o755)
    assert attr.read_content() == b'2\n'
    assert vfs.statfs('/sys').f_type == SYSFS_MAGIC
    assert 'sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0' in vfs.lookup('/proc/mounts').read_content().decode()


def _selftest(name, nr_hugepages=128):
    prog = os.path.join(SELFTESTS, name)
    if not os.path.exists(prog):
        pytest.skip('%s not built (make selftests)' % name)
    argv = [sys.executable, '-m', 'faultlab.cli', 'run', '--no-progress', '--timeout', '300',
            '--ram', str((64 << 20) + (nr_hugepages << 21)), '--hugepages', str(nr_hugepages), prog]
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=400)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@pytest.mark.parametrize('name, plan', [('hugetlb-madvise', None), ('hugetlb_dio', 4), ('hugepage-mmap', 1)])
def test_hugetlb_selftests_pass(name, plan):
    """The 6.12 selftests pass as they do natively: exit 0 and, for the TAP ones, every planned test ok."""
    rc, out, err = _selftest(name)
    assert rc == 0, (out, err)
    if plan is not None:
        assert '# Totals: pass:%d fail:0 xfail:0 xpass:0 skip:0 error:0' % plan in out, out


def test_task_table_live_is_the_live_tasks_in_dict_order():
    """TaskTable.live() equals the plain filter over the dict, through new tasks, exits, replacing a key
    (de_thread's exec into the leader's pid) and pops."""
    from faultlab.kernel.tasktable import TaskTable

    class T:
        def __init__(self, name):
            self.name, self.exited = name, False
    table, plain = TaskTable(), {}
    tasks = [T(i) for i in range(8)]

    def put(tid, t):
        table[tid] = t
        plain[tid] = t

    def check():
        assert table.live() == [t for t in plain.values() if not t.exited]
    for i in range(5):
        put(i + 1, tasks[i])
    check()
    tasks[0].exited = tasks[2].exited = True
    check()
    table.pop(4)
    plain.pop(4)
    put(1, tasks[3])                      # the exec'ing thread takes the exited leader's pid
    check()
    put(9, tasks[5])
    tasks[3].exited = True
    check()
    put(4, tasks[6])
    check()
    assert [t.name for t in table.live()] == [1, 4, 5, 6]


def test_live_threads_skips_exited_threads_incrementally():
    """ThreadGroup.live_threads gives the live threads in order however many have exited, and notices
    a replaced thread list (de_thread)."""
    from faultlab.kernel.task import ThreadGroup

    class T:
        def __init__(self):
            self.exited = False
    lead = T()
    g = ThreadGroup(lead)
    ts = [T() for _ in range(5)]
    g.threads.extend(ts[:3])
    assert g.live_threads() == [lead] + ts[:3]
    ts[1].exited = True
    g.threads.extend(ts[3:])
    assert g.live_threads() == [lead, ts[0], ts[2], ts[3], ts[4]]
    lead.exited = ts[4].exited = True
    assert g.live_threads() == [ts[0], ts[2], ts[3]] and not g.exited
    g.threads = [ts[3]]
    assert g.live_threads() == [ts[3]]
    ts[3].exited = True
    assert g.exited
