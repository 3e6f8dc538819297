"""File permissions and process calls under changed credentials: userland/src/credfiles.c sets up
chmod'ed files in a tmpfs directory as root, drops to nobody (and to mixed real/effective/fs ids,
supplementary groups) in forked children, and prints what open, access/faccessat2, stat, mkdir,
unlink, rename (plain and sticky directories), execve, chmod/chown/utimensat, the /proc and
/proc/sys files, kill/tgkill/sigqueue, waitid, rlimits across fork, PR_SET_PDEATHSIG, poll on a
pidfd and memfd_secret return. The output must be the same natively and under faultlab; the unit
tests below check the permission rules themselves."""
import errno

import pytest

from faultlab.kernel.capability import CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
from faultlab.kernel.fs import FsError, TmpFs
from faultlab.kernel.fs.attr import chmod_common, chown_common, vfs_utimes, UTIME_NOW
from faultlab.kernel.fs.perm import (MAY_EXEC, MAY_READ, MAY_WRITE, Cred, generic_permission, may_delete,
                            sysctl_perm)
from faultlab.kernel.fs.stat import S_IFREG, S_IFDIR
from tests.test_syscalls_sys import _same_as_native, _tmpfs_dir, needs_root

NOBODY = Cred(uid=65534, gid=65534)


@needs_root
@pytest.mark.parametrize('cpus', [1, 2])
def test_credentials_on_files_and_processes_match_native(userland, cpus):
    g = _same_as_native(userland, 'credfiles', [_tmpfs_dir()], ['/tmp'], cpus=cpus)
    out = g.stdout.decode()
    for line in ('open rootonly r: -13\n',
                 'sticky unlink rootfile -1 rename rootfile -1 creat mine 0 unlink mine 0\n',
                 'exec prog700 113 prog755 42 public 113 dir 113\n',
                 'proc drop_caches r -13 w -13 kpageflags r -13 meminfo r 0 self/status r 0\n',
                 'kill parent 0 -1 SIGCONT 0 tgkill -1 sigqueue -1 self 0\n',
                 'proc self pagemap r -13 clear_refs w -13 comm w -13 status owner 0 meminfo owner 0\n',
                 'dumpable 0 -> 1: pagemap r 0 clear_refs w 0 comm w 0 status owner 65534\n',
                 'open rootonly 0 access R -13 eaccess R 0 faccessat2 bad flag -22\n',
                 'modes after chown 755 755 2745\n',
                 'nowait: 0 signo 17 code 1 status 7 uid 65534 pid_is_child 1\n',
                 'pidfd poll after exit: 1 revents 0x1\n',
                 'parent 100 200\n',
                 'thread: pdeath signal 10 code si_pid set 1\n',
                 'maps rw-s /secretmem (deleted)\n',
                 'nobody 2 pages -11\n'):
        assert line in out


def _inode(mode, uid=0, gid=0):
    sb = TmpFs()
    return sb.new_dir(mode, uid, gid) if mode & S_IFDIR else sb.new_file(mode, uid, gid)


def test_generic_permission_classes_and_capabilities():
    """The owner's bits apply to the owner even when the group or other bits would allow more;
    CAP_DAC_READ_SEARCH reads anything and searches directories; CAP_DAC_OVERRIDE overrides all but
    executing a file without any x bit."""
    f = _inode(S_IFREG | 0o077, uid=1000, gid=1000)
    with pytest.raises(FsError) as e:
        generic_permission(f, MAY_READ, Cred(uid=1000, gid=1000))
    assert e.value.errno == errno.EACCES
    generic_permission(f, MAY_READ | MAY_WRITE, Cred(uid=1001, gid=1000))          # group bits
    generic_permission(f, MAY_READ, Cred(uid=1001, gid=5, groups=(1000,)))          # supplementary
    secret = _inode(S_IFREG | 0o000)
    reader = Cred(uid=1000, gid=1000, caps=1 << CAP_DAC_READ_SEARCH)
    generic_permission(secret, MAY_READ, reader)
    with pytest.raises(FsError):
        generic_permission(secret, MAY_WRITE, reader)
    override = Cred(uid=1000, gid=1000, caps=1 << CAP_DAC_OVERRIDE)
    generic_permission(secret, MAY_READ | MAY_WRITE, override)
    with pytest.raises(FsError):
        generic_permission(secret, MAY_EXEC, override)
    generic_permission(_inode(S_IFREG | 0o001), MAY_EXEC, override)
    d = _inode(S_IFDIR | 0o000)
    generic_permission(d, MAY_READ | MAY_EXEC, reader)
    with pytest.raises(FsError):
        generic_permission(d, MAY_WRITE, reader)
    with pytest.raises(FsError):                    # uid 0 without capabilities is nobody special
        generic_permission(secret, MAY_READ, Cred(uid=0, gid=0, caps=0))


def test_sysctl_perm_ignores_capabilities():
    """A 0200 sysctl file is write-only for root too; others get the other bits; no exec."""
    f = _inode(S_IFREG | 0o200)
    sysctl_perm(f, MAY_WRITE, Cred())
    for cred, mask in ((Cred(), MAY_READ), (NOBODY, MAY_WRITE), (Cred(), MAY_EXEC)):
        with pytest.raises(FsError) as e:
            sysctl_perm(f, mask, cred)
        assert e.value.errno == errno.EACCES


def test_sticky_directory_and_attribute_rules():
    """In a sticky directory only the file's or the directory's owner (or CAP_FOWNER) removes a
    file; chown needs CAP_CHOWN and clears set-user-ID (a mode change: CAP_FOWNER too for another
    user's file, as setattr_prepare checks ATTR_MODE); chmod by a non-owner is EPERM; explicit times
    need ownership, 'now' only write permission."""
    d = _inode(S_IFDIR | 0o1777)
    victim = _inode(S_IFREG | 0o666, uid=1000)
    with pytest.raises(FsError) as e:
        may_delete(d, victim, NOBODY)
    assert e.value.errno == errno.EPERM
    may_delete(d, victim, Cred(uid=1000, gid=1000))
    may_delete(d, victim, Cred(uid=5, gid=5, caps=1 << CAP_FOWNER))
    f = _inode(S_IFREG | 0o4755, uid=1000, gid=1000)
    for change, args in ((chown_common, (0, 0xFFFFFFFF)), (chmod_common, (0o777,))):
        with pytest.raises(FsError) as e:
            change(f, *args, NOBODY)
        assert e.value.errno == errno.EPERM
    with pytest.raises(FsError):                    # clearing the set-user-ID bit is a mode change
        chown_common(f, 0, 0xFFFFFFFF, Cred(uid=5, gid=5, caps=1 << CAP_CHOWN))
    chown_common(f, 0, 0xFFFFFFFF, Cred(uid=5, gid=5, caps=1 << CAP_CHOWN | 1 << CAP_FOWNER))
    assert (f.uid, f.mode & 0o7777) == (0, 0o755)
    w = _inode(S_IFREG | 0o666, uid=0)
    vfs_utimes(w, ((0, UTIME_NOW), (0, UTIME_NOW)), NOBODY)
    with pytest.raises(FsError) as e:
        vfs_utimes(w, ((1, 0), (2, 0)), NOBODY)
    assert e.value.errno == errno.EPERM
