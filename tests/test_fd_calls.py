"""copy_file_range, close_range and fchdir: a python3 script using each (through os and ctypes) gives
the same output natively and under faultlab, on ext4 (the host's /tmp and the guest's disk root)
and on tmpfs (the host's /dev/shm and the guest's /tmp)."""
import os
import subprocess

import pytest

from conftest import run_guest, run_native

SCRIPT = r'''
import ctypes, errno, fcntl, os, sys
d = sys.argv[1]
def tr(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except OSError as e:
        return errno.errorcode[e.errno]
libc = ctypes.CDLL(None, use_errno=True)
def sysc(nr, *a):
    r = libc.syscall(nr, *[ctypes.c_long(x) for x in a])
    return r if r >= 0 else errno.errorcode[ctypes.get_errno()]

# copy_file_range: positions, explicit offsets, end of file, errors
a = os.path.join(d, 'cfr-a%d' % os.getpid()); b = a + 'b'
with open(a, 'wb') as f:
    f.write(bytes(range(256)) * 40)
fi = os.open(a, os.O_RDONLY); fo = os.open(b, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
print(tr(os.copy_file_range, fi, fo, 5000), os.lseek(fi, 0, 1), os.lseek(fo, 0, 1))
print(tr(os.copy_file_range, fi, fo, 100000), tr(os.copy_file_range, fi, fo, 10))
print(tr(os.copy_file_range, fi, fo, 100, 10, 20000), os.lseek(fi, 0, 1), os.lseek(fo, 0, 1), os.fstat(fo).st_size)
data = open(b, 'rb').read()
print(data[:10240] == open(a, 'rb').read(), data[10240:20000] == bytes(9760), data[20000:] == bytes(range(10, 110)))
print('flags', sysc(326, fi, 0, fo, 0, 10, 1))
print('not writable', tr(os.copy_file_range, fi, fi, 10, 0, 100), tr(os.copy_file_range, fo, fo, 10, 0, 100))
print('dir', tr(os.copy_file_range, os.open(d, os.O_RDONLY), fo, 10))
r, w = os.pipe()
print('pipe', tr(os.copy_file_range, r, fo, 10), tr(os.copy_file_range, fi, w, 10))
print('append', tr(os.copy_file_range, fi, os.open(b, os.O_WRONLY | os.O_APPEND), 10, 0))
print('bad fd', tr(os.copy_file_range, 999, fo, 10))
print('other fs', tr(os.copy_file_range, os.open('/proc/self/status', os.O_RDONLY), fo, 10))
fr = os.open(b, os.O_RDWR)
print('overlap', tr(os.copy_file_range, fr, fr, 100, 0, 50), tr(os.copy_file_range, fr, fr, 100, 0, 100))
os.unlink(a); os.unlink(b)

# close_range: close a range, mark one close-on-exec, errors
fds = [os.open('/dev/null', os.O_RDONLY) for _ in range(6)]
print('close_range', sysc(436, fds[1], fds[2], 0), [tr(os.fstat, fd) if tr(os.fstat, fd) == 'EBADF' else 'open' for fd in fds])
print('cloexec', sysc(436, fds[3], fds[4], 4), [bool(fcntl.fcntl(fd, fcntl.F_GETFD) & 1) for fd in (fds[0], fds[3], fds[4], fds[5])])
print('unshare', sysc(436, fds[5], 0xFFFFFFFF, 2), tr(os.fstat, fds[5]), 'open' if os.fstat(fds[0]) else '')
print('errors', sysc(436, 10, 5, 0), sysc(436, 0, 5, 8))

# fchdir
cwd = os.getcwd()
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
pfd = os.open('/proc', os.O_PATH)
print('fchdir', tr(os.fchdir, dfd), os.getcwd() == os.path.realpath(d), tr(os.fchdir, pfd), os.getcwd())
print('fchdir errors', tr(os.fchdir, os.open('/dev/null', os.O_RDONLY)), tr(os.fchdir, 999), tr(os.fchdir, r))
'''


def _fstype(path):
    return subprocess.run(['stat', '-f', '-c', '%T', path], capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize('native_dir,guest_dir,fstype', [('/tmp', '/root', 'ext2/ext3'),
                                                        ('/dev/shm', '/tmp', 'tmpfs')], ids=['ext4', 'tmpfs'])
def test_fd_calls_match_native(native_dir, guest_dir, fstype):
    if _fstype(native_dir) != fstype:
        pytest.skip("the host's %s is not %s" % (native_dir, fstype))
    rc, out, err = run_native('/usr/bin/python3', ['-c', SCRIPT, native_dir])
    assert rc == 0, err
    r = run_guest('/usr/bin/python3', ['-c', SCRIPT, guest_dir], ram=256 << 20)
    assert r.result.report is None, r.result.report
    assert (r.exit_code, r.stdout.decode()) == (rc, out.decode()), r.stderr
    assert 'fchdir None True None /proc' in out.decode()
    assert not [w for w in r.warnings if 'system call' in w], r.warnings
