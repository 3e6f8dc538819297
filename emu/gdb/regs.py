"""The registers gdb sees (amd64 GNU/Linux numbering) and the target description that announces them."""
import ctypes

from unicorn import x86_const as X
from unicorn.unicorn_py3.unicorn import uclib

# ---- registers (gdb's amd64 GNU/Linux numbering) ----------------------------------------------------
_GPRS = ('rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13',
         'r14', 'r15')
_FPU_CTRL = (('fctrl', X.UC_X86_REG_FPCW), ('fstat', X.UC_X86_REG_FPSW), ('ftag', X.UC_X86_REG_FPTAG),
             ('fiseg', X.UC_X86_REG_FCS), ('fioff', X.UC_X86_REG_FIP), ('foseg', X.UC_X86_REG_FDS),
             ('fooff', X.UC_X86_REG_FDP), ('fop', X.UC_X86_REG_FOP))
# (name, bits, how): 'cpu' = Cpu.read_reg/write_reg, ('uc', id) = Unicorn register, ('st', id) = 80-bit x87
REGISTERS = ([(n, 64, 'cpu') for n in _GPRS] + [('rip', 64, 'cpu'), ('eflags', 32, 'cpu')] +
             [(n, 32, 'cpu') for n in ('cs', 'ss', 'ds', 'es', 'fs', 'gs')] +
             [('st%d' % i, 80, ('st', getattr(X, 'UC_X86_REG_ST%d' % i))) for i in range(8)] +
             [(n, 32, ('uc', r)) for n, r in _FPU_CTRL] +
             [('xmm%d' % i, 128, ('uc', getattr(X, 'UC_X86_REG_XMM%d' % i))) for i in range(16)] +
             [('mxcsr', 32, ('uc', X.UC_X86_REG_MXCSR)), ('orig_rax', 64, 'orig_rax'),
              ('fs_base', 64, 'cpu'), ('gs_base', 64, 'cpu')])
_SEGMENTS = ('cs', 'ss', 'ds', 'es', 'fs', 'gs')


def _flags_xml(ident, fields):
    return '<flags id="%s" size="4">%s</flags>' % (
        ident, ''.join('<field name="%s" start="%d" end="%d"/>' % (n, b, b) for n, b in fields))


def target_xml():
    """The target description: amd64 GNU/Linux core + SSE + orig_rax + fs_base/gs_base."""
    eflags = _flags_xml('i386_eflags', [('CF', 0), ('', 1), ('PF', 2), ('AF', 4), ('ZF', 6), ('SF', 7),
                                        ('TF', 8), ('IF', 9), ('DF', 10), ('OF', 11), ('NT', 14), ('RF', 16),
                                        ('VM', 17), ('AC', 18), ('VIF', 19), ('VIP', 20), ('ID', 21)])
    mxcsr = _flags_xml('i386_mxcsr', [('IE', 0), ('DE', 1), ('ZE', 2), ('OE', 3), ('UE', 4), ('PE', 5),
                                      ('DAZ', 6), ('IM', 7), ('DM', 8), ('ZM', 9), ('OM', 10), ('UM', 11),
                                      ('PM', 12), ('FZ', 15)])
    vec = ('<vector id="v4f" type="ieee_single" count="4"/><vector id="v2d" type="ieee_double" count="2"/>'
           '<vector id="v16i8" type="int8" count="16"/><vector id="v8i16" type="int16" count="8"/>'
           '<vector id="v4i32" type="int32" count="4"/><vector id="v2i64" type="int64" count="2"/>'
           '<union id="vec128"><field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>'
           '<field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>'
           '<field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>'
           '<field name="uint128" type="uint128"/></union>')
    types = {'rip': 'code_ptr', 'rbp': 'data_ptr', 'rsp': 'data_ptr', 'eflags': 'i386_eflags',
             'mxcsr': 'i386_mxcsr'}
    feats = {'core': [], 'sse': [], 'linux': [], 'segments': []}
    for i, (name, bits, _how) in enumerate(REGISTERS):
        if name.startswith('st'):
            t, grp, feat = 'i387_ext', '', 'core'
        elif name.startswith('xmm'):
            t, grp, feat = 'vec128', '', 'sse'
        elif name == 'mxcsr':
            t, grp, feat = 'i386_mxcsr', ' group="vector"', 'sse'
        elif name in dict(_FPU_CTRL):
            t, grp, feat = 'int', ' group="float"', 'core'
        elif name == 'orig_rax':
            t, grp, feat = 'int', '', 'linux'
        elif name in ('fs_base', 'gs_base'):
            t, grp, feat = 'int', '', 'segments'
        else:
            t, grp, feat = types.get(name, 'int64' if bits == 64 else 'int32'), '', 'core'
        feats[feat].append('<reg name="%s" bitsize="%d" type="%s" regnum="%d"%s/>' % (name, bits, t, i, grp))
    return ('<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target version="1.0">'
            '<architecture>i386:x86-64</architecture><osabi>GNU/Linux</osabi>'
            '<feature name="org.gnu.gdb.i386.core">%s%s</feature>'
            '<feature name="org.gnu.gdb.i386.sse">%s%s%s</feature>'
            '<feature name="org.gnu.gdb.i386.linux">%s</feature>'
            '<feature name="org.gnu.gdb.i386.segments">%s</feature></target>'
            % (eflags, ''.join(feats['core']), vec, mxcsr, ''.join(feats['sse']), ''.join(feats['linux']),
               ''.join(feats['segments'])))


def reg_value(cpu, n):
    """The value of register number n (gdb's numbering) on cpu."""
    name, bits, how = REGISTERS[n]
    if how == 'cpu':
        return cpu.read_reg(name)
    if how == 'orig_rax':
        return (1 << 64) - 1            # -1: stopped in user mode, not in a system call
    kind, rid = how
    if kind == 'st':
        buf = (ctypes.c_uint8 * 16)()
        uclib.uc_reg_read(cpu.uc._uch, rid, buf)
        return int.from_bytes(bytes(buf[:10]), 'little')
    return cpu.uc.reg_read(rid)


def set_reg(cpu, n, value):
    """Write register number n; selectors and orig_rax keep their values (CPL 3 segments stay)."""
    name, bits, how = REGISTERS[n]
    if reg_value(cpu, n) & ((1 << bits) - 1) == value:
        return
    if how == 'orig_rax' or name in _SEGMENTS:
        return
    if how == 'cpu':
        cpu.write_reg(name, value)
    elif how[0] == 'st':
        buf = (ctypes.c_uint8 * 16)(*value.to_bytes(10, 'little'))
        uclib.uc_reg_write(cpu.uc._uch, how[1], buf)
    else:
        cpu.uc.reg_write(how[1], value)
