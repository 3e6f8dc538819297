"""Signal delivery to user handlers (arch/x86/kernel/signal.c): the rt_sigframe and rt_sigreturn.

A signal with a handler is delivered when its thread returns to user mode: at the end of a system
call, or when the scheduler puts it back on a CPU. The frame is Linux's x86-64 layout (pretcode,
struct ucontext with the sigcontext registers and the signal mask, siginfo), so glibc's __restore_rt
and its unwind information work. The FPU/SSE state of a thread interrupted between two instructions
is kept by the kernel with the frame; at a system call it is dead (caller-saved), as the ABI says.
"""
import errno
import struct

from faultlab.kernel.signal import (ERESTARTSYS, SI_USER, SIG_DFL, SIG_IGN, SIG_KERNEL_STOP, SIGKILL, dequeue_signal,
                                    handler_of, ignored, kill_process, next_signal, siginfo_kill)
from faultlab.kernel.signal_send import do_jobctl_stop, do_signal_stop, ptrace_signal

SA_NODEFER, SA_RESETHAND, SA_RESTORER, SA_SIGINFO = 0x40000000, 0x80000000, 0x04000000, 0x00000004
SA_ONSTACK, SA_RESTART = 0x08000000, 0x10000000
SS_ONSTACK, SS_DISABLE, SS_AUTODISARM = 1, 2, 1 << 31
MINSIGSTKSZ = 2048
STACK_T = struct.Struct('<QIIQ')          # stack_t: ss_sp, ss_flags (int, as its bits), (padding), ss_size
UC_STACK_OFF = 16                         # uc_stack inside struct ucontext (after uc_flags, uc_link)
_GREGS = ('r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rdi', 'rsi', 'rbp', 'rbx', 'rdx', 'rax',
          'rcx', 'rsp', 'rip')
UC_OFF, MCONTEXT_OFF, SIGMASK_OFF, INFO_OFF, FRAME_SIZE = 8, 40, 296, 312, 440
FIX_EFLAGS = 0x40DD5              # AC OF DF TF SF ZF AF PF CF (and RF): what sigreturn may change


def on_sig_stack(task, sp):
    """Is sp on the thread's alternate signal stack?"""
    ss_sp, ss_size, _ = task.sas
    return sp > ss_sp and sp - ss_sp <= ss_size


def sas_ss_flags(task, sp):
    if not task.sas[1]:
        return SS_DISABLE
    return SS_ONSTACK if on_sig_stack(task, sp) else 0


def do_sigaltstack(task, ss, sp, min_size=MINSIGSTKSZ):
    """sigaltstack's rules for a new stack_t (ss_sp, ss_flags, ss_size) or None; returns
    (0 or -errno, the old stack_t)."""
    ss_sp, ss_size, autodisarm = task.sas
    old = (ss_sp, sas_ss_flags(task, sp) | autodisarm, ss_size)
    if ss is None:
        return 0, old
    if on_sig_stack(task, sp):
        return -errno.EPERM, old
    new_sp, new_flags, new_size = ss
    mode = new_flags & ~SS_AUTODISARM & 0xFFFFFFFF
    if mode not in (0, SS_DISABLE, SS_ONSTACK):
        return -errno.EINVAL, old
    if mode == SS_DISABLE:
        new_sp = new_size = 0
    elif new_size < min_size:
        return -errno.ENOMEM, old
    task.sas = (new_sp, new_size, new_flags & SS_AUTODISARM)
    return 0, old


