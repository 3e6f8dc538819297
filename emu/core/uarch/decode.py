"""What the block pricer needs to know of one x86-64 instruction: its class, registers and memory access.

An instruction is decoded once per distinct encoding, at address 0 (so the description does not depend on
where the code is: a relative branch's target and a RIP-relative operand are kept as offsets), with
capstone's full decoder. Registers are named by their full architectural register (eax, ax and al are
rax; xmm3, ymm3 and zmm3 are v3), flags as 'flags'; the stack pointer updates of push, pop, call and
ret are left out (the stack engine renames them: Agner Fog, microarchitecture guide, "stack engine").
"""
from collections import namedtuple

from capstone import Cs, CS_ARCH_X86, CS_MODE_64
from capstone import x86_const as X

# cls: instruction class (the pricer's uops and latency); reads: registers the operation reads (not the
# address); addr: registers of the memory address; writes: registers written; load, store: memory
# accesses; mem: (base, index, scale, disp) of the memory operand, base 'rip' for RIP-relative; flagset:
# a flag-setting ALU op that can macro-fuse with a following conditional branch; jcc: a conditional
# branch; branch: any control transfer; target: a direct branch's target relative to the instruction's
# start, or None; slots: fused-domain uops dispatched; size: bytes
Insn = namedtuple('Insn', 'cls reads addr writes load store mem flagset jcc branch target slots size')

_GPR = {}
for _full, _names in (('rax', 'eax ax al ah'), ('rbx', 'ebx bx bl bh'), ('rcx', 'ecx cx cl ch'),
                      ('rdx', 'edx dx dl dh'), ('rsi', 'esi si sil'), ('rdi', 'edi di dil'),
                      ('rbp', 'ebp bp bpl'), ('rsp', 'esp sp spl')):
    for _n in [_full] + _names.split():
        _GPR[_n] = _full
for _i in range(8, 16):
    for _s in ('', 'd', 'w', 'b'):
        _GPR['r%d%s' % (_i, _s)] = 'r%d' % _i
_IGNORED = {'rip', 'eip', 'fpsw', 'fpcw', 'mxcsr', 'fs', 'gs', 'cs', 'ds', 'es', 'ss'}

_FUSIBLE = {'cmp', 'test', 'add', 'sub', 'and', 'inc', 'dec'}
_ALU = {'add', 'sub', 'and', 'or', 'xor', 'adc', 'sbb', 'inc', 'dec', 'neg', 'not', 'cmp', 'test', 'bt', 'btc',
        'btr', 'bts', 'bsf', 'bsr', 'tzcnt', 'lzcnt', 'popcnt', 'movzx', 'movsx', 'movsxd', 'cdq', 'cqo', 'cdqe',
        'cwde', 'cwd', 'cbw', 'bswap', 'andn', 'blsr', 'blsi', 'blsmsk', 'bzhi', 'pdep', 'pext', 'sahf', 'lahf',
        'clc', 'stc', 'cmc', 'cld', 'std', 'xadd', 'cmpxchg', 'movbe', 'stosb', 'stosw', 'stosd', 'stosq',
        'lodsb', 'lodsw', 'lodsd', 'lodsq', 'movsb', 'movsw', 'movsq', 'scasb', 'scasw', 'scasd', 'scasq',
        'cmpsb', 'cmpsw', 'cmpsd', 'cmpsq', 'syscall', 'rdrand', 'rdpid', 'rdfsbase', 'rdgsbase',
        'wrfsbase', 'wrgsbase', 'ud2', 'int3', 'hlt', 'leave'}
_SHIFT = {'shl', 'shr', 'sar', 'sal', 'rol', 'ror', 'rcl', 'rcr', 'shld', 'shrd', 'sarx', 'shlx', 'shrx', 'rorx'}
_NOP = {'nop', 'endbr64', 'endbr32', 'pause', 'prefetcht0', 'prefetcht1', 'prefetcht2', 'prefetchnta',
        'prefetchw', 'sfence', 'fwait', 'wait', 'vzeroupper', 'vzeroall', 'emms'}
_SERIAL = {'cpuid', 'rdtsc', 'rdtscp', 'xgetbv', 'lfence', 'mfence', 'xsave', 'xsavec', 'xrstor', 'xsaveopt',
           'fxsave', 'fxrstor', 'fxsave64', 'fxrstor64', 'xsave64', 'xrstor64', 'xsavec64', 'ldmxcsr',
           'stmxcsr', 'fldcw', 'fnstcw', 'fnstsw', 'fninit', 'clflush', 'clflushopt'}
