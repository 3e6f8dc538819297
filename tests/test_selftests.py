"""The parts of `faultlab selftests` that need no kernel source: kselftest totals, outcomes, the
worse-than comparison, reasons, and the case list derived from a run_vmtests.sh-like script."""
import os
import subprocess

import pytest

from faultlab.selftests.runner import (EXPECTED, expected, faultlab_argv, format_table, run_native, worse_cases)
from faultlab.selftests.cases import Case, derive_cases
from faultlab.selftests.result import (FAIL, NOTBUILT, NOTRUN, PASS, SIGNAL, SKIP, TIMEOUT, Outcome, classify,
                                  parse_totals, reason, worse)

TOTALS_TEXT = ('TAP version 13\n1..3\nok 1 a\nnot ok 2 b\nok 3 c # SKIP no thing\n'
               '# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0\n')

SCRIPT = r'''#!/bin/bash
ksft_skip=4
RUN_ALL=false
usage() {
	cat <<EOF
  run_test ./never_listed
EOF
	exit 0
}
while getopts "aht:nd" OPT; do
	case ${OPT} in
		"a") RUN_ALL=true ;;
	esac
done
run_test() {
	CATEGORY="x" run_test ./inside_function
}
nr_cpus=$(nproc)
uffd_min_KB=$((hpgsize_KB * nr_cpus * 2))
hugetlb_min_KB=$((256 * 1024))
if [[ $uffd_min_KB -gt $hugetlb_min_KB ]]; then
	needmem_KB=$uffd_min_KB
else
	needmem_KB=$hugetlb_min_KB
fi
nr_hugepgs=$(cat /proc/sys/vm/nr_hugepages)
needpgs=$((needmem_KB / hpgsize_KB))
lackpgs=$((needpgs - freepgs))
echo 3 > /proc/sys/vm/drop_caches
if ! echo $((lackpgs + nr_hugepgs)) > /proc/sys/vm/nr_hugepages; then
	exit $ksft_skip
fi
VADDR64=0
echo "$ARCH64STR" | grep "$ARCH" &>/dev/null && VADDR64=1
CATEGORY="hugetlb" run_test ./hugepage-mmap
nr_hugepages_tmp=$(cat /proc/sys/vm/nr_hugepages)
echo 1 > /proc/sys/vm/nr_hugepages
CATEGORY="hugetlb" run_test ./one_page
echo "$nr_hugepages_tmp" > /proc/sys/vm/nr_hugepages
if $RUN_ALL; then
    CATEGORY="gup_test" run_test ./gup_test -all
else
    CATEGORY="gup_test" run_test ./gup_test -u
fi
uffd_stress_bin=./uffd-stress
half_ufd_size_MB=$(((freepgs * hpgsize_KB) / 1024 / 2))
CATEGORY="userfaultfd" run_test ${uffd_stress_bin} hugetlb "$half_ufd_size_MB" 32
echo "$nr_hugepgs" > /proc/sys/vm/nr_hugepages
if command -v sudo &> /dev/null;
then
	CATEGORY="mlock" run_test sudo -u nobody ./on-fault-limit
else
	echo "# SKIP ./on-fault-limit"
fi
if $RUN_DESTRUCTIVE; then
echo 8 > /proc/sys/vm/nr_hugepages
CATEGORY="hugetlb" run_test ./hugetlb-soft-offline
fi
if [ $VADDR64 -ne 0 ]; then
	prev_policy=$(cat /proc/sys/vm/overcommit_memory)
	echo 1 > /proc/sys/vm/overcommit_memory
	CATEGORY="hugevm" run_test ./virtual_address_range
	echo $prev_policy > /proc/sys/vm/overcommit_memory
	ARCH_ARM64="arm64"
	if [ "$ARCH" == "$ARCH_ARM64" ]; then
		CATEGORY="hugevm" run_test ./arm64_only
	fi
	CATEGORY="hugevm" run_test bash ./va_high_addr_switch.sh
fi
CATEGORY="thp" run_test ./split_huge_page_test ${SPLIT_HUGE_PAGE_TEST_XFS_PATH}
'''


def _cases(**kw):
    return {c.name: c for c in derive_cases(SCRIPT, **kw)}


def test_totals_parsed_from_the_last_line():
    assert parse_totals(TOTALS_TEXT) == {'pass': 1, 'fail': 1, 'xfail': 0, 'xpass': 0, 'skip': 1, 'error': 0}
    two = TOTALS_TEXT + '# Totals: pass:7 fail:0 xfail:0 xpass:0 skip:0 error:2\n'
    assert parse_totals(two)['pass'] == 7 and parse_totals(two)['error'] == 2
    assert parse_totals('ok 1 x\n# Totals: pass:1 fail:0\n') is None     # truncated: not a totals line
    assert parse_totals('') is None