def setup_rt_frame(k, task, sig, in_syscall):
    """Push the frame for sig and point the thread at its handler; False if the stack is unusable."""
    cpu = k.cpu
    act = task.sigactions.get(sig)
    handler, flags, restorer, mask = struct.unpack('<QQQQ', act)
    queued = dequeue_signal(task, sig)
    # the mask the handler's return restores: rt_sigsuspend's caller's, else the current one
    old_mask = task.sigmask if task.saved_sigmask is None else task.saved_sigmask
    regs = {n: cpu.read_reg(n) for n in _GREGS}
    if in_syscall:
        regs['rip'] += 2               # the hook reports the syscall instruction; resume after it
        fpu = None
    else:
        fpu = cpu.save_context()       # interrupted anywhere: the SSE/x87 state is live
    # get_sigframe: below the red zone, or at the top of the alternate stack (SA_ONSTACK, not on it yet)
    sp = regs['rsp'] - 128
    onstack = on_sig_stack(task, regs['rsp'])
    if flags & SA_ONSTACK and sas_ss_flags(task, regs['rsp']) == 0:
        sp = task.sas[0] + task.sas[1]
        onstack = True
    sp = ((sp - FRAME_SIZE) & ~15) - 8
    if onstack and not on_sig_stack(task, sp):
        return False                      # the frame would overflow the alternate stack
    ss_sp, ss_size, autodisarm = task.sas
    uc_stack = STACK_T.pack(ss_sp, sas_ss_flags(task, regs['rsp']) | autodisarm, 0, ss_size)
    if autodisarm:
        task.sas = (0, 0, 0)              # SS_AUTODISARM: off while the handler runs
    mc = b''.join(struct.pack('<Q', regs[n] & (2**64 - 1)) for n in _GREGS)
    mc += struct.pack('<Q', cpu.read_reg('eflags'))
    mc += struct.pack('<HHHH', 0x33, 0, 0, 0x2b) + struct.pack('<QQQQQ', 0, 0, old_mask, 0, 0)
    mc = mc.ljust(256, b'\0')
    uc = struct.pack('<QQ', 0, 0) + uc_stack + mc + struct.pack('<Q', old_mask)
    fault = task.sig_fault.pop(sig, None)
    if fault is not None:                # a synchronous fault: si_code and si_addr (union _sigfault)
        info = struct.pack('<iiiiQ', sig, 0, fault[0], 0, fault[1]).ljust(128, b'\0')
    else:
        info = queued or siginfo_kill(sig, SI_USER, 0)
    frame = struct.pack('<Q', restorer if flags & SA_RESTORER else 0) + uc + info
    if not task.umem.write(sp, frame):
        return False
    task.sig_frames.append((sp, fpu))
    task.saved_sigmask = None
    task.sigmask |= mask | (0 if flags & SA_NODEFER else 1 << (sig - 1))
    task.sigmask &= ~((1 << 8) | (1 << 18))          # SIGKILL and SIGSTOP are never blocked
    if flags & SA_RESETHAND:
        # get_signal's SA_ONESHOT: only the handler goes back to SIG_DFL; flags, restorer and mask stay
        task.sigactions[sig] = bytes(8) + task.sigactions[sig][8:]
    g = cpu.gpr
    g[7], g[6], g[2], g[0] = sig, sp + INFO_OFF, sp + UC_OFF, 0
    g[4] = sp
    cpu.rip = handler - 2 if in_syscall else handler    # the syscall hook adds 2 to a RIP it set
    k.stats['signals_delivered'] += 1
    return True


def force_sig_fault_handler(k, task, sig, si_code, addr):
    """A synchronous fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE) with a handler that does not block it:
    the handler runs at once, its frame saying what and where; False if the signal kills instead."""
    act = task.sigactions.get(sig)
    if act is None or struct.unpack_from('<Q', act)[0] <= 1 or task.sigmask & (1 << (sig - 1)):
        return False                     # default or ignored or blocked: force_sig_fault kills
    task.pending_signals |= 1 << (sig - 1)
    task.sig_info.pop(sig, None)
    task.sig_fault[sig] = (si_code, addr)
    return setup_rt_frame(k, task, sig, False)


def restart_interrupted_syscall(k, task):
    """A sleep that a signal ended returns -ERESTARTSYS: the call is restarted (the syscall
    instruction runs again) unless the handler about to run lacks SA_RESTART, and then it fails with
    EINTR (handle_signal's rules; with no handler to run it is restarted)."""
    cpu = k.cpu
    if cpu.gpr[0] != (-ERESTARTSYS) & 0xFFFFFFFFFFFFFFFF:
        return
    sig = next_signal(task)
    handler, flags = handler_of(task, sig) if sig else (SIG_DFL, 0)
    if handler in (SIG_DFL, SIG_IGN) or flags & SA_RESTART:
        cpu.gpr[0] = task.syscall_nr
        cpu.rip = cpu.rip - 2
    else:
        cpu.gpr[0] = -errno.EINTR & 0xFFFFFFFFFFFFFFFF


