"""Process groups and sessions (kernel/sys.c): setpgid, getpgid, getpgrp, setsid, getsid.

Each process (ThreadGroup) has a process group and a session id, inherited on fork; the first
process's are its starter's, outside the guest's pid namespace, so they read as 0 (as pid_vnr gives
for a pid the namespace cannot see) and it is not a group leader: setsid succeeds, as for a program
started without job control.
"""
import errno

from faultlab.kernel.syscalls.registry import s32, syscall


def find_process(k, pid):
    """The process (ThreadGroup) of the task with this id (a zombie leader included); None once
    reaped or for an ended thread."""
    task = k.tasks.get(pid)
    if task is None or task.group.reaped or (task.exited and task.tid != task.tgid):
        return None
    return task.group


def processes(k):
    """Every process not yet reaped (its ThreadGroup), each once."""
    groups = {}
    for task in k.tasks.values():
        if not task.group.reaped:
            groups[id(task.group)] = task.group
    return groups.values()


def pgrp_exists(k, pgid):
    """pid_task(pgid, PIDTYPE_PGID): is there a process in process group pgid?"""
    return any(g.pgrp == pgid for g in processes(k))


def _process_or_self(k, t, pid):
    """The process getpgid and getsid ask about: the caller's own for pid 0, else find_process."""
    pid = s32(pid)
    return t.group if not pid else find_process(k, pid)


@syscall(109, 'setpgid')
def sys_setpgid(k, t, pid, pgid, *_):
    """Move the caller or one of its children (same session, not a session leader) into process
    group pgid, which must exist in the caller's session unless it is the process's own pid."""
    pid, pgid = s32(pid), s32(pgid)
    me = t.group
    if not pid:
        pid = t.tgid
    if not pgid:
        pgid = pid
    if pgid < 0:
        return -errno.EINVAL
    task = k.tasks.get(pid)
    if find_process(k, pid) is None:
        return -errno.ESRCH
    if task.tid != task.tgid:
        return -errno.EINVAL                    # not a thread-group leader
    p = task.group
    if p.parent is me:
        if p.session != me.session:
            return -errno.EPERM
    elif p is not me:
        return -errno.ESRCH
    if p.session_leader:
        return -errno.EPERM
    if pgid != pid and not any(g.pgrp == pgid and g.session == me.session for g in processes(k)):
        return -errno.EPERM
    p.pgrp = pgid
    return 0


@syscall(121, 'getpgid')
def sys_getpgid(k, t, pid, *_):
    p = _process_or_self(k, t, pid)
    return -errno.ESRCH if p is None else p.pgrp


@syscall(111, 'getpgrp')
def sys_getpgrp(k, t, *_):
    return t.group.pgrp


@syscall(124, 'getsid')
def sys_getsid(k, t, pid, *_):
    p = _process_or_self(k, t, pid)
    return -errno.ESRCH if p is None else p.session


@syscall(112, 'setsid')
def sys_setsid(k, t, *_):
    """ksys_setsid: a new session and process group named by the caller's pid; EPERM when a process
    group with that id exists (the caller leads one)."""
    me = t.group
    sid = t.tgid
    if me.session_leader or pgrp_exists(k, sid):
        return -errno.EPERM
    me.session_leader = True
    me.session = me.pgrp = sid
    return sid
