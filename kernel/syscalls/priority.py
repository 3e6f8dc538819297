"""Nice values and scheduling policies (kernel/sys.c getpriority/setpriority, kernel/sched/syscalls.c).

faultlab's scheduler runs every task alike: these calls keep and report a task's nice value,
policy and real-time priority with Linux's checks (permissions, RLIMIT_NICE/RLIMIT_RTPRIO), without
changing how tasks are scheduled.
"""
import errno
import struct

from faultlab.kernel.cred import CAP_SYS_NICE, capable
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.pgrp import find_process
from faultlab.kernel.rlimits import task_rlimit

PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
MIN_NICE, MAX_NICE = -20, 19
RLIMIT_NICE, RLIMIT_RTPRIO = 13, 14
SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE = 0, 1, 2, 3, 5, 6
SCHED_RESET_ON_FORK = 0x40000000
MAX_RT_PRIO = 100
RR_TIMESLICE_NS = 100 * 10**6


def _live_tasks(k):
    return [t for t in k.tasks.values() if not t.exited]


def _prio_targets(k, t, which, who):
    """The tasks `which`/`who` names (getpriority/setpriority)."""
    if which == PRIO_PROCESS:
        if not who:
            return [t]
        task = k.tasks.get(who)
        return [task] if task is not None and not task.exited else []
    if which == PRIO_PGRP:
        pgrp = who or t.group.pgrp
        return [x for x in _live_tasks(k) if x.group.pgrp == pgrp]
    uid = who if who else t.cred.uid
    return [x for x in _live_tasks(k) if x.cred.uid == uid]


@syscall(140, 'getpriority')
def sys_getpriority(k, t, which, who, *_):
    """The highest priority among the targets, as 20 - nice (1..40)."""
    which, who = s32(which), s32(who)
    if not PRIO_PROCESS <= which <= PRIO_USER:
        return -errno.EINVAL
    targets = _prio_targets(k, t, which, who)
    if not targets:
        return -errno.ESRCH
    return max(20 - x.nice for x in targets)


def can_nice(task, nice):
    """Lowering the nice value needs RLIMIT_NICE room or CAP_SYS_NICE."""
    return 20 - nice <= task_rlimit(task, RLIMIT_NICE)[0] or capable(task, CAP_SYS_NICE)


@syscall(141, 'setpriority')
def sys_setpriority(k, t, which, who, niceval, *_):
    which, who, niceval = s32(which), s32(who), s32(niceval)
    if not PRIO_PROCESS <= which <= PRIO_USER:
        return -errno.EINVAL
    niceval = min(max(niceval, MIN_NICE), MAX_NICE)
    error = -errno.ESRCH
    for p in _prio_targets(k, t, which, who):
        if t.cred.euid not in (p.cred.uid, p.cred.euid) and not capable(t, CAP_SYS_NICE):
            error = -errno.EPERM
        elif niceval < p.nice and not can_nice(t, niceval):
            error = -errno.EACCES
        else:
            p.nice = niceval
            error = 0 if error == -errno.ESRCH else error
    return error


def _sched_task(k, t, pid):
    """The task a sched_* call names (0: the caller), or -errno."""
    pid = s32(pid)
    if pid < 0:
        return -errno.EINVAL
    if not pid:
        return t
    task = k.tasks.get(pid)
    if task is None or task.exited or find_process(k, pid) is None:
        return -errno.ESRCH
    return task


def _valid_param(policy, prio):
    if policy in (SCHED_FIFO, SCHED_RR):
        return 1 <= prio < MAX_RT_PRIO
    return prio == 0


@syscall(144, 'sched_setscheduler')
def sys_sched_setscheduler(k, t, pid, policy, param, *_):
    policy = s32(policy)
    if policy < 0:
        return -errno.EINVAL
    return do_sched_setscheduler(k, t, pid, policy & ~SCHED_RESET_ON_FORK, param)


def do_sched_setscheduler(k, t, pid, policy, param):
    """The checks before the copy of sched_param (EINVAL), the copy (EFAULT), the task (ESRCH), then
    _setscheduler; policy None keeps the task's own (sched_setparam)."""
    if not param or s32(pid) < 0:
        return -errno.EINVAL
    raw = t.umem.read(param, 4)
    if raw is None:
        return -errno.EFAULT
    task = _sched_task(k, t, pid)
    if isinstance(task, int):
        return task
    return _setscheduler(t, task, task.policy if policy is None else policy, struct.unpack('<i', raw)[0])


def _setscheduler(t, task, policy, prio):
    """__sched_setscheduler's checks, then the new policy and priority."""
    if policy not in (SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE) or not _valid_param(policy, prio):
        return -errno.EINVAL
    if not capable(t, CAP_SYS_NICE):
        if policy in (SCHED_FIFO, SCHED_RR):
            limit = task_rlimit(task, RLIMIT_RTPRIO)[0]
            if policy != task.policy and not limit or prio > max(task.rt_priority, limit):
                return -errno.EPERM
        if t.cred.euid not in (task.cred.uid, task.cred.euid):
            return -errno.EPERM
    task.policy, task.rt_priority = policy, prio
    return 0


@syscall(142, 'sched_setparam')
def sys_sched_setparam(k, t, pid, param, *_):
    return do_sched_setscheduler(k, t, pid, None, param)


@syscall(145, 'sched_getscheduler')
def sys_sched_getscheduler(k, t, pid, *_):
    task = _sched_task(k, t, pid)
    return task if isinstance(task, int) else task.policy


@syscall(143, 'sched_getparam')
def sys_sched_getparam(k, t, pid, param, *_):
    if not param:
        return -errno.EINVAL
    task = _sched_task(k, t, pid)
    if isinstance(task, int):
        return task
    return 0 if t.umem.write(param, struct.pack('<i', task.rt_priority)) else -errno.EFAULT


@syscall(146, 'sched_get_priority_max')
def sys_sched_get_priority_max(k, t, policy, *_):
    policy = s32(policy)
    if policy in (SCHED_FIFO, SCHED_RR):
        return MAX_RT_PRIO - 1
    return 0 if policy in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE) else -errno.EINVAL


@syscall(147, 'sched_get_priority_min')
def sys_sched_get_priority_min(k, t, policy, *_):
    policy = s32(policy)
    if policy in (SCHED_FIFO, SCHED_RR):
        return 1
    return 0 if policy in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE) else -errno.EINVAL


@syscall(148, 'sched_rr_get_interval')
def sys_sched_rr_get_interval(k, t, pid, interval, *_):
    task = _sched_task(k, t, pid)
    if isinstance(task, int):
        return task
    ns = RR_TIMESLICE_NS if task.policy == SCHED_RR else 0
    return 0 if t.umem.write(interval, struct.pack('<qq', ns // 10**9, ns % 10**9)) else -errno.EFAULT
