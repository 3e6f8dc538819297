"""The scheduler: N simulated CPUs with a clock each, run lowest-clock-first (kernel/sched/core.c).

One Unicorn core executes every simulated CPU in turn. Each CPU (`CpuRq`, like struct rq) has its own
cycle counters; the kernel's live counters belong to the CPU loaded on the core, and `load` swaps them.
The machine's run loop asks `schedule` which CPU runs next and for how many instructions: the CPU with
the lowest clock, until it is a little past the next-lowest one, so CPUs stay close in simulated time and
kernel locks held over simulated intervals (kernel/locking.py) are compared in nearly causal order.

Tasks block (futex, sleep, wait4) by leaving their CPU (`block`); `wake` puts them on the run queue,
and an idle CPU takes them with its clock moved forward to the wake-up time (the gap is idle time).

A task that sleeps on a kernel lock (the rwsem slow path of mmap_lock, `lock_sleep`) sleeps inside a
trap that runs atomically on the host, so its critical section is computed at once in the task's own
time (granted at the wake-up). When the trap ends and another task was runnable while it slept, its CPU
does what __schedule does in rwsem_down_read_slowpath: it goes back to the moment the task slept and
runs that task instead; the sleeper is queued, runnable at the grant, with the kernel work it did after
the grant still to run (`lock_debt`, charged on the CPU that takes it). A woken task placed on an idle
CPU (select_task_rq_fair's idle sibling) whose clock is before the wake-up finds it halted and pays the
wake-up of a halted CPU (rwsem_wake: on the vm platform, a vCPU's exit from HLT); one queued behind a
busy CPU's task waits for it to sleep or for its slice to end, as EEVDF's RUN_TO_PARITY keeps a
woken task from preempting the current one within its slice (check_preempt_wakeup_fair). With nobody
else runnable the CPU halts through the sleep (idle time, then rwsem_wake).

Context switches are counted per simulated CPU, as __schedule counts them: a CPU switches when its own
task changes (to another task, or to and from idle); the host core moving between CPUs is no switch.
rq.nr_switches counts every switch of the CPU (rq->nr_switches, /proc/stat ctxt); a task counts the
switches that took it off its CPU, voluntary (it slept or stopped: nvcsw) or not (preempted, sched_yield:
nivcsw), as __schedule's switch_count does; their sum over every task is what perf's context-switches
event counts for a program (perf_event_task_sched_out counts the task switched out). A CPU pays one
'context_switch' each time it switches to a task, so a sleep that idles the CPU in between costs one, as
a sleep inside a trap does (sleep_switches).
"""
import collections

from faultlab.kernel.sigframe import do_signal, finish_sigreturn, restart_interrupted_syscall
from faultlab.kernel.signal import next_signal

MIN_SLICE_INSNS = 2_000          # a CPU runs at least this far past the next-lowest clock
SLACK_CYCLES = 5_000             # ... and stops at its next trap once its clock is this far past it
MAX_SLICE_INSNS = 200_000
TIMESLICE_CYCLES = 3_000_000     # sched_min_granularity-like: preempt a task after ~1 ms if others wait


class CpuRq:
    """struct rq: one simulated CPU: its task, its idle state and its cycle counters."""

    def __init__(self, index):
        self.index = index
        self.curr = None            # the Task on this CPU, or None (idle)
        self.kcycles = 0
        self.idle_cycles = 0
        self.iowait_cycles = 0
        self.guest_cycles = 0
        self.insns = 0
        self.lock_wait_cycles = 0   # waiting for mmap_lock and page-table locks
        self.slice_start = 0
        self.nr_switches = 0        # rq->nr_switches: every change of the CPU's task, idle included
        self.idle_mark = -1         # idle_cycles when its task left it (-1: idle since boot, None: running)
        self.minor_faults = 0
        self.major_faults = 0
        self.active_mm = None       # the mm whose page tables this CPU last ran on (kept while idle: lazy TLB)
        self.halted = (0, 0)        # [start, end) of its latest sleep inside a trap (lock or I/O wait)

    def halt(self, start, end):
        """The CPU sleeps (halts in its idle loop) from start to end while its task waits in the kernel."""
        self.halted = (start, end)

    def is_halted(self, t):
        """True if the CPU is halted at time t: idle with no task, or asleep in a wait then."""
        start, end = self.halted
        return self.curr is None or start <= t < end

    def clock(self):
        return self.guest_cycles + self.kcycles + self.idle_cycles


