"""The vDSO's exception-table fixup (arch/x86/entry/vdso/extable.c, fixup_vdso_exception).

A trap at an instruction the vDSO image lists in its exception table does not signal: the task resumes at
the entry's fixup with the trap number in rdi, the error code in rsi and the faulting address in rdx.
kernel/arch/vdso.py's fixup_vdso_exception finds the entry; this module applies it.
"""
__all__ = ['ex_handler_vdso']

# the registers fixup_vdso_exception writes (pt_regs di, si, dx)
RDI, RSI, RDX = 7, 6, 2


def ex_handler_vdso(cpu, mm, hit, trapnr, error_code, address):
    """Resume at the entry's fixup with the trap described in rdi, rsi and rdx."""
    cpu.rip = mm.vdso_base + hit.fixup_offset
    g = cpu.gpr
    g[RDI], g[RSI], g[RDX] = trapnr, error_code, address
