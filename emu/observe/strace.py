"""`faultlab run --strace` (or --strace-file FILE): a system-call log in strace's format, from the kernel's
tracepoints.

One line per system call as `strace -f -s 32` prints it (the argument decoders are in strace_decode.py),
children and threads always followed, with `[pid N] ` prefixes while more than one task lives;
`--- SIGSEGV {...} ---` for the signal of a fault, `+++ exited with N +++` and `+++ killed by SIG +++`
when a task ends. A line is written when its call returns: a call that slept (wait4, futex, read on
a pipe) is written whole once it is woken, where strace writes `<unfinished ...>` and `<... resumed>`.
With faults=True the page faults between the calls are written too, in a syntax of their own
(`--- page fault at 0x... (write, minor, do_anonymous_page) ---`); time='t', 'tt' or 'r' prefixes the
simulated time of day (strace -t, or -tt with microseconds) or the time since the previous line
(strace -r); a call's time is when it was made.

Signals sent by kill, tgkill, sigqueue, timers and a child's end (SIGCHLD) are written as strace
writes them (`--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=2, ...} ---`), after the
call the receiving thread is in (strace shows a signal where the thread takes it), every signal but
SIGKILL (a traced thread ignores none). What it cannot show: the program's first execve (the loader
runs before the tracer sees a call); a blocked signal's line comes when it is sent, not when it is
unblocked.
A call that slept gets its result at the sched_wakeup tracepoint.
"""
import sys

from faultlab.kernel.syscalls import SYSCALL_NAMES
from faultlab.kernel.tracepoints import SIGKILL, Tracepoints, access_str, siginfo_kill
from faultlab.observe.strace_decode import Decoder, entry_snapshot, format_call, format_exit, format_ret, \
    format_signal, format_siginfo, pointer, s64, sigset

ERESTARTSYS = 512
# what strace shows for a sleeping call a fatal signal ended (the kernel's restart code, which the
# signal's delivery then acts on): ERESTARTNOHAND for the calls that wait for a signal,
# ERESTART_RESTARTBLOCK for the sleeps, ERESTARTSYS for the rest (kernel/signal.c, fs/select.c,
# kernel/time/hrtimer.c)
RESTART_NOHAND = ('pause', 'rt_sigsuspend', 'poll', 'ppoll', 'select', 'pselect6', 'epoll_wait', 'epoll_pwait',
                  'epoll_pwait2')
RESTART_BLOCK = ('nanosleep', 'clock_nanosleep')
NORETURN = ('exit', 'exit_group')
ARGV_MAX = 32            # strace prints at most this many argv elements before `...`
ENV_MAX = 4096           # the environment's strings counted at most
# where the signal handler's return finds uc_sigmask: struct rt_sigframe (arch/x86/include/asm/sigframe.h)
# is pretcode, then struct ucontext (uc_flags, uc_link, uc_stack, uc_mcontext, uc_sigmask); the
# handler's ret popped pretcode, so the stack pointer is at uc: 8 + 8 + 24 + 256 bytes to the mask
SIGFRAME_MASK_OFF = 296


class Call:
    """One system call in progress: who made it, its number and arguments, what was read at its entry."""
    __slots__ = ('task', 'nr', 'args', 'entry', 't0', 'restart')

    def __init__(self, task, nr, args, entry, t0):
        self.task = task
        self.nr = nr
        self.args = args
        self.entry = entry        # the line's text read at entry (execve), or {address: bytes} of its inputs
        self.t0 = t0              # simulated ns when it was made
        self.restart = False      # a signal ended its sleep with -ERESTARTSYS: the syscall runs again


