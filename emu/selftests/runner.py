"""`faultlab selftests`: the Linux 6.12 mm selftests (tools/testing/selftests/mm), each case of
run_vmtests.sh run natively and under faultlab, static and dynamic builds side by side.

The source comes from the distribution's linux-source-6.12 package into a cache directory
(emu/selftests/source.py), the case list from that tree's run_vmtests.sh (emu/selftests/cases.py),
outcomes and the worse-than comparison from emu/selftests/result.py. The exit status is 1 when faultlab
does worse than native on a case outside EXPECTED (what faultlab does not model, or models later).
"""
import argparse
import os
import pwd
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from faultlab.srctree import SOURCE_ROOT, cli_command
from faultlab.selftests.cases import derive_cases
from faultlab.selftests.result import NOTBUILT, NOTRUN, TIMEOUT, Outcome, classify, reason, worse
from faultlab.selftests.source import (FLAVOURS, SourceError, build, build_dir, ensure_source, mm_dir,
                                  syscall_names)

ROOT = SOURCE_ROOT
DEFAULT_CACHE = os.path.join(ROOT, '.cache', 'selftests')
DEFAULT_TIME_LIMIT = 120.0
GUEST_DIR = '/selftests'
BASE_RAM = 256 << 20
# RAM beyond BASE_RAM for cases whose page tables alone need it: virtual_address_range maps 128 TiB
# in 1 GiB chunks and touches a page of each (512 MiB of PTE tables; the host has 23 GiB)
# mremap_test maps 2 GiB shared regions, which the heuristic overcommit refuses beyond RAM + swap
# (__vm_enough_memory, OVERCOMMIT_GUESS) as Linux would on a 256 MiB machine;
# compaction_test sizes itself to the machine: it mlocks 80% of MemFree in 100 MB chunks (rounded up:
# 300 MB of a 256 MiB machine, an OOM kill on Linux too)
# khugepaged's collapse_compound_extreme leaves one 4 KiB page of each of 512 huge pages mapped: each
# keeps its 2 MiB block from the next huge page allocation unless compaction moves it (mm/compaction.c,
# which faultlab does not model), so it needs 1 GiB of blocks
CASE_RAM = {'virtual_address_range': 2 << 30, 'mremap_test': 3 << 30, 'compaction_test': 1 << 30,
            'khugepaged': 1536 << 20}
# Cases that run shell commands (popen, system: /bin/sh -c "cat ... | grep ..."): they see the host's
# /usr/bin read-only at /usr/bin and /bin. The guest's default view stays minimal (the program, the
# library view of dynamic programs and what --mount adds), unlike QEMU's user mode, which shows the
# whole host: a shell and its tools are given only to the cases that need them.
SHELL_CASES = ('compaction_test', 'thuge-gen')
# Cases that open their own program through argv[0] (pagemap_ioctl maps itself): natively argv[0] is
# ./NAME in the build directory; the guest's argv[0] is NAME with / as its working directory, so the
# program is mounted there too
ARGV0_CASES = ('pagemap_ioctl',)
HOST_TOOLS = '/usr/bin'
# A script case (bash ./x.sh, as run_vmtests.sh runs it) runs the host's bash in the guest, in the
# build directory, with the host's tools as SHELL_CASES have them.
SCRIPT_SHELL = '/bin/bash'
# Host time limits above --time-limit for the cases whose faultlab run is long in host time:
# - charge_reserved_hugetlb.sh starts over a thousand programs (bash, mount, cat, tee, killall, ... for its
#   28 tests), each dynamically linked one a few hundred thousand instructions through ld.so and libc
#   (natively 55 s; under faultlab 400-850 s on 2 busy CPUs);
# - ksm_functional_tests busy-polls /sys/kernel/mm/ksm/full_scans while ksmd scans 100 pages every 20 ms
#   of simulated time: seconds of simulated time, millions of reads (576 s on a busy host);
# - pagemap_ioctl and soft-dirty take hundreds of thousands of write faults and clear_refs writes
#   (60-120 s, near the default limit on a busy host);
# - uffd-unit-tests executes over 4 billion guest instructions (its 66 tests, each with a handler thread),
#   past 120 s on a busy host.
CASE_TIME_LIMIT = {'charge_reserved_hugetlb.sh': 1800.0, 'ksm_functional_tests': 1500.0, 'pagemap_ioctl': 600.0,
                   'soft-dirty': 600.0, 'uffd-unit-tests': 600.0, 'transhuge-stress': 600.0}
