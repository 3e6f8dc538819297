"""--timeout holds: a run stops within a bounded margin of its host-time limit whatever keeps it busy (user
code, faults with reclaim and swap, one long system call, --check's verifications), with status 124 and a
line saying why. The limit counts from the start of the faultlab process."""
import errno
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_guest
from faultlab.kernel.debug.check import TrapChecker
from faultlab.kernel.hostlimit import raise_host_limit, clear_host_limit
from faultlab.kernel.mm.madvise import do_madvise, MADV_PAGEOUT, MADV_POPULATE_WRITE
from faultlab.kernel.mm.mmap import do_mmap, MAP_PRIVATE, MAP_ANONYMOUS
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT
from test_mm_unit import Env, PROT_RW

LIMIT = 3.0           # seconds given to --timeout
MARGIN = 2.0          # the run must end within LIMIT + MARGIN seconds of host wall time


def timed_run(userland, *args, limit=LIMIT):
    """Run `faultlab run --timeout LIMIT ARGS` in a fresh process: (elapsed wall seconds, process)."""
    cmd = [sys.executable, '-m', 'faultlab.cli', 'run', '--timeout', str(limit)] + [
        os.path.join(userland, a) if a in ('timehog', 'hello') else a for a in args]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, cwd=ROOT, timeout=LIMIT + 60)
    except subprocess.TimeoutExpired:
        pytest.fail('faultlab %s did not stop within %d s of a %.0f s --timeout' % (' '.join(args), 60, LIMIT))
    return time.monotonic() - t0, p


CASES = [
    ('spin', ['timehog', 'spin']),
    ('touch-check', ['--check', 'timehog', 'touch', '64']),
    ('touch-check-all', ['--check-all', '--ram', '256M', 'timehog', 'fork', '160']),
    ('swap-1G', ['--ram', '1G', '--swap', '1G', 'timehog', 'touch', '1500']),
    ('populate-1G', ['--ram', '1G', '--swap', '1G', 'timehog', 'populate', '1500']),
    ('pageout-1G', ['--ram', '1G', '--swap', '1G', 'timehog', 'pageout', '900']),
]


@pytest.mark.parametrize('args', [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_timeout_stops_the_run_in_time(userland, args):
    elapsed, p = timed_run(userland, *args)
    err = p.stderr.decode()
    assert p.returncode == 124, err
    assert 'host time limit reached: %.1f s (--timeout)' % LIMIT in err
    assert 'internal error' not in err and 'Traceback' not in err
    assert elapsed <= LIMIT + MARGIN, 'stopped after %.2f s for a %.1f s limit' % (elapsed, LIMIT)


def test_a_run_that_ends_first_is_not_cut(userland):
    """hello ends long before the limit (generous: the start-up of a loaded host counts towards it)."""
    elapsed, p = timed_run(userland, 'hello', 'x', limit=30.0)
    assert p.returncode == 0 and p.stdout.startswith(b'hello, world')
    assert elapsed < 30.0


# ---- the kernel's side: long operations give up once the limit has passed (a fatal signal pending) ----

@pytest.fixture
def host_limit_passed():
    """The watchdog's flag raised for the duration of a test."""
    raise_host_limit()
    yield
    clear_host_limit()


def _present(e, addr, n):
    return sum(1 for i in range(n) if e.pte(addr + i * 4096) & _PAGE_PRESENT)


def test_populate_is_interrupted(host_limit_passed):
    e = Env()
    addr = do_mmap(e.mm, 0, 64 << 12, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    assert do_madvise(e.mm, addr, 64 << 12, MADV_POPULATE_WRITE) == -errno.EINTR
    assert _present(e, addr, 64) == 0
    clear_host_limit()
    assert do_madvise(e.mm, addr, 64 << 12, MADV_POPULATE_WRITE) == 0
    assert _present(e, addr, 64) == 64


def test_pageout_is_interrupted(host_limit_passed):
    e = Env()
    addr = do_mmap(e.mm, 0, 64 << 12, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    clear_host_limit()
    assert do_madvise(e.mm, addr, 64 << 12, MADV_POPULATE_WRITE) == 0
    raise_host_limit()
    assert do_madvise(e.mm, addr, 64 << 12, MADV_PAGEOUT) == -errno.EINTR
    assert _present(e, addr, 64) == 64
    clear_host_limit()
    assert do_madvise(e.mm, addr, 64 << 12, MADV_PAGEOUT) == 0
    assert _present(e, addr, 64) == 0


def test_check_gives_up_without_a_verdict(userland):
    # a live process with 96 MiB mapped: one full verification takes a measurable time
    r = run_guest(os.path.join(userland, 'timehog'), ['touch', '96'], ram=256 << 20, check=False,
                  max_insns=150_000)
    chk = TrapChecker(r.machine.kernel)
    t0 = time.perf_counter()
    assert chk.check(('end',)) is None
    full = time.perf_counter() - t0
    checks = chk.checks
    raise_host_limit()
    try:
        t0 = time.perf_counter()
        assert chk.check(('end',)) is None
        interrupted = time.perf_counter() - t0
    finally:
        clear_host_limit()
    assert chk.checks == checks                  # an interrupted check is not counted as one that passed
    assert interrupted < full / 10, 'a check with the limit passed took %.3f s (a full one %.3f s)' % (
        interrupted, full)
