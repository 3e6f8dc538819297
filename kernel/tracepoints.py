"""Tracepoints: where the kernel tells an optional observer what it does (like Linux's trace events).

`kernel.tracer` (and `blockdev.tracer`) is None by default: every call site tests it and does nothing
else, so tracing costs nothing unless a tool attaches one (`Kernel.set_tracer`). An observer
subclasses `Tracepoints` and overrides what it needs; `TracepointTee` fans out to several.
Times are simulated cycles of the current CPU's clock (`kernel.now()`).

  page_fault_entry(kernel, rip, address, error_code)     #PF taken, before any kernel work
  page_fault_exit(kernel, rip, address, error_code, info) #PF handled; info: FaultInfo
  syscall_entry(kernel, task, nr)                         after the syscall instruction trapped
  syscall_exit(kernel, task, nr, ret)                     before returning to user mode
  signal_generate(kernel, task, sig, si_code, addr)       a fault or an exception sends task a signal
  signal_send(kernel, sender, task, sig, code, info, shared)  send_signal generates sig for task (kill,
                                                          tgkill, SIGCHLD, timers; sender None: the kernel;
                                                          info the 128-byte siginfo or None for code's)
  sched_process_fork(kernel, parent, child)               kernel_clone made child (a process or a thread)
  sched_process_exec(kernel, task, old_tid)               execve replaced task's program (task.comm is new)
  task_rename(kernel, task, old_comm)                     the thread's name changed (PR_SET_NAME, /proc comm)
  sched_process_exit(kernel, task)                        a thread ended (do_exit: exit, exit_group, a signal)
  wait(kernel, why, start, end)                           the task slept ('io', 'sleep', ...)
  lock_wait(kernel, lock, start, end)                     waited for a kernel lock (e.g. 'mmap_lock')
  block_rq_issue(req)                                     a disk request was queued (times known)

What tracers print comes with them: access_str(error_code) names a fault's access ('read', 'write',
'instruction fetch'), a request's op is READ or WRITE, and SIGNAL_NAMES / SI_CODE_NAMES name signals and their codes;
siginfo_kill(sig, code, pid) is the siginfo signal_send's info=None stands for.
"""
from faultlab.kernel.arch.fault import access_str
from faultlab.kernel.block.request import READ, WRITE
from faultlab.kernel.signal import SI_CODE_NAMES, SIGKILL, SIGNAL_NAMES, siginfo_kill

__all__ = ['FaultInfo', 'Tracepoints', 'TracepointTee', 'access_str', 'READ', 'WRITE', 'SIGNAL_NAMES', 'SI_CODE_NAMES',
           'SIGKILL', 'siginfo_kill']


class FaultInfo:
    """How one page fault ended (what `page_fault_exit` receives)."""
    __slots__ = ('outcome', 'handler', 'nowait', 'ret', 'signal', 'vmf', 'vma', 'reason')

    def __init__(self, outcome, handler, nowait, res):
        self.outcome = outcome        # 'minor', 'major', 'retry', 'fixup', 'signal'
        self.handler = handler        # e.g. 'do_anonymous_page', or None when it failed
        self.nowait = nowait          # FAULT_FLAG_RETRY_NOWAIT (a vDSO prefetch)
        self.ret = res.ret            # VM_FAULT_* flags
        self.signal = res.signal
        self.vmf = res.vmf
        self.vma = res.vma
        self.reason = res.reason


class Tracepoints:
    """An observer that ignores everything; override the hooks you need."""

    def page_fault_entry(self, kernel, rip, address, error_code):
        pass

    def page_fault_exit(self, kernel, rip, address, error_code, info):
        pass

    def syscall_entry(self, kernel, task, nr):
        pass

    def syscall_exit(self, kernel, task, nr, ret):
        pass

    def signal_generate(self, kernel, task, sig, si_code, addr):
        pass

    def signal_send(self, kernel, sender, task, sig, code, info, shared):
        """send_signal generates sig (Linux's signal_generate event, for signals that are not a fault's)."""

    def sched_process_fork(self, kernel, parent, child):
        """kernel_clone created child (CLONE_THREAD: a thread of parent's process)."""

    def sched_process_exec(self, kernel, task, old_tid):
        """execve succeeded: task runs its new program (old_tid: its tid before de_thread)."""

    def task_rename(self, kernel, task, old_comm):
        """__set_task_comm changed the thread's name."""

    def sched_process_exit(self, kernel, task):
        pass

    def sched_wakeup(self, kernel, task, ret):
        """A sleeping task was made runnable; its system call will return ret."""

    def wait(self, kernel, why, start, end):
        pass

    def lock_wait(self, kernel, lock, start, end):
        pass

    def block_rq_issue(self, req):
        pass


class TracepointTee(Tracepoints):
    """Calls every observer in turn."""

    def __init__(self, observers):
        self.observers = list(observers)

    def _fan(name):
        def hook(self, *args):
            for o in self.observers:
                getattr(o, name)(*args)
        hook.__name__ = name
        return hook

    page_fault_entry = _fan('page_fault_entry')
    page_fault_exit = _fan('page_fault_exit')
    syscall_entry = _fan('syscall_entry')
    syscall_exit = _fan('syscall_exit')
    signal_generate = _fan('signal_generate')
    signal_send = _fan('signal_send')
    sched_process_fork = _fan('sched_process_fork')
    sched_process_exec = _fan('sched_process_exec')
    task_rename = _fan('task_rename')
    sched_process_exit = _fan('sched_process_exit')
    sched_wakeup = _fan('sched_wakeup')
    wait = _fan('wait')
    lock_wait = _fan('lock_wait')
    block_rq_issue = _fan('block_rq_issue')
    del _fan