_MOV_VEC = {'movaps', 'movapd', 'movups', 'movupd', 'movdqa', 'movdqu', 'movdqa32', 'movdqa64', 'movdqu8',
            'movdqu16', 'movdqu32', 'movdqu64', 'movss', 'movsd', 'movq', 'movd', 'movhps', 'movlps', 'movhpd',
            'movlpd', 'movntdq', 'movntps', 'movntpd', 'movnti', 'lddqu', 'movntdqa', 'movddup', 'movshdup',
            'movsldup', 'movhlps', 'movlhps'}
_ZERO_IDIOMS = {'xor', 'sub', 'pxor', 'xorps', 'xorpd', 'pcmpgtb', 'pcmpgtw', 'pcmpgtd', 'pcmpgtq', 'psubb',
                'psubw', 'psubd', 'psubq', 'pxord', 'pxorq', 'sbb'}


def _vec_class(m):
    """The class of an SSE/AVX mnemonic (without its VEX 'v'), or None."""
    if m.startswith(('vfmadd', 'vfmsub', 'vfnmadd', 'vfnmsub', 'fmadd', 'fmsub', 'fnmadd', 'fnmsub')):
        return 'fp_fma'
    if m.endswith(('ss', 'sd', 'ps', 'pd')):
        for prefix, cls in (('add', 'fp_add'), ('sub', 'fp_add'), ('min', 'fp_add'), ('max', 'fp_add'),
                            ('hadd', 'fp_add'), ('comi', 'fp_add'), ('ucomi', 'fp_add'), ('cmp', 'fp_add'),
                            ('round', 'fp_add'), ('mul', 'fp_mul'), ('div', 'fp_div'), ('sqrt', 'fp_sqrt'),
                            ('rcp', 'fp_mul'), ('rsqrt', 'fp_mul'), ('dp', 'fp_mul'), ('and', 'vec'), ('or', 'vec'),
                            ('xor', 'vec'), ('blend', 'vec'), ('shuf', 'shuf'), ('unpck', 'shuf'),
                            ('movmsk', 'vec'), ('perm', 'shuf'), ('broadcast', 'shuf'), ('insert', 'shuf'),
                            ('extract', 'shuf')):
            if m.startswith(prefix):
                return cls
    if m.startswith('cvt'):
        return 'cvt'
    if m.startswith(('pmul', 'pmadd', 'psadbw')):
        return 'vec_mul'
    if m.startswith(('pshuf', 'punpck', 'palignr', 'pslldq', 'psrldq', 'pinsr', 'pextr', 'perm', 'pperm',
                     'broadcast', 'pbroadcast', 'insert', 'extract', 'pack', 'pmovzx', 'pmovsx', 'alignr',
                     'shuf', 'unpck', 'pblendv', 'blendv', 'compress', 'expand')):
        return 'shuf'
    if m[:1] == 'p' or m.startswith(('kmov', 'kand', 'kor', 'kxor', 'knot', 'kortest', 'ktest', 'kshift')):
        return 'vec'
    return None


def _reg(md, r):
    """The register key of a capstone register id, or None (ignored)."""
    n = md.reg_name(r)
    if n in _IGNORED or n is None:
        return None
    if n in _GPR:
        return _GPR[n]
    if n[:3] in ('xmm', 'ymm', 'zmm'):
        return 'v' + n[3:]
    if n == 'rflags' or n == 'eflags':
        return 'flags'
    if n.startswith('st'):
        return 'st'
    return n


class Decoder:
    """Instruction descriptions by encoding (module-wide: the same libc and loader code in every run)."""

    LIMIT = 1 << 17

    def __init__(self):
        self.md = Cs(CS_ARCH_X86, CS_MODE_64)
        self.md.detail = True
        self.cache = {}

    def describe(self, enc):
        """The Insn of the one instruction encoded in `enc` (bytes)."""
        d = self.cache.get(enc)
        if d is None:
            if len(self.cache) >= self.LIMIT:
                self.cache.clear()
            d = self.cache[enc] = self._describe(enc)
        return d

    def _describe(self, enc):
        md = self.md
        for ins in md.disasm(enc, 0, 1):
            return _insn(md, ins, len(enc))
        return Insn('nop', (), (), (), False, False, None, False, False, False, None, 1, len(enc))


