"""The guest's processes and threads in a `faultlab run --trace` file (emu/observe/trace.py writes it).

One trace process per guest process (its pid, named by its leader's comm) and one thread track per
guest thread (its tid, named by its comm: the program's name, what execve or PR_SET_NAME made it),
as Perfetto shows a Linux system trace. On a thread's track:
  - each system call as a slice from its entry to its return, a call that slept (wait4, futex, a
    pipe's read) up to its wake-up; its arguments decoded as `faultlab run --strace` prints them
    (emu/observe/strace_decode.py) in args.call and its result in args.ret;
  - each page fault, with what the kernel waited for (I/O, locks) nested inside;
  - a userfaultfd wait: from the fault that handle_userfault put to sleep to the wake-up
    (UFFDIO_COPY, ZEROPAGE, WAKE ...), with a flow from the thread that woke it;
  - instants for execve (the new name), renames (PR_SET_NAME), thread and process exits.
Flows: from the parent's clone/fork/vfork call to the child's first slice, from a trap to the disk
request it issued and from a request's completion to the I/O wait (in a trap) that it ended.
"""
from faultlab.observe.strace import ENTRY_DECODERS, NORETURN
from faultlab.observe.strace_decode import entry_snapshot, format_call, format_ret, s64, signame
from faultlab.kernel.syscalls import SYSCALL_NAMES

NS_US = 0.001                   # one nanosecond in the trace's microseconds: a flow point inside a slice


def peek_reader(task):
    """mem(addr, n) -> exactly n bytes of task's memory if they are all mapped, else None."""
    umem = task.umem

    def mem(addr, n):
        data = umem.read_code(addr, n)
        return data if data is not None and len(data) == n else None
    return mem


class _PeekTask:
    """What the entry decoders (execve, rt_sigreturn) need of a task, reading through peek_reader."""
    __slots__ = ('umem',)

    class _Mem:
        __slots__ = ('read',)

    def __init__(self, task):
        self.umem = self._Mem()
        self.umem.read = peek_reader(task)


class _Trap:
    """A system call or page fault in progress on one thread."""
    __slots__ = ('kind', 'start', 'nr', 'args', 'pre', 'address')

    def __init__(self, kind, start, nr=None, args=None, pre=None, address=0):
        self.kind = kind
        self.start = start
        self.nr = nr
        self.args = args
        self.pre = pre              # what was read at entry (execve's text, or the inputs of a sleeper)
        self.address = address


class _Thread:
    __slots__ = ('task', 'pid', 'tid', 'trap', 'blocked', 'uffd', 'last', 'exit_ts', 'flow_in')

    def __init__(self, task):
        self.task = task
        self.pid = task.tgid
        self.tid = task.tid
        self.trap = None            # the _Trap being handled
        self.blocked = None         # the system call that sleeps (its slice ends at the wake-up)
        self.uffd = None            # (start, address) while asleep in handle_userfault
        self.last = 0               # where its last top-level slice ended (cycles): slices never overlap
        self.exit_ts = None