# Time-bounded cases run for less simulated time under faultlab: transhuge-stress -d 20 loops over all
# of RAM allocating and splitting huge pages for 20 s (natively one loop over this host's 24 GiB takes
# longer than that); faultlab's 256 MiB take 0.014 s of simulated time a loop and about 1.6 s of host
# time, so 20 s would be some 1,400 loops and 40 minutes of host time. -d 2 runs the same loop about 140
# times and reports the same result.
BOUNDED_ARGS = {'transhuge-stress': (('-d', '2'),)}
HUGEPAGE = 2 << 20
NOBODY = 65534

# Cases that need what faultlab does not model (kernel modules, NUMA, debugfs test interfaces) or
# that wait for work named as pending: faultlab doing worse there does not fail the run.
EXPECTED = (
    (r'^gup_test\b', 'debugfs /sys/kernel/debug/gup_test (CONFIG_GUP_TEST test interface)'),
    (r'^test_vmalloc\.sh\b', 'loads the test_vmalloc kernel module'),
    (r'^test_hmm\.sh\b', 'loads the test_hmm kernel module'),
    (r'^ksm_tests -N\b', 'needs two real NUMA nodes'),
    (r'^migration$', 'move_pages(2) between real NUMA nodes'),
)


def expected(case_name):
    """Why faultlab may do worse on this case, or None."""
    for pattern, why in EXPECTED:
        if re.search(pattern, case_name):
            return why
    return None


class Sysctls:
    """The sysctls run_vmtests.sh sets around a case, applied to this host for the native run and put
    back afterwards (one such run at a time). Only as root, and only when enabled."""
    _lock = threading.Lock()

    def __init__(self, settings, enabled):
        self.settings = [(k, v) for k, v in settings if enabled and os.geteuid() == 0]
        self.saved = []

    def __enter__(self):
        if self.settings:
            self._lock.acquire()
            for key, value in self.settings:
                path = '/proc/sys/' + key
                try:
                    with open(path) as f:
                        old = f.read().strip()
                    if old != value:
                        with open(path, 'w') as f:
                            f.write(value + '\n')
                        self.saved.append((path, old))
                except OSError:
                    pass
        return self

    def __exit__(self, *exc):
        for path, old in reversed(self.saved):
            try:
                with open(path, 'w') as f:
                    f.write(old + '\n')
            except OSError:
                pass
        if self.settings:
            self._lock.release()


def _execute(argv, cwd, limit, preexec=None):
    """Run argv with a time limit; (status, stdout, stderr, timed_out, seconds). The whole process
    group is killed at the limit."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True, preexec_fn=preexec)
    try:
        out, err = p.communicate(timeout=limit)
        timed_out = False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, 9)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        timed_out = True
    return (p.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace'), timed_out,
            time.monotonic() - t0)


def user_ids(name):
    """(uid, gid, groups) that `sudo -u NAME` runs with: the host's passwd entry and initgroups'
    group list; nobody's ids when the host does not know the name."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return NOBODY, NOBODY, [NOBODY]
    return pw.pw_uid, pw.pw_gid, sorted(set(os.getgrouplist(name, pw.pw_gid)))


def _as_user(name):
    """A preexec function switching to the user as sudo -u does (only as root; None otherwise)."""
    if not name or os.geteuid() != 0:
        return None
    uid, gid, groups = user_ids(name)

    def drop():
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    return drop


def run_native(case, bindir, limit, sysctl=True):
    """The case on this host, as run_vmtests.sh runs it (in the build directory, its sysctls set)."""
    if not os.path.exists(os.path.join(bindir, case.program)):
        return Outcome(NOTBUILT)
    argv = (['bash'] if case.script else []) + ['./' + case.program] + list(case.args)
    with Sysctls(case.sysctls, sysctl):
        st, out, err, timed_out, secs = _execute(argv, bindir, case_time_limit(case, limit), _as_user(case.user))
    return classify(st, out, err, timed_out, secs)


