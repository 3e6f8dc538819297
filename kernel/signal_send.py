"""Generating signals (kernel/signal.c): send_signal, complete_signal's wake-ups, the hand-over to a
thread in rt_sigtimedwait, and group_send_sig_info for a user's signal to a process. The syscalls
(kill, tgkill, sigqueue, timers, pidfd_send_signal), pipes and sockets (SIGPIPE) and the debugger use them.

Stopped tasks (do_signal_stop, ptrace_stop, ptrace_signal): a stop signal's default action stops every
thread of the process (TASK_STOPPED, state 'T') until SIGCONT or SIGKILL; a traced thread stops
(TASK_TRACED, state 't') for each signal it is about to take, until its tracer resumes it. A stop
signal from another process stops the process at once: its threads on no CPU stop now, the others as
they next return to user mode (a sleeper is not interrupted: it stops when its sleep ends, as one
that Linux interrupted would restart its call). The stop code a wait reports is consumed by that wait
(wait_task_stopped): a group stop's signal once to the parent, a ptrace stop's once to the tracer;
the signal a tracer resumes with is what the thread then takes (0: none).
"""
import errno
import struct

from faultlab.kernel.futex import cancel_wait
from faultlab.kernel.signal import (ERESTARTSYS, SI_KERNEL, SI_TKILL, SI_USER, SIG_DFL, SIG_KERNEL_STOP, SIGCHLD,
                                    SIGCONT, SIGKILL, SIGSTOP, check_kill_permission, dequeue_signal, handler_of,
                                    ignored, kill_process, siginfo_kill)

SA_NOCLDSTOP = 0x00000001
CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED = 4, 5, 6
STOP_MASK = sum(1 << (s - 1) for s in SIG_KERNEL_STOP)


