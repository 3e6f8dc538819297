"""statx(2) and the extended-attribute calls, each compared with the same program run natively:
userland/src/statxcheck.c (statx against fstatat and /proc/self/mountinfo, and its errors), and a
python3 script of xattr calls run on the same kind of filesystem on both sides (ext4: the host's /tmp
and the guest's disk root; tmpfs: the host's /dev/shm and the guest's /tmp; a host directory mounted
into the guest, whose attributes are the host inode's, as 9p shows them), plus the filesystems
without xattrs (proc) and pipes."""
import os
import subprocess

import pytest

from conftest import ROOT, run_guest, run_native

STATXCHECK = os.path.join(ROOT, 'userland', 'src', 'statxcheck.c')

XATTR_SCRIPT = r'''
import errno, os, sys
d = os.path.join(sys.argv[1], 'xattr-probe-%d' % os.getpid())
os.mkdir(d)
p = os.path.join(d, 'f')
open(p, 'w').close()
os.symlink('f', p + 'l')
def tr(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except OSError as e:
        return errno.errorcode[e.errno]
print('missing', tr(os.getxattr, p, 'user.a'), tr(os.listxattr, p))
print('set', tr(os.setxattr, p, 'user.a', b'v1'), tr(os.setxattr, p, 'user.b', b''))
print('create existing', tr(os.setxattr, p, 'user.a', b'v3', os.XATTR_CREATE))
print('replace missing', tr(os.setxattr, p, 'user.c', b'v3', os.XATTR_REPLACE))
print('replace', tr(os.setxattr, p, 'user.a', b'v2', os.XATTR_REPLACE), tr(os.getxattr, p, 'user.a'))
print('list', sorted(tr(os.listxattr, p)), tr(os.getxattr, p, 'user.b'))
print('empty suffix', tr(os.setxattr, p, 'user.', b'x'), tr(os.getxattr, p, 'user.'))
print('unknown namespace', tr(os.setxattr, p, 'bogus.x', b'x'), tr(os.getxattr, p, 'bogus.x'))
print('long names', tr(os.setxattr, p, 'user.' + 'n' * 250, b'x'), tr(os.getxattr, p, 'user.' + 'n' * 250),
      tr(os.setxattr, p, 'user.' + 'n' * 251, b'x'), tr(os.getxattr, p, 'user.' + 'n' * 251))
print('too big', tr(os.setxattr, p, 'user.big', b'x' * 70000))
print('3000 bytes', tr(os.setxattr, p, 'user.mid', b'y' * 3000), len(tr(os.getxattr, p, 'user.mid')))
print('5000 bytes', tr(os.setxattr, p, 'user.huge', b'z' * 5000), tr(os.removexattr, p, 'user.huge'))
print('remove', tr(os.removexattr, p, 'user.mid'), tr(os.removexattr, p, 'user.b'), tr(os.removexattr, p, 'user.b'))
print('acl', tr(os.getxattr, p, 'system.posix_acl_access'), tr(os.getxattr, d, 'system.posix_acl_default'))
print('selinux', tr(os.getxattr, p, 'security.selinux'))
print('trusted', tr(os.setxattr, p, 'trusted.t', b'tv'), tr(os.getxattr, p, 'trusted.t'),
      sorted(tr(os.listxattr, p)), tr(os.removexattr, p, 'trusted.t'))
print('symlink user.*', tr(os.setxattr, p + 'l', 'user.a', b'x', follow_symlinks=False),
      tr(os.getxattr, p + 'l', 'user.a', follow_symlinks=False), tr(os.listxattr, p + 'l', follow_symlinks=False))
print('through the symlink', tr(os.getxattr, p + 'l', 'user.a'))
print('directory', tr(os.setxattr, d, 'user.d', b'dir'), tr(os.getxattr, d, 'user.d'), tr(os.listxattr, d))
fd = os.open(p, os.O_RDONLY)
print('by descriptor', tr(os.getxattr, fd, 'user.a'), tr(os.setxattr, fd, 'user.fd', b'1'), sorted(tr(os.listxattr, fd)))
os.close(fd)
print('ENOENT', tr(os.getxattr, p + 'nope', 'user.a'), tr(os.listxattr, p + 'nope'), tr(os.removexattr, p + 'nope', 'user.a'))
print('proc', tr(os.getxattr, '/proc/self/status', 'user.a'), tr(os.getxattr, '/proc/self/status', 'security.x'),
      tr(os.listxattr, '/proc/self/status'), tr(os.setxattr, '/proc/self/status', 'security.x', b'1'))
r, w = os.pipe()
print('pipe', tr(os.getxattr, r, 'user.a'), tr(os.getxattr, r, 'security.a'), tr(os.listxattr, r),
      tr(os.setxattr, w, 'user.a', b'1'))
st = os.stat(p)
os.setxattr(p, 'user.t', b'1')
print('ctime moves', os.stat(p).st_ctime_ns >= st.st_ctime_ns)
for n in ('f', 'fl'):
    os.unlink(os.path.join(d, n))
os.rmdir(d)
'''


