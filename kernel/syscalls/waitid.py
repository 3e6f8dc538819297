"""waitid(2) (kernel/exit.c kernel_waitid, do_wait, wait_task_zombie): wait for a child chosen by
pid, process group, pidfd or any, with the outcome in the siginfo_t fields waitid fills.

WSTOPPED reports a child process's group stop, WCONTINUED its resumption by SIGCONT; a tracer's
tracees report their ptrace stops whatever the options (CLD_TRAPPED), as wait4 does.
"""
import errno
import struct

from faultlab.kernel.file import O_NONBLOCK
from faultlab.kernel.signal_send import CLD_TRAPPED
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.pidfd import pidfd_get_task
from faultlab.kernel.syscalls.rusage import wait_rusage
from faultlab.kernel.syscalls.thread import (SIGCHLD, release_child, tracees_of, wait_sleep, wait_status,
                                           wait_task_stopped)

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


def _eligible_tracee(tracee, which, target):
    """A tracee matches the id (any __WCLONE: ptrace waits ignore it)."""
    if which == P_PID:
        return tracee.group is target and tracee.tid == target.leader.tid
    if which == P_PIDFD:
        return tracee.group is target
    if which == P_PGID:
        return tracee.group.pgrp == target
    return True


def _any_eligible(t, which, target, options):
    """Is there a child or a tracee this waitid could ever report?"""
    return any(not c.reaped and _eligible(t, c, which, target, options) for c in t.group.children) or \
        any(_eligible_tracee(tr, which, target) for tr in tracees_of(t.group))


def _try_stopped(k, t, which, target, options, infop, ru):
    """A stop (or a continue) to report: 0 with its siginfo written, None if there is none."""
    def match(group, tid):
        if group in t.group.children and not _eligible(t, group, which, target, options):
            return False
        return which == P_ALL or (group is target if which in (P_PID, P_PIDFD) else group.pgrp == target)
    found = wait_task_stopped(t, match, options)      # WSTOPPED is wait4's WUNTRACED
    if found is None:
        return None
    task, why, code = found
    if ru and not t.umem.write(ru, wait_rusage(task.group)):
        return -errno.EFAULT
    pid = task.tid if why == CLD_TRAPPED else task.tgid
    return _put_siginfo(t, infop, SIGCHLD, why, pid, task.cred.uid, code)


def _try_wait(k, t, which, target, options, infop, ru):
    """One pass of do_wait over the children: 0 with the siginfo (and rusage) written for an ended
    one (reaped unless WNOWAIT) or for a stop or continue, -ECHILD once none can match any more,
    None if none has anything to report yet."""
    ret = _try_exited(k, t, which, target, options, infop, ru)
    if ret is None:
        ret = _try_stopped(k, t, which, target, options, infop, ru)
    if ret is None and not _any_eligible(t, which, target, options):
        return _put_siginfo(t, infop, 0, 0, 0, 0, 0) or -errno.ECHILD
    return ret


def _try_exited(k, t, which, target, options, infop, ru):
    """An ended child (reaped unless WNOWAIT): 0 with its siginfo written, None if none has ended."""
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
    if not _any_eligible(t, which, target, options):
        return _put_siginfo(t, infop, 0, 0, 0, 0, 0) or -errno.ECHILD
    ret = _try_wait(k, t, which, target, options, infop, ru)
    if ret is not None:
        return ret
    if options & WNOHANG or nonblock:
        return _put_siginfo(t, infop, 0, 0, 0, 0, 0) or (0 if options & WNOHANG else -errno.EAGAIN)
    return wait_sleep(k, t, 'waitid(%d, %d)' % (which, upid),
                      lambda: _try_wait(k, t, which, target, options, infop, ru))
