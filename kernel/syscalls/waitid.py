"""waitid(2) (kernel/exit.c kernel_waitid, do_wait, wait_task_zombie): wait for a child chosen by
pid, process group, pidfd or any, with the outcome in the siginfo_t fields waitid fills.

Children stop only by ending here (no job-control stops are modelled), so WSTOPPED and WCONTINUED
are accepted and match nothing.
"""
import errno
import struct

from faultlab.kernel.file import O_NONBLOCK
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.pidfd import pidfd_get_task
from faultlab.kernel.syscalls.rusage import wait_rusage
from faultlab.kernel.syscalls.thread import SIGCHLD, release_child, wait_sleep, wait_status

P_ALL, P_PID, P_PGID, P_PIDFD = 0, 1, 2, 3
WNOHANG, WSTOPPED, WEXITED, WCONTINUED, WNOWAIT = 1, 2, 4, 8, 0x01000000
__WNOTHREAD, __WALL, __WCLONE = 0x20000000, 0x40000000, 0x80000000
CLD_EXITED, CLD_KILLED = 1, 2
_WAITID_OPTIONS = WNOHANG | WNOWAIT | WEXITED | WSTOPPED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL


def _eligible(t, child, which, target, options):
    """eligible_child: the child matches the id, and its exit signal fits __WCLONE (any with __WALL)."""
    if which in (P_PID, P_PIDFD) and child is not target:
        return False
    if which == P_PGID and child.pgrp != target:
        return False
    if options & __WALL:
        return True
    return (child.leader.exit_signal != SIGCHLD) == bool(options & __WCLONE)


def _wait_info(child):
    """(si_code, si_status) of an ended child: CLD_EXITED with its exit code, or CLD_KILLED with the
    signal."""
    status = wait_status(child)
    if status & 0x7F == 0:
        return CLD_EXITED, status >> 8
    return CLD_KILLED, status & 0x7F


def _put_siginfo(t, infop, signo, code, pid, uid, status):
    """The fields of *infop waitid writes (si_signo, si_errno, si_code, si_pid, si_uid, si_status)."""
    if not infop:
        return 0
    ok = t.umem.write(infop, struct.pack('<iii', signo, 0, code)) and \
        t.umem.write(infop + 16, struct.pack('<iIi', pid, uid, status))
    return 0 if ok else -errno.EFAULT


def _try_wait(k, t, which, target, options, infop, ru):
    """One pass of do_wait over the children: 0 with the siginfo (and rusage) written for an ended
    one (reaped unless WNOWAIT), None if none has ended yet."""
    if not options & WEXITED:
        return None
    for child in t.group.children:
        if child.reaped or not child.exited or not _eligible(t, child, which, target, options):
            continue
        if ru and not t.umem.write(ru, wait_rusage(child)):
            return -errno.EFAULT
        code, status = _wait_info(child)
        pid, uid = child.leader.tgid, child.leader.cred.uid
        if not options & WNOWAIT:
            release_child(t.group, child)
        return _put_siginfo(t, infop, SIGCHLD, code, pid, uid, status)
    return None


def _waitid_target(k, t, which, upid):
    """kernel_waitid_prepare's id: (what children must match, pidfd's O_NONBLOCK) or -errno."""
    if which == P_ALL:
        return None, 0
    if which == P_PID:
        if upid <= 0:
            return -errno.EINVAL
        task = k.tasks.get(upid)
        return (task.group if task is not None and task.tid == upid else False), 0
    if which == P_PGID:
        if upid < 0:
            return -errno.EINVAL
        return upid or t.group.pgrp, 0
    if which == P_PIDFD:
        if upid < 0:
            return -errno.EINVAL
        group, err = pidfd_get_task(t, upid)
        if err == -errno.ESRCH:
            group = False                  # a reaped process: no child is it
        elif err:
            return err
        return group, t.files.get(upid).flags & O_NONBLOCK
    return -errno.EINVAL


@syscall(247, 'waitid')
def sys_waitid(k, t, which, upid, infop, options, ru, *_):
    """The first ended child that matches (reaped unless WNOWAIT): 0 with its siginfo; with WNOHANG
    and none ended, 0 and a zeroed siginfo (EAGAIN when only a non-blocking pidfd asked for no
    waiting); otherwise sleep until one ends. An error also zeroes the fields (EFAULT if *infop
    cannot take them)."""
    which, upid, options = s32(which), s32(upid), options & 0xFFFFFFFF
    if options & ~_WAITID_OPTIONS or not options & (WEXITED | WSTOPPED | WCONTINUED):
        return _put_siginfo(t, infop, 0, 0, 0, 0, 0) or -errno.EINVAL
    res = _waitid_target(k, t, which, upid)
    if isinstance(res, int):
        return _put_siginfo(t, infop, 0, 0, 0, 0, 0) or res
    target, nonblock = res
    if not any(not c.reaped and _eligible(t, c, which, target, options) for c in t.group.children):
        return _put_siginfo(t, infop, 0, 0, 0, 0, 0) or -errno.ECHILD
    ret = _try_wait(k, t, which, target, options, infop, ru)
    if ret is not None:
        return ret
    if options & WNOHANG or nonblock:
        return _put_siginfo(t, infop, 0, 0, 0, 0, 0) or (0 if options & WNOHANG else -errno.EAGAIN)
    return wait_sleep(k, t, 'waitid(%d, %d)' % (which, upid),
                      lambda: _try_wait(k, t, which, target, options, infop, ru))