class TaskTracks:
    """The per-process and per-thread part of a ChromeTrace."""

    def __init__(self, trace):
        self.trace = trace
        self.kernel = trace.kernel
        self.threads = {}           # tid -> _Thread
        self.order = []             # every _Thread seen, in order
        self.completions = {}       # a disk request's completion time (cycles) -> its disk lane

    # ---- threads ------------------------------------------------------------------------------------
    def thread(self, task):
        th = self.threads.get(task.tid)
        if th is None or th.task is not task:
            th = self.threads[task.tid] = _Thread(task)
            self.order.append(th)
        return th

    def _current(self):
        task = self.kernel.current
        return None if task is None else self.thread(task)

    def _slice(self, th, name, cat, start, end, args=None, top=True):
        if top:
            start = max(start, th.last)
            end = max(end, start)
            th.last = end
        self.trace._slice(th.pid, th.tid, name, cat, start, end, args)

    def _instant(self, th, name, args, ts=None):
        ev = {'name': name, 'cat': 'task', 'ph': 'i', 's': 't', 'pid': th.pid, 'tid': th.tid,
              'ts': self.trace._us(self.kernel.now() if ts is None else ts)}
        if args:
            ev['args'] = args
        self.trace._emit(ev)

    def _flow(self, name, src, src_ts, dst, dst_ts, enclosing=True):
        """A flow event pair (ph s / f) from the slice around src_ts on track src to the one around
        dst_ts on dst (enclosing=False: the next slice to begin there). Times in microseconds."""
        fid = self.trace.next_flow_id()
        ev = {'name': name, 'cat': 'flow', 'id': fid}
        self.trace._emit(dict(ev, ph='s', pid=src[0], tid=src[1], ts=round(src_ts, 4)))
        end = dict(ev, ph='f', pid=dst[0], tid=dst[1], ts=round(dst_ts, 4))
        if enclosing:
            end['bp'] = 'e'
        self.trace._emit(end)

    # ---- traps ----------------------------------------------------------------------------------------
    def syscall_entry(self, task, nr):
        th = self.thread(task)
        now = self.kernel.now()
        self._end_blocked(th, now, task.wake_ret)
        g = self.kernel.cpu.gpr
        args = tuple(g[i] for i in (7, 6, 2, 10, 8, 9))
        name = SYSCALL_NAMES.get(nr)
        at_entry = ENTRY_DECODERS.get(name)
        try:
            pre = at_entry(_PeekTask(task), args, g[4]) if at_entry is not None else \
                entry_snapshot(name, args, peek_reader(task))
        except Exception:
            pre = None
        th.trap = _Trap('syscall', now, nr, args, pre)

    def syscall_exit(self, task, nr, ret):
        th = self.thread(task)
        trap, th.trap = th.trap, None
        if trap is None or trap.kind != 'syscall':
            return
        if ret is None and not task.exited:
            th.blocked = trap                        # asleep: the slice ends at the wake-up
            return
        name = SYSCALL_NAMES.get(nr)
        noreturn = name in NORETURN or (task.exited and name == 'execve')
        self._syscall_slice(th, trap, self.kernel.now(), None if noreturn else s64(ret))

    def _syscall_slice(self, th, trap, end, ret):
        name = SYSCALL_NAMES.get(trap.nr, 'syscall_%#x' % trap.nr)
        task = th.task
        try:
            if isinstance(trap.pre, str):
                call, shown = trap.pre, format_ret(name, ret)
            else:
                call, shown = format_call(name, trap.args, ret, peek_reader(task), snap=trap.pre)
        except Exception:                   # a decoder met memory the call has just unmapped
            call, shown = '%s(...)' % name, format_ret(name, ret)
        args = {'call': call, 'ret': shown, 'nr': trap.nr}
        self._slice(th, name, 'syscall', trap.start, end, args)

    def _end_blocked(self, th, now, ret):
        call, th.blocked = th.blocked, None
        if call is not None:
            self._syscall_slice(th, call, now, None if ret is None else s64(ret))

    def page_fault_entry(self, address):
        th = self._current()
        if th is not None:
            th.trap = _Trap('fault', self.kernel.now(), address=address)

    def page_fault_exit(self, address, error_code, info, access):
        th = self._current()
        if th is None:
            return
        trap, th.trap = th.trap, None
        if trap is None or trap.kind != 'fault':
            return
        now = self.kernel.now()
        args = {'address': '%#x' % address, 'access': access, 'outcome': info.outcome, 'handler': info.handler}
        self._slice(th, 'page fault: %s' % (info.handler or info.outcome), 'fault', trap.start, now, args)
        if info.handler == 'handle_userfault' and info.outcome == 'retry' and th.task.state in ('S', 'D'):
            th.uffd = (now, address)

    def sched_wakeup(self, task, ret):
        th = self.thread(task)
        now = self.kernel.now()
        if th.blocked is not None:
            self._end_blocked(th, now, ret)
        if th.uffd is not None:
            start, address = th.uffd
            th.uffd = None
            end = max(now, start, th.last)
            self._slice(th, 'userfaultfd wait', 'wait', start, end, {'address': '%#x' % address})
            waker = self._current()
            if waker is not None and waker is not th and end > max(start, th.last - 1):
                us = self.trace._us(end)
                self._flow('uffd wake', (waker.pid, waker.tid), self.trace._us(now) - NS_US, (th.pid, th.tid),
                           max(us - NS_US, self.trace._us(start)))

    def nested(self, name, cat, start, end):
        """A wait inside the current thread's trap (I/O, a timed sleep, a lock); an I/O wait that ends
        as a disk request completes gets a flow from that request."""
        th = self._current()
        if th is not None and th.trap is not None and end > start:
            self._slice(th, name, cat, max(start, th.trap.start), end, top=False)
            lane = self.completions.get(end) if name == 'wait: io' else None
            if lane is not None:
                at = self.trace._us(end) - NS_US
                self._flow('disk completion', (self.trace.PID_DISK, lane), at, (th.pid, th.tid), at)

    # ---- the disk --------------------------------------------------------------------------------------
    def block_rq_issue(self, req, lane):
        """Flow from the trap that issued req to the request on the disk track."""
        now = self.kernel.now()
        if len(self.completions) > 4096:
            self.completions = {t: ln for t, ln in self.completions.items() if t >= now}
        self.completions[req.complete_time] = lane
        th = self._current()
        if th is None or th.trap is None or req.complete_time <= req.start_time:
            return
        tr = self.trace
        self._flow('disk request', (th.pid, th.tid), tr._us(max(self.kernel.now(), th.trap.start)),
                   (tr.PID_DISK, lane), tr._us(req.start_time) + NS_US)

    # ---- life -------------------------------------------------------------------------------------------
    def fork(self, parent, child):
        p, c = self.thread(parent), self.thread(child)
        now = self.kernel.now()
        c.last = now
        self._flow('clone' if child.tgid == parent.tgid else 'fork', (p.pid, p.tid), self.trace._us(now),
                   (c.pid, c.tid), self.trace._us(now), enclosing=False)

    def exec(self, task, old_tid):
        th = self.threads.pop(old_tid, None)
        if th is None or th.task is not task:
            th = self.thread(task)
        elif old_tid != task.tid:
            self._instant(th, 'execve: thread %d becomes the leader' % old_tid, None)
            th = self.thread(task)
        else:
            self.threads[task.tid] = th
        self._instant(th, 'execve', {'filename': task.exe_path, 'comm': task.comm})

    def rename(self, task, old):
        self._instant(self.thread(task), 'rename', {'old': old, 'comm': task.comm})

    def exit(self, task):
        th = self.thread(task)
        now = self.kernel.now()
        if th.blocked is not None:
            self._end_blocked(th, now, None)
        th.exit_ts = max(now, th.last)

    def close(self):
        """The exits (with their codes, known once the run is over) and the names of every track."""
        now = self.kernel.now()
        for th in self.order:
            if th.blocked is not None:
                self._end_blocked(th, now, None)
        ended = {}
        for th in self.order:
            if th.exit_ts is None:
                continue
            group = th.task.group
            self._instant(th, 'thread exit', {'killed_by': signame(group.killed_by[0])} if group.killed_by else None,
                          th.exit_ts)
            if group.exited:
                prev = ended.get(id(group))
                if prev is None or th.exit_ts >= prev[1]:
                    ended[id(group)] = (group, th.exit_ts)
        for group, ts in ended.values():
            leader = self.thread(group.leader)
            killed = group.killed_by[0] if group.killed_by else 0
            args = {'killed_by': signame(killed)} if killed else {'exit_code': group.exit_code & 0xff}
            ev = {'name': 'process exit', 'cat': 'task', 'ph': 'i', 's': 'p', 'pid': leader.pid,
                  'tid': group.leader.tid, 'ts': self.trace._us(ts), 'args': args}
            self.trace._emit(ev)
        names, pids = {}, {}
        for th in self.order:
            names[(th.task.tgid, th.task.tid)] = th.task.comm
            pids.setdefault(th.task.tgid, th.task.group.leader.comm)
        for pid, name in sorted(pids.items()):
            self.trace._emit({'name': 'process_name', 'ph': 'M', 'pid': pid, 'args': {'name': name}})
            self.trace._emit({'name': 'process_labels', 'ph': 'M', 'pid': pid, 'args': {'labels': 'pid %d' % pid}})
        for (pid, tid), name in sorted(names.items()):
            self.trace._emit({'name': 'thread_name', 'ph': 'M', 'pid': pid, 'tid': tid, 'args': {'name': name}})
