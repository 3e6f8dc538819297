"""Signal numbers and si_code names as Linux x86-64 defines them; the pending sets and what a
signal's disposition is; who may signal whom (kernel/signal.c check_kill_permission); a default fatal
action ending a process."""
import errno
import struct

from faultlab.kernel.capability import CAP_KILL, capable
from faultlab.kernel.futex import cancel_wait

SIG_DFL, SIG_IGN = 0, 1
SIGTRAP, SIGKILL, SIGCHLD, SIGCONT, SIGSTOP = 5, 9, 17, 18, 19
SIG_KERNEL_STOP = {19, 20, 21, 22}           # SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU: default action stops
SI_USER, SI_TKILL, SI_KERNEL = 0, -6, 0x80
ERESTARTSYS = 512                         # kernel-internal: restart the call if the handler allows it
IGNORED_BY_DEFAULT = {17, 18, 23, 28}          # SIGCHLD, SIGCONT, SIGURG, SIGWINCH
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))

SIGNAL_NAMES = {1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS',
                8: 'SIGFPE', 9: 'SIGKILL', 10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE',
                14: 'SIGALRM', 15: 'SIGTERM', 16: 'SIGSTKFLT', 17: 'SIGCHLD', 18: 'SIGCONT', 19: 'SIGSTOP',
                20: 'SIGTSTP', 21: 'SIGTTIN', 22: 'SIGTTOU', 23: 'SIGURG', 24: 'SIGXCPU', 25: 'SIGXFSZ',
                26: 'SIGVTALRM', 27: 'SIGPROF', 28: 'SIGWINCH', 29: 'SIGIO', 30: 'SIGPWR', 31: 'SIGSYS'}

# siginfo si_code names by (signal, code) (include/uapi/asm-generic/siginfo.h)
SI_CODE_NAMES = {(11, 1): 'SEGV_MAPERR', (11, 2): 'SEGV_ACCERR', (11, 3): 'SEGV_BNDERR', (11, 4): 'SEGV_PKUERR',
                 (7, 1): 'BUS_ADRALN', (7, 2): 'BUS_ADRERR', (7, 3): 'BUS_OBJERR', (7, 4): 'BUS_MCEERR_AR',
                 (4, 1): 'ILL_ILLOPC', (4, 2): 'ILL_ILLOPN', (8, 1): 'FPE_INTDIV', (5, 1): 'TRAP_BRKPT'}


def siginfo_kill(sig, code, pid, uid=0):
    """A siginfo of the kill kind (si_signo, si_errno, si_code, si_pid, si_uid), 128 bytes."""
    return struct.pack('<iiiiii', sig, 0, code, 0, pid, uid).ljust(128, b'\0')


def pending_set(task):
    """The signals pending for the thread: its own and its process's (shared_pending)."""
    return task.pending_signals | task.group.shared_pending


def next_signal(task, mask=None):
    """The lowest pending signal the thread does not block (or in `mask`), or 0."""
    ready = pending_set(task) & (~task.sigmask if mask is None else mask)
    return (ready & -ready).bit_length() if ready else 0


def dequeue_signal(task, sig):
    """Take sig off the thread's pending set, else off its process's; returns its siginfo (or None)."""
    bit = 1 << (sig - 1)
    if task.pending_signals & bit:
        task.pending_signals &= ~bit
        return task.sig_info.pop(sig, None)
    group = task.group
    group.shared_pending &= ~bit
    return group.shared_info.pop(sig, None)


def handler_of(task, sig):
    """(handler address or SIG_DFL/SIG_IGN, sa_flags) of sig."""
    act = task.sigactions.get(sig)
    return struct.unpack_from('<QQ', act) if act else (SIG_DFL, 0)


def ignored(task, sig):
    handler, _flags = handler_of(task, sig)
    return handler == SIG_IGN or (handler == SIG_DFL and sig in IGNORED_BY_DEFAULT)


def sigkill_pending(group):
    """SIGKILL has been sent to the process and it has not ended yet (signal_group_exit)."""
    return bool(group.shared_pending & (1 << (SIGKILL - 1))) and not group.exited


def kill_ok_by_cred(sender, target):
    """The sender's real or effective uid is the target's real or saved uid, or it has CAP_KILL."""
    c, tc = sender.cred, target.cred
    return (c.euid in (tc.suid, tc.uid) or c.uid in (tc.suid, tc.uid)
            or capable(sender, CAP_KILL))


def check_kill_permission(sender, target, sig):
    """May a user's signal (kill, tkill, sigqueue; signal 0 too) from sender reach target? 0, or
    -EPERM for another process the sender's ids do not match, unless it is SIGCONT within the
    sender's session."""
    if sender is None or sender.tgid == target.tgid or kill_ok_by_cred(sender, target):
        return 0
    if sig == SIGCONT and target.group.session == sender.group.session:
        return 0
    return -errno.EPERM


def kill_process(k, target, sig, origin):
    """A signal's default action ends target's process (every thread), with a report."""
    for th in target.group.live_threads():
        cancel_wait(k, th)
    if sig == SIGKILL and target.group.kill_origin:
        origin = target.group.kill_origin          # sent earlier, acted on as the process ran again
    k.do_group_exit(target, 0, (sig, '%s %s to %s[%d]' % (SIGNAL_NAMES.get(sig, sig), origin, target.comm,
                                                          target.tid)))