def faultlab_argv(case, bindir, limit, tree=ROOT):
    """The `faultlab run` command line for a case: the hugetlb pool it runs with as --hugepages and
    RAM to hold it (more for CASE_RAM), the host's tools for SHELL_CASES and scripts, the other
    sysctls run_vmtests.sh sets as --sysctl, `sudo -u USER` as --user with that user's ids, the build
    directory mounted at /selftests; a script runs in the host's bash from there."""
    hp = case.hugepages
    limit = case_time_limit(case, limit)
    argv = cli_command(tree) + ['run', '--no-progress', '--timeout', '%g' % limit,
            '--ram', str(CASE_RAM.get(case.program, BASE_RAM) + hp * HUGEPAGE), '--hugepages', str(hp)]
    if case.program in SHELL_CASES or case.script:
        argv += ['--mount', '%s:/usr/bin' % HOST_TOOLS, '--mount', '%s:/bin' % HOST_TOOLS]
    for key, value in case.sysctls:
        if key != 'vm/nr_hugepages':
            argv += ['--sysctl', '%s=%s' % (key.replace('/', '.'), value)]
    if case.user:
        uid, gid, groups = user_ids(case.user)
        argv += ['--user', '%d:%s' % (uid, ','.join(str(g) for g in [gid] + [g for g in groups if g != gid]))]
    if case.program in ARGV0_CASES:
        argv += ['--mount', '%s:/%s' % (os.path.join(bindir, case.program), case.program)]
    argv += ['--mount', '%s:%s' % (bindir, GUEST_DIR)]
    if case.script:
        return argv + [SCRIPT_SHELL, '-c', 'cd %s && exec bash ./%s "$@"' % (GUEST_DIR, case.program),
                       case.program] + list(case.args)
    return argv + [os.path.join(bindir, case.program)] + bounded_args(case)


def bounded_args(case):
    """The case's arguments, with BOUNDED_ARGS' options given their bounded values for faultlab's run."""
    args = list(case.args)
    for opt, value in BOUNDED_ARGS.get(case.program, ()):
        if opt in args[:-1]:
            args[args.index(opt) + 1] = value
    return args


def case_time_limit(case, limit):
    """The host time limit of a case's runs: --time-limit, or more for CASE_TIME_LIMIT's cases."""
    return max(limit, CASE_TIME_LIMIT.get(case.program, 0.0))


def run_faultlab(case, bindir, limit, tree=ROOT):
    """The case under faultlab (a script case: the host's bash running it in the guest); tree is the
    faultlab checkout that runs it."""
    if not os.path.exists(os.path.join(bindir, case.program)):
        return Outcome(NOTBUILT)
    st, out, err, timed_out, secs = _execute(faultlab_argv(case, bindir, limit, tree), tree,
                                             case_time_limit(case, limit) + 60)
    return classify(st, out, err, timed_out, secs, faultlab=True)


def _slug(case):
    return re.sub(r'[^\w.-]+', '_', case.name).strip('_')


def _write_log(logdir, flavour, case, who, o):
    os.makedirs(os.path.join(logdir, flavour), exist_ok=True)
    with open(os.path.join(logdir, flavour, '%s.%s.log' % (_slug(case), who)), 'w') as f:
        f.write('# %s %s (%s): %s status=%s %.1fs %s\n' % (who, case.name, flavour, o.kind, o.status, o.seconds,
                                                           o.detail))
        f.write(o.output)


def run_all(cases, bindirs, limit, jobs, logdir, sysctl=True, progress=None, tree=ROOT):
    """{(case index, flavour): (native Outcome, faultlab Outcome)} for every case and flavour."""
    tasks = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for i, case in enumerate(cases):
            for flavour, bindir in bindirs.items():
                tasks[(i, flavour, 'faultlab')] = pool.submit(run_faultlab, case, bindir, limit, tree)
                tasks[(i, flavour, 'native')] = pool.submit(run_native, case, bindir, limit, sysctl)
        results = {}
        for (i, flavour, who), fut in tasks.items():
            o = fut.result()
            if logdir and o.kind not in (NOTBUILT, NOTRUN):
                _write_log(logdir, flavour, cases[i], who, o)
            results.setdefault((i, flavour), {})[who] = o
            if progress and len(results[(i, flavour)]) == 2:
                progress(cases[i], flavour, results[(i, flavour)])
    return {k: (v['native'], v['faultlab']) for k, v in results.items()}


