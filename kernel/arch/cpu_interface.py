"""The kernel's one window onto the CPU: the page geometry, the trap and TLB interface, the fast-fault arming.

Everything the kernel knows of the emulated hardware comes through this module (tests/test_layering.py
keeps it so). The CPU core (faultlab.core) implements both sides described here:

* **Traps** (CPU -> kernel): the CPU calls, on the object it is given as `traps`,
  `page_fault(addr, error_code)`, `syscall()`, `exception(vector, error_code)` and `invalid_opcode()`
  (Intel SDM vol. 3A, ch. 6: the exceptions and their error codes).
* **The CPU's state and the MMU** (kernel -> CPU), the `Cpu` protocol below: the user context (registers,
  rip, FS base, save/restore for context switches), CR3 and the TLB (`set_cr3`, `flush_tlb`), the
  translated-code cache (`flush_code`, `invalidate_code`), running and stopping, and the cycle and
  instruction counters.
* **Fast faults**: `arm_fast_faults` hands the CPU's native fault hook a VMA's range, the PTE bits and a
  pool of at most FAST_FAULT_POOL frames; `flush_fast_faults` takes back its log.
"""
from typing import Protocol

from faultlab.core.fastfault import POOL_CAPACITY as FAST_FAULT_POOL
from faultlab.core.physmem import EMU_RESERVED_FRAMES, PAGE_SHIFT, PAGE_SIZE

__all__ = ['PAGE_SIZE', 'PAGE_SHIFT', 'EMU_RESERVED_FRAMES', 'FAST_FAULT_POOL', 'Cpu']


class Cpu(Protocol):
    """What the kernel may ask of a CPU (faultlab.core.cpu.Cpu is the implementation)."""

    rip: int
    fs_base: int
    insns: int
    guest_cycles: int
    profiling: bool
    gpr: object         # the general-purpose registers, indexable by number (rax=0 ... r15=15)

    def read_reg(self, name): ...
    def write_reg(self, name, value): ...
    @staticmethod
    def context_read(ctx, name): ...
    @staticmethod
    def context_write(ctx, name, value): ...
    def save_context(self, ctx=None): ...
    def restore_context(self, ctx): ...
    def enter_user(self, cr3, rip, rsp): ...
    def set_cr3(self, cr3): ...
    def flush_tlb(self): ...
    def flush_code(self): ...
    def invalidate_code(self, start, end): ...
    def run(self, budget=None): ...
    def stop(self): ...
    def arm_fast_faults(self, start, end, pte_bits, cr3, vdso_start, vdso_size, pfns): ...
    def flush_fast_faults(self): ...
