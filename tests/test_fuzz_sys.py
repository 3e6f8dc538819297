"""Syscall fuzz: userland/src/sysfuzz.c issues random system calls with random arguments from a seed.

The emulator must never raise (a Python exception in a handler is a KernelOops that fails the run),
every call must return a Linux errno or succeed, and the guest's memory that no call was pointed at
must keep its checksum.
"""
import os
import re

import pytest

from conftest import run_guest


def run_sysfuzz(userland, seed, calls):
    r = run_guest(os.path.join(userland, 'sysfuzz'), [str(seed), str(calls)], ram=64 << 20)
    out = r.stdout.decode(errors='replace')
    assert r.result.report is None, r.result.report
    assert 'Traceback' not in out and not any('internal error' in w for w in r.warnings)
    assert 'bad return' not in out, out
    assert 'CORRUPT' not in out, out
    for region in ('text', 'ro_page', 'bss', 'heap', 'stack'):
        assert 'region %s: ok' % region in out
    m = re.search(r'calls=(\d+) skipped=\d+ ok=(\d+) bad=0', out)
    assert m and int(m.group(1)) == calls
    assert r.exit_code == 0 and out.rstrip().endswith('sysfuzz done')
    assert r.stats['syscalls'] >= calls
    return out


@pytest.mark.parametrize('seed', [1, 2])
def test_random_syscalls_get_errnos_and_leave_memory_intact(userland, seed):
    out = run_sysfuzz(userland, seed, 1500)
    errnos = dict((int(e), int(n)) for e, n in re.findall(r'errno (\d+): (\d+)', out))
    # the mix really exercises the error paths: bad addresses, bad fds, bad arguments, unknown calls
    for e in (14, 9, 22, 38):
        assert errnos.get(e, 0) > 5, errnos
    assert int(re.search(r'ok=(\d+)', out).group(1)) > 100


@pytest.mark.slow
@pytest.mark.parametrize('seed', range(1, 21))
def test_random_syscalls_long(userland, seed):
    """The long run: 20 seeds x 5000 calls = 100,000 random system calls."""
    run_sysfuzz(userland, seed, 5000)
