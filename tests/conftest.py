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
              costs=None, disk=None, swap_bytes=64 << 20, cpus=1, spf=True, spf_file=False):
    """Run a program in-process under faultlab, capturing its stdout/stderr."""
    from emu.cycles import CostTable
    from emu.machine import Machine
    from kernel.kernel import KernelConfig
    out, err, warnings = [], [], []
    config = KernelConfig(mounts=list(mounts), stdout=out.append, stderr=err.append, warn=warnings.append,
                          fault_around_bytes=fault_around_bytes, swap_bytes=swap_bytes, cpus=cpus, spf=spf,
                          spf_file=spf_file, **({'disk': disk} if disk else {}))
    m = Machine(ram=ram, costs=costs or CostTable(), config=config)
    argv = [os.path.basename(program)] + list(args)
    res = m.run(program, argv, ['PATH=/bin', 'LANG=C'] + list(env), max_insns=max_insns)
    return GuestRun(res, b''.join(out), b''.join(err), warnings, m)


def run_native(program, args=(), env=(), cwd=None):
    e = {'PATH': '/bin', 'LANG': 'C'}
    e.update(kv.split('=', 1) for kv in env)
    p = subprocess.run([program] + list(args), capture_output=True, env=e, cwd=cwd, timeout=120)
    return p.returncode, p.stdout, p.stderr
