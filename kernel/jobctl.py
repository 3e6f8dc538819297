"""Stopped tasks (kernel/signal.c do_signal_stop, ptrace_stop, ptrace_signal): a stop signal's default
action stops every thread of the process (TASK_STOPPED, state 'T') until SIGCONT or SIGKILL; a traced
thread stops (TASK_TRACED, state 't') for each signal it is about to take, until its tracer resumes it.

The stop code a wait reports is consumed by that wait (wait_task_stopped): a group stop's signal once
to the parent, a ptrace stop's signal once to the tracer; the signal a tracer resumes with is what the
thread then takes (0: none).
"""
from faultlab.kernel.signal import SIGSTOP, dequeue_signal
from faultlab.kernel.signal_send import CLD_STOPPED, CLD_TRAPPED, do_notify_parent_cldstop, signal_wake_up


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
    and a CLD_STOPPED SIGCHLD to its parent; its other threads stop on their way to user mode, or
    now if they are not on the core."""
    group = task.group
    first = not group.stopped
    group.stopped, group.stop_code, group.continued = True, sig, False
    for th in group.live_threads():
        if th is not task:
            stop_other_thread(k, th)
    task.jobctl_stop = False
    do_jobctl_stop(k, task)
    if first:
        do_notify_parent_cldstop(k, group.leader, False, CLD_STOPPED, sig)


def stop_other_thread(k, th):
    """Another thread of a stopping process: a sleeper is interrupted (its call restarts when it runs
    again); one not on the core stops now, the others at their next return to user mode."""
    if th.state == 'S':
        signal_wake_up(k, th)
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
