"""The CPU's trap entries: the #PF entry (arch/x86/mm/fault.c's exc_page_fault and handle_page_fault),
the other exceptions (arch/x86/kernel/traps.c) and the system call entry (arch/x86/entry/common.c).

exc_page_fault is what the CPU's #PF lands in (through Kernel.page_fault): it lets an attached debugger
stop the program first, fires the tracepoints, and around handle_page_fault runs the work an interrupt
entry and exit do here (pending I/O completions, the invariant checker, preemption). handle_page_fault
bills the fault, gives the vDSO's exception table its chance (an entry can ask for a NOWAIT fault) and
calls do_user_addr_fault (kernel/arch/fault.py); force_fault_sig turns a failed fault into the OOM
killer or a signal with a report of what and where.
"""
from faultlab.kernel.arch.extable import ex_handler_vdso
from faultlab.kernel.arch.fault import do_user_addr_fault, access_str, SIGSEGV, SIGBUS, X86_PF_USER
from faultlab.kernel.arch.vdso import fixup_vdso_exception, EX_FLAG_ASYNC
from faultlab.kernel.mm.mm_types import VM_FAULT_MAJOR, VM_FAULT_RETRY, FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_RETRY_NOWAIT
from faultlab.kernel.signal import SIGNAL_NAMES, SI_CODE_NAMES
from faultlab.kernel.syscalls import dispatch
from faultlab.kernel.tracepoints import FaultInfo

__all__ = ['exc_page_fault', 'handle_page_fault', 'force_fault_sig', 'do_error_trap', 'exc_invalid_op',
           'do_syscall_64']

X86_TRAP_PF = 14
SIGILL, SIGTRAP, SIGFPE = 4, 5, 8
# the signal each exception vector raises (traps.c's DEFINE_IDTENTRY handlers) and what the report says
_EXC_SIGNALS = {0: (SIGFPE, 'divide error'), 1: (SIGTRAP, 'debug trap'), 3: (SIGTRAP, 'breakpoint (int3)'),
                4: (SIGSEGV, 'overflow (into)'), 5: (SIGSEGV, 'bound range exceeded'),
                6: (SIGILL, 'invalid opcode'), 7: (SIGSEGV, 'device not available'),
                12: (SIGBUS, 'stack-segment fault'), 13: (SIGSEGV, 'general protection fault'),
                16: (SIGFPE, 'x87 floating-point error'), 17: (SIGBUS, 'alignment check'),
                19: (SIGFPE, 'SIMD floating-point exception')}


class PageFault:
    """One #PF as handled: do_user_addr_fault's result, the extable fixup, the NOWAIT flags, its costs."""
    __slots__ = ('res', 'fixed', 'nowait', 'rec', 't0')

    def __init__(self, res, fixed, nowait, rec, t0):
        self.res = res              # the FaultResult
        self.fixed = fixed          # the vDSO's exception table took the fault over
        self.nowait = nowait        # the fault flags the extable entry asked for (0 or ALLOW_RETRY|RETRY_NOWAIT)
        self.rec = rec              # cost name -> cycles charged while it was handled
        self.t0 = t0                # kernel + idle cycles when it began

    def outcome(self):
        """fixup, signal, retry, major or minor."""
        res = self.res
        if self.fixed:
            return 'fixup'
        if res.signal:
            return 'signal'
        if res.ret & VM_FAULT_RETRY:
            return 'retry'
        return 'major' if res.ret & VM_FAULT_MAJOR else 'minor'

    def handler(self):
        """The handler that resolved it (None when no VMA's handler ran)."""
        if self.fixed:
            return 'vdso extable fixup'
        return (self.res.vmf.handler or 'other') if self.res.vmf is not None else None


def exc_page_fault(k, rip, address, error_code):
    """The #PF entry: debugger stop, tracepoints, handle_page_fault, the signal, then the interrupt exit."""
    task = k.current
    dbg = k.debugger
    if dbg is not None and dbg.fault_stop(task, rip, address, error_code):
        return                 # the debugger stopped the program before the fault is handled
    tr = k.tracer
    if tr is not None:
        tr.page_fault_entry(k, rip, address, error_code)
    k.run_events()             # I/O that completed while user code ran (its interrupts)
    pf = handle_page_fault(k, task, rip, address, error_code)
    k.drop_stale_code()
    if tr is not None:
        tr.page_fault_exit(k, rip, address, error_code, FaultInfo(pf.outcome(), pf.handler(), bool(pf.nowait), pf.res))
    if dbg is not None:
        dbg.fault_done(task, rip, address, error_code, pf.res, pf.rec, pf.fixed, pf.nowait,
                       k.kcycles + k.idle_cycles - pf.t0)
    if pf.res.signal:
        force_fault_sig(k, task, pf.res, rip, address, error_code)
    irqentry_exit(k, ('fault', rip, address, error_code))
    if not pf.res.signal and not pf.fixed and pf.res.vmf is not None and pf.res.vmf.handler == 'do_anonymous_page':
        k.fastfaults.arm_after_fault(task, pf.res.vma)


