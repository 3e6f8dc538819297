"""A GDB remote serial protocol server for the simulated machine (`faultlab run --gdb`, `faultlab gdb`).

It is an optional object the machine consults at a few places, so the run loop stays as it is:
  Machine.run   `before_run(task)` between quanta (report a stop, then serve gdb until it resumes us),
                `on_exit(task, stop_reason)` when the program ends (W/X reply, or a fatal-signal stop)
  Kernel.page_fault  `fault_stop(...)` before do_user_addr_fault (stop the program before the kernel
                handles a fault) and `fault_done(...)` after (the fault record for `monitor fault`).
Stops come from hooks that call Cpu.stop_at(rip), which ends emulation before the instruction at rip:
  software/hardware breakpoints  a Unicorn code hook restricted to the one address [addr, addr]:
                translated code pays only at that instruction, the rest runs at full speed
  watchpoints   memory hooks on the physical bytes the watched virtual range maps to now (Unicorn
                reports physical addresses under paging), re-armed after every page fault; the hit
                stops before the access, the stub then steps that instruction and reports it done.
                On a frame mapped more than once (the zero page) the instruction's operands decide.
  single-step   Cpu.step (Unicorn count=1), repeated while a trap (a page fault) kept the
                instruction from retiring
Instruction counts stay exact: every stop takes back what the native block counter counted but
did not run. Memory goes through the current task's page tables and never faults (kernel/debugmon).
"""
import os
import re
import socket
import struct
import sys

from capstone import Cs, CS_ARCH_X86, CS_MODE_64
from capstone.x86 import X86_OP_MEM
from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE

from faultlab.core.cpu import GPR_NAMES
from faultlab.gdb.hostio import HostIo
from faultlab.gdb.libs import library_list_svr4
from faultlab.gdb.regs import REGISTERS, reg_value, set_reg, target_xml
from faultlab.gdb.rsp import RspConnection, Disconnected, escape_binary, unescape_binary
from faultlab.gdb.threadlist import thread_description, threads_xml
from faultlab.kernel.debugmon import FaultMonitor, peek_user, poke_user, ptrace_signal, translate_user, monitor_command
from faultlab.observe.stat import format_stat

SIGINT, SIGTRAP, SIGKILL = 2, 5, 9
SI_USER, SI_KERNEL = 0, 0x80
TRAP_TRACE, TRAP_HWBKPT, TRAP_UNK = 2, 4, 5
PACKET_SIZE = 0x4000
MAX_MEM_XFER = (PACKET_SIZE - 32) // 2      # bytes per m reply (hex doubles them)
WATCH_SLACK = 15                            # a 16-byte access starting this far below still overlaps

def parse_listen(spec):
    """'[HOST]:PORT' or 'PORT' -> (host, port); host defaults to 127.0.0.1 (ValueError if bad)."""
    host, _, port = spec.rpartition(':')
    try:
        port = int(port)
    except ValueError:
        raise ValueError('--gdb: expected [HOST]:PORT, got %r' % spec)
    if not 0 <= port < 65536:
        raise ValueError('--gdb: port %d out of range' % port)
    return host or '127.0.0.1', port


# Linux x86-64 signal numbers -> GDB's (the remote protocol's, include/gdb/signals.def), which differ
# from Linux's past the oldest UNIX ones (SIGBUS is 10, SIGUSR1 30, SIGCHLD 20 ...)
_TO_GDB = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 10, 8: 8, 9: 9, 10: 30, 11: 11, 12: 31, 13: 13, 14: 14, 15: 15,
           17: 20, 18: 19, 19: 17, 20: 18, 21: 21, 22: 22, 23: 16, 24: 24, 25: 25, 26: 26, 27: 27, 28: 28,
           29: 23, 30: 32, 31: 12, 32: 77, 64: 78}
_TO_GDB.update({n: n + 12 for n in range(33, 64)})          # SIGRTMIN+1.. = GDB_SIGNAL_REALTIME_33..
_FROM_GDB = {g: n for n, g in _TO_GDB.items()}
GDB_SIGNAL_UNKNOWN = 143


def gdb_signal(sig):
    """A Linux signal number in GDB's numbering (0 stays 0)."""
    return _TO_GDB.get(sig, GDB_SIGNAL_UNKNOWN) if sig else 0


def host_signal(gdb_sig):
    """A GDB signal number as Linux's (0 for none or unknown)."""
    return _FROM_GDB.get(gdb_sig, 0)


class Watch:
    """One Z2/Z3/Z4 watchpoint: a virtual range and the memory hooks on the frames it maps to now."""

    def __init__(self, kind, va, length):
        self.kind = kind             # 2 write, 3 read, 4 access
        self.va = va
        self.length = length
        self.armed = {}              # page va -> (pa of the page, [hook handles])


