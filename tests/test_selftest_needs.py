"""What the Linux mm selftests need from faultlab, each checked on a guest program of our own
against the same program run natively where the host allows: the --user and --sysctl options
(run_vmtests.sh's `sudo -u nobody` and sysctl settings), mlockall(MCL_ONFAULT) limits (on-fault-limit),
PR_SET_MDWE (mdwe_test), /proc/self/mem with ptrace's FOLL_FORCE rules (mkdirty, ksm_functional_tests)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_guest, run_native

NOBODY = 65534


def faultlab(*args):
    """`faultlab run ARGS` as a user types it: (status, stdout, stderr)."""
    p = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'run', '--no-progress'] + list(args), capture_output=True,
                       cwd=ROOT, timeout=600)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def _as_nobody():
    os.setgroups([NOBODY])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def test_user_option_gives_the_credentials_of_sudo_u_nobody(userland):
    """--user 65534:65534: the ids, groups, capability sets and auxv ids a program started by
    `sudo -u nobody` has, and what they refuse: mlock beyond RLIMIT_MEMLOCK, a populated mapping
    beyond it under mlockall(MCL_ONFAULT | MCL_FUTURE) (EAGAIN), writing a sysctl."""
    if os.geteuid() != 0:
        pytest.skip('the native run needs root to switch to nobody')
    prog = os.path.join(userland, 'startcred')
    native = subprocess.run([prog], capture_output=True, preexec_fn=_as_nobody, timeout=60)
    st, out, err = faultlab('--user', '65534:65534', prog)
    assert (st, out) == (native.returncode, native.stdout.decode()), err
    assert 'populated map of twice the limit: Resource temporarily unavailable' in out
    assert 'uid 65534 65534 65534 fsuid 65534' in out


def test_user_option_root_keeps_every_capability(userland):
    """--user 0 is root with its group list (sudo -u root: groups 0) and every capability, as the
    default start has (no groups)."""
    prog = os.path.join(userland, 'startcred')
    default = faultlab(prog)
    as_root = faultlab('--user', '0', prog)
    assert default[0] == as_root[0] == 0
    assert default[1].replace('groups 0:\n', 'groups 1: 0\n').replace('Groups:\t \n', 'Groups:\t0 \n') == as_root[1]
    assert 'status CapEff:\t000001ffffffffff' in as_root[1]


@pytest.mark.parametrize('spec', ['nobody', '-1', '4294967295', '1:', '1:2,', '1:2:3', ''])
def test_user_option_rejects_bad_ids_in_one_line(spec):
    st, out, err = faultlab('--user', spec, '/bin/true')
    assert st == 2 and out == ''
    assert err.count('\n') == 1 and err.startswith('faultlab: --user ') and 'Traceback' not in err


def test_sysctl_option_writes_through_the_proc_sys_handlers(userland):
    """--sysctl NAME=VALUE (dots or slashes) sets the value before the program starts and it takes
    effect: vm.overcommit_memory=1 lets a 1 TiB private writable mapping through, which the default
    heuristic refuses."""
    sysctlrw = os.path.join(userland, 'sysctlrw')
    st, out, err = faultlab('--sysctl', 'vm.overcommit_memory=1', '--sysctl', 'kernel/shmmax=16384',
                            '--sysctl', 'vm.swappiness=7', '--sysctl', 'vm.swappiness=9', sysctlrw,
                            'overcommit_memory', 'swappiness', '../kernel/shmmax')
    assert (st, err) == (0, '')
    assert out.splitlines() == ['read overcommit_memory: 1', 'read swappiness: 9', 'read ../kernel/shmmax: 16384']
    overcommit = os.path.join(userland, 'overcommit')
    assert faultlab(overcommit)[1].startswith('1 TiB private writable: Cannot allocate memory\n')
    assert faultlab('--sysctl', 'vm.overcommit_memory=1', overcommit)[1].startswith('1 TiB private writable: ok\n')


def test_sysctl_option_sizes_the_hugetlb_pool(userland):
    """vm.nr_hugepages through its own handler: the pool /proc/meminfo shows."""
    st, out, err = faultlab('--ram', '64M', '--sysctl', 'vm.nr_hugepages=3', os.path.join(userland, 'sysctlrw'),
                            'nr_hugepages')
    assert (st, out, err) == (0, 'read nr_hugepages: 3\n', '')


@pytest.mark.parametrize('arg, message', [
    ('vm.overcommit_memory=3', 'sysctl vm.overcommit_memory=3: Invalid argument'),
    ('vm.swappiness=abc', 'sysctl vm.swappiness=abc: Invalid argument'),
    ('vm.no_such_knob=1', 'sysctl vm.no_such_knob: no such sysctl (No such file or directory)'),
    ('vm=1', 'sysctl vm: is a directory, not a sysctl'),
    ('vm.compact_memory', "sysctl 'vm.compact_memory': expected NAME=VALUE (e.g. vm.overcommit_memory=1)"),
    ('vm..x=1', "sysctl 'vm..x': not a sysctl name (e.g. vm.overcommit_memory)"),
])
def test_sysctl_option_refuses_bad_settings_in_one_line(userland, arg, message):
    st, out, err = faultlab('--sysctl', arg, os.path.join(userland, 'hello'))
    assert (st, out, err) == (2, '', 'faultlab: %s\n' % message)


@pytest.mark.parametrize('mode', ['inherit', 'noinherit'])
def test_mdwe_matches_native(userland, mode):
    """PR_SET_MDWE / PR_GET_MDWE argument checks (EINVAL, EPERM once set), mmap and mprotect refusing
    write+exec and exec gain with EACCES (MAP_FIXED replacing a mapping included), and what fork and
    execve keep: everything unless PR_MDWE_NO_INHERIT."""
    prog = os.path.join(userland, 'mdwe')
    args = ['noinherit'] if mode == 'noinherit' else ['inherit']
    rc, out, _ = run_native(prog, args)
    g = run_guest(prog, args)
    assert (g.exit_code, g.stdout.decode()) == (rc, out.decode())
    assert '  mmap wx: Permission denied' in out.decode()
    assert ('[after execve] get: 0' if mode == 'noinherit' else '[after execve] get: 1') in out.decode()


def test_proc_self_mem_matches_native(userland):
    """/proc/self/mem reads and writes at the address: partial transfers up to a hole and EIO in it,
    PROT_NONE memory, forced writes to read-only private anonymous, zero-page and file mappings that
    break COW and leave the mapping read-only (the program's own store still faults, the file is
    unchanged), EIO for read-only shared mappings, a forked child's write not reaching its parent."""
    prog = os.path.join(userland, 'procmem')
    rc, out, _ = run_native(prog)
    g = run_guest(prog)
    assert (g.exit_code, g.stdout.decode()) == (rc, out.decode())
    assert "write RO zero page: 5 'hello' store SIGSEGV, unchanged" in out.decode()