@pytest.mark.parametrize('status,kind', [(0, PASS), (4, SKIP), (1, FAIL), (2, FAIL), (-11, SIGNAL)])
def test_exit_status_kinds(status, kind):
    o = classify(status, TOTALS_TEXT, '')
    assert o.kind == kind and o.totals['fail'] == 1


def test_faultlab_reports_classified():
    sig = classify(128 + 7, 'ok 1 x\n', 'faultlab: prog[1] SIGBUS (BUS_ADRERR) at rip=0x1: read\n', faultlab=True)
    assert sig.kind == SIGNAL and sig.cell() == 'SIGBUS'
    late = classify(0, '', 'faultlab: prog[1] host time limit reached: 5.0 s (--timeout)\n', faultlab=True)
    assert late.kind == TIMEOUT
    assert classify(None, 'x', '', timed_out=True).kind == TIMEOUT
    nosys = classify(1, '', 'faultlab: warning: unknown system call number 448 returns -ENOSYS\n', faultlab=True)
    assert nosys.kind == FAIL and nosys.warnings == ['unknown system call number 448 returns -ENOSYS']
    # natively, stderr lines that look like faultlab's are the program's own
    assert classify(0, '', 'faultlab: warning: x\n').warnings == []


def _o(kind, p=None, f=0, s=0, output='', status=None):
    totals = None if p is None else {'pass': p, 'fail': f, 'xfail': 0, 'xpass': 0, 'skip': s, 'error': 0}
    return Outcome(kind, status, totals, output)


def test_worse_than_native():
    assert worse(_o(FAIL, 2, 1), _o(PASS, 3))
    assert worse(_o(SKIP, 0, 0, 1), _o(PASS, 1))
    assert worse(_o(PASS, 3, 0, 1), _o(PASS, 4))                  # same exit, fewer passes
    assert worse(_o(FAIL, 4, 1), _o(FAIL, 4, 0))                   # same passes, a new failure
    assert worse(_o(TIMEOUT), _o(FAIL, 0, 3))
    assert worse(_o(SIGNAL), _o(PASS))
    assert not worse(_o(PASS, 3), _o(PASS, 3))
    assert not worse(_o(PASS, 4), _o(FAIL, 2, 2))                  # better
    assert not worse(_o(SKIP), _o(FAIL))
    assert not worse(_o(FAIL, 1, 1), _o(FAIL, 1, 1))
    assert not worse(_o(NOTBUILT), _o(NOTBUILT))
    assert worse(_o(NOTRUN), _o(PASS)) and not worse(_o(NOTRUN), _o(SKIP))


def test_reason_names_syscall_and_new_failure():
    native = _o(FAIL, 1, 1, output='ok 1 a\nnot ok 2 old\n')
    fl = classify(1, 'not ok 1 a\nnot ok 2 old\n', 'faultlab: warning: unknown system call number 448 '
                  'returns -ENOSYS\n', faultlab=True)
    why = reason(fl, native, {448: 'process_mrelease'})
    assert '448 (process_mrelease)' in why and 'not ok a' in why and 'old' not in why
    skipped = _o(PASS, 0, 0, 1, output='ok 1 thing # SKIP no pkeys\n', status=0)
    assert reason(skipped, _o(PASS, 1, output='ok 1 thing\n')) == 'ok thing # SKIP no pkeys'
    bail = _o(FAIL, output='x\nBail out! Unable to set mlock limit\n', status=1)
    assert reason(bail, _o(PASS)) == 'Bail out! Unable to set mlock limit'
    assert 'last line: y' in reason(_o(FAIL, output='x\ny\n', status=3), _o(PASS))


def test_cases_derived_from_script():
    cases = _cases(nr_cpus=2)
    names = list(cases)
    assert names == ['hugepage-mmap', 'one_page', 'gup_test -u', 'uffd-stress hugetlb 128 32',
                     'sudo -u nobody ./on-fault-limit', 'virtual_address_range', 'va_high_addr_switch.sh',
                     'split_huge_page_test']
    assert cases['hugepage-mmap'].hugepages == 128          # 256 MiB of 2 MiB pages
    assert cases['one_page'].hugepages == 1
    assert cases['gup_test -u'].hugepages == 128            # restored from nr_hugepages_tmp
    assert cases['sudo -u nobody ./on-fault-limit'].hugepages == 0     # the cleanup restores the start
    assert cases['sudo -u nobody ./on-fault-limit'].user == 'nobody'
    assert cases['sudo -u nobody ./on-fault-limit'].program == 'on-fault-limit'
    v = dict(cases['virtual_address_range'].sysctls)
    assert v['vm/overcommit_memory'] == '1' and 'vm/drop_caches' not in v
    assert 'vm/overcommit_memory' not in dict(cases['va_high_addr_switch.sh'].sysctls)   # put back
    va = cases['va_high_addr_switch.sh']
    assert va.script and va.program == 'va_high_addr_switch.sh' and va.args == ()
    assert cases['uffd-stress hugetlb 128 32'].args == ('hugetlb', '128', '32')