class Scheduler:
    """Picks the CPU and task to run; blocks and wakes tasks; switches the core between CPUs."""

    def __init__(self, kernel, nr_cpus):
        self.k = kernel
        self.rqs = [CpuRq(i) for i in range(nr_cpus)]
        self.this_rq = self.rqs[0]
        self.runqueue = collections.deque()       # runnable tasks not on a CPU
        self.loaded_task = None                   # whose registers are in the core
        self.task_switches = 0                    # switches out of a task, every task (perf context-switches)
        self.loaded_mm = None
        self.run_until = float('inf')             # the running CPU stops at a trap after this time

    # ---- clocks -------------------------------------------------------------------------------
    def _fold(self):
        """Move the core's counters since the last load into this_rq (so rq fields are current)."""
        k, rq, cpu = self.k, self.this_rq, self.k.cpu
        rq.guest_cycles = k.gbase + cpu.guest_cycles
        rq.insns = k.ibase + cpu.insns
        rq.kcycles, rq.idle_cycles, rq.iowait_cycles = k.kcycles, k.idle_cycles, k.iowait_cycles

    def clock_of(self, rq):
        if rq is self.this_rq:
            return self.k.now()
        return rq.clock()

    def elapsed(self):
        """Simulated time of the machine: the furthest CPU clock."""
        return max(self.clock_of(rq) for rq in self.rqs)

    def totals(self):
        self._fold()
        return self.rqs

    # ---- switching ------------------------------------------------------------------------------
    def load(self, rq):
        """Make rq the CPU the core executes (its counters live in the kernel)."""
        if rq is self.this_rq:
            return
        self._fold()
        k, cpu = self.k, self.k.cpu
        self.this_rq = rq
        # the core's counters are global; gbase/ibase turn them into this CPU's (now() uses gbase)
        k.gbase = rq.guest_cycles - cpu.guest_cycles
        k.ibase = rq.insns - cpu.insns
        k.kcycles, k.idle_cycles, k.iowait_cycles = rq.kcycles, rq.idle_cycles, rq.iowait_cycles
        cpu.index = rq.index

    def switch_to(self, task):
        """Put task's registers (and address space) into the core. The core holds one CPU's task at a
        time; loading another CPU's task is no context switch of a simulated CPU (see switch_out/in)."""
        cpu = self.k.cpu
        prev = self.loaded_task
        if prev is not task:
            if prev is not None and not prev.exited:
                prev.ctx = cpu.save_context(prev.ctx)
            cpu.restore_context(task.ctx)
            self.loaded_task = task
            if task.mm is not self.loaded_mm:
                cpu.set_cr3(task.mm.cr3)
                cpu.flush_tlb()
                self.loaded_mm = task.mm
        self.this_rq.active_mm = task.mm
        if task.wake_ret is not None:
            cpu.gpr[0] = task.wake_ret & 0xFFFFFFFFFFFFFFFF
            task.wake_ret = None
            restart_interrupted_syscall(self.k, task)
        self.k.current = task
        if task.sig_restore is not None:
            finish_sigreturn(cpu, task)
        if next_signal(task) or task.saved_sigmask is not None or task.jobctl_stop or task.ptrace_deliver:
            do_signal(self.k, task, False)

    def adopt(self, task):
        """The first task: its registers are already in the core."""
        self.loaded_task = task
        self.loaded_mm = task.mm
        self.this_rq.curr = task
        self.this_rq.active_mm = task.mm
        self.k.current = task

    def tlb_targets(self, mm, t):
        """The other CPUs a TLB shootdown for mm at time t interrupts, and how many of them are halted.

        As in 4.15, mm_cpumask holds every CPU whose page tables are mm's: those running a thread of it
        and the idle ones that ran it last (lazy TLB mode); a CPU that switched to another mm left it."""
        me = self.this_rq
        targets = halted = 0
        for rq in self.rqs:
            if rq is me or (rq.curr.mm if rq.curr is not None else rq.active_mm) is not mm:
                continue
            targets += 1
            if rq.is_halted(t):
                halted += 1
        return targets, halted

    # ---- context switch accounting ---------------------------------------------------------------
    def switch_out(self, rq, task, voluntary):
        """__schedule's switch_count: task leaves rq's CPU (prev != next): the CPU switches once, and
        the task counts a voluntary (it sleeps or stops) or involuntary (preempted, yields) switch."""
        rq.nr_switches += 1
        rq.idle_mark = self.k.idle_cycles if rq is self.this_rq else rq.idle_cycles
        if task is None:
            return                                # an exiting task: release_task summed its counts
        if voluntary:
            task.nvcsw = getattr(task, 'nvcsw', 0) + 1
        else:
            task.nivcsw = getattr(task, 'nivcsw', 0) + 1
        self.task_switches += 1

    def switch_in(self, rq):
        """rq's CPU (loaded on the core) starts its new task: if it idled since its previous task left
        (or since boot), that was a switch to idle and this is a second one, from idle; else the next
        task was waiting and took the CPU directly. Each switch to a task costs one context_switch
        (context_switch: switch_mm_irqs_off, switch_to)."""
        if rq.idle_mark < 0 or self.k.idle_cycles > rq.idle_mark:
            rq.nr_switches += 1
        rq.idle_mark = None
        self.k.charge('context_switch')

    def sleep_switches(self, task):
        """The current task sleeps inside a trap while its CPU idles (io_schedule, the rwsem slow
        path's schedule): task -> idle -> task, two switches of the CPU, one voluntary of the task,
        one context_switch charged."""
        rq = self.this_rq
        rq.nr_switches += 2
        if task is not None:
            task.nvcsw = getattr(task, 'nvcsw', 0) + 1
            self.task_switches += 1
        self.k.charge('context_switch')

    # ---- sleeping on a kernel lock inside a trap ---------------------------------------------------
    def lock_sleep(self, task, start, until):
        """rwsem_down_{read,write}_slowpath: the current task sleeps on a lock from start until the grant
        or wake-up at `until`. Inside the trap the CPU halts meanwhile (idle, two switches, rwsem_wake);
        at the trap's end lock_sleep_done gives that time to another runnable task if there is one."""
        k, rq = self.k, self.this_rq
        k0, i0 = k.kcycles, k.idle_cycles
        rq.halt(start, until)
        k.idle_cycles += until - start
        self.sleep_switches(task)
        k.charge('rwsem_wake')
        if task is None:
            return
        first = task.lock_sleep
        if first is None:
            task.lock_sleep = (start, k0, i0, until, k.kcycles, rq)
        else:                                 # a second sleep in the same trap: from the first to the last
            task.lock_sleep = first[:3] + (until, k.kcycles, rq)
            rq.nr_switches -= 2               # one sleep of the task, counted once
            task.nvcsw -= 1
            self.task_switches -= 1

    def lock_sleep_done(self, task):
        """At the end of the trap the task slept in: if a queued task could have run in the sleep, the
        CPU switches to it at the time the sleeper slept (the halt, its switches and the wake-up cost are
        taken back) and the sleeper is queued, runnable at the grant, owing the kernel work it did after
        it (its critical section), which the CPU that takes it runs first."""
        start, k0, i0, until, k1, slept_on = task.lock_sleep
        task.lock_sleep = None
        rq, k = self.this_rq, self.k
        if rq is not slept_on or rq.curr is not task or task.exited or k.kcycles < k1 or \
                not any(t.ready_at < until for t in self.runqueue):
            return
        debt = k.kcycles - k1
        k.kcycles, k.idle_cycles = k0, i0
        rq.halted = (0, 0)
        rq.nr_switches -= 2                   # sleep_switches' task -> idle -> task: not how it went
        task.nvcsw -= 1
        self.task_switches -= 1
        rq.curr = None
        self.switch_out(rq, task, True)       # task -> the queued one (or idle), a voluntary switch
        task.ready_at = until
        task.lock_debt = task.lock_debt + debt
        task.wake_latency = self.k.costs.costs['rwsem_wake']
        self.runqueue.append(task)
        self.k.stats['lock_sleep_switches'] += 1
        self._kick_idle(until)
        k.cpu.stop()

    def _start_task(self, rq, task):
        """rq's CPU (loaded) switched to task: it first runs what a lock sleeper still owes (lock_sleep_done)."""
        debt = task.lock_debt
        if debt:
            task.lock_debt = 0
            self.k.kcycles += debt

    # ---- blocking and waking --------------------------------------------------------------------
    def block(self, task, state='S'):
        """The current task sleeps: it leaves its CPU; the core stops after this trap."""
        task.state = state
        rq = self.this_rq
        if rq.curr is task:
            rq.curr = None
            self.switch_out(rq, task, True)
        self.k.cpu.stop()

    def wake(self, task, ret, when):
        """Make a sleeping task runnable at simulated time `when`; its syscall returns ret."""
        if task.state not in ('S', 'D') or task.exited:
            return False
        task.state = 'R'
        task.wake_ret = ret
        task.ready_at = when
        task.waiting_on = None
        self.runqueue.append(task)
        self._kick_idle(when)
        if self.k.tracer is not None:
            self.k.tracer.sched_wakeup(self.k, task, ret)
        return True

    def _kick_idle(self, when):
        """A task became runnable at `when`: if a CPU is idle, the running one stops at the end of this
        trap so that the idle CPU starts it at that time (an idle CPU does not wait for a time slice)."""
        if any(rq.curr is None for rq in self.rqs):
            self.run_until = min(self.run_until, when)

    def stop(self, task, state):
        """A task stops (set_special_state TASK_STOPPED 'T', TASK_TRACED 't'): off its CPU and the run
        queue until resume; the core stops after this trap if it is the one running."""
        task.state = state
        task.waiting_on = 'ptrace stop' if state == 't' else 'group stop'
        self._dequeue(task, task)
        if task is self.k.current:
            self.k.cpu.stop()

    def _dequeue(self, task, counted):
        """Take the task off the CPU it runs on (a voluntary switch of `counted`, None for an exiting
        task) and out of the run queue."""
        for rq in self.rqs:
            if rq.curr is task:
                rq.curr = None
                self.switch_out(rq, counted, True)
        if task in self.runqueue:
            self.runqueue.remove(task)

    def resume(self, task, when):
        """wake_up_state for a stopped task (SIGCONT, PTRACE_CONT, PTRACE_DETACH, SIGKILL): runnable
        at `when`, its registers as they were."""
        if task.state not in ('T', 't') or task.exited:
            return False
        task.state = 'R'
        task.ready_at = when
        task.waiting_on = None
        self.runqueue.append(task)
        self._kick_idle(when)
        return True

    def yield_cpu(self, task):
        """sched_yield: if another task waits for a CPU, go to the back of the queue."""
        rq = self.this_rq
        now = self.k.now()
        if rq.curr is task and self.runqueue and self.runqueue[0].ready_at <= now:
            task.ready_at = now
            self.runqueue.append(task)
            rq.curr = None
            self.switch_out(rq, task, False)      # TASK_RUNNING: do_sched_yield counts nivcsw
            self.k.cpu.stop()

    def task_exited(self, task):
        """An exiting task leaves its CPU for good."""
        self._dequeue(task, None)
        if self.loaded_task is task:
            self.loaded_task = None

    def enqueue_new(self, task, when):
        task.state = 'R'
        task.ready_at = when
        self.runqueue.append(task)
        self._kick_idle(when)

    # ---- choosing what runs -------------------------------------------------------------------
    def _place_runnable(self):
        """Give queued tasks to idle CPUs (the lowest idle clock first)."""
        while self.runqueue:
            idle = [rq for rq in self.rqs if rq.curr is None]
            if not idle:
                return
            task = self.runqueue.popleft()
            rq = min(idle, key=lambda r: (max(self.clock_of(r), task.ready_at), r.index))
            ready = task.ready_at
            lat = task.wake_latency
            if lat:
                task.wake_latency = 0
                if self.clock_of(rq) < ready:
                    ready += lat                  # the idle CPU is halted when the wake-up comes
            self._advance_idle(rq, ready)
            rq.curr = task
            rq.slice_start = self.clock_of(rq)
            self.switch_in(rq)
            self._start_task(rq, task)

    def _advance_idle(self, rq, when):
        """An idle CPU's clock moves forward to `when` (idle time)."""
        self.load(rq)
        now = self.k.now()
        if when > now:
            self.k.idle_cycles += when - now

    def _preempt(self, rq):
        """Time-slice expiry: if a task waits for a CPU, the current one goes to the back of the queue."""
        now = self.clock_of(rq)
        if (self.runqueue and now - rq.slice_start >= TIMESLICE_CYCLES and
                self.runqueue[0].ready_at <= now):
            task = rq.curr
            task.ready_at = now
            self.runqueue.append(task)
            nxt = self.runqueue.popleft()
            self.switch_out(rq, task, False)
            rq.curr = nxt
            nxt.wake_latency = 0
            self.switch_in(rq)
            self._start_task(rq, nxt)
            rq.slice_start = now
            self.k.stats['preemptions'] += 1

    def schedule(self, quantum):
        """Load the next CPU and task to run; return its instruction budget, or None if none can run."""
        k = self.k
        while True:
            self._place_runnable()
            running = [rq for rq in self.rqs if rq.curr is not None]
            if running:
                rq = min(running, key=lambda r: (self.clock_of(r), r.index))
                self.load(rq)
                self._preempt(rq)
                self.switch_to(rq.curr)
                if rq.curr is not None:
                    break
                continue                          # a fatal signal it had pending ended the task
            t = k.events.next_time()
            if t is None:
                return None                       # every task sleeps with nothing to wake it
            rq = min(self.rqs, key=lambda r: (self.clock_of(r), r.index))
            self._advance_idle(rq, t)
            k.run_events()
        self.run_until = float('inf')
        if len(running) == 1 and not self.runqueue and k.nr_live_tasks() == 1 and rq.curr.group.itimer_real is None:
            return quantum                        # one task: run freely (events run at traps)
        now = k.now()
        others = [self.clock_of(r) for r in running if r is not rq]
        budget = MAX_SLICE_INSNS
        t = k.events.next_time()
        horizon = min(others + ([t] if t is not None else [])) if others or t is not None else None
        if horizon is not None:
            # instructions cost about a cycle each; traps cost far more, so also stop at a trap
            budget = min(budget, max(0, int(horizon - now)) + MIN_SLICE_INSNS)
            self.run_until = max(horizon, now) + SLACK_CYCLES
        elif self.runqueue:
            # tasks wait for this CPU (no other runs): a trap after the time slice ends gives way
            self.run_until = rq.slice_start + TIMESLICE_CYCLES
        return min(quantum, max(MIN_SLICE_INSNS, budget))     # never past the caller's limit

    def check_preempt(self):
        """At the end of a trap: a task that slept on a lock in it may give its CPU away; stop the core
        if this CPU got too far ahead of the others."""
        task = self.k.current
        if task is not None and task.lock_sleep is not None:
            self.lock_sleep_done(task)
        if self.k.now() > self.run_until:
            self.k.cpu.stop()

    def blocked_tasks(self):
        """The threads that cannot run: asleep, or stopped (SIGSTOP, ptrace)."""
        return [t for t in self.k.tasks.values() if not t.exited and t.state in ('S', 'D', 'T', 't')]
