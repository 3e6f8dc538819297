"""`faultlab run --trace FILE.json`: a Chrome/Perfetto trace (JSON trace event format) in simulated time.

Each guest process is a trace process with its real pid and one track per thread (emu/observe/
trace_tasks.py: system calls with decoded arguments, page faults, userfaultfd waits, forks, execs,
exits, flows to and from the disk); memory counters (RSS per process, MemFree, Cached) are in
emu/observe/trace_counters.py. Three more processes, numbered above any guest pid (PID_MAX_LIMIT):
process "CPUs" has one thread track per simulated CPU: `user` slices (guest code running), page faults
and system calls (complete events, ph X) with what the kernel waited for nested inside them (I/O,
sleep, locks). Process "disk" has one track per service slot of the disk model (its queue depth):
each request is a slice from the moment the device starts it to its completion, with the submit
time, the queueing delay and the trap that caused it in its args. Timestamps are microseconds of
simulated time (cycles / frequency), so the trace opens in ui.perfetto.dev or chrome://tracing.
The file is written as the run goes (constant memory) and completed by close().
"""
import json

from faultlab.observe.symbols import SymbolizerCache
from faultlab.observe.trace_counters import MemoryCounters
from faultlab.observe.trace_tasks import TaskTracks
from faultlab.kernel.syscalls import SYSCALL_NAMES
from faultlab.kernel.tracepoints import Tracepoints, access_str

_encode = json.JSONEncoder(separators=(',', ':')).encode
PID_MAX_LIMIT = 4 * 1024 * 1024     # include/linux/threads.h: no guest pid is above it
PID_CPUS = PID_MAX_LIMIT + 1
PID_DISK = PID_MAX_LIMIT + 2
PID_MEMORY = PID_MAX_LIMIT + 3


class _CpuState:
    __slots__ = ('guest_at_exit', 'trap', 'started', 'last_end')

    def __init__(self):
        self.guest_at_exit = 0      # this CPU's guest cycles when it last returned to user mode
        self.trap = None            # (kind, start, name, args) of the trap being handled
        self.started = False
        self.last_end = 0           # where its last trap slice ended: a user slice never reaches back over it