def do_signal(k, task, in_syscall):
    """Act on every pending signal the thread does not block: ignored ones are dropped, a default
    fatal one ends the process, handlers get frames (the last one pushed runs first)."""
    while not task.exited:
        if task.jobctl_stop:
            do_jobctl_stop(k, task)               # its process is stopping: this thread too
            return
        sig = task.ptrace_deliver or next_signal(task)
        if not sig:
            if task.saved_sigmask is not None:    # rt_sigsuspend ended without a handler running
                task.sigmask, task.saved_sigmask = task.saved_sigmask, None
            return
        if task.ptrace and sig != SIGKILL and sig != task.ptrace_deliver:
            ptrace_signal(k, task, sig)           # the tracer decides what it takes
            return
        task.ptrace_deliver = 0
        handler, _flags = handler_of(task, sig)
        if ignored(task, sig):
            dequeue_signal(task, sig)
            continue
        if handler == SIG_DFL and sig in SIG_KERNEL_STOP:
            dequeue_signal(task, sig)
            do_signal_stop(k, task, sig)
            return
        if handler == SIG_DFL:
            dequeue_signal(task, sig)
            kill_process(k, task, sig, 'delivered once unblocked')
            return
        if not setup_rt_frame(k, task, sig, in_syscall):
            k.do_group_exit(task, 0, (11, 'SIGSEGV: no room on the user stack for the frame of signal %d'
                                      % sig))
            return


def sys_rt_sigreturn(k, task):
    """Restore the registers and signal mask saved in the frame the handler returns over."""
    cpu = k.cpu
    sp = cpu.gpr[4] - 8                                 # the handler's ret popped pretcode
    raw = task.umem.read(sp, FRAME_SIZE)
    if raw is None:
        k.do_group_exit(task, 0, (11, 'SIGSEGV: rt_sigreturn with a bad frame at %#x' % sp))
        return 0
    vals = struct.unpack_from('<%dQ' % (len(_GREGS) + 1), raw, UC_OFF + MCONTEXT_OFF)
    regs = dict(zip(_GREGS + ('eflags',), vals))
    task.sigmask = struct.unpack_from('<Q', raw, UC_OFF + SIGMASK_OFF)[0] & ~((1 << 8) | (1 << 18))
    # restore_altstack: uc_stack as the handler left it (only a bad address would be an error; the
    # usual EPERM of a handler still on the alternate stack leaves it as it is)
    ss_sp, ss_flags, _pad, ss_size = STACK_T.unpack_from(raw, UC_OFF + UC_STACK_OFF)
    do_sigaltstack(task, (ss_sp, ss_flags, ss_size), regs['rsp'])
    fpu = None
    while task.sig_frames:
        at, saved = task.sig_frames.pop()
        if at == sp:
            fpu = saved
            break
    flags = (cpu.read_reg('eflags') & ~FIX_EFLAGS) | (regs['eflags'] & FIX_EFLAGS)
    if fpu is not None:
        # the thread was interrupted between instructions: its whole state comes back once the core
        # leaves this system call (kernel/sched.py switch_to), then the frame's registers on top
        task.sig_restore = (fpu, regs, flags)
        k.cpu.stop()
        return regs['rax']
    g = cpu.gpr
    for i, n in enumerate(('rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11',
                           'r12', 'r13', 'r14', 'r15')):
        g[i] = regs[n]
    cpu.write_reg('eflags', flags)
    cpu.rip = regs['rip'] - 2
    return regs['rax']


def finish_sigreturn(cpu, task):
    """The deferred half of rt_sigreturn: the saved FPU state, then the frame's registers."""
    fpu, regs, flags = task.sig_restore
    task.sig_restore = None
    cpu.restore_context(fpu)
    for n in _GREGS:
        if n != 'rip':
            cpu.write_reg(n, regs[n])
    cpu.write_reg('eflags', flags)
    cpu.rip = regs['rip']