def test_runner_passes_sysctls_users_ram_and_tools_as_options():
    """run_vmtests.sh's settings become faultlab options: nr_hugepages as --hugepages (RAM grows with
    the pool), the other sysctls as --sysctl, `sudo -u nobody` as --user with nobody's ids and groups,
    2 GiB for virtual_address_range's page tables, the host's /usr/bin only for shell-running cases."""
    from faultlab.selftests.runner import faultlab_argv, user_ids
    from faultlab.selftests.cases import Case

    def opts(case):
        argv = faultlab_argv(case, '/B', 60)
        return ' '.join(argv[argv.index('run'):])
    assert opts(Case('hugetlb', ('./hugepage-shm',), (('kernel/shmmax', '268435456'), ('vm/nr_hugepages', '128')))) \
        == ('run --no-progress --timeout 60 --ram 536870912 --hugepages 128 --sysctl kernel.shmmax=268435456 '
            '--mount /B:/selftests /B/hugepage-shm')
    uid, gid, groups = user_ids('nobody')
    assert opts(Case('mlock', ('./on-fault-limit',), (('vm/nr_hugepages', '0'),), 'nobody')) == \
        ('run --no-progress --timeout 60 --ram 268435456 --hugepages 0 --user %d:%s --mount /B:/selftests '
         '/B/on-fault-limit' % (uid, ','.join(map(str, [gid] + [g for g in groups if g != gid]))))
    assert '--ram 2147483648 --hugepages 0 --sysctl vm.overcommit_memory=1 ' in \
        opts(Case('hugevm', ('./virtual_address_range',), (('vm/overcommit_memory', '1'),)))
    assert '--mount /usr/bin:/usr/bin --mount /usr/bin:/bin ' in opts(Case('compaction', ('./compaction_test',)))
    assert '/usr/bin' not in opts(Case('mmap', ('./map_populate',)))
