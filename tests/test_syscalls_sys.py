"""System calls of identity and process state (credentials, capabilities, prctl, getrusage, statfs,
process groups, priorities, memory policy, protection keys, pidfd): each program prints results and
errnos for valid and bad input, natively and under faultlab, and the outputs must be the same."""
import os

import pytest

from tests.conftest import BUILD, run_guest, run_native

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='the native run must start as root, as the guest does')


def _prog(name):
    return os.path.join(BUILD, name)


def _same_as_native(userland, prog, native_args=(), guest_args=None, cpus=1):
    code, native, err = run_native(_prog(prog), native_args)
    assert code == 0, err
    g = run_guest(_prog(prog), native_args if guest_args is None else guest_args, cpus=cpus)
    assert g.result.exit_code == 0, g.result.report
    assert g.stdout.decode() == native.decode()
    return g


@needs_root
@pytest.mark.parametrize('cpus', [1, 2])
def test_credentials_match_native(userland, cpus):
    """set*uid/set*gid with their saved ids, groups, capget/capset (versions, EINVAL with the version
    written back), capabilities following the uid changes, per-thread credentials, the auxv and
    /proc/self/status after dropping to nobody, RLIMIT_MEMLOCK against mlock, and exec's ids."""
    g = _same_as_native(userland, 'creds', cpus=cpus)
    out = g.stdout.decode()
    assert 'nobody: Uid:\t65534\t65534\t65534\t65534\n' in out
    assert 'mlock 1 more page: -12\n' in out and 'mlock with limit 0: -1\n' in out
    assert 'after exec: auxv uid 1000 euid 0 gid 0 egid 0 secure 1\n' in out


def _tmpfs_dir():
    """A tmpfs directory of this host for the native run (the guest's /tmp is one)."""
    with open('/proc/mounts') as f:
        for line in f:
            dev, path, fstype = line.split()[:3]
            if fstype == 'tmpfs' and os.access(path, os.W_OK) and path in ('/dev/shm', '/tmp', '/run'):
                return path
    pytest.skip('no tmpfs on this host')


@needs_root
def test_prctl_rusage_statfs_pgrp_priority_match_native(userland):
    """prctl options (names, dumpable, pdeath signal, no_new_privs, THP disable, bounding and ambient
    sets, auxv, EINVAL for PR_SET_VMA and unknown options), getrusage/times and wait4's rusage,
    statfs magic numbers and sizes, setsid/setpgid/getpgid/getsid and wait4 on process groups,
    getpriority/setpriority and the sched_* policy calls."""
    g = _same_as_native(userland, 'sysmisc', [_tmpfs_dir()], ['/tmp'])
    out = g.stdout.decode()
    assert 'self minflt grew by >= 200: 1\n' in out
    assert '/: type 0xef53 bsize 4096' in out and 'tmpfs: 0 type 0x1021994' in out



def test_mempolicy_pkeys_pidfd_match_native(userland):
    """set_mempolicy/get_mempolicy/mbind/migrate_pages/move_pages on a one-node machine (modes, mode
    flags, node masks, page status for present, zero, absent and unmapped pages), protection keys on
    a CPU without them (EINVAL; pkey -1 is mprotect), pidfd_open/process_mrelease/pidfd_send_signal
    on a live process, a zombie and a reaped one."""
    g = _same_as_native(userland, 'mmsys')
    out = g.stdout.decode()
    assert 'move_pages stat: 0 [0 -14 -2 -14 -2]\n' in out and 'pkey_alloc: -22\n' in out