class GdbStub:
    """The debugger object a Machine and its Kernel consult; serves one gdb client."""

    def __init__(self, host='127.0.0.1', port=0, program=None, accept_check=None):
        """Bind now (port 0 picks a free one: see .port); the client is accepted on the first stop.
        accept_check() -> False gives up waiting for the client (faultlab gdb: gdb exited)."""
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(1)
        self.host, self.port = self.listener.getsockname()[:2]
        self.program = os.path.abspath(program) if program and os.path.exists(program) else program
        self.accept_check = accept_check
        self.conn = None
        self.machine = self.kernel = self.cpu = None
        self.fmon = None
        self.stopped = False
        self.killed = False          # gdb killed the program (k / vKill) or went away
        self.detached = False
        self.finished = False
        self.breakpoints = {}        # (type, addr) -> hook handle
        self.watches = {}            # (type, addr, len) -> Watch
        self._event = None           # why the CPU stopped: ('bp', type, addr) / ('watch', kind, va) / ('fault',)
        self._stepping = False
        self._step_watch = None
        self._resume_fault = None
        self._step_resume = None     # (task, hook handle, addr): a step that blocked in a system call
        self.g_thread = self.c_thread = 0
        self.multiprocess = False    # gdb offered multiprocess+: thread ids are pPID.TID, exits name the process
        self.hostio = None           # the vFile packets' open files
        self.log = []                # protocol errors (for tests and FAULTLAB_DEBUG)
        self.siginfo = None          # (signo, si_code, si_addr) of the last stop
        self._cs = None              # capstone, to check accesses to shared frames

    # ---- wiring -------------------------------------------------------------------------------------
    def attach(self, machine):
        """Become the machine's debugger (its run loop and its kernel's fault path consult us)."""
        self.machine = machine
        self.kernel = machine.kernel
        self.cpu = machine.cpu
        self.fmon = FaultMonitor(self.kernel)
        self.hostio = HostIo(self.kernel, self.program, MAX_MEM_XFER)
        machine.debugger = self
        self.kernel.debugger = self
        return self

    def _accept(self):
        self.listener.settimeout(0.2)
        while True:
            try:
                sock, _ = self.listener.accept()
                break
            except socket.timeout:
                if self.accept_check is not None and not self.accept_check():
                    self.listener.close()
                    return False
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.listener.close()
        self.conn = RspConnection(sock)
        return True

    def _release(self):
        """Remove every hook we installed and stop being consulted."""
        uc = self.cpu.uc
        for h in self.breakpoints.values():
            uc.hook_del(h)
        self.breakpoints.clear()
        for w in self.watches.values():
            self._disarm(w)
        self.watches.clear()
        self._cancel_step_resume()
        self.cpu.uc.ctl_flush_tb()
        self.machine.debugger = None
        self.kernel.debugger = None
        if self.conn is not None:
            self.conn.close()

    def _kill(self, task, why):
        self.killed = True
        if not task.exited:
            task.killed_by = (SIGKILL, why)
            task.exited = True
            task.exit_code = 128 + SIGKILL

    def _lost(self, task):
        """The client went away: like gdbserver, the program is killed."""
        self._kill(task, 'gdb connection closed: program killed at rip=%#x <%s>'
                   % (self.cpu.rip, self.kernel.symbolize(task, self.cpu.rip)))

    # ---- called by the machine ------------------------------------------------------------------------
    def before_run(self, task):
        """Between quanta: report a stop if one happened (or Ctrl-C came), then serve until resumed."""
        if self.conn is None:
            if not self._accept():
                self._kill(task, 'no gdb client connected')
                return
            self.stopped = True
        if not self.stopped:
            reply = self._take_event(task)
            if reply is None:
                try:
                    if not self.conn.poll_interrupt():
                        return
                except Disconnected:
                    self._lost(task)
                    return
                reply = self._stop_reply(task, SIGINT, '', SI_USER)
            if task.exited:
                return
            self.stopped = True
            if not self._send(task, reply):
                return
        self._serve(task)

    def on_exit(self, task, stop_reason):
        """The program ended: a fatal signal is reported as a stop first (gdb can look at it), then the
        exit status; then the session ends as gdbserver's does."""
        if self.conn is None or self.detached or self.finished:
            return
        self.finished = True
        try:
            if self.killed:
                return
            sig = task.killed_by[0] if task.killed_by else 0
            if stop_reason:
                sig = SIGKILL
            if sig and sig != SIGKILL:
                self.stopped = True
                last = self.fmon.last
                from_fault = last is not None and last.signal == sig and last.rip == self.cpu.rip
                self.conn.send(self._stop_reply(task, sig, '', last.si_code if from_fault else SI_KERNEL,
                                                last.address if from_fault else 0))
                self._serve(task, postmortem=True)
                if self.killed or self.detached:
                    return
            process = ';process:%x' % task.tgid if self.multiprocess else ''
            self.conn.send(('X%02x' % gdb_signal(sig) if sig else 'W%02x' % (task.exit_code & 0xFF)) + process)
        except Disconnected:
            pass
        finally:
            self._release()

    # ---- called by the kernel -------------------------------------------------------------------------
    def fault_stop(self, task, rip, address, error_code):
        """Before the kernel handles a user page fault: True when the program stops here instead."""
        skip, self._resume_fault = self._resume_fault, None
        if skip == (rip, address) or self._event is not None:
            return False
        if not self.fmon.should_stop(task, rip, address, error_code):
            return False
        self._event = ('fault',)
        self.cpu.stop()             # the faulting instruction was already taken back by the trap
        return True

    def fault_done(self, task, rip, address, error_code, res, costs, fixed, extra, cycles):
        """After the kernel handled a fault: keep the record; mappings changed, so re-arm watchpoints."""
        self.fmon.record(task, rip, address, error_code, res, costs, fixed, extra, cycles)
        if self.watches:
            self._arm_watches(task)

    # ---- hooks ----------------------------------------------------------------------------------------
    def _on_break(self, _uc, addr, _size, bptype):
        if self._stepping or self._event is not None:
            return
        self._event = ('bp', bptype, addr)
        self.cpu.stop_at(addr)

    def _on_step_resume(self, _uc, addr, _size, data):
        """The thread of a pending step runs again: the step is done (or, then_step, starts now)."""
        task, then_step = data
        if self._stepping or self._event is not None or self.kernel.current is not task:
            return
        self._event = ('stepped', then_step)
        self.cpu.stop_at(addr)

    def _step_when_woken(self, task, addr, then_step=False):
        """A step of a thread that cannot run now ends, as a native stepi does, when it runs again: a
        hook on addr, its next instruction, for this thread only, while the others run. A step that
        put the thread to sleep in a system call (read of an empty pipe), or asked of a thread asleep in
        one, is done once the call returns; one asked of a thread waiting for a CPU (then_step) steps
        one instruction when it gets a CPU."""
        h = self.cpu.uc.hook_add(UC_HOOK_CODE, self._on_step_resume, (task, then_step), addr, addr)
        self.cpu.uc.ctl_remove_cache(addr, addr + 1)
        self._step_resume = (task, h, addr)

    def _cancel_step_resume(self):
        """Remove the hook of a step that blocked (it ended, or another stop came first)."""
        if self._step_resume is not None:
            _task, h, addr = self._step_resume
            self._step_resume = None
            self.cpu.uc.hook_del(h)
            self.cpu.uc.ctl_remove_cache(addr, addr + 1)

    def _on_mem(self, _uc, access, addr, size, _value, w):
        # hooks are armed with slack below the watched bytes: check the real overlap
        hit = None
        for page_va, (pa, _hooks) in w.armed.items():
            lo = max(w.va, page_va)
            hi = min(w.va + w.length, page_va + 4096)
            pa_lo = pa + (lo - page_va)
            if addr < pa_lo + (hi - lo) and addr + size > pa_lo:
                hit = max(lo, lo + (addr - pa_lo))
                break
        if hit is None:
            return
        if self._frame_shared(addr >> 12) and not self._insn_accesses(hit, hit + 1):
            return                  # the zero page or a shared frame: another page that maps it
        if self._stepping:
            if self._step_watch is None:
                self._step_watch = (w.kind, hit)
            return
        if self._event is not None:
            return
        task = self.kernel.current
        page_va = hit & ~0xFFF
        if translate_user(task, page_va) != w.armed[page_va][0]:
            return                  # a stale hook on a frame the watched page no longer maps
        self._event = ('watch', w.kind, hit)
        self.cpu.stop_at(self.cpu.rip)

    def _frame_shared(self, pfn):
        """Is the frame mapped at more than one place (the zero page, shared or COW-shared pages)?"""
        k = self.kernel
        if pfn == k.mmsvc.zero_page.pfn:
            return True
        pages = k.frames.pages
        return 0 <= pfn < len(pages) and pages[pfn].mapcount > 1

    def _insn_accesses(self, lo, hi):
        """Do the explicit memory operands of the instruction at rip touch [lo, hi)? (True when unsure.)
        Hooks see physical addresses: this tells a watched page from another one mapping the same frame."""
        cpu = self.cpu
        rip = cpu.rip
        code = self.kernel.read_code(rip, 16)
        if not code:
            return True
        if self._cs is None:
            self._cs = Cs(CS_ARCH_X86, CS_MODE_64)
            self._cs.detail = True
        insn = next(self._cs.disasm(code, rip), None)
        if insn is None:
            return True
        mems = [op for op in insn.operands if op.type == X86_OP_MEM]
        if not mems:
            return True             # implicit operands (push, movs...): cannot tell
        for op in mems:
            m = op.mem
            ea = m.disp
            for reg, scale in ((m.base, 1), (m.index, m.scale)):
                if reg:
                    name = insn.reg_name(reg)
                    if name != 'rip' and name not in GPR_NAMES:
                        return True
                    ea += scale * (rip + insn.size if name == 'rip' else cpu.read_reg(name))
            if m.segment:
                seg = insn.reg_name(m.segment)
                ea += cpu.read_reg('fs_base') if seg == 'fs' else cpu.read_reg('gs_base') if seg == 'gs' else 0
            ea &= (1 << 64) - 1
            if ea < hi and ea + max(op.size, 1) > lo:
                return True
        return False

    # ---- breakpoints and watchpoints ------------------------------------------------------------------
    def _insert_break(self, bptype, addr):
        key = (bptype, addr)
        if key not in self.breakpoints:
            uc = self.cpu.uc
            self.breakpoints[key] = uc.hook_add(UC_HOOK_CODE, self._on_break, bptype, addr, addr)
            uc.ctl_remove_cache(addr, addr + 1)     # code translated before has no call to the hook
        return 'OK'

    def _remove_break(self, bptype, addr):
        h = self.breakpoints.pop((bptype, addr), None)
        if h is not None:
            self.cpu.uc.hook_del(h)
            self.cpu.uc.ctl_remove_cache(addr, addr + 1)
        return 'OK'

    def _disarm(self, w):
        for _pa, hooks in w.armed.values():
            for h in hooks:
                self.cpu.uc.hook_del(h)
        w.armed.clear()

    def _arm_watches(self, task):
        """Point every watchpoint's hooks at the frames its pages map to now (pages not present get
        none: the access faults first, and fault_done re-arms)."""
        changed = False
        uc = self.cpu.uc
        for w in self.watches.values():
            page = w.va & ~0xFFF
            want = {}
            while page < w.va + w.length:
                pa = translate_user(task, page)
                if pa is not None:
                    want[page] = pa
                page += 4096
            if {p: v[0] for p, v in w.armed.items()} == want:
                continue
            self._disarm(w)
            kinds = {2: (UC_HOOK_MEM_WRITE,), 3: (UC_HOOK_MEM_READ,), 4: (UC_HOOK_MEM_WRITE, UC_HOOK_MEM_READ)}
            for page_va, pa in want.items():
                lo = max(w.va, page_va)
                hi = min(w.va + w.length, page_va + 4096)
                start = pa + (lo - page_va)
                hooks = [uc.hook_add(k, self._on_mem, w, max(0, start - WATCH_SLACK), start + (hi - lo) - 1)
                         for k in kinds[w.kind]]
                w.armed[page_va] = (pa, hooks)
            changed = True
        if changed:
            self.cpu.flush_tlb()

    # ---- running --------------------------------------------------------------------------------------
    def _step(self, task):
        """Retire one instruction (a page fault on the way is handled and the instruction re-run), unless
        the fault put the thread to sleep (handle_userfault): it runs the instruction again once woken."""
        cpu = self.cpu
        self._stepping = True
        self._step_watch = None
        try:
            for _ in range(64):
                before = cpu.insns
                cpu.step()
                self.kernel.run_events()
                if task.exited or self._event is not None or cpu.insns != before or task.state != 'R':
                    break
        finally:
            self._stepping = False

    def _take_event(self, task):
        """The stop reply for what stopped the CPU (None if nothing did)."""
        ev, self._event = self._event, None
        if ev is None:
            return None
        self._cancel_step_resume()
        if ev[0] == 'stepped':
            if ev[1]:
                self._step(task)
                if task.exited:
                    return None
                if self._event is not None:
                    return self._take_event(task)
            return self._stop_reply(task, SIGTRAP, '', TRAP_TRACE)
        if ev[0] == 'bp':
            return self._break_reply(task, ev[1])
        if ev[0] == 'watch':
            # the hook stopped before the access: finish the instruction, then report (trap-like, as x86)
            self._step(task)
            if task.exited:
                return None
            self._event = None
            return self._watch_reply(task, ev[1], ev[2])
        return self._fault_reply(task)

    def _stop_reply(self, task, sig, extra='', si_code=SI_KERNEL, si_addr=0):
        """A T stop reply (the signal in GDB's numbering); what $_siginfo shows for it (Linux's
        numbering, as in the target's siginfo) is kept for qXfer:siginfo:read. Like gdbserver, the
        stop selects the reporting thread for g/G/p/P: gdb takes a stop reply's thread as the general
        thread and sends no Hg for it, so an earlier Hg (from `info threads` or `thread N`) must not
        outlive the stop, or gdb reads another thread's pc and drops the breakpoint hit as spurious."""
        self.siginfo = (sig, si_code, si_addr)
        self.g_thread = task.tid
        return 'T%02xthread:%s;%s' % (gdb_signal(sig), self._thread_id(task), extra)

    def _deliver(self, task, gdb_sig):
        """Resume with a signal (C, S, vCont;C/S: gdb's `signal SIG`, or passing a stop's signal on):
        the thread gets it now, so its handler runs first, or its default action applies."""
        sig = host_signal(gdb_sig)
        if not sig or sig == SIGTRAP:
            return
        ptrace_signal(self.kernel, task, sig)

    def _break_reply(self, task, bptype):
        if bptype == 1:
            return self._stop_reply(task, SIGTRAP, 'hwbreak:;', TRAP_HWBKPT, self.cpu.rip)
        return self._stop_reply(task, SIGTRAP, 'swbreak:;', SI_KERNEL)      # as int3 reports it

    def _watch_reply(self, task, kind, va):
        name = {2: 'watch', 3: 'rwatch', 4: 'awatch'}[kind]
        return self._stop_reply(task, SIGTRAP, '%s:%x;' % (name, va), TRAP_HWBKPT, va)

    def _fault_reply(self, task):
        """A fault stop: SIGTRAP, si_code TRAP_UNK, si_addr the faulting address (see monitor fault)."""
        pend = self.fmon.pending
        return self._stop_reply(task, SIGTRAP, '', TRAP_UNK, pend.address if pend is not None else 0)

    def _prepare_resume(self, task):
        self._resume_fault = self.fmon.resume(self.cpu.rip)
        self._event = None

    def _resume(self, task, action, addr=None):
        """s or c (from s/c/vCont): returns the stop reply to send now, or None when running/exited."""
        cpu = self.cpu
        if addr is not None:
            cpu.rip = addr
        self._prepare_resume(task)
        at_break = any(a == cpu.rip for _t, a in self.breakpoints)
        if action == 's' or at_break or self._resume_fault is not None:
            before = cpu.insns
            self._step(task)
            if task.exited:
                return None
            if self._event is not None:
                return self._take_event(task)
            if action == 's' and task.state != 'R':
                # asleep in a system call (the step is done when it returns) or in a fault that
                # handle_userfault put to sleep (the instruction did not retire: step it once woken)
                self._step_when_woken(task, cpu.rip, then_step=cpu.insns == before)
                self.stopped = False
                return None
            if self._step_watch is not None:
                return self._watch_reply(task, *self._step_watch)
            if action == 's':
                return self._stop_reply(task, SIGTRAP, '', TRAP_TRACE)
            for t, a in self.breakpoints:
                if a == cpu.rip:            # a breakpoint on the very next instruction
                    return self._break_reply(task, t)
        self._arm_watches(task)
        self.stopped = False
        return None

    # ---- serving --------------------------------------------------------------------------------------
    def _send(self, task, reply):
        try:
            self.conn.send(reply)
            return True
        except Disconnected:
            self._lost(task)
            return False

    def _serve(self, task, postmortem=False):
        """Answer packets while the program is stopped, until gdb resumes, kills or detaches it."""
        while True:
            try:
                pkt = self.conn.read_packet()
            except Disconnected:
                self._lost(task)
                return
            try:
                reply = self._dispatch(task, pkt, postmortem)
            except (ValueError, IndexError, KeyError, struct.error, UnicodeError, OverflowError) as e:
                self.log.append('%r: %s' % (pkt[:64], e))
                reply = 'E01'
            if reply is not None and not self._send(task, reply):
                return
            if self.killed or self.detached or not self.stopped or (task.exited and not postmortem):
                return
            cur = self.kernel.current
            if not postmortem and cur is not None and not cur.exited:
                task = cur              # a step of another thread (vCont;s:N) made it the stopped one

    # ---- packets (GDB Remote Serial Protocol, "Packets"): one handler per kind, by its first character;
    # each takes (task, the packet as text, postmortem) and returns the reply (None: no reply now)
    PACKETS = {
        '?': '_pkt_halt_reason',
        'c': '_pkt_continue', 's': '_pkt_step', 'C': '_pkt_continue_signal', 'S': '_pkt_step_signal',
        'g': '_pkt_read_registers', 'G': '_pkt_write_registers', 'p': '_pkt_read_register',
        'P': '_pkt_write_register',
        'm': '_pkt_read_memory', 'M': '_pkt_write_memory', 'X': '_pkt_write_memory_binary',
        'Z': '_pkt_insert_point', 'z': '_pkt_remove_point',
        'H': '_pkt_set_thread', 'T': '_pkt_thread_alive',
        'k': '_pkt_kill', 'D': '_pkt_detach',
        'q': '_pkt_query', 'Q': '_pkt_query',
        'v': '_pkt_v',
    }
    # the v packets this stub knows, by the prefix they start with
    V_PACKETS = (('vCont', '_pkt_vcont'), ('vKill', '_pkt_vkill'), ('vFile:', '_pkt_vfile'))
    # General Query Packets: 'qName', 'qName:args' or 'qName,args' -> handler
    QUERIES = {
        'qSupported': '_q_supported', 'qC': '_q_current_thread', 'qfThreadInfo': '_q_first_thread_info',
        'qsThreadInfo': '_q_subsequent_thread_info', 'qThreadExtraInfo': '_q_thread_extra_info',
        'qAttached': '_q_attached', 'qSymbol': '_q_symbol', 'qXfer': '_qxfer', 'qRcmd': '_q_rcmd',
    }

    def _dispatch(self, task, pkt, postmortem):
        """One packet -> its reply (None: no reply now; '' for what this stub does not support)."""
        if not pkt:
            return ''
        handler = self.PACKETS.get(chr(pkt[0]))
        if handler is None:
            return ''           # unsupported: the empty reply
        return getattr(self, handler)(task, pkt.decode('latin-1'), postmortem)

    def _pkt_halt_reason(self, task, text, postmortem):
        """'?': why the program stopped (the last stop reply again)."""
        return self._stop_reply(task, self.siginfo[0] if self.siginfo else SIGTRAP, '',
                                *(self.siginfo[1:] if self.siginfo else ()))

    def _pkt_continue(self, task, text, postmortem):
        """'c [addr]': continue (at addr)."""
        return self._pkt_resume(task, text, postmortem, 'c')

    def _pkt_step(self, task, text, postmortem):
        """'s [addr]': step one instruction (at addr)."""
        return self._pkt_resume(task, text, postmortem, 's')

    def _pkt_resume(self, task, text, postmortem, action):
        """c or s: after the program's death, only the session ends."""
        if postmortem:
            self.stopped = False
            return None
        addr = int(text[1:], 16) if len(text) > 1 else None
        return self._resume(task, action, addr)

    def _pkt_continue_signal(self, task, text, postmortem):
        """'C sig[;addr]': continue with a signal."""
        return self._pkt_resume_signal(task, text, postmortem, 'c')

    def _pkt_step_signal(self, task, text, postmortem):
        """'S sig[;addr]': step with a signal."""
        return self._pkt_resume_signal(task, text, postmortem, 's')

    def _pkt_resume_signal(self, task, text, postmortem, action):
        """C or S: the signal is delivered first (its handler runs, or its default action applies)."""
        if postmortem:
            self.stopped = False
            return None
        sig, _, addr = text[1:].partition(';')
        self._deliver(task, int(sig, 16))
        if task.exited:
            return None
        return self._resume(task, action, int(addr, 16) if addr else None)

    def _pkt_read_registers(self, task, text, postmortem):
        """'g': every register."""
        return self._read_all_regs(task)

    def _pkt_write_registers(self, task, text, postmortem):
        """'G XX...': write every register."""
        return self._write_all_regs(task, text[1:])

    def _pkt_read_register(self, task, text, postmortem):
        """'p n': one register."""
        n = int(text[1:], 16)
        return self._reg_hex(task, n) if 0 <= n < len(REGISTERS) else 'E00'

    def _pkt_write_register(self, task, text, postmortem):
        """'P n=r': write one register."""
        n, _, val = text[1:].partition('=')
        return self._write_reg(task, int(n, 16), val)

    def _pkt_read_memory(self, task, text, postmortem):
        """'m addr,length': read memory (hex), without faulting a page in."""
        addr, n = (int(x, 16) for x in text[1:].split(','))
        data = peek_user(self.kernel, task, addr, min(n, MAX_MEM_XFER))
        return 'E14' if data is None else data.hex()

    def _pkt_write_memory(self, task, text, postmortem):
        """'M addr,length:XX...': write memory given in hex."""
        head, _, hexdata = text[1:].partition(':')
        return self._poke(task, head, bytes.fromhex(hexdata))

    def _pkt_write_memory_binary(self, task, text, postmortem):
        """'X addr,length:XX...': write memory given as escaped binary."""
        head, _, binary = text[1:].partition(':')
        if not _:
            raise ValueError('X packet without data')
        return self._poke(task, head, unescape_binary(binary.encode('latin-1')))

    def _poke(self, task, head, data):
        """Write data at head's 'addr,length' (E01 if the lengths differ, E14 if memory refuses it)."""
        addr, n = (int(x, 16) for x in head.split(','))
        if len(data) != n:
            return 'E01'
        return 'OK' if poke_user(self.kernel, task, addr, data) else 'E14'

    def _pkt_insert_point(self, task, text, postmortem):
        """'Z type,addr,kind': insert a breakpoint (types 0, 1) or a watchpoint (2 write, 3 read, 4 access)."""
        return self._point_packet(task, True, text[1:])

    def _pkt_remove_point(self, task, text, postmortem):
        """'z type,addr,kind': remove one."""
        return self._point_packet(task, False, text[1:])

    def _pkt_set_thread(self, task, text, postmortem):
        """'H op thread-id': the thread later g/G/p/P (op g) or resumes (op c) are for."""
        tid = self._parse_tid(text[2:])
        if tid is None:
            return 'E02'
        if text[1] == 'g':
            self.g_thread = tid
        else:
            self.c_thread = tid
        return 'OK'

    def _pkt_thread_alive(self, task, text, postmortem):
        """'T thread-id': is the thread alive."""
        return 'OK' if self._find_thread(self._parse_tid(text[1:])) is not None else 'E01'

    def _pkt_kill(self, task, text, postmortem):
        """'k': kill the program (no reply)."""
        self._kill(task, 'killed by gdb (kill command)')
        return None

    def _pkt_detach(self, task, text, postmortem):
        """'D': detach; the program runs on without us."""
        self.detached = True
        if not postmortem:
            self.stopped = False
        self._send(task, 'OK')
        self._release()
        return None

    def _pkt_v(self, task, text, postmortem):
        """'v...': the v packets this stub knows (vCont, vKill), '' for the others."""
        for prefix, handler in self.V_PACKETS:
            if text.startswith(prefix):
                return getattr(self, handler)(task, text, postmortem)
        return ''

    def _pkt_vkill(self, task, text, postmortem):
        """'vKill;pid': kill the program, then say OK."""
        self._kill(task, 'killed by gdb (kill command)')
        self._send(task, 'OK')
        return None

    def _pkt_vfile(self, task, text, postmortem):
        """'vFile:op:args': Host I/O on the guest's files (emu/gdb/hostio.py)."""
        return self.hostio.packet(task, text)

    def _pkt_vcont(self, task, text, postmortem):
        """'vCont?' (the actions supported) and 'vCont;action[:thread-id]...' (resume)."""
        if text == 'vCont?':
            return 'vCont;c;C;s;S'
        if not text.startswith('vCont;'):
            return ''
        chosen, signal, target, deferred = None, 0, task, None
        for act in text[6:].split(';'):
            what, _, tid = act.partition(':')
            if not what or what[0] not in 'cCsSt':
                return 'E01'
            sig = int(what[1:3], 16) if what[0] in 'CS' else 0
            if tid and self._parse_tid(tid) not in (-1, 0, task.tid):
                other = self._find_thread(self._parse_tid(tid))
                if chosen is None and what[0] in 'sS' and other is not None:
                    if self._runs_on_a_cpu(other):
                        chosen, signal, target = 's', sig, other    # `thread N` then stepi: step that one
                    elif deferred is None:
                        deferred = other        # asleep or waiting for a CPU: it steps when it runs
                continue
            if chosen is None:
                chosen, signal = what[0].lower(), sig
        if chosen is None and deferred is not None:
            chosen = 'c'                        # the others run until the thread to step gets a CPU
        if chosen is None or chosen == 't':
            return 'OK' if chosen == 't' else 'E01'
        if postmortem:
            self.stopped = False
            return None
        if deferred is not None and target is task:
            # asleep in a system call, the step is its return (as natively); waiting for a CPU, one instruction
            self._step_when_woken(deferred, self._thread_regs(deferred, lambda: self.cpu.rip),
                                  then_step=deferred.state == 'R')
        if target is not task:
            self._load_thread(target)
        self._deliver(target, signal)
        if target.exited:
            return None
        return self._resume(target, chosen)

    def _point_packet(self, task, insert, args):
        """Z/z 'type,addr,kind[;cond...]': types 0 and 1 are breakpoints, 2, 3 and 4 watchpoints of kind bytes."""
        parts = args.split(',')
        if len(parts) < 3:
            return 'E01'
        bptype, addr, kind = int(parts[0]), int(parts[1], 16), int(parts[2].split(';')[0], 16)
        if not 0 <= addr < 1 << 64:
            return 'E01'
        if bptype in (0, 1):
            return self._insert_break(bptype, addr) if insert else self._remove_break(bptype, addr)
        if bptype in (2, 3, 4):
            return self._watch_point(task, insert, bptype, addr, kind)
        return ''

    def _watch_point(self, task, insert, bptype, addr, length):
        """Z2/Z3/Z4 (write, read, access watchpoints) and their z: a range of 1 to 4096 bytes."""
        if not 0 < length <= 4096:
            return 'E22'
        key = (bptype, addr, length)
        if insert:
            if key not in self.watches:
                self.watches[key] = Watch(bptype, addr, length)
                self._arm_watches(task)
        else:
            w = self.watches.pop(key, None)
            if w is not None:
                self._disarm(w)
        return 'OK'

    # ---- threads --------------------------------------------------------------------------------------
    def _threads(self):
        """Live tasks (threads of every process)."""
        return [t for t in self.kernel.tasks.values() if not t.exited] or [self.kernel.current]

    def _parse_tid(self, s):
        """A thread-id -> a tid, -1 for all threads ('-1', 'pPID' and 'pPID.-1' alike), 0 for any."""
        if s.startswith('p'):
            pid, dot, s = s[1:].partition('.')
            if not dot or pid == '-1':
                return -1
        if s == '-1':
            return -1
        return int(s, 16)

    def _thread_id(self, t):
        """The thread-id of task t in replies: pPID.TID once multiprocess is agreed, else TID."""
        return 'p%x.%x' % (t.tgid, t.tid) if self.multiprocess else '%x' % t.tid

    def _find_thread(self, tid):
        for t in self._threads():
            if t.tid == tid:
                return t
        return None

    def _runs_on_a_cpu(self, t):
        """Is thread t the task of one of the simulated CPUs (runnable, not asleep in the kernel)?"""
        return t is not None and t.state == 'R' and any(rq.curr is t for rq in self.kernel.sched.rqs)

    def _load_thread(self, t):
        """Make thread t the one the core runs: its CPU loaded, its registers in the core (a context
        switch on that CPU, as the scheduler would do before running it)."""
        sched = self.kernel.sched
        sched.load(next(rq for rq in sched.rqs if rq.curr is t))
        sched.switch_to(t)

    def _reg_task(self, task):
        """The task whose registers g/p/G/P use: the one Hg selected, else the stopped one."""
        if self.g_thread in (0, -1, task.tid):
            return task
        t = self._find_thread(self.g_thread)
        if t is None:
            raise ValueError('no thread %d' % self.g_thread)
        return t

    def _on_core(self, task, fn, write=False):
        """fn() with the registers of the thread g/G/p/P are for (see _reg_task) in the core."""
        return self._thread_regs(self._reg_task(task), fn, write)

    def _thread_regs(self, t, fn, write=False):
        """fn() with thread t's registers in the core: a thread off the CPU is loaded from its saved
        context for the call (and saved back after a write); nothing is charged to the simulation."""
        sched = self.kernel.sched
        if t is sched.loaded_task or t.ctx is None:
            return fn()
        cpu = self.cpu
        saved = cpu.save_context()
        cpu.restore_context(t.ctx)
        try:
            return fn()
        finally:
            if write:
                t.ctx = cpu.save_context(t.ctx)
            cpu.restore_context(saved)

    # ---- registers ------------------------------------------------------------------------------------
    def _reg_hex(self, task, n):
        bits = REGISTERS[n][1]
        return self._on_core(task, lambda: (reg_value(self.cpu, n) & ((1 << bits) - 1))
                             .to_bytes(bits // 8, 'little').hex())

    def _read_all_regs(self, task):
        return ''.join(self._reg_hex(task, n) for n in range(len(REGISTERS)))

    def _write_all_regs(self, task, hexdata):
        data = bytes.fromhex(hexdata)

        def write():
            off = 0
            for n, (_name, bits, _how) in enumerate(REGISTERS):
                size = bits // 8
                if off + size > len(data):
                    break
                set_reg(self.cpu, n, int.from_bytes(data[off:off + size], 'little'))
                off += size
            return 'OK'
        return self._on_core(task, write, write=True)

    def _write_reg(self, task, n, hexval):
        if not 0 <= n < len(REGISTERS):
            return 'E00'
        data = bytes.fromhex(hexval)
        if len(data) != REGISTERS[n][1] // 8:
            return 'E01'
        return self._on_core(task, lambda: set_reg(self.cpu, n, int.from_bytes(data, 'little')) or 'OK',
                             write=True)

    # ---- queries --------------------------------------------------------------------------------------
    def _pkt_query(self, task, text, postmortem):
        """'q...'/'Q...': a general query, by its name (up to ':' or ','); '' for the unknown ones."""
        handler = self.QUERIES.get(re.match(r'[^:,]*', text).group())
        return getattr(self, handler)(task, text) if handler is not None else ''

    def _q_supported(self, task, text):
        """qSupported[:gdb's features]: the packet size and the features this stub has (multiprocess
        when gdb offers it: then gdb knows the process's pid, for `info proc`)."""
        offered = text.partition(':')[2].split(';')
        self.multiprocess = 'multiprocess+' in offered
        return ('PacketSize=%x;%sqXfer:features:read+;qXfer:auxv:read+;qXfer:exec-file:read+;qXfer:siginfo:read+;'
                'qXfer:libraries-svr4:read+;qXfer:threads:read+;swbreak+;'
                'hwbreak+;vContSupported+' % (PACKET_SIZE, 'multiprocess+;' if self.multiprocess else ''))

    def _q_current_thread(self, task, text):
        """qC: the thread that stopped."""
        return 'QC' + self._thread_id(task)

    def _q_first_thread_info(self, task, text):
        """qfThreadInfo: every live thread, in one reply."""
        return 'm' + ','.join(self._thread_id(t) for t in self._threads())

    def _q_subsequent_thread_info(self, task, text):
        """qsThreadInfo: the end of the list."""
        return 'l'

    def _q_thread_extra_info(self, task, text):
        """qThreadExtraInfo,thread-id: where the thread is (its CPU, or asleep), in hex."""
        t = self._find_thread(self._parse_tid(text.split(',', 1)[1]))
        if t is None:
            return 'E01'
        return thread_description(self.kernel, t, task).encode().hex()

    def _q_attached(self, task, text):
        """qAttached[:pid]: 0, we started the process (quitting gdb kills it)."""
        return '0'

    def _q_symbol(self, task, text):
        """qSymbol::: no symbol values wanted."""
        return 'OK'

    def _q_rcmd(self, task, text):
        """qRcmd,command (hex): gdb's `monitor` command."""
        return self._monitor(task, bytes.fromhex(text[6:]).decode('utf-8', 'replace'))

    def _qxfer(self, task, text):
        parts = text.split(':')
        if len(parts) != 5 or parts[2] != 'read':
            return ''
        obj, annex, span = parts[1], parts[3], parts[4]
        off, length = (int(x, 16) for x in span.split(','))
        if obj == 'features':
            if annex != 'target.xml':
                return 'E00'
            data = target_xml().encode()
        elif obj == 'auxv':
            auxv = getattr(task.mm, 'saved_auxv', None) or []
            data = b''.join(struct.pack('<QQ', k & (1 << 64) - 1, v & (1 << 64) - 1) for k, v in auxv)
        elif obj == 'libraries-svr4':
            auxv = getattr(task.mm, 'saved_auxv', None) or []
            data = library_list_svr4(lambda va, n: peek_user(self.kernel, task, va, n), auxv).encode()
        elif obj == 'siginfo':
            if self.siginfo is None:
                return 'E01'
            signo, code, addr = self.siginfo
            # x86-64 siginfo_t: si_signo, si_errno, si_code, padding, then the union (si_addr first); 128 bytes
            data = struct.pack('<iiiiQ', signo, 0, code, 0, addr & (1 << 64) - 1).ljust(128, b'\0')
        elif obj == 'threads':
            data = threads_xml(self.kernel, self._threads(), task, self._thread_id).encode()
        elif obj == 'exec-file':
            if annex and self._find_thread(int(annex, 16)) is None:
                return 'E01'
            # the host file (gdb opens it locally for symbols); the guest sees it as task.exe_path
            data = (self.program or task.exe_path).encode()
        else:
            return ''
        chunk = data[off:off + min(length, PACKET_SIZE // 2)]
        return ('l' if off + len(chunk) >= len(data) else 'm') + escape_binary(chunk).decode('latin-1')

    def _expand(self, word):
        if not word.startswith('$'):
            return word
        names = [r[0] for r in REGISTERS]
        total = 0
        for sign, term in re.findall(r'([+-]?)([^+-]+)', word):
            if term.startswith('$'):
                if term[1:] not in names or REGISTERS[names.index(term[1:])][1] > 64:
                    return word
                v = reg_value(self.cpu, names.index(term[1:]))
            else:
                try:
                    v = int(term, 0)
                except ValueError:
                    return word
            total += -v if sign == '-' else v
        return '%#x' % (total & ((1 << 64) - 1))

    def _stats_text(self, task):
        """`monitor stats`: the perf-stat-like block of `faultlab stat`, for the counters now."""
        return format_stat(self.kernel.snapshot(), task.comm)

    def _monitor(self, task, line):
        # gdb passes monitor text as it is: `$reg`, `$reg+N`, `$reg-N` stand for values (monitor pte $rsp)
        line = ' '.join(self._expand(w) for w in line.split())
        try:
            out = monitor_command(self.kernel, self.fmon, task, line, self._stats_text)
        except ValueError as e:
            out = 'error: %s\n' % e
        for i in range(0, len(out), 1024):
            if not self._send(task, 'O' + out[i:i + 1024].encode().hex()):
                return None
        return 'OK'


def attach_gdb(machine, spec, program, out=sys.stderr):
    """`faultlab run --gdb [HOST]:PORT`: bind, say where, and attach to the machine."""
    host, port = parse_listen(spec)
    try:
        stub = GdbStub(host, port, program).attach(machine)
    except OSError as e:
        raise ValueError('--gdb: cannot listen on %s:%d: %s' % (host, port, e.strerror or e))
    out.write('faultlab: gdb stub listening on %s:%d (in gdb: target remote %s:%d)\n'
              % (stub.host, stub.port, stub.host, stub.port))
    out.flush()
    return stub
