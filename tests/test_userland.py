"""Every userland program prints the same under faultlab as natively."""
import os
import shutil
import tempfile

import pytest

from conftest import run_guest, run_native, DATA

# (program, guest args, native args, mounts as (host, guest))
CASES = [
    ('hello', ['a', 'b c'], ['a', 'b c'], []),
    ('hello-pie', ['x'], ['x'], []),
    ('mmtest', ['/tmp'], None, []),
    ('fileio', ['/tmp'], None, []),
    ('compute', [], [], []),
    ('pagetouch', ['4'], ['4'], []),
    ('pagetouch', ['4', 'r'], ['4', 'r'], []),
    ('stackgrow', [], [], []),
    ('badsys', [], [], []),
    ('codereuse', ['/tmp'], None, []),      # a freed code frame refilled by read(2): no stale blocks
    ('procstatus', [], [], []),              # /proc/self/status: Linux's fields and masks
    ('filemap', ['/data/big.bin'], [os.path.join(DATA, 'big.bin')], [(DATA, '/data')]),
    ('filemap', ['/data/small.txt'], [os.path.join(DATA, 'small.txt')], [(DATA, '/data')]),
    ('readahead', ['/data/big.bin'], [os.path.join(DATA, 'big.bin')], [(DATA, '/data')]),
]


@pytest.mark.parametrize('prog,gargs,nargs,mounts', CASES, ids=['%s %s' % (c[0], ' '.join(c[1])) for c in CASES])
def test_same_output_as_native(userland, prog, gargs, nargs, mounts):
    path = os.path.join(userland, prog)
    tmp = None
    if nargs is None:                       # the program works in a scratch directory
        tmp = tempfile.mkdtemp()
        nargs = [tmp]
    try:
        code, nout, _ = run_native(path, nargs, env=['FAULTLAB_TEST=1'])
    finally:
        if tmp:
            shutil.rmtree(tmp)
    g = run_guest(path, gargs, mounts=[(h, gp, True) for h, gp in mounts], env=['FAULTLAB_TEST=1'])
    assert g.stdout == nout
    assert g.exit_code == code == 0
    assert g.result.killed_by is None


def test_hello_env_and_args(userland):
    g = run_guest(os.path.join(userland, 'hello'), ['one'], env=['FAULTLAB_TEST=visible'])
    assert b'argv[1]=one' in g.stdout and b'FAULTLAB_TEST=visible' in g.stdout


@pytest.mark.parametrize('prog,expect', [
    ('pipes', b'parent read 21 bytes: hello from the child'),
    ('polltest', b'poll until a thread writes: 1 revents 0x1'),
])
def test_pipes_and_poll_match_native(userland, prog, expect):
    """pipe/pipe2 between a parent and a forked child, a reader sleeping until a thread writes,
    O_NONBLOCK, EPIPE, ESPIPE; poll/ppoll/select waiting on pipes; on 1 and 2 CPUs."""
    path = os.path.join(userland, prog)
    code, nout, _ = run_native(path)
    for cpus in (1, 2):
        g = run_guest(path, cpus=cpus)
        assert code == 0 and g.exit_code == 0, g.result.report
        assert g.stdout == nout
    assert expect in nout


def test_execve_matches_native(userland):
    """fork+execve and vfork+execve of a sibling program, execve's errors, and a process re-executing
    itself (close-on-exec honoured, exit status from the new image), on 1 and 2 CPUs."""
    path = os.path.join(userland, 'execer')
    code, nout, _ = run_native(path)
    for cpus in (1, 2):
        g = run_guest(path, mounts=[(userland, '/u', True)], cpus=cpus)
        assert code == g.exit_code == 7, g.result.report
        assert g.stdout == nout
    assert b're-executed with 3 args: again x, FAULTLAB_TEST=from-exec' in nout