class ChromeTrace(Tracepoints):
    """Writes trace events to a file as the kernel reports them."""
    PID_DISK = PID_DISK

    def __init__(self, path, machine, command='', announce=None):
        self.kernel = machine.kernel
        self.machine = machine
        self.freq = self.kernel.costs.freq_hz
        self.f = open(path, 'w')
        self.f.write('{"displayTimeUnit": "ns", "otherData": %s, "traceEvents": [\n'
                     % json.dumps({'tool': 'faultlab', 'command': command, 'clock': 'simulated',
                                   'freq_hz': self.freq}))
        self._first = True
        self._cpus = {}
        self._lanes = []            # disk slot -> time (cycles) it becomes free
        self._syms = SymbolizerCache(self.kernel)
        self.closed = False
        self.count = 0
        self.path = path
        self.announce = announce        # a stream told where the file went once it is complete
        self._flows = 0
        self.tasks = TaskTracks(self)
        self.counters = MemoryCounters(self, PID_MEMORY)

    def next_flow_id(self):
        self._flows += 1
        return self._flows

    # ---- output ------------------------------------------------------------------------------------
    def _us(self, cycles):
        return round(cycles * 1e6 / self.freq, 4)

    def _emit(self, ev):
        self.f.write(('' if self._first else ',\n') + _encode(ev))
        self._first = False
        self.count += 1

    def _slice(self, pid, tid, name, cat, start, end, args=None):
        ts, te = self._us(start), self._us(end)
        ev = {'name': name, 'cat': cat, 'ph': 'X', 'pid': pid, 'tid': tid, 'ts': ts, 'dur': round(te - ts, 4)}
        if args:
            ev['args'] = args
        self._emit(ev)

    def _cpu(self):
        idx = getattr(self.kernel.cpu, 'index', 0)
        st = self._cpus.get(idx)
        if st is None:
            st = self._cpus[idx] = _CpuState()
        return idx, st

    def _symbol(self, addr):
        sym = self._syms.current()
        return sym.name(addr) if sym is not None else '??'

    # ---- user time between traps -------------------------------------------------------------------
    def _enter_kernel(self, kind, name, args):
        idx, st = self._cpu()
        now = self.kernel.now()
        guest = self.kernel.cpu.guest_cycles
        ran = guest - st.guest_at_exit
        if not st.started:
            st.started = True
            if now - ran > 0:
                self._slice(PID_CPUS, idx, 'exec', 'kernel', 0, now - ran)
        if ran > 0 and now > st.last_end:
            self._slice(PID_CPUS, idx, 'user', 'user', max(now - ran, st.last_end), now)
        st.trap = (kind, now, name, args)

    def _leave_kernel(self, extra=None, name=None):
        idx, st = self._cpu()
        if st.trap is None:
            return
        kind, start, entry_name, args = st.trap
        name = name or entry_name
        st.trap = None
        if extra:
            args.update(extra)
        self._slice(PID_CPUS, idx, name, kind, start, self.kernel.now(), args)
        st.guest_at_exit = self.kernel.cpu.guest_cycles
        st.last_end = self.kernel.now()

    # ---- tracepoints ------------------------------------------------------------------------------
    def page_fault_entry(self, kernel, rip, address, error_code):
        self.tasks.page_fault_entry(address)
        self._enter_kernel('fault', 'page fault', {
            'address': '%#x' % address, 'rip': '%#x' % rip, 'symbol': self._symbol(rip),
            'access': access_str(error_code), 'error_code': '%#x' % error_code})

    def page_fault_exit(self, kernel, rip, address, error_code, info):
        extra = {'outcome': info.outcome, 'handler': info.handler}
        if info.nowait:
            extra['nowait'] = True
        vmf = info.vmf
        if vmf is not None and getattr(vmf, 'around', 0):
            extra['fault_around_pages'] = vmf.around
        if info.signal:
            extra['reason'] = info.reason
        self._leave_kernel(extra, 'page fault: %s' % (info.handler or info.outcome))
        self.tasks.page_fault_exit(address, error_code, info, access_str(error_code))
        self.counters.maybe_sample()

    def syscall_entry(self, kernel, task, nr):
        g = kernel.cpu.gpr
        name = SYSCALL_NAMES.get(nr, 'syscall %d' % nr)
        self._enter_kernel('syscall', name, {'nr': nr, 'args': ['%#x' % g[i] for i in (7, 6, 2, 10, 8, 9)]})
        self.tasks.syscall_entry(task, nr)

    def syscall_exit(self, kernel, task, nr, ret):
        self._leave_kernel({'ret': ret})
        self.tasks.syscall_exit(task, nr, ret)
        self.counters.maybe_sample()

    def sched_wakeup(self, kernel, task, ret):
        self.tasks.sched_wakeup(task, ret)

    def sched_process_fork(self, kernel, parent, child):
        self.tasks.fork(parent, child)

    def sched_process_exec(self, kernel, task, old_tid):
        self.tasks.exec(task, old_tid)

    def task_rename(self, kernel, task, old_comm):
        self.tasks.rename(task, old_comm)

    def sched_process_exit(self, kernel, task):
        self.tasks.exit(task)
        self.counters.maybe_sample()

    def wait(self, kernel, why, start, end):
        idx, _ = self._cpu()
        self._slice(PID_CPUS, idx, 'wait: %s' % why, 'wait', start, end)
        self.tasks.nested('wait: %s' % why, 'wait', start, end)

    def lock_wait(self, kernel, lock, start, end):
        idx, _ = self._cpu()
        self._slice(PID_CPUS, idx, 'wait: %s' % lock, 'lock', start, end)
        self.tasks.nested('wait: %s' % lock, 'lock', start, end)

    def block_rq_issue(self, req):
        lanes = self._lanes
        lane = next((i for i, free in enumerate(lanes) if free <= req.start_time), None)
        if lane is None:
            lane = len(lanes)
            lanes.append(0)
        lanes[lane] = req.complete_time
        args = {'block': req.block, 'nblocks': req.nblocks, 'submit_us': self._us(req.submit_time),
                'queued_us': self._us(req.start_time - req.submit_time)}
        _, st = self._cpu()
        if st.trap is not None:
            kind, _, name, targs = st.trap
            args['by'] = '%s at %s' % (name, targs['address']) if kind == 'fault' else name
            if kind == 'fault':
                args['by_symbol'] = targs['symbol']
        self._slice(PID_DISK, lane, req.op, 'io', req.start_time, req.complete_time, args)
        self.tasks.block_rq_issue(req, lane)

    # ---- end ------------------------------------------------------------------------------------------
    def close(self, result=None):
        """Finish the file: the last user slice, the exit, and the track names."""
        if self.closed:
            return
        self.closed = True
        try:
            for idx, st in sorted(self._cpus.items()):
                if st.trap is not None:              # the run stopped inside a trap (a limit or an error)
                    self._leave_kernel()
            cpus = getattr(self.machine, 'cpus', None) or [self.machine.cpu]
            for cpu in cpus:
                idx = getattr(cpu, 'index', 0)
                st = self._cpus.setdefault(idx, _CpuState())
                ran = cpu.guest_cycles - st.guest_at_exit
                now = self.kernel.now()
                if ran > 0 and now > st.last_end:
                    self._slice(PID_CPUS, idx, 'user', 'user', max(now - ran, st.last_end), now)
            end = self.kernel.now()
            if result is not None:
                args = {'exit_code': result.exit_code}
                if result.report:
                    args['report'] = result.report
                self._emit({'name': 'exit', 'cat': 'task', 'ph': 'i', 's': 'p', 'pid': PID_CPUS, 'tid': 0,
                            'ts': self._us(end), 'args': args})
            self.counters.sample()
            self.tasks.close()
            meta = [(PID_CPUS, None, 'process_name', 'CPUs'), (PID_DISK, None, 'process_name', 'disk'),
                    (PID_MEMORY, None, 'process_name', 'memory')]
            meta += [(PID_CPUS, idx, 'thread_name', 'CPU %d' % idx) for idx in sorted(self._cpus)]
            meta += [(PID_DISK, i, 'thread_name', 'disk slot %d' % i) for i in range(len(self._lanes))]
            for pid, tid, what, name in meta:
                ev = {'name': what, 'ph': 'M', 'pid': pid, 'args': {'name': name}}
                if tid is not None:
                    ev['tid'] = tid
                self._emit(ev)
            for i, pid in enumerate((PID_CPUS, PID_DISK, PID_MEMORY)):
                self._emit({'name': 'process_sort_index', 'ph': 'M', 'pid': pid, 'args': {'sort_index': i - 3}})
        finally:
            self.f.write('\n]}\n')
            self.f.close()
        if self.announce is not None:
            self.announce.write('faultlab: trace of %d events written to %s: open it in https://ui.perfetto.dev '
                                '(Open trace file) or chrome://tracing\n' % (self.count, self.path))
