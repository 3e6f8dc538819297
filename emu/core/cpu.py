"""One simulated x86-64 CPU: Unicorn in long mode with paging, user code at CPL 3.

The kernel talks to it through this small interface: registers, run for a budget, stop, TLB and
translated-code invalidation. Traps go the other way, to a handler object with the methods
`page_fault(rip, addr, error_code)`, `syscall()`, `exception(intno, rip)` and `invalid_opcode(rip)`.
A handler that wants the CPU to leave `run` calls `stop()`; otherwise the trapping instruction is
re-executed (fault) or execution continues (syscall).
"""
import ctypes

from unicorn import (Uc, UcError, UC_ARCH_X86, UC_MODE_64, UC_PROT_ALL, UC_HOOK_INTR, UC_HOOK_INSN,
                     UC_HOOK_INSN_INVALID, UC_TLB_CPU)
from unicorn.unicorn_const import UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE
from unicorn.x86_const import (UC_X86_INS_SYSCALL, UC_X86_INS_RDTSC, UC_X86_INS_RDTSCP, UC_X86_REG_RCX, UC_X86_REG_R11, UC_X86_REG_RSP,
                               UC_X86_REG_RIP, UC_X86_REG_CR3, UC_X86_REG_FS_BASE, UC_X86_REG_GS_BASE,
                               UC_X86_REG_EFLAGS, UC_X86_REG_CS, UC_X86_REG_SS, UC_X86_REG_DS,
                               UC_X86_REG_ES, UC_X86_REG_FS, UC_X86_REG_GS)
from unicorn import x86_const
from unicorn.unicorn_py3.unicorn import uclib
from unicorn.unicorn_py3.arch.types import uc_hook_h

from faultlab.core import internals
from faultlab.core.blockcount import NativeBlockCounter, ST_LAST_ADDR, ST_LAST_SIZE
from faultlab.core.cycles import InsnCoster
from faultlab.core.fastfault import NativeFaultHook
from faultlab.core.paging import (MSR_STAR, PTE_P, PTE_US, build_identity_tables, enable_long_mode_paging)
from faultlab.core.tlb import SoftTlb, calibrate as calibrate_soft_tlb

_INTR_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
_INSN_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
# the binding's hook_add refuses RDTSC; the C API takes it (variadic instruction id)
_uc_hook_add_variadic = ctypes.CDLL(uclib._name).uc_hook_add

# guest-physical layout of the frames the emulator reserves (see physmem.EMU_RESERVED_FRAMES)
_BOOT_TABLES = 0x1000      # 4 frames
_TRAMPOLINE = 0x5000       # sysretq lives here; VA == PA in the boot tables

_calibrated = False
TLB_SAMPLE_AT_RDTSC = 10_000    # rdtsc reports the touched pages first if this many instructions ran since

# register names for read/write by name (debugger, signal frames)
GPR_NAMES = ('rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi',
             'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15')
_SPECIAL = {'rip': UC_X86_REG_RIP, 'eflags': UC_X86_REG_EFLAGS, 'cs': UC_X86_REG_CS, 'ss': UC_X86_REG_SS,
            'ds': UC_X86_REG_DS, 'es': UC_X86_REG_ES, 'fs': UC_X86_REG_FS, 'gs': UC_X86_REG_GS,
            'fs_base': UC_X86_REG_FS_BASE, 'gs_base': UC_X86_REG_GS_BASE}

_REG_IDS = dict(_SPECIAL, **{n: getattr(x86_const, 'UC_X86_REG_' + n.upper()) for n in GPR_NAMES})


class CpuError(RuntimeError):
    """The emulator itself failed (a bug or an unsupported host), not the guest."""