def format_table(cases, flavours, results):
    """The side-by-side table; a cell is `kind pass/fail/skip` (fail counts errors too); `*` marks
    faultlab doing worse than native, `~` doing worse on an expected case."""
    head = ['case']
    for fl in flavours:
        head += ['%s native' % fl, '%s faultlab' % fl]
    rows = [head]
    for i, case in enumerate(cases):
        row = [case.name]
        for fl in flavours:
            n, f = results[(i, fl)]
            mark = ''
            if worse(f, n):
                mark = ' ~' if expected(case.name) else ' *'
            row += [n.cell(), f.cell() + mark]
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    lines = ['  '.join(r[c].ljust(widths[c]) for c in range(len(head))).rstrip() for r in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def worse_cases(cases, flavours, results, names=None):
    """[(flavour, case, reason, why expected or None)] for every case where faultlab did worse."""
    out = []
    for i, case in enumerate(cases):
        for fl in flavours:
            n, f = results[(i, fl)]
            if worse(f, n):
                out.append((fl, case, reason(f, n, names), expected(case.name)))
    return out


def summary(flavours, results):
    lines = []
    for fl in flavours:
        for who, k in (('native', 0), ('faultlab', 1)):
            kinds = {}
            for (i, f), pair in results.items():
                if f == fl:
                    kinds[pair[k].kind] = kinds.get(pair[k].kind, 0) + 1
            lines.append('%-8s %-9s %s' % (fl, who, ', '.join('%s %d' % kv for kv in sorted(kinds.items()))))
    return '\n'.join(lines)


def add_selftests_parser(sub):
    p = sub.add_parser('selftests', help='run the Linux 6.12 mm selftests natively and under faultlab '
                       '(fetches linux-source-6.12 into a cache directory)')
    p.add_argument('--cache', default=DEFAULT_CACHE, metavar='DIR',
                   help='where the source, builds and logs go (default .cache/selftests)')
    p.add_argument('--filter', action='append', default=[], metavar='REGEX',
                   help='only cases whose name or category matches (repeatable)')
    p.add_argument('-j', '--jobs', type=int, default=2, help='runs at a time (default 2)')
    p.add_argument('--time-limit', type=float, default=DEFAULT_TIME_LIMIT, metavar='SECONDS',
                   help='host time limit of each run (default %g)' % DEFAULT_TIME_LIMIT)
    p.add_argument('--flavour', action='append', choices=FLAVOURS, default=None,
                   help='static and/or dynamic builds (default both)')
    p.add_argument('--no-build', action='store_true', help='use the programs already built in the cache')
    p.add_argument('--native-sysctl', action=argparse.BooleanOptionalAction, default=True,
                   help='as root, set the sysctls run_vmtests.sh sets (nr_hugepages, ...) around each '
                        'native run and restore them (default on)')
    p.add_argument('--faultlab-tree', default=ROOT, metavar='DIR',
                   help='the faultlab checkout that runs the guests (default: this one; e.g. a '
                        '`git archive HEAD` copy to test a commit)')
    p.add_argument('--list', action='store_true', help='print the cases derived from run_vmtests.sh and exit')
    return p


def cmd_selftests(a):
    cache = os.path.abspath(a.cache)
    flavours = a.flavour or list(FLAVOURS)
    if a.jobs < 1 or a.time_limit <= 0:
        print('faultlab selftests: --jobs and --time-limit must be positive', file=sys.stderr)
        return 2
    try:
        filters = [re.compile(f) for f in a.filter]
    except re.error as e:
        print('faultlab selftests: bad --filter: %s' % e, file=sys.stderr)
        return 2
    os.makedirs(cache, exist_ok=True)
    log = os.path.join(cache, 'build.log')
    try:
        ensure_source(cache, log)
    except (SourceError, OSError) as e:
        print('faultlab selftests: %s' % e, file=sys.stderr)
        return 1
    with open(os.path.join(mm_dir(cache), 'run_vmtests.sh')) as f:
        cases = derive_cases(f.read())
    cases = [c for c in cases if not filters or any(r.search(c.name) or r.search(c.category) for r in filters)]
    if a.list:
        for c in cases:
            print('%-16s %-40s %s' % (c.category, c.name, ' '.join('%s=%s' % kv for kv in c.sysctls)))
        return 0
    bindirs = {}
    for fl in flavours:
        if not a.no_build:
            print('building the %s selftests (log: %s)' % (fl, log), file=sys.stderr)
            build(cache, fl, a.jobs, log)
        bindirs[fl] = build_dir(cache, fl)

    def progress(case, flavour, pair):
        print('  %-8s %-40s native %-14s faultlab %s' % (flavour, case.name, pair['native'].cell(),
                                                         pair['faultlab'].cell()), file=sys.stderr)
    results = run_all(cases, bindirs, a.time_limit, a.jobs, os.path.join(cache, 'logs'), a.native_sysctl,
                      progress, os.path.abspath(a.faultlab_tree))
    print(format_table(cases, flavours, results))
    print()
    print(summary(flavours, results))
    bad = worse_cases(cases, flavours, results, syscall_names(cache))
    print()
    print('faultlab worse than native (%d; %d expected):' % (len(bad), sum(1 for b in bad if b[3])))
    for fl, case, why, exp in bad:
        print('  %s [%s] %s: %s' % ('~' if exp else '*', fl, case.name, why))
        if exp:
            print('      expected: %s' % exp)
    unexplained = [b for b in bad if not b[3]]
    print('logs: %s' % os.path.join(cache, 'logs'))
    if any(o.kind == TIMEOUT for pair in results.values() for o in pair):
        print('(time limit per run: %gs)' % a.time_limit)
    return 1 if unexplained else 0