def test_cases_follow_the_machine():
    # many CPUs: the userfaultfd minimum (2 huge pages per CPU) exceeds 256 MiB
    cases = _cases(nr_cpus=128)
    assert cases['hugepage-mmap'].hugepages == 256
    assert 'uffd-stress hugetlb 256 32' in cases
    # a machine that already has huge pages: the script tops them up to what it needs, restores them after
    cases = _cases(nr_cpus=1, hugepages=16)
    assert cases['hugepage-mmap'].hugepages == 128 and cases['sudo -u nobody ./on-fault-limit'].hugepages == 16


def test_expected_cases():
    assert expected('gup_test -u') and expected('ksm_tests -N -m 1')
    assert expected('uffd-stress anon 20 16') is None and expected('hugepage-mremap') is None
    assert expected('khugepaged -s 2') is None and expected('test_hmm.sh smoke')
    assert expected('mremap_test') is None and expected('memfd_secret') is None and expected('hugepage-mmap') is None
    assert expected('cow') is None and expected('pagemap_ioctl') is None and expected('ksm_functional_tests') is None
    assert all(why for _, why in EXPECTED)


def test_table_and_worse_list():
    cases = [Case('a', ('./ok',)), Case('b', ('./bad',)), Case('c', ('./gup_test', '-u'))]
    res = {(0, 'static'): (_o(PASS, 2), _o(PASS, 2)),
           (1, 'static'): (_o(PASS, 2, output='ok 1 x\n'), _o(FAIL, 1, 1, output='not ok 1 x\n', status=1)),
           (2, 'static'): (_o(PASS, 1), _o(FAIL, 0, 1, status=1))}
    table = format_table(cases, ['static'], res).splitlines()
    assert table[0].split() == ['case', 'static', 'native', 'static', 'faultlab']
    assert table[2].split() == ['ok', 'pass', '2/0/0', 'pass', '2/0/0']
    assert table[3].endswith('fail 1/1/0 *') and table[4].endswith('fail 0/1/0 ~')
    bad = worse_cases(cases, ['static'], res)
    assert [(c.name, why, exp is not None) for _, c, why, exp in bad] == [
        ('bad', 'not ok x', False), ('gup_test -u', 'exit 1; last line: (no output)', True)]


def test_faultlab_command_line():
    argv = faultlab_argv(Case('hugetlb', ('./map_hugetlb', '-s', '4'), (('vm/nr_hugepages', '3'),)), '/b', 30)
    i = argv.index('run')
    assert argv[i + 1:] == ['--no-progress', '--timeout', '30', '--ram', str((256 << 20) + 3 * (2 << 20)),
                            '--hugepages', '3', '--mount', '/b:/selftests', '/b/map_hugetlb', '-s', '4']


def test_native_run_of_a_kselftest_like_program(tmp_path):
    src = tmp_path / 'k.c'
    src.write_text('#include <stdio.h>\nint main(int c, char **v) { printf("ok 1 x\\n# Totals: pass:1 '
                   'fail:0 xfail:0 xpass:0 skip:%d error:0\\n", c - 1); return c > 1 ? 4 : 0; }\n')
    subprocess.run(['gcc', '-o', str(tmp_path / 'k'), str(src)], check=True)
    o = run_native(Case('x', ('./k', 'arg')), str(tmp_path), 30, sysctl=False)
    assert o.kind == SKIP and o.totals['skip'] == 1
    assert run_native(Case('x', ('./k',)), str(tmp_path), 30, sysctl=False).kind == PASS
    assert run_native(Case('x', ('./missing',)), str(tmp_path), 30, sysctl=False).kind == NOTBUILT
    (tmp_path / 'sleep.sh').write_text('sleep 20\n')
    os.chmod(tmp_path / 'sleep.sh', 0o755)
    assert run_native(Case('x', ('bash', './sleep.sh'), script=True), str(tmp_path), 0.5,
                      sysctl=False).kind == TIMEOUT


def test_transhuge_stress_runs_bounded_under_faultlab():
    """transhuge-stress -d 20 runs with -d 2 under faultlab (BOUNDED_ARGS) and its own time limit; the
    native run keeps run_vmtests.sh's arguments; other cases keep theirs."""
    from faultlab.selftests.cases import Case
    from faultlab.selftests.runner import CASE_TIME_LIMIT, faultlab_argv
    case = Case('thp', ('./transhuge-stress', '-d', '20'))
    argv = faultlab_argv(case, '/tmp/bin', 120)
    assert argv[-3:] == ['/tmp/bin/transhuge-stress', '-d', '2'] and case.args == ('-d', '20')
    assert argv[argv.index('--timeout') + 1] == '%g' % CASE_TIME_LIMIT['transhuge-stress']
    other = Case('mm', ('./mremap_test', '-d', '20'))
    assert faultlab_argv(other, '/tmp/bin', 120)[-2:] == ['-d', '20']
