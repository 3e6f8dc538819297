"""The system-call table: Linux x86-64 numbers, dispatch, and the ENOSYS path.

Handlers are registered with @syscall(nr, name) and called as handler(kernel, task, a0..a5); they
return the value for RAX (negative errno on failure).
"""
import errno

from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.mm.userfaultfd_events import userfaultfd_event_wait_completion
from faultlab.kernel.mm.userfaultfd_k import UserfaultRetry
from faultlab.kernel.sigframe import do_signal

SYSCALLS = {}
# names of calls we know but do not implement (for the one-time warning)
KNOWN_NAMES = {
    7: 'poll', 15: 'rt_sigreturn', 22: 'pipe', 23: 'select', 29: 'shmget', 30: 'shmat', 31: 'shmctl',
    34: 'pause', 37: 'alarm', 38: 'setitimer', 41: 'socket', 42: 'connect', 43: 'accept', 44: 'sendto',
    45: 'recvfrom', 56: 'clone', 57: 'fork', 58: 'vfork', 59: 'execve', 61: 'wait4', 62: 'kill',
    101: 'ptrace', 149: 'mlock', 150: 'munlock', 151: 'mlockall', 152: 'munlockall', 157: 'prctl',
    200: 'tkill', 203: 'sched_setaffinity', 204: 'sched_getaffinity', 213: 'epoll_create', 232: 'epoll_wait',
    234: 'tgkill', 272: 'unshare', 290: 'eventfd2', 293: 'pipe2', 324: 'membarrier', 325: 'mlock2',
    332: 'statx', 334: 'rseq', 435: 'clone3',
}
SYSCALL_NAMES = dict(KNOWN_NAMES)
MASK64 = (1 << 64) - 1


def s32(v):
    """A register argument read as a C int."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & (1 << 31) else v


def s64(v):
    """A register argument read as a C long."""
    return v - (1 << 64) if v & (1 << 63) else v


def syscall(nr, name):
    """Register a handler for system call number nr."""
    def deco(fn):
        SYSCALLS[nr] = fn
        SYSCALL_NAMES[nr] = name
        fn.sysname = name
        return fn
    return deco


def dispatch(kernel, task):
    """Entry from the CPU's syscall hook: read the arguments, run the handler, set RAX."""
    g = kernel.cpu.gpr
    nr = g[0]
    tr = kernel.tracer
    if tr is not None:
        tr.syscall_entry(kernel, task, nr)
    kernel.run_events()
    kernel.charge('syscall_entry')
    kernel.charge('syscall_dispatch')
    kernel.stats['syscalls'] += 1
    handler = SYSCALLS.get(nr)
    if handler is None:
        name = SYSCALL_NAMES.get(nr)
        kernel.warn_once(('nosys', nr), 'unimplemented system call %s (nr %d) returns -ENOSYS'
                         % (name or 'unknown', nr) if name else
                         'unknown system call number %d returns -ENOSYS' % nr)
        ret = -errno.ENOSYS
    else:
        args = (g[7], g[6], g[2], g[10], g[8], g[9])
        task.restartable = False
        task.in_syscall = True
        try:
            ret = handler(kernel, task, *args)
        except UserfaultRetry:
            ret = BLOCKED                   # asleep in handle_userfault: woken, the call runs again
        except MemoryError:
            # no frame for a page table (pte_alloc failed) in the middle of the call: Linux's -ENOMEM
            kernel.warn_once(('enomem', nr), '%s: out of memory for page tables, returns -ENOMEM' % handler.sysname)
            ret = -errno.ENOMEM
        except Exception as e:
            # never silently: the run ends with the syscall, its arguments and where the kernel failed
            from faultlab.kernel.debug.oops import oops
            raise oops('syscall %s(%s) [nr %d] at rip=%#x' % (handler.sysname, ', '.join('%#x' % a for a in args),
                                                             nr, kernel.cpu.rip), e) from e
        finally:
            task.in_syscall = False
    if ret is not BLOCKED and getattr(task, 'uffd_events', None):
        ret = userfaultfd_event_wait_completion(kernel, task, ret)    # sleeps until they are read
    if ret is BLOCKED:
        task.syscall_nr = nr            # orig_ax: what a restart runs again
    elif not task.exited:
        g[0] = ret & MASK64
    kernel.charge('syscall_exit')
    kernel.run_events()
    if tr is not None:
        tr.syscall_exit(kernel, task, nr, None if ret is BLOCKED else ret)
    if ret is not BLOCKED and not task.exited and task.sig_restore is None and \
            (task.pending_signals or task.group.shared_pending or task.saved_sigmask is not None):
        do_signal(kernel, task, True)
    kernel.sched.check_preempt()


# register the handlers
from faultlab.kernel.syscalls import mm as _mm, proc as _proc, fs as _fs, thread as _thread, timer as _timer, \
    poll as _poll   # noqa: E402,F401
from faultlab.kernel.syscalls import cred, prctl, rusage, statfs, pgrp, priority, mempolicy, pkeys, pidfd   # noqa: E402,F401
from faultlab.kernel.syscalls import ipc as _ipc, mount as _mount   # noqa: E402,F401
from faultlab.kernel.syscalls import net as _net   # noqa: E402,F401
from faultlab.kernel.syscalls import fsattr as _fsattr   # noqa: E402,F401
from faultlab.kernel.syscalls import waitid as _waitid   # noqa: E402,F401
from faultlab.kernel.syscalls import statx as _statx, xattr as _xattr, fchdir as _fchdir, close_range as _close_range, \
    copy_file_range as _copy_file_range   # noqa: E402,F401
from faultlab.kernel.syscalls import secretmem as _secretmem   # noqa: E402,F401
from faultlab.kernel.syscalls import splice as _splice   # noqa: E402,F401
from faultlab.kernel.syscalls import io_uring as _io_uring   # noqa: E402,F401
from faultlab.kernel.syscalls import eventfd as _eventfd, epoll as _epoll   # noqa: E402,F401
from faultlab.kernel.syscalls import userfaultfd as _userfaultfd   # noqa: E402,F401