def _nanosleep_copyout(k, t):
    """An interrupted nanosleep: the time left into *rem; EINTR, or EFAULT if rem is a bad address."""
    left_ns = max(0, int(k.costs.ns(t.sleep_until - k.now())))
    if not t.umem.write(t.sleep_rem, struct.pack('<qq', left_ns // 10**9, left_ns % 10**9)):
        return -errno.EFAULT
    return -errno.EINTR


def send_signal(k, sender, target, sig, code=SI_TKILL, info=None, shared=False):
    """Generate sig for target (a thread; with shared, its process: kill, sigqueue, timers).

    sender None: the kernel sends it (an expired timer). Its handler's siginfo says si_code `code`
    (SI_TKILL, SI_USER for kill, SI_KERNEL from the kernel) and the sender's pid, or is the 128 bytes
    `info` a sigqueue passed. An ignored signal nobody blocks is dropped; a blocked one stays pending;
    a thread waiting for it in rt_sigtimedwait takes it; otherwise a default fatal action ends the
    process and a handler runs when the thread returns to user mode (a sleep is interrupted)."""
    if sig == 0:
        return 0
    bit = 1 << (sig - 1)
    threads = target.group.live_threads() if shared else [target]
    if not threads:
        return 0
    if k.tracer is not None:
        k.tracer.signal_send(k, sender, target, sig, code, info, shared)
    prepare_signal(k, target.group, sig)
    blocked = all(t.sigmask & bit for t in threads)
    if ignored(target, sig) and not blocked and not target.ptrace:
        return 0
    if info is None:
        info = siginfo_kill(sig, SI_KERNEL if sender is None else code, sender.tgid if sender is not None else 0)
    if shared:
        group = target.group
        if not group.shared_pending & bit:         # a standard signal is pending once
            group.shared_pending |= bit
            group.shared_info[sig] = info
    elif not target.pending_signals & bit:
        target.pending_signals |= bit
        target.sig_info[sig] = info
    for t in threads:                               # rt_sigtimedwait takes it before any handler
        if t.state == 'S' and t.sigwait is not None and t.sigwait[0] & bit:
            _sigwait_take(k, t, sig)
            return 0
    if blocked:
        return 0
    if target.sigmask & bit:
        target = next(t for t in threads if not t.sigmask & bit)
    handler, _flags = handler_of(target, sig)
    origin = ('sent by %s[%d]' % (sender.comm, sender.tid) if sender is not None
              else 'from an expired timer')
    if sig == SIGKILL and sender is not None and sender.group is not target.group:
        return signal_wake_killed(k, target.group, origin)
    if sig != SIGKILL and not target.ptrace and handler == SIG_DFL and sig in SIG_KERNEL_STOP:
        current = k.current
        if current is None or current.group is not target.group:
            dequeue_signal(target, sig)
            do_signal_stop(k, target, sig)        # another process stops it now
            return 0
    if sig != SIGKILL and (target.ptrace or (handler == SIG_DFL and sig in SIG_KERNEL_STOP)):
        if target.state == 'S':
            signal_wake_up(k, target)  # the tracer sees it, or the process stops, on the way to user mode
        return 0
    if handler == SIG_DFL:
        dequeue_signal(target, sig)
        kill_process(k, target, sig, origin)
        return 0
    if target.state == 'S':
        signal_wake_up(k, target)     # the handler runs when the thread returns to user mode
    return 0


def signal_wake_up(k, target, delay=0):
    """Interrupt a sleeping thread's system call for a signal (EINTR, or a restart); it can run
    `delay` cycles from now."""
    cancel_wait(k, target)
    target.wait_for = None
    target.sigwait = None
    target.wait_obj = None
    target.restart_deadline = None
    ret = -ERESTARTSYS if target.restartable else -errno.EINTR
    if target.waiting_on == 'sleep' and target.sleep_rem:
        ret = _nanosleep_copyout(k, target)
    k.sched.wake(target, ret, k.now() + delay)


def signal_wake_killed(k, group, origin):
    """complete_signal for SIGKILL from another process: the process is marked as dying (SIGKILL
    pending for all its threads) and its sleeping threads are woken; each ends as it next runs in the
    kernel (do_signal), so until then its memory is still there for process_mrelease to reap. A
    sleeper runs again no sooner than its CPU wakes from idle (the wake-up IPI)."""
    group.shared_pending |= 1 << (SIGKILL - 1)
    group.kill_origin = origin
    for th in group.live_threads():
        th.jobctl_stop = False
        if th.state == 'S':
            signal_wake_up(k, th, k.costs.costs['ipi_wake_idle'])
        elif th.state in ('T', 't'):
            k.sched.resume(th, k.now() + k.costs.costs['ipi_wake_idle'])    # SIGKILL ends any stop
    return 0


def prepare_signal(k, group, sig):
    """prepare_signal's job control: a stop signal cancels a pending SIGCONT; SIGCONT cancels pending
    stop signals and resumes a stopped process (its parent told CLD_CONTINUED); SIGKILL ends a stop."""
    if sig in SIG_KERNEL_STOP:
        flush_sigqueue_mask(group, 1 << (SIGCONT - 1))
    elif sig == SIGCONT:
        flush_sigqueue_mask(group, STOP_MASK)
        was_stopped = group.stopped
        group.stopped, group.stop_code = False, 0
        for th in group.live_threads():
            th.jobctl_stop = False
            if th.state == 'T':
                k.sched.resume(th, k.now())
        if was_stopped:
            group.continued = True
            do_notify_parent_cldstop(k, group.leader, False, CLD_CONTINUED, SIGCONT)


def flush_sigqueue_mask(group, mask):
    """Drop the signals of mask from the process's and each thread's pending sets."""
    group.shared_pending &= ~mask
    for th in group.live_threads():
        th.pending_signals &= ~mask


def wake_up_parent(k, group):
    """__wake_up_parent: the threads of group sleeping in wait4/waitid try again (a child or tracee
    changed state)."""
    for task in group.live_threads():
        if task.state == 'S' and task.wait_for is not None:
            ret = task.wait_for()
            if ret is not None:
                task.wait_for = None
                k.sched.wake(task, ret, k.now())


def do_notify_parent_cldstop(k, task, for_ptracer, why, status):
    """A stop or continue to report: to the tracer (for_ptracer), or to the parent process, which
    gets SIGCHLD (CLD_STOPPED, CLD_CONTINUED, CLD_TRAPPED) unless its handler has SA_NOCLDSTOP; the
    waiters there wake."""
    if for_ptracer:
        parent = task.tracer.group if task.tracer is not None else None
    else:
        parent = task.group.parent
    if parent is None:
        return
    live = parent.live_threads()
    if not live:
        return
    _handler, flags = handler_of(live[0], SIGCHLD)
    if for_ptracer or not flags & SA_NOCLDSTOP:
        info = struct.pack('<iiiiiiqq', SIGCHLD, 0, why, 0, task.tid if for_ptracer else task.tgid,
                           task.cred.uid, status, 0)
        send_signal(k, task, live[0], SIGCHLD, info=info.ljust(128, b'\0'), shared=True)
    wake_up_parent(k, parent)


def _sigwait_take(k, t, sig):
    """A thread in rt_sigtimedwait for sig: it takes the signal (its siginfo goes to the caller's
    buffer) and returns the signal number."""
    _set, info_addr = t.sigwait
    t.sigwait = None
    info = dequeue_signal(t, sig) or siginfo_kill(sig, SI_USER, 0)
    ret = sig
    if info_addr and not t.umem.write(info_addr, info):
        ret = -errno.EFAULT
    k.sched.wake(t, ret, k.now())


def group_send_sig_info(k, sender, group, sig, info=None, code=SI_USER):
    """A user's signal to a process: check_kill_permission, then to the process (a zombie takes
    and ignores it)."""
    live = group.live_threads()
    target = group.leader if not group.leader.exited or not live else live[0]
    err = check_kill_permission(sender, target, sig)
    if err or not live:
        return err
    return send_signal(k, sender, target, sig, code, info=info, shared=True)


def ptrace_stop(k, task, code):
    """The traced thread stops with `code` to report to its tracer (CLD_TRAPPED, the waiters woken)."""
    task.ptrace_code = code
    k.sched.stop(task, 't')
    do_notify_parent_cldstop(k, task, True, CLD_TRAPPED, code)


def ptrace_signal(k, task, sig):
    """A traced thread is about to take sig: it leaves the queue and the thread stops for its tracer
    (signal-delivery-stop); the signal the tracer resumes it with is delivered instead."""
    dequeue_signal(task, sig)
    ptrace_stop(k, task, sig)


def do_signal_stop(k, task, sig):
    """A stop signal's default action: the process stops (group stop) with sig for a WUNTRACED wait
    and a CLD_STOPPED SIGCHLD to its parent; task stops now if it is the core's thread acting on the
    signal, its threads otherwise as stop_other_thread says."""
    group = task.group
    first = not group.stopped
    group.stopped, group.stop_code, group.continued = True, sig, False
    for th in group.live_threads():
        if th is task and th is k.current:
            do_jobctl_stop(k, th)
        else:
            stop_other_thread(k, th)
    if first:
        do_notify_parent_cldstop(k, group.leader, False, CLD_STOPPED, sig)


def stop_other_thread(k, th):
    """A thread of a stopping process other than the one acting on the signal: one runnable but not
    on the core stops now; one asleep or on the core as it next returns to user mode."""
    if th.state in ('T', 't'):
        return
    if th.state == 'R' and th is not k.current:
        do_jobctl_stop(k, th)
    else:
        th.jobctl_stop = True


def do_jobctl_stop(k, task):
    """One thread takes part in its process's group stop: traced, it stops for its tracer instead."""
    task.jobctl_stop = False
    if task.ptrace:
        ptrace_stop(k, task, task.group.stop_code or SIGSTOP)
    else:
        k.sched.stop(task, 'T')