class StraceLog(Tracepoints):
    """The tracer behind --strace: writes strace's lines to out as the calls return."""

    def __init__(self, out, faults=False, time=None, owns_out=False):
        self.out = out
        self.owns_out = owns_out         # close out with the log (a file of its own, not stderr)
        self.faults = faults
        self.time = time                 # None, 't' / 'tt' (simulated time of day) or 'r' (relative)
        self.pending = {}                # tid -> the Call in progress
        self.blocked = {}                # tid -> the Call that sleeps
        self.tasks = {}                  # tid -> Task: the tasks seen whose end is not written yet
        self.ended = set()
        self.ntasks = 0                  # len(kernel.tasks) at the last look for new ones
        self.exit_args = {}              # tid -> the status a thread gave exit()
        self.signals = {}                # tid -> [(sig, `--- SIG... ---` line)] sent, not yet taken
        self.last_ns = None

    # ---- tracepoints ------------------------------------------------------------------------------
    def syscall_entry(self, kernel, task, nr):
        self._poll(kernel)
        self._see(task)
        call = self.blocked.pop(task.tid, None)
        if call is not None and call.restart and call.nr == nr:
            self.pending[task.tid] = call     # the call runs again after -ERESTARTSYS: still the same line
            return
        if call is not None:
            self._emit_call(kernel, call, None)     # its result went by unseen
        self._take_signals(kernel, task)
        g = kernel.cpu.gpr
        args = tuple(g[i] for i in (7, 6, 2, 10, 8, 9))
        name = SYSCALL_NAMES.get(nr)
        at_entry = ENTRY_DECODERS.get(name)
        pre = at_entry(task, args, g[4]) if at_entry is not None else entry_snapshot(name, args, task.umem.read)
        self.pending[task.tid] = Call(task, nr, args, pre, kernel.now_ns())

    def syscall_exit(self, kernel, task, nr, ret):
        call = self.pending.pop(task.tid, None)
        if call is None:
            return
        if ret is None and not task.exited:
            self.blocked[task.tid] = call
        else:
            # exit and exit_group do not return (strace's `= ?`); a call that killed its own caller
            # (a signal to itself) did return before the signal acted, as strace shows
            noreturn = SYSCALL_NAMES.get(nr) in NORETURN or (task.exited and SYSCALL_NAMES.get(nr) == 'execve')
            self._emit_call(kernel, call, None if noreturn else s64(ret))
        self._poll(kernel)

    def page_fault_entry(self, kernel, rip, address, error_code):
        self._poll(kernel)

    def page_fault_exit(self, kernel, rip, address, error_code, info):
        self._poll(kernel)
        task = kernel.current
        self._see(task)
        if task is not None:
            self._take_signals(kernel, task)
        if self.faults:
            what = [access_str(error_code), info.outcome]
            if info.handler:
                what.append(info.handler)
            if info.nowait:
                what.append('nowait')
            self._line(kernel, task, '--- page fault at %#x (%s) ---' % (address, ', '.join(what)))

    def sched_process_exit(self, kernel, task):
        self._poll(kernel)

    def sched_wakeup(self, kernel, task, ret):
        self._poll(kernel)      # the woken call's result is in wake_ret until the task is switched in

    def signal_generate(self, kernel, task, sig, si_code, addr):
        self._poll(kernel)
        self._see(task)
        self._line(kernel, task, format_signal(sig, si_code, addr))

    def signal_send(self, kernel, sender, task, sig, code, info, shared):
        """A signal sent by kill, tgkill, sigqueue, a timer or a child's end: strace shows it where the
        thread takes it, after the call it is in (a sleeping wait4 that the child's SIGCHLD ends), or
        now. SIGKILL has no line (strace sees only the death)."""
        if sig == SIGKILL:
            return
        self._poll(kernel)
        self._see(task)
        if info is None:
            info = siginfo_kill(sig, 0x80 if sender is None else code, sender.tgid if sender is not None else 0)
        self.signals.setdefault(task.tid, []).append((sig, format_siginfo(info)))

    def _take_signals(self, kernel, task):
        """The thread goes back to user mode: the signals sent to it that it does not block are taken
        (get_signal), each written as strace writes it."""
        queued = self.signals.get(task.tid)
        if not queued:
            return
        keep = []
        for sig, line in queued:
            if task.sigmask >> (sig - 1) & 1:
                keep.append((sig, line))
            else:
                self._line(kernel, task, line)
        if keep:
            self.signals[task.tid] = keep
        else:
            del self.signals[task.tid]

    def close(self, kernel):
        """The run is over: the calls still asleep and the ends not yet written."""
        self._poll(kernel)
        for tid in list(self.blocked):
            call = self.blocked.pop(tid)
            self._emit_call(kernel, call, None)
        for task in [t for t in self.tasks.values() if t.exited]:
            self._report_end(kernel, task)
        if self.owns_out:
            self.out.close()
        else:
            self.out.flush()

    # ---- the log ----------------------------------------------------------------------------------
    def _see(self, task):
        if task is not None and task.tid not in self.tasks and task.tid not in self.ended:
            self.tasks[task.tid] = task

    def _poll(self, kernel):
        """Tasks that ended, then calls whose sleepers were woken (their result waits in wake_ret)."""
        if len(kernel.tasks) != self.ntasks:
            self.ntasks = len(kernel.tasks)
            for task in kernel.tasks.values():
                if task.tid not in self.ended:
                    self._see(task)
        for task in [t for t in self.tasks.values()
                     if t.exited and t.tid not in self.pending and t.tid not in self.blocked]:
            self._report_end(kernel, task)
        for tid in list(self.blocked):
            call = self.blocked[tid]
            task = call.task
            if task.exited or task.group.kill_origin is not None:
                del self.blocked[tid]
                self._emit_call(kernel, call, None, killed=True)
            elif task.wake_ret == -ERESTARTSYS:
                call.restart = True
            elif task.wake_ret is not None:
                del self.blocked[tid]
                self._emit_call(kernel, call, s64(task.wake_ret))

    def _report_end(self, kernel, task):
        if task.tid in self.ended:
            return
        group = task.group
        killed = group.killed_by[0] if group.killed_by else 0
        code = group.exit_code if group.group_exit or task is group.leader else self.exit_args.get(task.tid, 0)
        fatal = group.killed_by[0] if group.killed_by and group.killed_by[0] != SIGKILL else 0
        for sig, line in self.signals.pop(task.tid, ()):   # a dead thread takes no more, but the one that
            if sig == fatal:                                 # killed it (strace sees its delivery)
                self._line(kernel, task, line)
        self._line(kernel, task, format_exit(killed, code & 0xff))
        self.ended.add(task.tid)
        self.tasks.pop(task.tid, None)

    def _emit_call(self, kernel, call, ret, killed=False):
        """Write a call's line. killed: a fatal signal ended its sleep: ` = ?` for SIGKILL, the kernel's
        restart code for another signal (which strace sees before the signal's delivery kills)."""
        task = call.task
        name = SYSCALL_NAMES.get(call.nr, 'syscall_%#x' % call.nr)
        if name == 'exit':
            self.exit_args[task.tid] = call.args[0] & 0xff
        if isinstance(call.entry, str):
            head, tail = call.entry, format_ret(name, ret)
        else:
            head, tail = format_call(name, call.args, ret, task.umem.read, snap=call.entry)
        fatal = task.group.killed_by[0] if task.group.killed_by else SIGKILL
        if killed and fatal == SIGKILL:
            tail = '?'
        elif killed:
            tail = ('? ERESTARTNOHAND (To be restarted if no handler)' if name in RESTART_NOHAND else
                    '? ERESTART_RESTARTBLOCK (Interrupted by signal)' if name in RESTART_BLOCK else
                    '? ERESTARTSYS (To be restarted if SA_RESTART is set)')
        self._line(kernel, task, head, tail, call.t0)
        if not task.exited:
            self._take_signals(kernel, task)
        if task.exited:
            self._report_end(kernel, task)

    def _line(self, kernel, task, text, ret=None, ns=None):
        """One line: the time (a call's: when it was made), the pid prefix, the text; a call's result aligned
        at column 40 as strace does."""
        line = self._stamp(kernel.now_ns() if ns is None else ns) if self.time else ''
        if self._multi():
            line += '[pid %5d] ' % task.tid
        line += text
        if ret is not None:
            line = '%-39s = %s' % (line, ret)
        self.out.write(line + '\n')

    def _multi(self):
        """strace -f's rule: the pid prefix while more than one traced task is alive."""
        return len(self.tasks) > 1

    def _stamp(self, ns):
        """strace -r's seconds since the previous line, or -t's / -tt's time of day, in simulated time."""
        if self.time == 'r':
            rel = 0 if self.last_ns is None else max(0, ns - self.last_ns)
            self.last_ns = ns
            return '%6d.%06d ' % (rel // 10**9, rel // 1000 % 10**6)
        s = ns // 10**9
        day = '%02d:%02d:%02d' % (s // 3600 % 24, s // 60 % 60, s % 60)
        return day + ('.%06d ' % (ns // 1000 % 10**6) if self.time == 'tt' else ' ')


def sigreturn_text(task, args, sp):
    """rt_sigreturn({mask=[...]}): the mask the frame at the stack pointer restores (read before it does)."""
    data = task.umem.read(sp + SIGFRAME_MASK_OFF, 8)
    return 'rt_sigreturn({mask=%s})' % (sigset(int.from_bytes(data, 'little')) if data else '?')


def execve_text(task, args, sp):
    """execve's call as strace prints it, read at entry (a successful call replaces the memory)."""
    d = Decoder(task.umem.read)
    argv = [d.cstr(p) for p in d.pointers(args[1], ARGV_MAX + 1)]
    if len(argv) > ARGV_MAX:
        argv = argv[:ARGV_MAX] + ['...']
    envc = len(d.pointers(args[2], ENV_MAX))
    return 'execve(%s, [%s], %s /* %d vars */)' % (d.path(args[0]), ', '.join(argv), pointer(args[2]), envc)


ENTRY_DECODERS = {'execve': execve_text, 'rt_sigreturn': sigreturn_text}


def strace_equals_form(argv):
    """argv with `--strace=FILE` spelled `--strace-file FILE` (strace's own -o FILE), up to a `--`: the
    option stays a flag, so `--strace PROGRAM` does not take the program for its file."""
    out = []
    for n, arg in enumerate(argv):
        if arg == '--':
            return out + list(argv[n:])
        if arg.startswith('--strace='):
            out += ['--strace-file', arg[len('--strace='):]]
        else:
            out.append(arg)
    return out


def open_strace(path, faults=False, time=None):
    """A StraceLog writing to stderr (path None or '-') or to the file path (OSError for a bad path)."""
    if path in (None, '', '-'):
        return StraceLog(sys.stderr, faults, time)
    return StraceLog(open(path, 'w'), faults, time, owns_out=True)
