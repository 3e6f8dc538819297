"""Shared fixtures: the userland programs (built once) and running them natively and under faultlab."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, 'userland', 'build')
DATA = os.path.join(BUILD, 'data')


@pytest.fixture(scope='session')
def userland():
    """Build userland/ (make is incremental) and return the build directory."""
    subprocess.run(['make', '-s', '-C', os.path.join(ROOT, 'userland')], check=True)
    return BUILD


class GuestRun:
    """The outcome of one run under faultlab."""

    def __init__(self, result, stdout, stderr, warnings, machine):
        self.result = result
        self.exit_code = result.exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.warnings = warnings
        self.stats = result.stats
        self.machine = machine


def run_guest(program, args=(), mounts=(), env=(), ram=64 << 20, max_insns=None, fault_around_bytes=65536,
              costs=None, disk=None, swap_bytes=64 << 20, cpus=1, spf=True, spf_file=False, check=None,
              native_faults=True):
    """Run a program in-process under faultlab, capturing its stdout/stderr."""
    from faultlab.core.cycles import CostTable
    from faultlab.machine import Machine
    from faultlab.kernel.kernel import KernelConfig
    out, err, warnings = [], [], []
    config = KernelConfig(mounts=list(mounts), stdout=out.append, stderr=err.append, warn=warnings.append,
                          fault_around_bytes=fault_around_bytes, swap_bytes=swap_bytes, cpus=cpus, spf=spf,
                          spf_file=spf_file, check=CHECK if check is None else check, native_faults=native_faults,
                          **({'disk': disk} if disk else {}))
    m = Machine(ram=ram, costs=costs or CostTable(), config=config)
    argv = [os.path.basename(program)] + list(args)
    res = m.run(program, argv, ['PATH=/bin', 'LANG=C'] + list(env), max_insns=max_insns)
    assert_no_violation(m)
    return GuestRun(res, b''.join(out), b''.join(err), warnings, m)


# FAULTLAB_CHECK=1 runs every guest of the suite with --check (mm invariants verified after traps);
# FAULTLAB_CHECK=full checks after every single fault and syscall
_CHECK_ENV = os.environ.get('FAULTLAB_CHECK', '')
CHECK = 'full' if _CHECK_ENV == 'full' else _CHECK_ENV not in ('', '0')


def assert_no_violation(machine):
    """Under FAULTLAB_CHECK, fail the test if the kernel's invariant checker found a violation
    (after a trap, or in the state the run ended in)."""
    chk = getattr(machine.kernel, 'vm_checker', None)
    if chk is None:
        return
    violation = chk.final_check()
    CHECK_TOTALS['runs'] += 1
    CHECK_TOTALS['traps'] += chk.events
    CHECK_TOTALS['checks'] += chk.checks
    if violation is not None:
        CHECK_TOTALS['violations'] += 1
        pytest.fail(violation, pytrace=False)


CHECK_TOTALS = {'runs': 0, 'traps': 0, 'checks': 0, 'violations': 0}


def pytest_terminal_summary(terminalreporter):
    if CHECK:
        terminalreporter.write_line('FAULTLAB_CHECK=%s: %d guest runs, %d traps, %d full invariant checks, '
                                    '%d violations' % (_CHECK_ENV, CHECK_TOTALS['runs'], CHECK_TOTALS['traps'],
                                                       CHECK_TOTALS['checks'], CHECK_TOTALS['violations']))


def run_native(program, args=(), env=(), cwd=None):
    e = {'PATH': '/bin', 'LANG': 'C'}
    e.update(kv.split('=', 1) for kv in env)
    p = subprocess.run([program] + list(args), capture_output=True, env=e, cwd=cwd, timeout=120)
    return p.returncode, p.stdout, p.stderr


def run_native_one_cpu(program, args):
    """Run program natively on one CPU (the lowest this process may use), as a guest on one simulated CPU
    runs; its stdout (it must exit 0)."""
    cpu = min(os.sched_getaffinity(0))
    p = subprocess.run([program] + list(args), capture_output=True, timeout=60,
                       preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def on_disk_fs(path):
    """True when the host keeps path on a disk file system (whose page cache reads ahead and writes back),
    not tmpfs, ramfs or an overlay."""
    with open('/proc/mounts') as f:
        mounts = [line.split() for line in f]
    path = os.path.realpath(path)
    best = max((m for m in mounts if path == m[1] or path.startswith(m[1].rstrip('/') + '/')),
               key=lambda m: len(m[1]))
    return best[2] not in ('tmpfs', 'ramfs', 'overlay')


def word_fields(line):
    """'pingpong 20 main 20 status 20 peer 20' -> {'pingpong': 20, 'main': 20, ...}"""
    words = line.split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}


def assert_matches_native(program, marker, cpus=1):
    """Run program natively (it must exit 0 and print marker) and under faultlab on cpus CPUs: no
    fatal report, exit 0 and the same output. Returns the guest run."""
    code, out, _ = run_native(program)
    assert code == 0 and marker in out
    r = run_guest(program, cpus=cpus)
    assert r.result.report is None, r.result.report
    assert r.exit_code == 0 and r.stdout == out
    return r
