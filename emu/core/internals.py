"""The one place that touches Unicorn 2.1.4's private CPU state (QEMU's CPUX86State, "env").

Unicorn exposes neither the #PF error code nor a way to clear `env->old_exception`, which it never
resets (so the 2nd fault would arrive as a double fault and the 3rd silently stop emulation, as probing
Unicorn 2.1.4 showed). We reach both through ctypes views of env, whose address and
field offsets are checked at start-up by self-calibration: magic register values must appear at the
expected places, and provoked faults must leave the expected error codes. If anything disagrees, we
refuse to run with a clear message instead of corrupting memory.
"""
import ctypes

from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_64, UC_PROT_ALL, UC_HOOK_INTR
from unicorn import __version__ as UNICORN_VERSION
from unicorn.x86_const import (UC_X86_REG_R14, UC_X86_REG_RAX, UC_X86_REG_RIP, UC_X86_REG_FS_BASE,
                               UC_X86_REG_CR2)

from faultlab.core.paging import PTE_P, PTE_RW, build_identity_tables, enable_long_mode_paging

# offsetof(struct uc_struct, cpu) and offsetof(X86CPU, env) in the libunicorn.so of unicorn==2.1.4
UC_OFF_CPU = 0x1B8
CPU_OFF_ENV = 0x8A50
# offsets inside CPUX86State
ENV_REGS = 0
ENV_EIP = 128
ENV_FS_BASE = 288
ENV_CR2 = 440
ENV_ERROR_CODE = 5384
ENV_OLD_EXCEPTION = 5496


class UnsupportedUnicorn(RuntimeError):
    """This Unicorn build does not match the calibrated layout."""


def _env_address(uc):
    uch = ctypes.cast(uc._uch, ctypes.c_void_p).value
    cpu = ctypes.c_uint64.from_address(uch + UC_OFF_CPU).value
    if not cpu:
        raise UnsupportedUnicorn("Unicorn %s: no CPU pointer at uc+%#x" % (UNICORN_VERSION, UC_OFF_CPU))
    return cpu + CPU_OFF_ENV


class EnvView:
    """ctypes views of the live CPU state fields the kernel needs on every trap."""

    __slots__ = ('addr', 'gpr', 'rip', 'fs_base', 'cr2', 'error_code', 'old_exception')

    def __init__(self, uc):
        self.addr = addr = _env_address(uc)
        self.gpr = (ctypes.c_uint64 * 16).from_address(addr + ENV_REGS)   # RAX RCX RDX RBX RSP RBP RSI RDI R8..R15
        self.rip = ctypes.c_uint64.from_address(addr + ENV_EIP)
        self.fs_base = ctypes.c_uint64.from_address(addr + ENV_FS_BASE)
        self.cr2 = ctypes.c_uint64.from_address(addr + ENV_CR2)
        self.error_code = ctypes.c_int32.from_address(addr + ENV_ERROR_CODE)
        self.old_exception = ctypes.c_int32.from_address(addr + ENV_OLD_EXCEPTION)

    def addr_of(self, field):
        """Host address of one of the views (for machine code that reads the field itself)."""
        return ctypes.addressof(getattr(self, field))

    def check_registers(self, uc):
        """Verify the register views against the public API with magic values."""
        for reg, view, magic in ((UC_X86_REG_R14, lambda: self.gpr[14], 0x5AFE5AFE12345678),
                                 (UC_X86_REG_RAX, lambda: self.gpr[0], 0x0123456789ABCDEF),
                                 (UC_X86_REG_RIP, lambda: self.rip.value, 0x401234),
                                 (UC_X86_REG_FS_BASE, lambda: self.fs_base.value, 0x7F0012345000)):
            old = uc.reg_read(reg)
            uc.reg_write(reg, magic)
            ok = view() == magic
            uc.reg_write(reg, old)
            if not ok:
                raise UnsupportedUnicorn("Unicorn %s: CPU state layout differs from the calibrated 2.1.4 layout "
                                         "(register check failed); install unicorn==2.1.4" % UNICORN_VERSION)


def calibrate():
    """Provoke known page faults on a scratch CPU and check error code / old_exception offsets."""
    ram = 0x20000
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, ram, UC_PROT_ALL)
    buf = bytearray(ram)
    # code page 0x8000 (supervisor is fine: we stay at CPL 0 here), RO data page 0x9000, 0xA000 missing
    code_va, ro_va, missing_va = 0x8000, 0x9000, 0xA000
    cr3 = build_identity_tables(buf, 0x1000, [(code_va, PTE_P | PTE_RW), (ro_va, PTE_P)])
    code = bytes([0x48, 0x8B, 0x04, 0x25]) + missing_va.to_bytes(4, 'little')      # mov rax, [missing]
    code += bytes([0x48, 0x89, 0x04, 0x25]) + ro_va.to_bytes(4, 'little')          # mov [ro], rax
    code += bytes([0xF4])                                                             # hlt
    buf[code_va:code_va + len(code)] = code
    uc.mem_write(0, bytes(buf))
    enable_long_mode_paging(uc, cr3)
    env = EnvView(uc)
    env.check_registers(uc)
    seen = []

    def on_intr(uc_, intno, _ud):
        seen.append((intno, env.cr2.value, env.error_code.value, env.old_exception.value))
        env.old_exception.value = -1
        if len(seen) == 1:
            # map the missing page so the load re-executes; the store then faults on the RO page
            pt = 0x1000 + 3 * 0x1000
            uc_.mem_write(pt + ((missing_va >> 12) & 0x1FF) * 8, ((0x10000) | PTE_P | PTE_RW).to_bytes(8, 'little'))
        else:
            uc_.emu_stop()

    h = uc.hook_add(UC_HOOK_INTR, on_intr)
    env.old_exception.value = -1
    try:
        uc.emu_start(code_va, 0, count=10)
    except UcError as e:
        raise UnsupportedUnicorn("Unicorn %s: calibration run failed (%s)" % (UNICORN_VERSION, e))
    uc.hook_del(h)
    # supervisor accesses: read of missing page -> ec 0 (no U bit), write to RO present page -> ec 3
    want = [(14, missing_va, 0x0, 14), (14, ro_va, 0x3, 14)]
    if seen != want:
        raise UnsupportedUnicorn("Unicorn %s: fault calibration mismatch: got %r, expected %r; "
                                 "faultlab needs unicorn==2.1.4" % (UNICORN_VERSION, seen, want))
    return True
