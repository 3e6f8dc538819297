"""struct task_struct: one thread of a process, with what it shares (mm, files, signal handlers)."""
from faultlab.kernel.cred import INIT_CRED
from faultlab.kernel.wait import WaitQueue


class ThreadGroup:
    """struct signal_struct: what the threads of one process share about its life and end."""

    def __init__(self, leader):
        self.leader = leader
        self.threads = [leader]
        self._scanned_list, self._scanned, self._live = None, 0, []     # live_threads' cache
        self.group_exit = False
        self.exit_code = 0
        self.killed_by = None
        self.children = []           # child processes (ThreadGroup) for wait4
        self.parent = None
        self.reaped = False
        self.itimer_real = None      # ITIMER_REAL: (expiry in cycles, interval in cycles, arming number)
        self.shared_pending = 0      # process-directed signals (kill, sigqueue, timers) not yet taken
        self.shared_info = {}        # signal -> its 128-byte siginfo
        self.kill_origin = None      # who sent the SIGKILL the process has yet to act on
        self.itimer_seq = 0
        # process group and session: the first process's are those of whoever started it, outside the
        # guest's pid namespace, which read as 0 there (pid_vnr); fork copies them
        self.pgrp = self.session = 0
        self.session_leader = False
        self.wait_pidfd = WaitQueue()  # struct pid's wait_pidfd: pollers of its pidfds, woken as threads exit
        # job control (SIGNAL_STOP_STOPPED, group_exit_code, SIGNAL_STOP_CONTINUED): the process is
        # group-stopped, by which signal (0 once a wait reported it), resumed by SIGCONT and not yet
        # reported to a WCONTINUED wait
        self.stopped = False
        self.stop_code = 0
        self.continued = False

    def live_threads(self):
        """The threads that have not exited, in order. A thread never comes back from exit, so only
        those live at the last call and those added since are looked at (a process that created
        thousands of threads does not pay for its dead ones)."""
        threads = self.threads
        if self._scanned_list is not threads:          # de_thread replaced the list
            self._scanned_list, self._scanned, self._live = threads, 0, []
        live = [t for t in self._live if not t.exited]
        live += [t for t in threads[self._scanned:] if not t.exited]
        self._scanned, self._live = len(threads), live
        return list(live)

    @property
    def exited(self):
        return not self.live_threads()


class Task:
    """A guest thread (the leader of a process is its first thread)."""

    def __init__(self, pid, mm, files, umem, exe_path, cwd='/'):
        self.pid = pid
        self.tid = pid
        self.tgid = pid
        self.ppid = 1
        self.mm = mm
        self.files = files
        self.umem = umem
        self.exe_path = exe_path
        self.cwd = cwd
        self.comm = exe_path.rsplit('/', 1)[-1][:15]
        self.umask = 0o022
        self.exited = False
        self.exit_code = 0
        self.killed_by = None        # (signal, report) when a signal ended the task
        self.clear_child_tid = 0
        self.robust_list = (0, 0)
        self.sigactions = {}
        self.sigmask = 0
        self.symbols = []            # [(start, size, name)] with the load bias applied
        self.rlimits = {}
        self.minflt = 0
        self.majflt = 0
        self.group = ThreadGroup(self)
        self.state = 'R'             # R runnable/running, S sleeping, D uninterruptible, Z exited,
                                     # T group-stopped (SIGSTOP), t stopped by its tracer (ptrace)
        self.ctx = None              # saved registers while not on the core
        self.wake_ret = None         # the blocked syscall's return value, set by whoever wakes it
        self.ready_at = 0            # simulated time it became runnable
        self.lock_sleep = None       # a sleep on a kernel lock in the current trap (Scheduler.lock_sleep)
        self.lock_debt = 0           # kernel cycles it still owes after such a sleep gave its CPU away
        self.wake_latency = 0        # what waking its halted CPU costs when it is placed on one
        self.waiting_on = None       # what it sleeps on (for deadlock reports)
        self.wait_obj = None         # the objects whose change wakes it (pipes), a tuple
        self.restart_deadline = None # poll/select restarted after a wake-up keep their first deadline
        self.exit_signal = 0
        self.vfork_child = None      # the child process a vfork parent waits for
        self.wait_for = None         # while sleeping in wait4/waitid: retry() -> its result, None to sleep on
        self.pending_signals = 0     # thread-directed signals not yet delivered (or blocked)
        self.saved_sigmask = None    # rt_sigsuspend: the mask its handler's frame restores
        self.sigwait = None          # rt_sigtimedwait in progress: (signal set, siginfo address)
        self.sig_info = {}           # signal -> the 128-byte siginfo its handler gets (kill, tgkill, sigqueue)
        self.sig_fault = {}          # signal -> (si_code, si_addr) of a synchronous fault being delivered
        self.sig_frames = []         # [(frame address, saved core context or None)] of running handlers
        self.sig_restore = None      # rt_sigreturn's registers, applied when the core leaves the call
        self.sas = (0, 0, 0)         # sigaltstack: (ss_sp, ss_size, SS_AUTODISARM or 0); size 0: none
        self.restartable = False     # the sleep in progress returns -ERESTARTSYS when a signal ends it
        self.syscall_nr = -1         # the system call a sleeping task is in (orig_ax, for restarting it)
        self.sleep_seq = 0           # numbers timed sleeps, so that a stale timer wakes nothing
        self.sleep_until = 0         # a timed sleep's end (cycles) and nanosleep's rem pointer
        self.sleep_rem = 0
        self.cred = INIT_CRED        # struct cred (kernel/cred.py), shared until one of them changes it
        self.no_new_privs = False
        self.pdeath_signal = 0
        self.real_parent = None      # the thread that created this process (None: outside the guest)
        self.nice, self.policy, self.rt_priority = 0, 0, 0     # setpriority / sched_setscheduler
        self.ptrace = 0              # PT_PTRACED (and PT_SEIZED) while a tracer has it (kernel/ptrace.py)
        self.tracer = None           # the tracing thread (task->parent while traced)
        self.ptraced = []            # the threads this one traces
        self.ptrace_code = 0         # task->exit_code in a ptrace stop: the signal reported, then the resume's
        self.ptrace_deliver = 0      # the signal its tracer let through: delivered without stopping again
        self.jobctl_stop = False     # JOBCTL_STOP_PENDING: take part in its process's group stop

    def set_comm(self, name):
        """__set_task_comm: the thread's name from bytes, at most TASK_COMM_LEN - 1 (15) of them."""
        self.comm = name[:15].decode('utf-8', 'replace')
