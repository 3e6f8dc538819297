"""Instruction counts from the native block hook equal a per-instruction count."""
import os

from unicorn import UC_HOOK_CODE

import emu.machine
from emu.machine import Machine
from kernel.kernel import KernelConfig


def _count_both(path, quantum, monkeypatch):
    monkeypatch.setattr(emu.machine, 'QUANTUM_INSNS', quantum)
    m = Machine(ram=64 << 20, config=KernelConfig(stdout=lambda b: None))
    seen = [0]
    m.cpu.uc.hook_add(UC_HOOK_CODE, lambda uc, a, s, u: seen.__setitem__(0, seen[0] + 1))
    data_faults = [0]
    orig = m.kernel.page_fault

    def page_fault(rip, addr, ec):
        if not ec & 0x10:          # the code hook saw the faulting instruction, which did not retire
            data_faults[0] += 1
        return orig(rip, addr, ec)
    m.kernel.page_fault = page_fault
    res = m.run(path, [os.path.basename(path)], [])
    # the code hook also saw the sysretq that entered user mode
    return res.stats['instructions'], seen[0] - data_faults[0] - 1


def test_counts_exact_without_preemption(userland, monkeypatch):
    native, single = _count_both(os.path.join(userland, 'hello'), 10**9, monkeypatch)
    assert native == single


def test_counts_exact_across_quantum_stops(userland, monkeypatch):
    native, single = _count_both(os.path.join(userland, 'stackgrow'), 5_000, monkeypatch)
    assert native == single
