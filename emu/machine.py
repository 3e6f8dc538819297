"""A whole simulated machine: physical memory, a CPU and the kernel, and the run loop."""
import contextlib
import signal
import threading
import time
from faultlab.core.cpu import Cpu
from faultlab.core.cycles import CostTable
from faultlab.core.physmem import PhysMem
from faultlab.kernel.kernel import Kernel, KernelConfig
from faultlab.kernel.hostlimit import raise_host_limit, clear_host_limit

DEFAULT_RAM = 256 << 20
QUANTUM_INSNS = 20_000_000
SIGKILL = 9


class RunResult:
    """How a run ended: exit status, the fatal report if any, and the counters."""

    def __init__(self, task, stats, stop_reason=None):
        self.exit_code = task.exit_code
        self.killed_by = task.killed_by
        self.stop_reason = stop_reason
        self.stats = stats

    @property
    def report(self):
        if self.stop_reason:
            return self.stop_reason
        return self.killed_by[1] if self.killed_by else None


class Watchdog:
    """--timeout's watchdog: a host thread that, once the deadline has passed, tells the kernel (its long
    loops give up, kernel/hostlimit.py) and stops the CPU, again every STOP_EVERY seconds until the run
    loop notices (a stop that lands between two quanta would otherwise be lost)."""
    STOP_EVERY = 0.05

    def __init__(self, deadline, cpu):
        self.deadline = deadline
        self.cpu = cpu
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, name='faultlab-timeout', daemon=True)

    def __enter__(self):
        clear_host_limit()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        clear_host_limit()

    def _watch(self):
        if self.done.wait(max(0.0, self.deadline - time.monotonic())):
            return
        raise_host_limit()
        while True:
            self.cpu.stop()
            if self.done.wait(self.STOP_EVERY):
                return


class Machine:
    """RAM + CPU + kernel, built from options."""

    def __init__(self, ram=DEFAULT_RAM, costs=None, config=None):
        self.costs = costs or CostTable()
        self.phys = PhysMem(ram)
        self.kernel = None
        self.cpu = Cpu(self.phys, self.costs, self._read_code)
        self.kernel = Kernel(self.phys, self.cpu, self.costs, config or KernelConfig())
        self.cpu.traps = self.kernel
        self.debugger = None        # a GdbStub (emu/gdb/stub.py) when one is attached
        self._interrupted = False

    def interrupt(self):
        """Ask the run loop to raise KeyboardInterrupt before its next quantum (safe from a signal
        handler: a KeyboardInterrupt raised inside a Unicorn callback would be lost), and end the current one."""
        self._interrupted = True
        self.cpu.stop()

    def _read_code(self, va, n):
        return self.kernel.read_code(va, n) if self.kernel is not None else None

    def load(self, program, argv, envp):
        """exec the program as the first task (raises ExecError for a bad executable)."""
        return self.kernel.exec_program(program, argv, envp)

    def run(self, program, argv, envp, max_insns=None, max_sim_seconds=None, wall_timeout=None, wall_start=None):
        """Run the program to completion or a limit (instructions, simulated seconds, host seconds counted
        from wall_start, a time.monotonic() value, by default now)."""
        if not wall_timeout:
            return self._run(program, argv, envp, max_insns, max_sim_seconds, None, None)
        deadline = (time.monotonic() if wall_start is None else wall_start) + wall_timeout
        with Watchdog(deadline, self.cpu):
            return self._run(program, argv, envp, max_insns, max_sim_seconds, wall_timeout, deadline)

    def _run(self, program, argv, envp, max_insns, max_sim_seconds, wall_timeout, deadline):
        task = self.load(program, argv, envp)
        stop_reason = None
        cpu = self.cpu
        kernel = self.kernel
        sched = kernel.sched
        exit_code = 124                            # a limit ended the run (as timeout(1) reports it)
        while not task.group.exited:
            if self._interrupted:
                self._interrupted = False
                raise KeyboardInterrupt
            if self.debugger is not None:
                cur = kernel.current
                # stops are reported for the thread that was running
                self.debugger.before_run(cur if cur is not None and not cur.exited else task)
                if task.group.exited:
                    break
            where = lambda: self._where()
            if max_sim_seconds is not None and kernel.costs.seconds(sched.elapsed()) >= max_sim_seconds:
                stop_reason = ('simulated-time limit reached: %.6f s (--max-sim-time); stopped at %s'
                               % (kernel.costs.seconds(sched.elapsed()), where()))
                break
            if deadline is not None and time.monotonic() >= deadline:
                stop_reason = ('host time limit reached: %.1f s (--timeout); %d instructions executed; '
                               'stopped at %s' % (wall_timeout, cpu.insns, where()))
                break
            budget = QUANTUM_INSNS if deadline is None and max_sim_seconds is None else QUANTUM_INSNS // 20
            if max_insns is not None:
                left = max_insns - cpu.insns
                if left <= 0:
                    stop_reason = ('instruction limit reached: %d instructions executed (--max-insns); '
                                   'stopped at %s' % (cpu.insns, where()))
                    break
                budget = min(budget, left)
            budget = sched.schedule(budget)
            if budget is None and task.group.exited:
                break                              # a timer's signal ended the process while all slept
            if budget is None:
                stop_reason = kernel.report_deadlock()
                exit_code = 128 + SIGKILL          # the threads are killed, as a watchdog would
                break
            cpu.run(budget)
            kernel.run_events()
        if stop_reason is not None:
            task.group.exit_code = task.exit_code = exit_code
        if self.debugger is not None:
            self.debugger.on_exit(task, stop_reason)
        result = RunResult(task, self.kernel.snapshot(), stop_reason)
        self.kernel.save_disk_image()              # --disk-image: the root filesystem kept for the next run
        return result

    def _where(self):
        t = self.kernel.current
        if t is None or t.exited:
            return 'an idle CPU'
        rip = self.cpu.rip
        threads = ' (thread %d)' % t.tid if t.tid != t.tgid else ''
        return 'rip=%#x <%s>%s' % (rip, self.kernel.symbolize(t, rip), threads)


@contextlib.contextmanager
def interrupt_on_sigint(machine):
    """Ctrl-C during a run, taken where the machine is consistent: while this is active (in the main
    thread only, the one Python lets set a signal handler) SIGINT asks the machine to stop
    (Machine.interrupt), whose run loop raises KeyboardInterrupt before its next quantum."""
    if threading.current_thread() is not threading.main_thread():
        yield machine
        return
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: machine.interrupt())
    try:
        yield machine
    finally:
        signal.signal(signal.SIGINT, previous)
