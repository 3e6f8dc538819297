"""The system-call entry (Linux's do_syscall_64): read the arguments, run the handler, set RAX,
deliver signals on the way out. The handlers are found in the registry's table."""
import errno

from faultlab.kernel.debug.oops import oops
from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.host_hint import enoent_host_hint
from faultlab.kernel.mm.userfaultfd_events import userfaultfd_event_wait_completion
from faultlab.kernel.mm.userfaultfd_k import UserfaultRetry
from faultlab.kernel.sigframe import do_signal
from faultlab.kernel.syscalls.registry import MASK64, SYSCALL_NAMES, SYSCALLS


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
            raise oops('syscall %s(%s) [nr %d] at rip=%#x' % (handler.sysname, ', '.join('%#x' % a for a in args),
                                                             nr, kernel.cpu.rip), e) from e
        finally:
            task.in_syscall = False
        if ret == -errno.ENOENT:
            enoent_host_hint(kernel, task, nr, args, ret)       # a host path the guest cannot see: --mount
    if ret is not BLOCKED and getattr(task, 'uffd_events', None):
        ret = userfaultfd_event_wait_completion(task, ret)    # sleeps until they are read
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