def _insn(md, ins, size):
    """Insn of one capstone instruction (decoded at address 0)."""
    m = ins.mnemonic
    rep = m.startswith(('rep ', 'repe ', 'repne ', 'repz ', 'repnz '))
    if m.startswith('lock '):
        m = m[5:]
        cls = 'atomic'
    else:
        cls = None
    base_m = m.split()[-1]
    groups = set(ins.groups)
    branch = bool(groups & {X.X86_GRP_JUMP, X.X86_GRP_CALL, X.X86_GRP_RET, X.X86_GRP_BRANCH_RELATIVE})
    jcc = branch and base_m.startswith(('j', 'loop')) and base_m not in ('jmp',)
    ops = ins.operands
    mem = None
    load = store = False
    addr = set()
    if base_m not in _NOP and base_m != 'lea':
        for i, op in enumerate(ops):
            if op.type == X.X86_OP_MEM:
                mm = op.mem
                b = 'rip' if mm.base == X.X86_REG_RIP else (_reg(md, mm.base) if mm.base else None)
                idx = _reg(md, mm.index) if mm.index else None
                mem = (b, idx, mm.scale, mm.disp)
                addr.update(r for r in (b, idx) if r and r != 'rip')
                dest_move = i == 0 and (base_m.startswith(('mov', 'vmov', 'stos', 'set', 'cmov')) or base_m in
                                        ('movnti', 'pextrb', 'pextrw', 'pextrd', 'pextrq', 'vpextrb', 'vpextrd',
                                         'vpextrq', 'extractps', 'vextractps', 'vextracti128',
                                         'vextractf128'))
                if i == 0 and (dest_move or op.access & 2):
                    store = True
                    if not dest_move and op.access & 1:
                        load = True
                else:
                    load = True
    if base_m.startswith(('movs', 'cmps')) and not ins.op_str.startswith(('xmm', 'ymm', 'zmm')) \
            and len(ops) == 2 and all(o.type == X.X86_OP_MEM for o in ops):
        load = store = True
    r_ids, w_ids = ins.regs_access()
    reads = {_reg(md, r) for r in r_ids} - {None}
    writes = {_reg(md, r) for r in w_ids} - {None}
    reads -= addr - {r for o in ops if o.type == X.X86_OP_REG for r in (_reg(md, o.reg),)}
    stack = base_m in ('push', 'pop', 'call', 'ret', 'pushfq', 'popfq', 'leave')
    if stack:
        reads.discard('rsp')
        writes.discard('rsp')
    if branch:
        reads.discard('flags')      # predicted: nothing waits for the branch's inputs
    # zero idioms: xor r, r and the like depend on nothing
    regops = [o.reg for o in ops if o.type == X.X86_OP_REG]
    vm = base_m[1:] if base_m.startswith('v') and len(base_m) > 3 else base_m
    if vm in _ZERO_IDIOMS and len(regops) == len(ops) >= 2 and len(set(regops)) == 1:
        reads = set()
    target = None
    if branch and ops and ops[0].type == X.X86_OP_IMM:
        t = ops[0].imm & 0xFFFFFFFFFFFFFFFF
        target = t - (1 << 64) if t >= 1 << 63 else t
    slots = 1
    if rep:
        cls = 'rep_string'
    elif cls == 'atomic':
        pass
    elif branch:
        cls = 'branch'
        slots = 2 if base_m == 'call' else 1
    elif base_m in _NOP:
        cls = 'nop'
    elif base_m in _SERIAL:
        cls = 'serialize'
    elif base_m == 'lea':
        mm = ops[1].mem
        cls = 'lea3' if mm.base and mm.index and mm.disp else 'alu'
    elif base_m in ('mov', 'push', 'pop') or (base_m in ('xchg',) and not load):
        cls = 'mov' if (base_m == 'mov' and len(regops) == 2) else ('alu' if not (load or store) else 'none')
        if base_m == 'xchg':
            cls, slots = 'alu', 3
    elif base_m in ('imul', 'mul', 'mulx'):
        cls = 'mul_wide' if len(ops) == 1 or base_m == 'mulx' else 'imul'
        slots = 2 if cls == 'mul_wide' else 1
    elif base_m in ('div', 'idiv'):
        cls = 'div64' if ops and ops[0].size == 8 else 'div32'
    elif base_m.startswith('cmov'):
        cls = 'cmov'
    elif base_m.startswith('set') or base_m in _ALU:
        cls = 'alu'
    elif base_m in _SHIFT:
        cls = 'shift'
    elif X.X86_GRP_FPU in groups or base_m.startswith('f'):
        cls = 'x87'
        reads.add('st')
        writes.add('st')
    else:
        vm2 = base_m[1:] if base_m.startswith('v') else base_m
        if vm2 in _MOV_VEC or vm2.startswith('mov'):
            cls = 'vmov' if len(regops) == len(ops) else 'none'
        else:
            cls = _vec_class(vm2) or 'alu'
    if load and store and cls not in ('rep_string', 'atomic', 'none'):
        slots += 1                  # load-op-store: two fused uops (Intel; AMD: one macro-op, two ops)
    flagset = base_m in _FUSIBLE and not (load and store)
    return Insn(cls, tuple(sorted(reads)), tuple(sorted(addr)), tuple(sorted(writes)), load, store, mem,
                flagset, jcc, branch, target, slots, size)
