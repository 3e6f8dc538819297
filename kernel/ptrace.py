"""Process tracing (kernel/ptrace.c): a tracer attaches to a thread (PTRACE_ATTACH stops it with
SIGSTOP, PTRACE_SEIZE does not; PTRACE_TRACEME makes the parent the tracer), reads and writes its
memory while it is stopped (through access_remote_vm, with FOLL_FORCE), resumes it and detaches.

Who may trace whom is __ptrace_may_access's rule: the caller's real ids equal all of the target's
(real, effective, saved) and the target is dumpable, or the caller has CAP_SYS_PTRACE. A tracer that
exits detaches its tracees (exit_ptrace): a stop it did not consume a wait for still delivers its
signal.
"""
import errno

from faultlab.kernel.capability import CAP_SYS_PTRACE, capable
from faultlab.kernel.cred import SUID_DUMP_USER, get_dumpable
from faultlab.kernel.mm.access_remote import access_remote_vm
from faultlab.kernel.mm.gup_pin import FOLL_FORCE
from faultlab.kernel.signal import SI_USER, SIGSTOP, SIGTRAP
from faultlab.kernel.signal_send import CLD_TRAPPED, do_notify_parent_cldstop, send_signal

PT_PTRACED, PT_SEIZED = 0x1, 0x10000
PTRACE_MODE_READ, PTRACE_MODE_ATTACH = 0x01, 0x02
_NSIG = 64


def valid_signal(sig):
    """A signal number a tracer may resume with: 0 (none) to 64."""
    return 0 <= sig <= _NSIG


def ptracer_capable(tracer):
    """The tracer has CAP_SYS_PTRACE."""
    return capable(tracer, CAP_SYS_PTRACE)


def ptrace_may_access(tracer, task, mode=PTRACE_MODE_ATTACH):
    """__ptrace_may_access with real credentials: 0, or -EPERM."""
    if tracer.group is task.group:
        return 0
    c, tc = tracer.cred, task.cred
    ids_match = (c.uid == tc.euid == tc.suid == tc.uid) and (c.gid == tc.egid == tc.sgid == tc.gid)
    if not ids_match and not ptracer_capable(tracer):
        return -errno.EPERM
    if get_dumpable(task.mm) != SUID_DUMP_USER and not ptracer_capable(tracer):
        return -errno.EPERM
    return 0


def ptrace_link(tracer, task, flags):
    """__ptrace_link: task is traced by tracer."""
    task.ptrace = flags
    task.tracer = tracer
    tracer.ptraced.append(task)


def ptrace_attach(k, tracer, task, seize=False):
    """PTRACE_ATTACH (SIGSTOP to the process) or PTRACE_SEIZE: 0, or -EPERM for a thread of the
    caller's own process, an ended or already traced task, or one it may not trace."""
    if task.group is tracer.group or task.exited:
        return -errno.EPERM
    err = ptrace_may_access(tracer, task, PTRACE_MODE_ATTACH)
    if err:
        return err
    if task.ptrace:
        return -errno.EPERM
    ptrace_link(tracer, task, PT_PTRACED | (PT_SEIZED if seize else 0))
    if not seize:
        send_signal(k, None, task, SIGSTOP, shared=True)
    if task.state == 'T':
        # a group-stopped thread becomes a traced stop the tracer can wait for (JOBCTL_TRAP_STOP)
        task.state = 't'
        task.ptrace_code = task.group.stop_code or SIGSTOP
        do_notify_parent_cldstop(k, task, True, CLD_TRAPPED, task.ptrace_code)
    return 0


def ptrace_traceme(task):
    """PTRACE_TRACEME: the parent becomes the tracer; -EPERM if already traced or the parent is
    outside the machine."""
    parent = task.real_parent
    if task.ptrace or parent is None or parent.exited:
        return -errno.EPERM
    ptrace_link(parent, task, PT_PTRACED)
    return 0


def ptrace_unlink(k, task, sig):
    """__ptrace_unlink: the tracer lets go; a thread in a ptrace stop goes on (taking sig, unless 0),
    or back to its process's group stop."""
    tracer = task.tracer
    task.ptrace = 0
    task.tracer = None
    if tracer is not None and task in tracer.ptraced:
        tracer.ptraced.remove(task)
    if task.state != 't':
        return
    task.ptrace_code = 0
    if task.group.stopped:
        task.state = 'T'
        return
    task.ptrace_deliver = sig
    k.sched.resume(task, k.now())


def ptrace_detach(k, task, data):
    """PTRACE_DETACH: stop tracing; the thread resumes with signal `data` (-EIO if not a signal)."""
    if not valid_signal(data):
        return -errno.EIO
    ptrace_unlink(k, task, data)
    return 0


def ptrace_resume(k, task, data):
    """PTRACE_CONT: the stopped thread runs again, taking signal `data` (0: none; -EIO if invalid)."""
    if not valid_signal(data):
        return -errno.EIO
    task.ptrace_code = 0
    task.ptrace_deliver = data
    k.sched.resume(task, k.now())
    return 0


def ptrace_check_attach(tracer, task, ignore_state=False):
    """The caller traces task and it is in a ptrace stop (unless ignore_state): 0, or -ESRCH."""
    if not task.ptrace or task.tracer is not tracer or task.exited:
        return -errno.ESRCH
    if not ignore_state and task.state != 't':
        return -errno.ESRCH
    return 0


def ptrace_access_vm(tracer, task, addr, data=None, length=0, gup_flags=FOLL_FORCE):
    """ptrace_access_vm: the tracee's memory through access_remote_vm: the bytes read or the count
    written, nothing if the caller does not trace it or may no longer (not dumpable)."""
    mm = task.mm
    if mm is None or not task.ptrace or task.tracer is not tracer:
        return b'' if data is None else 0
    if get_dumpable(mm) != SUID_DUMP_USER and not ptracer_capable(tracer):
        return b'' if data is None else 0
    return access_remote_vm(mm, addr, data, length, gup_flags)


def ptrace_readdata(tracer, task, addr, length):
    """Read length bytes of the tracee at addr: the bytes it could (short at a page it cannot get)."""
    return ptrace_access_vm(tracer, task, addr, None, length)


def ptrace_event_exec(k, task):
    """After a successful execve a thread traced the legacy way (ATTACH, TRACEME; not SEIZE) gets
    SIGTRAP, so its tracer sees the new program stopped before its first instruction."""
    if task.ptrace and not task.ptrace & PT_SEIZED:
        send_signal(k, task, task, SIGTRAP, SI_USER)


def exit_ptrace(k, tracer):
    """exit_ptrace: an ending tracer detaches every thread it traces."""
    for task in list(tracer.ptraced):
        ptrace_unlink(k, task, task.ptrace_code)


def ptrace_tracee_exit(k, task):
    """A traced thread ends: it leaves its tracer's list, whose waiters look again."""
    tracer = task.tracer
    if tracer is None:
        return
    if task in tracer.ptraced:
        tracer.ptraced.remove(task)
    task.tracer, task.ptrace = None, 0