def handle_page_fault(k, task, rip, address, error_code):
    """Bill the fault, let the vDSO extable fix it up, do_user_addr_fault, account it: a PageFault."""
    t0 = k.kcycles + k.idle_cycles
    rec = k.begin_fault_record()
    k.charge('exception_entry')
    # a fault at an IP listed in the vDSO exception table: asynchronous (NOWAIT) if the entry says so
    hit = fixup_vdso_exception(task.mm, k.vdso, rip, X86_TRAP_PF)
    nowait = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_RETRY_NOWAIT if hit and hit.flags & EX_FLAG_ASYNC else 0
    res = do_user_addr_fault(task.mm, address, error_code | X86_PF_USER, nowait)
    fixed = hit is not None and bool(res.signal or res.ret & VM_FAULT_RETRY)
    if fixed:
        # do not retry and do not signal: resume at the fixup with the trap described in rdi/rsi/rdx
        ex_handler_vdso(k.cpu, task.mm, hit, X86_TRAP_PF, error_code, address)
        k.stats['vdso_fixups'] += 1
        res.signal = 0
    if nowait:
        k.stats['nowait_faults'] += 1
    k.charge('exception_exit')
    k.end_fault_record()
    pf = PageFault(res, fixed, nowait, rec, t0)
    if (res.vmf is not None or fixed) and not res.signal:
        # like mm_account_fault: a fault that ends in RETRY (or a fixup) is not a min/maj fault
        k.account_fault(task, pf.handler(), VM_FAULT_RETRY if fixed else res.ret, rec, t0)
    return pf


def force_fault_sig(k, task, res, rip, address, error_code):
    """A fault that failed: pagefault_out_of_memory for VM_FAULT_OOM, else force_sig_fault with its report."""
    if res.signal == -1:
        k.oom_kill(task, 'page fault at %#x' % address)
    else:
        signal_generate(k, task, res.signal, res.si_code, address)
        k.force_sig_fault(task, res.signal, res.si_code, address,
                          fault_report(k, task, res.signal, res.si_code, rip, address, error_code, res.reason))


def signal_generate(k, task, sig, si_code, addr):
    """The signal_generate tracepoint of a fault's or an exception's signal (what strace shows as --- SIG ---)."""
    if k.tracer is not None:
        k.tracer.signal_generate(k, task, sig, si_code, addr)


def fault_report(k, task, sig, si_code, rip, address, error_code, reason):
    """The one-line report of a fatal page fault: signal, code, where, the access, the address and why."""
    return ('%s (%s) at rip=%#x <%s>: %s of address %#x: %s (error code %#x)'
            % (SIGNAL_NAMES.get(sig, sig), SI_CODE_NAMES.get((sig, si_code), si_code), rip,
               k.symbolize(task, rip), access_str(error_code), address, reason, error_code))


def irqentry_exit(k, event):
    """Back to user mode: I/O completions due, the invariant checker, preemption."""
    k.run_events()
    if k.vm_checker is not None:
        k.vm_checker.after_trap(event)
    k.sched.check_preempt()


def do_error_trap(k, intno, rip):
    """An exception other than #PF and #UD: the vector's signal, fatal unless the program handles it."""
    task = k.current
    sig, what = _EXC_SIGNALS.get(intno, (SIGSEGV, 'exception %d' % intno))
    signal_generate(k, task, sig, 0, rip)
    k.force_sig_fault(task, sig, 0, rip, '%s at rip=%#x <%s>: %s'
                      % (SIGNAL_NAMES[sig], rip, k.symbolize(task, rip), what))


def exc_invalid_op(k, rip):
    """#UD: SIGILL, with the instruction's first bytes in the report."""
    task = k.current
    code = task.umem.read_code(rip, 16) or b''
    signal_generate(k, task, SIGILL, 0, rip)
    k.force_sig_fault(task, SIGILL, 0, rip, 'SIGILL at rip=%#x <%s>: invalid opcode (bytes %s)'
                      % (rip, k.symbolize(task, rip), code[:8].hex(' ')))


def do_syscall_64(k):
    """The syscall entry: the call (dispatch), stale code dropped, the invariant checker around it."""
    chk = k.vm_checker
    event = chk.syscall_event() if chk is not None else None
    dispatch(k, k.current)
    k.drop_stale_code()
    if chk is not None:
        chk.after_trap(event)
