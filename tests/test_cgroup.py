"""cgroup v2 and its hugetlb controller (kernel/cgroup): cgroup_hugetlb (userland) mounts cgroup2 (or uses
the host's, natively), makes a child cgroup, moves a process in through cgroup.procs and checks what the
hugetlb.2MB.* files show as reservations and faults are charged and given back, compared with the same
program run natively as root; /proc/PID for ps, pgrep and killall; the selftest runner's script cases."""
import os
import shutil

import pytest

from conftest import run_guest, run_native

from faultlab.selftests.cases import Case
from faultlab.selftests.runner import CASE_TIME_LIMIT, case_time_limit, faultlab_argv

HOST_BIN = '/usr/bin'


def test_hugetlb_cgroup_matches_native(userland):
    """Charges, limits, events, EINVAL/ESRCH/EEXIST/EBUSY, /proc/self/cgroup and cgroup.events, as on
    this host (root, cgroup2 with the hugetlb controller, 4 huge pages it can have)."""
    prog = os.path.join(userland, 'cgroup_hugetlb')
    r = run_guest(prog)
    assert r.result.report is None, r.result.report
    assert r.exit_code == 0, r.stdout + r.stderr
    assert b'the fault over hugetlb.2MB.max: SIGBUS\n' in r.stdout, r.stdout
    code, out, _ = run_native(prog)
    if code == 4:
        pytest.skip('natively: %s' % out.decode().strip())
    assert code == 0, out
    assert r.stdout == out


def test_cgroup_files_and_errors_in_the_guest(userland, tmp_path):
    """What the native comparison cannot show on a host with other controllers: the root's
    cgroup.controllers lists only hugetlb here, a child has no hugetlb files until the root enables
    the controller, a removed cgroup's charges stay counted in the root, and /proc/PID/cgroup
    follows a moved process."""
    script = tmp_path / 'cg.sh'
    script.write_text(
        'd=$(mktemp -d); mount -t cgroup2 none $d || exit 1\n'
        'cat $d/cgroup.controllers\n'
        'mkdir $d/a; ls $d/a | grep -c hugetlb\n'
        'echo +hugetlb > $d/cgroup.subtree_control; ls $d/a | grep -c hugetlb\n'
        'echo -hugetlb > $d/cgroup.subtree_control; ls $d/a | grep -c hugetlb\n'
        'echo +hugetlb > $d/cgroup.subtree_control\n'
        'sleep 10 & echo $! > $d/a/cgroup.procs; cut -d: -f3 /proc/$!/cgroup; cat $d/a/cgroup.events\n'
        'rmdir $d/a 2>&1 | grep -c busy\n'
        'kill $!; wait; rmdir $d/a && echo removed\n'
        'echo x > $d/cgroup.nosuch; echo create=$?\n'
        'umount $d && rmdir $d && echo unmounted\n')
    r = run_guest('/bin/bash', ['/t/' + script.name], mounts=_tools(tmp_path))
    assert r.result.report is None, r.result.report
    out = r.stdout.decode()
    assert out.splitlines() == ['hugetlb', '0', '14', '0', '/a', 'populated 1', 'frozen 0', '1', 'removed',
                                'create=1', 'unmounted'], out + r.stderr.decode()
    assert b'Permission denied' in r.stderr


def test_proc_pid_for_ps_pgrep_and_killall(tmp_path):
    """/proc/PID of each process: pgrep finds the background job by its command line, ps by its pid,
    killall -2 --wait ends it through its /proc/PID directory (pidfd_send_signal) and waits."""
    script = tmp_path / 'k.sh'
    script.write_text(
        'sleep 30 & p=$!\n'
        '[ "$(pgrep -f "sleep 30")" = "$p" ] && echo pgrep finds it\n'
        'ps $p > /dev/null && echo ps finds it\n'
        'cut -d" " -f1-3 /proc/$p/stat | sed "s/^$p /PID /"\n'
        'killall -2 --wait sleep && echo killed\n'
        'ps $p > /dev/null || echo gone\n')
    r = run_guest('/bin/bash', ['/t/' + script.name], mounts=_tools(tmp_path))
    assert r.result.report is None, r.result.report
    assert r.stdout.decode().splitlines() == ['pgrep finds it', 'ps finds it', 'PID (sleep) S', 'killed',
                                              'gone'], r.stdout + r.stderr


def test_script_cases_run_bash_in_the_build_directory():
    """A script case runs the host's bash in the guest in /selftests with the host's tools, and
    charge_reserved_hugetlb.sh gets its longer time limit in both runs."""
    case = Case('hugetlb', ('bash', './charge_reserved_hugetlb.sh', '-cgroup-v2'), (('vm/nr_hugepages', '0'),),
                script=True)
    argv = faultlab_argv(case, '/B', 120)
    tail = argv[argv.index('run'):]
    assert tail[tail.index('--timeout') + 1] == '%g' % CASE_TIME_LIMIT['charge_reserved_hugetlb.sh']
    assert '%s:/bin' % HOST_BIN in tail and '/B:/selftests' in tail
    assert tail[-5:] == ['/bin/bash', '-c', 'cd /selftests && exec bash ./charge_reserved_hugetlb.sh "$@"',
                         'charge_reserved_hugetlb.sh', '-cgroup-v2']
    other = Case('hugetlb', ('bash', './hugetlb_reparenting_test.sh'), (), script=True)
    assert case_time_limit(other, 120) == 120


def _tools(tmp_path):
    """The host's tools at /usr/bin and /bin, the test's scripts at /t (read-only)."""
    return [(HOST_BIN, '/usr/bin', True), (HOST_BIN, '/bin', True), (str(tmp_path), '/t', True)]


@pytest.fixture(autouse=True)
def _needs_bash():
    if not os.path.exists('/bin/bash') or shutil.which('pgrep') is None:
        pytest.skip('the host has no bash or procps')


def test_proc_config_gz_describes_4_level_paging(tmp_path):
    """/proc/config.gz decompresses (gzip -dc, as va_high_addr_switch.sh reads it) to this kernel's
    configuration: PGTABLE_LEVELS as many levels as the page walk has, the hugetlb cgroup controller."""
    script = tmp_path / 'c.sh'
    script.write_text('gzip -dcfq /proc/config.gz | grep -e PGTABLE_LEVELS -e CGROUP_HUGETLB -e X86_5LEVEL\n')
    r = run_guest('/bin/bash', ['/t/' + script.name], mounts=_tools(tmp_path))
    assert r.result.report is None, r.result.report
    # the tables faultlab walks are PML4, PDPT, PD, PT (kernel/mm/pgtable.py): 4 levels
    assert r.stdout.decode().splitlines() == ['CONFIG_PGTABLE_LEVELS=4', '# CONFIG_X86_5LEVEL is not set',
                                              'CONFIG_CGROUP_HUGETLB=y'], r.stdout + r.stderr
