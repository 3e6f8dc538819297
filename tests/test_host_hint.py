"""The hint for a path the guest cannot see: open/openat/execve failing with ENOENT on a path that
exists on the host names the --mount that would show it, once per run, and only then."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT

PROBE = r'''
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
/* usage: probe OPEN_PATH EXEC_PATH: opens OPEN_PATH twice (open and openat), then execs EXEC_PATH */
int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int a = open(argv[1], O_RDONLY), ea = errno;
    int b = openat(AT_FDCWD, argv[1], O_RDONLY), eb = errno;
    printf("open %s, openat %s\n", a < 0 ? strerror(ea) : "ok", b < 0 ? strerror(eb) : "ok");
    fflush(stdout);
    char *args[] = {argv[2], NULL};
    execv(argv[2], args);
    printf("execv %s\n", strerror(errno));
    return 0;
}
'''


@pytest.fixture(scope='module')
def probe(tmp_path_factory):
    d = tmp_path_factory.mktemp('probe')
    src, exe = d / 'probe.c', d / 'probe'
    src.write_text(PROBE)
    r = subprocess.run(['gcc', '-static', '-O1', '-o', str(exe), str(src)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip('cannot build the probe: %s' % r.stderr[:200])
    return str(exe)


def run(*argv):
    r = subprocess.run([sys.executable, '-m', 'faultlab', 'run', '--no-progress'] + list(argv), cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr


def hints(err):
    return [ln for ln in err.splitlines() if 'not visible in the guest' in ln]


def test_open_of_a_host_file_hints_once(probe, tmp_path):
    data = tmp_path / 'data.txt'
    data.write_text('x')
    rc, out, err = run(probe, str(data), str(tmp_path / 'missing'))
    assert rc == 0 and out.startswith('open No such file or directory, openat No such file or directory')
    assert hints(err) == ['faultlab: warning: %s exists on the host but is not visible in the guest; '
                          '--mount %s:%s gives it' % (data, tmp_path, tmp_path)], err
    # with the mount it suggests, the same run opens the file and hints nothing
    rc, out, err = run('--mount', '%s:%s' % (tmp_path, tmp_path), probe, str(data), str(tmp_path / 'missing'))
    assert rc == 0 and out.startswith('open ok, openat ok') and hints(err) == [], err


def test_execve_of_a_host_program_hints(probe, tmp_path):
    """execve of a host directory's program (the open's ENOENT is a path the host lacks too: no hint)."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    prog = bindir / 'tool'
    prog.write_bytes(open(probe, 'rb').read())
    prog.chmod(0o755)
    rc, out, err = run(probe, str(tmp_path / 'absent.txt'), str(prog))
    assert rc == 0 and 'execv No such file or directory' in out
    assert hints(err) == ['faultlab: warning: %s exists on the host but is not visible in the guest; '
                          '--mount %s:%s gives it' % (prog, bindir, bindir)], err


def test_no_hint_for_paths_the_host_lacks_makes_up_or_keeps_for_itself(probe, tmp_path):
    rc, out, err = run(probe, str(tmp_path / 'absent.txt'), '/proc/self/no-such-file')
    assert rc == 0 and 'No such file' in out and hints(err) == [], err
    rc, out, err = run(probe, '/dev/no-such-device', '/sys/no/such')
    assert rc == 0 and hints(err) == [], err
    host_only = next((p for p in ('/usr/share/locale/locale.alias', '/etc/hostname', '/etc/passwd')
                      if os.path.exists(p)), None)
    if host_only:                  # a system file libraries probe: the guest's own business
        rc, out, err = run(probe, host_only, '/usr/bin/no-such-tool')
        assert rc == 0 and hints(err) == [], err