class Cpu:
    """A Unicorn x86-64 core on the machine's physical memory."""

    def __init__(self, phys, costs, read_code, index=0):
        """read_code(va, n) -> bytes or None reads guest code through the current page tables."""
        global _calibrated
        if not _calibrated:
            internals.calibrate()
            _calibrated = True
        self.index = index
        self.phys = phys
        self.uc = uc = Uc(UC_ARCH_X86, UC_MODE_64)
        uc.ctl_set_tlb_mode(UC_TLB_CPU)
        uc.mem_map_ptr(0, phys.size, UC_PROT_ALL, phys.host_ptr)
        self._read_code = read_code
        self._coster = InsnCoster(costs)
        self._blocks = {}
        self._cut = {}          # (block addr, size, rip) -> (insns, cycles) from rip to the block's end
        self.traps = None
        self.error = None
        self._stopped = False
        self._step_mark = -1
        self._uncount_mark = -1
        self.in_user = False
        cr3 = build_identity_tables(phys.mv, _BOOT_TABLES, [(_TRAMPOLINE, PTE_P | PTE_US)])
        enable_long_mode_paging(uc, cr3)
        self.env = internals.EnvView(uc)
        self.env.check_registers(uc)
        self.gpr = self.env.gpr
        self.counter = NativeBlockCounter(uc, self._describe_block)
        self._install_hooks()
        # the pages user code touched (emu/core/tlb.py): handed to tlb_sink(pages, evicted, insns, capacity) every
        # tlb_interval instructions and before every TLB flush; the sink returns the next interval
        self._soft_tlb = SoftTlb(self.env.addr, phys.host_ptr) if calibrate_soft_tlb() else None
        self.tlb_sink = None
        self.tlb_interval = None
        self._tlb_mark = 0

    # ---- hooks -------------------------------------------------------------------------
    def _install_hooks(self):
        uc = self.uc
        self._intr_cb = _INTR_CB(self._on_intr)
        # the interrupt hook is machine code that handles armed anonymous write faults and passes
        # every other interrupt to _on_intr (emu/core/fastfault.py)
        self.fast = NativeFaultHook(self.env, self.phys.host_ptr, self.counter.st,
                                    ctypes.cast(self._intr_cb, ctypes.c_void_p).value)
        h = uc_hook_h()
        if uclib.uc_hook_add(uc._uch, ctypes.byref(h), UC_HOOK_INTR, ctypes.c_void_p(self.fast.address),
                             ctypes.c_void_p(self.fast.state_address), ctypes.c_uint64(1), ctypes.c_uint64(0)):
            raise CpuError("cannot install the interrupt hook")
        uc.hook_add(UC_HOOK_INSN, self._on_syscall, None, 1, 0, UC_X86_INS_SYSCALL)
        uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)
        # rdtsc/rdtscp read the simulated clock (deterministic, and what the vDSO clocks use)
        self._rdtsc_cbs = []
        for ins in (UC_X86_INS_RDTSC, UC_X86_INS_RDTSCP):
            cb = _INSN_CB(lambda _u, _d, ins=ins: self._on_rdtsc(ins == UC_X86_INS_RDTSCP))
            self._rdtsc_cbs.append(cb)
            h = uc_hook_h()
            if _uc_hook_add_variadic(uc._uch, ctypes.byref(h), ctypes.c_int(UC_HOOK_INSN),
                                     ctypes.cast(cb, ctypes.c_void_p), None, ctypes.c_uint64(1),
                                     ctypes.c_uint64(0), ctypes.c_int(ins)):
                raise CpuError("cannot install the rdtsc hook")

    def _fail(self, exc):
        self.error = exc
        self.stop()

    def _on_intr(self, _uc, intno, _ud):
        env = self.env
        env.old_exception.value = -1
        if self.traps is None or not self.in_user:
            return
        try:
            if self.fast.armed:
                self.flush_fast_faults()
            rip = env.rip.value
            self._uncount_from(rip)
            if intno == 14:
                self.traps.page_fault(rip, env.cr2.value, env.error_code.value & 0xFFFFFFFF)
            else:
                self.traps.exception(intno, rip)
        except Exception as e:      # an exception must not unwind into Unicorn
            self._fail(e)

    def _on_syscall(self, _uc, _ud):
        try:
            if self.fast.armed:
                self.flush_fast_faults()
            self.traps.syscall()
        except Exception as e:
            self._fail(e)

    def _on_invalid(self, _uc, _ud):
        try:
            if self.fast.armed:
                self.flush_fast_faults()
            rip = self.env.rip.value
            self._uncount_from(rip)
            self.traps.invalid_opcode(rip)
        except Exception as e:
            self._fail(e)
        return True

    def _on_rdtsc(self, with_aux):
        """rdtsc(p): the simulated time of this CPU in cycles (instructions after rip not yet run)."""
        try:
            if self.fast.armed:
                self.flush_fast_faults()
            if self.tlb_interval is not None and self.counter.insns - self._tlb_mark >= TLB_SAMPLE_AT_RDTSC:
                self.sample_tlb()           # the clock includes the misses of the pages touched so far
            rip = self.env.rip.value
            tsc = self.traps.rdtsc() - self._pending_cycles(rip)
            g = self.gpr
            g[0] = tsc & 0xFFFFFFFF
            g[2] = (tsc >> 32) & 0xFFFFFFFF
            if with_aux:
                g[1] = self.index
        except Exception as e:
            self._fail(e)
        return 1

    def _pending_cycles(self, rip):
        """Cycles of the current block's instructions after rip (counted but not yet executed)."""
        addr, size = self.counter.last_block()
        priced = self._blocks.get((addr, size)) if addr <= rip < addr + size else None
        return int(sum(c for a, c in priced if a > rip)) if priced else 0

    def _describe_block(self, addr, size):
        code = self._read_code(addr, size)
        priced = self._coster.price(code, addr) if code else []
        self._blocks[(addr, size)] = priced
        return len(priced), int(sum(c for _, c in priced))

    def block_insn_costs(self, addr, size):
        """[(insn address, cycles)] of a block the counter has described, or None (profiling)."""
        return self._blocks.get((addr, size))

    def _uncount_from(self, rip):
        """A trap at rip: the instructions of the current block from rip on did not retire."""
        st = self.counter.st
        self._uncount_mark = self.counter.blocks
        key = (st[ST_LAST_ADDR], st[ST_LAST_SIZE], rip)
        cut = self._cut.get(key)
        if cut is None:
            cut = self._cut[key] = self._block_tail(*key)
        if cut[0]:
            self.counter.uncount(cut[0], cut[1])   # (the profiler learns of the cut block there)

    def _block_tail(self, addr, size, rip):
        """(instructions, cycles) of the block at addr from rip on (what a trap at rip takes back)."""
        priced = self._blocks.get((addr, size)) if addr <= rip < addr + size else None
        if not priced:
            return 0, 0
        tail = [cost for a, cost in priced if a >= rip]
        return len(tail), int(sum(tail))

    # ---- native anonymous faults (emu/core/fastfault.py) ---------------------------------------
    @property
    def profiling(self):
        """Per-block execution counts are being gathered (a profiler wants every trap in Python)."""
        return self.counter.counting

    def arm_fast_faults(self, start, end, pte_bits, cr3, vdso_start, vdso_size, pfns):
        """Let the native hook map write faults in [start, end) with the frames pfns, in order."""
        self.fast.arm(start, end, pte_bits, cr3, vdso_start, vdso_size, pfns)

    def flush_fast_faults(self):
        """Disarm the native hook and hand the faults it took to the kernel (before anything else)."""
        entries = self.fast.disarm()
        # each faulting instruction re-executed: take back what its block counted from it on
        # (no profiler runs while the hook is armed, so the sums can go back at once)
        insns = cycles = 0
        cut = self._cut
        for _va, _slot, _pfn, rip, addr, size in entries:
            c = cut.get((addr, size, rip))
            if c is None:
                c = cut[(addr, size, rip)] = self._block_tail(addr, size, rip)
            insns += c[0]
            cycles += c[1]
        if insns:
            self.counter.uncount(insns, cycles)
        self.traps.fast_faults(entries)

    # ---- running -----------------------------------------------------------------------
    def enter_user(self, cr3, rip, rsp):
        """Drop to CPL 3 with a real sysretq from the trampoline, then switch to the task's tables."""
        uc = self.uc
        # sysretq, then a nop at +0x10 where emulation stops (`until` inside the page, not aligned)
        self.phys.write(_TRAMPOLINE, b'\x48\x0f\x07')
        self.phys.write(_TRAMPOLINE + 0x10, b'\x90')
        uc.msr_write(MSR_STAR, (0x23 << 48) | (0x10 << 32))
        uc.reg_write(UC_X86_REG_RCX, _TRAMPOLINE + 0x10)
        uc.reg_write(UC_X86_REG_R11, 0x202)
        self.env.old_exception.value = -1
        uc.emu_start(_TRAMPOLINE, _TRAMPOLINE + 0x10)
        if uc.reg_read(UC_X86_REG_CS) & 3 != 3:
            raise CpuError("could not enter CPL 3")
        self.set_cr3(cr3)
        self.counter.clear()
        self._blocks.clear()
        self._cut.clear()
        self.env.rip.value = rip
        self.gpr[4] = rsp
        self.in_user = True

    def run(self, budget=None):
        """Run user code until a handler stops us or `budget` instructions have retired (or, with a
        TLB sink, until the next sample is due: the caller runs again)."""
        self._stopped = False
        if self.tlb_interval is not None:
            due = max(1, self._tlb_mark + self.tlb_interval - self.counter.insns)
            budget = due if budget is None else min(budget, due)
        self.counter.set_budget(budget)
        self.env.old_exception.value = -1
        try:
            self.uc.emu_start(self.env.rip.value, 0)
        except UcError as e:
            if self.error is None:
                self.error = CpuError("emulation failed at rip=%#x: %s" % (self.env.rip.value, e))
        if self.fast.armed and self.error is None:
            try:
                self.flush_fast_faults()
            except Exception as e:
                self.error = e
        if self.counter.error is not None and self.error is None:
            self.error = self.counter.error
        if self.error is None and self.tlb_interval is not None and \
                self.counter.insns >= self._tlb_mark + self.tlb_interval:
            try:
                self.sample_tlb()
            except Exception as e:
                self.error = e
        if self.error is not None:
            err, self.error = self.error, None
            raise err

    @property
    def reports_touched_pages(self):
        """The software TLB can be read (tlb_sink gets the pages user code touched)."""
        return self._soft_tlb is not None

    def sample_tlb(self):
        """Hand the pages touched since the last sample to the sink and empty the software TLB."""
        if self.tlb_sink is None or self._soft_tlb is None:
            return
        pages = self._soft_tlb.pages()
        self.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
        insns = self.counter.insns
        self.tlb_interval = self.tlb_sink(pages, self._soft_tlb.evicted, insns - self._tlb_mark,
                                          self._soft_tlb.capacity)
        self._tlb_mark = insns

    def stop(self):
        self._stopped = True
        self.uc.emu_stop()

    # ---- debugger support ----------------------------------------------------------------
    def stop_at(self, rip):
        """From a hook: stop before the instruction at rip, which the block counter already counted."""
        self._uncount_from(rip)
        self.stop()

    def step(self):
        """Execute one instruction (Unicorn's count=1). A trap handled on the way (a page fault, whose
        instruction re-executes) can end it before the instruction retires: compare `insns`."""
        if self._step_mark != self.counter.blocks:
            # blocks translated without Unicorn's per-instruction count hook would run whole
            self.uc.ctl_flush_tb()
        self._stopped = False
        self.counter.set_budget(None)
        self.env.old_exception.value = -1
        if self.fast.armed:
            self.flush_fast_faults()
        try:
            self.uc.emu_start(self.env.rip.value, 0, count=1)
        except UcError as e:
            if self.error is None:
                self.error = CpuError("emulation failed at rip=%#x: %s" % (self.env.rip.value, e))
        if self.counter.blocks != self._uncount_mark:
            # the block the step ended in was counted whole (a trap that already took it back, as a
            # fault that stops or kills the program, leaves nothing to take back)
            self._uncount_from(self.env.rip.value)
        self._step_mark = self.counter.blocks
        if self.counter.error is not None and self.error is None:
            self.error = self.counter.error
        if self.error is not None:
            err, self.error = self.error, None
            raise err

    # ---- state -------------------------------------------------------------------------
    @property
    def rip(self):
        return self.env.rip.value

    @rip.setter
    def rip(self, value):
        self.env.rip.value = value

    @property
    def fs_base(self):
        return self.env.fs_base.value

    @fs_base.setter
    def fs_base(self, value):
        self.uc.reg_write(UC_X86_REG_FS_BASE, value)

    def read_reg(self, name):
        if name in GPR_NAMES:
            return self.gpr[GPR_NAMES.index(name)]
        return self.uc.reg_read(_SPECIAL[name])

    def write_reg(self, name, value):
        if name in GPR_NAMES:
            self.gpr[GPR_NAMES.index(name)] = value & 0xFFFFFFFFFFFFFFFF
        else:
            self.uc.reg_write(_SPECIAL[name], value)

    def set_cr3(self, cr3):
        """Switch address space (flushes the TLB)."""
        self.sample_tlb()
        self.uc.reg_write(UC_X86_REG_CR3, cr3)

    def flush_tlb(self):
        self.sample_tlb()
        self.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)

    def flush_code(self):
        """Drop every translated block and what the counter knows of them (code changed somewhere)."""
        self.uc.ctl_flush_tb()
        self.counter.clear()
        self._blocks.clear()
        self._cut.clear()

    def invalidate_code(self, start, end):
        """Drop translated blocks for [start, end) (code under them changed)."""
        self.uc.ctl_remove_cache(start, end)
        self.counter.clear()
        self._blocks.clear()
        self._cut.clear()

    def save_context(self, ctx=None):
        """The registers (a Unicorn context); updates ctx in place when given one."""
        if ctx is None:
            return self.uc.context_save()
        self.uc.context_update(ctx)
        return ctx

    def restore_context(self, ctx):
        self.uc.context_restore(ctx)

    @staticmethod
    def context_read(ctx, name):
        """A register of a saved context, by name."""
        return ctx.reg_read(_REG_IDS[name])

    @staticmethod
    def context_write(ctx, name, value):
        ctx.reg_write(_REG_IDS[name], value & 0xFFFFFFFFFFFFFFFF)

    @property
    def insns(self):
        return self.counter.insns

    @property
    def guest_cycles(self):
        return self.counter.cycles