def _guest_python(script_args, mounts=()):
    r = run_guest('/usr/bin/python3', ['-c', XATTR_SCRIPT] + script_args, mounts=mounts, ram=256 << 20)
    assert r.result.report is None, r.result.report
    return r


def _native_python(where):
    return run_native('/usr/bin/python3', ['-c', XATTR_SCRIPT, where])


def _host_fs_type(path):
    out = subprocess.run(['stat', '-f', '-c', '%T', path], capture_output=True, text=True).stdout.strip()
    return out


@pytest.mark.parametrize('native_dir,guest_dir,fstype', [('/tmp', '/root', 'ext2/ext3'),
                                                        ('/dev/shm', '/tmp', 'tmpfs')], ids=['ext4', 'tmpfs'])
def test_xattrs_match_native_on_the_same_filesystem(native_dir, guest_dir, fstype):
    """user/trusted/security attributes on the guest's ext4 root and its tmpfs /tmp behave as on the
    host's filesystems of the same type (same errors; 5000 bytes do not fit ext4's one xattr block
    (ENOSPC, a host without the ea_inode feature) but do fit tmpfs)."""
    if _host_fs_type(native_dir) != fstype:
        pytest.skip('the host\'s %s is not %s' % (native_dir, fstype))
    rc, out, err = _native_python(native_dir)
    assert rc == 0, err
    r = _guest_python([guest_dir])
    assert (r.exit_code, r.stdout.decode()) == (rc, out.decode()), r.stderr
    assert not r.warnings, r.warnings


def test_xattrs_of_a_mounted_host_directory_are_the_host_files(tmp_path):
    """A host directory mounted rw: the attributes are read and written on the host inode, so the
    guest gets exactly what a native program gets there, and the host sees the guest's."""
    rc, out, err = _native_python(str(tmp_path))
    assert rc == 0, err
    r = _guest_python([str(tmp_path)], mounts=[(str(tmp_path), str(tmp_path), False)])
    assert (r.exit_code, r.stdout) == (rc, out), r.stderr
    probe = tmp_path / 'probe'
    probe.write_text('x')
    code = 'import os, sys; os.setxattr(sys.argv[1], "user.from_guest", b"hello")'
    r = run_guest('/usr/bin/python3', ['-c', code, str(probe)], mounts=[(str(tmp_path), str(tmp_path), False)])
    assert r.exit_code == 0 and os.getxattr(str(probe), 'user.from_guest') == b'hello'


def test_xattr_writes_to_a_read_only_mount_are_erofs(tmp_path):
    probe = tmp_path / 'probe'
    probe.write_text('x')
    os.setxattr(str(probe), 'user.k', b'host value')
    code = ('import errno, os, sys\n'
            'def tr(fn, *a):\n    try:\n        return fn(*a)\n    except OSError as e:\n'
            '        return errno.errorcode[e.errno]\n'
            'p = sys.argv[1]\n'
            'print(tr(os.getxattr, p, "user.k"), tr(os.listxattr, p), tr(os.setxattr, p, "user.k", b"2"),'
            ' tr(os.removexattr, p, "user.k"), tr(os.getxattr, "/usr/lib/os-release", "user.none"))\n')
    r = run_guest('/usr/bin/python3', ['-c', code, str(probe)], mounts=[(str(tmp_path), str(tmp_path), True)])
    assert r.stdout == b"b'host value' ['user.k'] EROFS EROFS ENODATA\n", r.stderr


def test_statx_matches_native(tmp_path):
    """statx agrees with fstatat for files, directories, symlinks, devices and pipes, reports a
    birth time for a new file, the mount id of /proc/self/mountinfo and MOUNT_ROOT, and fails
    with Linux's errno for the reserved mask bit, both sync flags, an unknown flag, bad pointers."""
    prog = tmp_path / 'statxcheck'
    subprocess.run(['gcc', '-O1', '-o', str(prog), STATXCHECK], check=True)
    (tmp_path / 'file').write_text('some bytes\n')
    (tmp_path / 'dir').mkdir()
    os.symlink('file', tmp_path / 'link')
    args = [str(tmp_path / n) for n in ('file', 'dir', 'link', 'missing')] + ['/dev/null', '/dev/zero']
    rc, out, err = run_native(str(prog), args)
    r = run_guest(str(prog), args, mounts=[(str(tmp_path), str(tmp_path), True)])
    assert (r.exit_code, r.stdout.decode()) == (rc, out.decode()) == (0, out.decode())
    assert out.decode().count('agrees with fstatat: yes') == 5 and 'reserved mask bit: -22' in out.decode()
    assert not r.warnings, r.warnings
