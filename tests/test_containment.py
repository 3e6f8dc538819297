"""Containment, end to end: a guest program (userland/src/escape.c) tries every way out of its tree;
each attempt fails with the errno Linux gives (or stays inside the guest's tree), and nothing on the
host changes."""
import errno
import os
import re

import pytest

from conftest import run_guest


@pytest.fixture
def escape_run(userland, tmp_path):
    rw = tmp_path / 'rw'
    ro = tmp_path / 'ro'
    rw.mkdir()
    ro.mkdir()
    secret = tmp_path / 'secret.txt'
    secret.write_text('host secret\n')
    (rw / 'file.txt').write_text('mounted file\n')
    os.symlink('/etc/shadow', rw / 'abs_link')
    os.symlink('../../../../../../../../etc/shadow', rw / 'rel_link')
    os.symlink('/', rw / 'root_link')
    (ro / 'data.txt').write_text('read-only data\n')
    r = run_guest(os.path.join(userland, 'escape'), [str(secret), str(os.getpid())],
                  mounts=[(str(rw), '/mnt/rw', False), (str(ro), '/mnt/ro', True)])
    assert r.exit_code == 0, (r.result.report, r.stdout)
    lines = dict(l.split(': ', 1) for l in r.stdout.decode().splitlines())
    return lines, tmp_path


def _err(lines, name):
    m = re.match(r'ret=(-?\d+) errno=(\d+)', lines[name])
    assert m, (name, lines[name])
    return int(m.group(2)) if m.group(1) == '-1' else 0


def test_host_files_that_were_not_mounted_do_not_exist(escape_run):
    """Host paths, the emulator's own /proc/PID and any memory device are absent (no /dev/mem or
    /dev/kmem); /proc/self/mem is the guest's own address space (it reads the guest's memory and gives EIO
    for an unmapped address, as Linux); the default view's /etc/passwd is read-only and /etc/shadow absent."""
    lines, _ = escape_run
    for name in ('host_secret', 'etc_shadow', 'proc_host_pid', 'proc_host_pid_mem', 'dev_mem', 'dev_kmem'):
        assert _err(lines, name) == errno.ENOENT, name
    assert _err(lines, 'etc_passwd_write') == errno.EROFS
    assert lines['proc_self_mem_reads_guest'] == '1'
    assert _err(lines, 'proc_self_mem_unmapped') == errno.EIO


def test_dotdot_stops_at_the_guest_root(escape_run):
    lines, _ = escape_run
    assert _err(lines, 'dotdot_root') == errno.ENOENT
    hostname = lines['dotdot_root_hostname']
    assert hostname.startswith('read ') and 'faultlab' in hostname       # the guest's /etc/hostname
    assert lines['dotdot_mount'] == hostname and lines['dotdot_cwd'] == hostname
    assert lines['cwd_after_up'] == '/'


def test_symlinks_in_host_directories_resolve_in_the_guest(escape_run):
    lines, _ = escape_run
    assert _err(lines, 'abs_link') == errno.ENOENT         # /etc/shadow of the guest: none
    assert _err(lines, 'rel_link') == errno.ENOENT
    assert lines['root_link_hostname'] == lines['dotdot_root_hostname']
    assert _err(lines, 'root_link_secret') == errno.ENOENT


def test_symlink_loops_are_eloop(escape_run):
    lines, _ = escape_run
    assert _err(lines, 'loop') == errno.ELOOP
    assert _err(lines, 'self_loop') == errno.ELOOP
    assert _err(lines, 'chain_41') == errno.ELOOP           # 41 links: one more than MAXSYMLINKS
    assert _err(lines, 'chain_40') == 0


def test_guest_made_symlinks_cannot_point_out(escape_run):
    lines, tmp = escape_run
    assert _err(lines, 'mk_guest_link') == 0 and _err(lines, 'guest_link_to_host') == errno.ENOENT
    assert _err(lines, 'mk_link_in_mount') == 0 and _err(lines, 'link_in_mount') == errno.ENOENT
    # the link the guest made in the rw host directory holds the guest path, harmless on the host side
    assert os.readlink(tmp / 'rw' / 'guest_made') == '/etc/shadow'


def test_proc_self_root_is_the_guest_root(escape_run):
    lines, _ = escape_run
    assert lines['proc_self_root'] == '/'
    assert _err(lines, 'proc_self_root_shadow') == errno.ENOENT
    assert lines['proc_self_root_hostname'] == lines['dotdot_root_hostname']
    assert _err(lines, 'proc_self_root_secret') == errno.ENOENT
    assert lines['proc_self_exe'] == '/bin/escape'


def test_files_cannot_be_moved_across_mounts(escape_run):
    lines, tmp = escape_run
    assert _err(lines, 'rename_out') == errno.EXDEV
    assert _err(lines, 'rename_in') == errno.EXDEV
    assert (tmp / 'rw' / 'file.txt').read_text() == 'mounted file\n'
    assert not (tmp / 'rw' / 'planted').exists()


def test_read_only_mount_stays_read_only(escape_run):
    lines, tmp = escape_run
    for name in ('ro_open_write', 'ro_open_rdwr', 'ro_create', 'ro_trunc', 'ro_unlink', 'ro_mkdir', 'ro_rename',
                 'ro_symlink', 'ro_truncate'):
        assert _err(lines, name) == errno.EROFS, (name, lines[name])
    assert _err(lines, 'ro_rmdir') in (errno.EBUSY, errno.EROFS)    # a mount point: EBUSY first in Linux
    assert _err(lines, 'ro_ftruncate') == errno.EINVAL              # fd not open for writing
    assert _err(lines, 'ro_write_rdonly_fd') == errno.EBADF
    assert _err(lines, 'ro_mmap_shared_write') == errno.EACCES
    assert _err(lines, 'ro_mmap_private_write') == 0                 # private copy-on-write is allowed...
    assert lines['ro_data_after'] == 'read 15 [read-only data|]'    # ...and never reaches the file
    assert sorted(os.listdir(tmp / 'ro')) == ['data.txt']
    assert (tmp / 'ro' / 'data.txt').read_text() == 'read-only data\n'
