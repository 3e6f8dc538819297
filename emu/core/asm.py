"""Host machine code from Intel-syntax assembly: assembled with a known radix, then verified.

keystone 0.9.2 never initialises MCAsmInfo::Radix (keystone-engine/keystone pull requests "properly
initialize radix" and "Initialise MCAsmInfo::Radix", both open): its lexer copies the field when
ks_asm builds a parser, so on a fresh engine every decimal literal is read in whatever radix the heap
left there, and `[rcx+48]` may come out as `[rcx+0x48]`. The only writer is ks_option, which sets 16
(llvm/keystone/ks.cpp). So this module

* opens the engine with the option set (KS_OPT_SYNTAX_INTEL | KS_OPT_SYNTAX_RADIX16): radix 16, always;
* refuses sources whose meaning depends on the radix: every number of two or more digits must be a
  0x literal (a single digit means the same in any radix), so the bytes are the same either way;
* disassembles what keystone produced with capstone (detail mode) and compares every instruction
  with the one the source means, read with Python's int(x, 0): mnemonic, registers, memory base,
  index, scale and displacement (RIP-relative ones against their target), immediates and branch
  targets (labels get the addresses found by walking the disassembly; `.set` constants are
  substituted), `.p2align N, FILL` padding and `.byte/.word/.long/.quad` data.

A source the check cannot read is refused (AsmSourceError); bytes that differ from the source's
meaning stop the program with one line naming the instruction (AsmMismatch), as emu/core/internals.py
does for a Unicorn whose internals differ from the calibrated ones.

NativeCode maps verified code into a page of host memory that is made read+execute once written.
"""
import collections
import ctypes
import functools
import mmap
import os
import re

from capstone import Cs, CS_ARCH_X86, CS_MODE_64
from capstone.x86_const import X86_OP_IMM, X86_OP_MEM, X86_OP_REG, X86_REG_ENDING, X86_REG_RIP
from keystone import Ks, KsError, KS_ARCH_X86, KS_MODE_64, KS_OPT_SYNTAX_INTEL, KS_OPT_SYNTAX_RADIX16

#: The radix the engine is forced to (the one ks_option can set).
RADIX = 16
SYNTAX = KS_OPT_SYNTAX_INTEL | KS_OPT_SYNTAX_RADIX16


#: FAULTLAB_NATIVE_CHECKS=1: the native hooks check their state at every new block and every batch
#: of native faults (slower; for debugging them)
NATIVE_CHECKS = os.environ.get('FAULTLAB_NATIVE_CHECKS', '') not in ('', '0')


class NativeStateError(RuntimeError):
    """A native hook's state does not point at the live Python objects it should (debug checks)."""


class AsmError(RuntimeError):
    """Machine code the emulator would run natively cannot be trusted."""


class AsmSourceError(AsmError, ValueError):
    """The source is refused: ambiguous in keystone's radix, unreadable by the check, or not assembled."""


class AsmMismatch(AsmError):
    """keystone's bytes do not mean what the source says."""


# ------------------------------------------------------------------------------------------
# the engine
# ------------------------------------------------------------------------------------------

def make_engine():
    """A keystone x86-64 engine whose radix was set through ks_option (never the uninitialised one)."""
    ks = Ks(KS_ARCH_X86, KS_MODE_64)
    ks.syntax = SYNTAX
    return ks


# ------------------------------------------------------------------------------------------
# reading the source
# ------------------------------------------------------------------------------------------

_IDENT = r'[A-Za-z_.$][A-Za-z0-9_.$]*'
_NUMBER_TOKEN = re.compile(r'(?<![A-Za-z0-9_.$])[0-9][A-Za-z0-9_.$]*')
_UNAMBIGUOUS = re.compile(r'[0-9]|0[xX][0-9a-fA-F]+')
_LABEL = re.compile(r'(%s)\s*:\s*(.*)$' % _IDENT)
_SIZES = {'byte': 1, 'word': 2, 'dword': 4, 'qword': 8, 'xmmword': 16}
_DATA = {'.byte': 1, '.word': 2, '.short': 2, '.value': 2, '.long': 4, '.int': 4, '.quad': 8}
_STRING_OPS = re.compile(r'(rep |repe |repne |repz |repnz )?(stos|lods|movs|scas|cmps)[bwdq]$')
_COND_ALIASES = {'z': 'e', 'nz': 'ne', 'c': 'b', 'nae': 'b', 'nc': 'ae', 'nb': 'ae', 'na': 'be',
                 'nbe': 'a', 'nge': 'l', 'nl': 'ge', 'ng': 'le', 'nle': 'g', 'pe': 'p', 'po': 'np'}
_MNEMONIC_ALIASES = dict([('sal', 'shl')] + [(p + a, p + c) for p in ('j', 'set', 'cmov')
                                              for a, c in _COND_ALIASES.items()])


class _Line:
    """One statement: where it is in the source and what it says."""
    __slots__ = ('lineno', 'text', 'label', 'op', 'args')

    def __init__(self, lineno, text, label=None, op=None, args=()):
        self.lineno, self.text, self.label, self.op, self.args = lineno, text, label, op, args


def _split_top(text, seps=','):
    """Split at separators outside brackets and parentheses."""
    parts, depth, cur = [], 0, ''
    for ch in text:
        if ch in '([':
            depth += 1
        elif ch in ')]':
            depth -= 1
        if ch in seps and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def _statements(source):
    """The source as _Line's: labels on their own, then directives and instructions."""
    out = []
    for lineno, raw in enumerate(source.splitlines(), 1):
        for stmt in raw.split('#', 1)[0].split(';'):
            stmt = stmt.strip()
            while stmt:
                m = _LABEL.match(stmt)
                if m is None:
                    break
                out.append(_Line(lineno, stmt, label=m.group(1)))
                stmt = m.group(2).strip()
            if not stmt:
                continue
            words = stmt.split(None, 1)
            op = words[0].lower()
            rest = words[1] if len(words) > 1 else ''
            if op in ('rep', 'repe', 'repne', 'repz', 'repnz', 'lock') and rest:
                words = rest.split(None, 1)
                op = op + ' ' + words[0].lower()
                rest = words[1] if len(words) > 1 else ''
            out.append(_Line(lineno, stmt, op=op, args=_split_top(rest) if rest.strip() else []))
    return out


def lint(source, name='assembly'):
    """Refuse a bare number of two or more digits: keystone may read it in radix 10 or 16."""
    for lineno, raw in enumerate(source.splitlines(), 1):
        code = raw.split('#', 1)[0]
        for m in _NUMBER_TOKEN.finditer(code):
            if not _UNAMBIGUOUS.fullmatch(m.group()):
                raise AsmSourceError('%s line %d: %r in `%s`: write numbers of two or more digits as 0x '
                                     'literals (keystone reads bare ones in an unreliable radix)'
                                     % (name, lineno, m.group(), code.strip()))


# ------------------------------------------------------------------------------------------
# expressions: numbers, symbols and C operators; the value says whether it is an address
# ------------------------------------------------------------------------------------------

_EXPR_TOKEN = re.compile(r'\s*(?:(0[xX][0-9a-fA-F]+|[0-9]+)|(%s)|(<<|>>|[-+*/&|^~()]))' % _IDENT)
_BINARY = [('|',), ('^',), ('&',), ('<<', '>>'), ('+', '-'), ('*', '/')]


class _Value:
    """An expression's value; `addresses` counts label terms (1: an address, 0: a constant)."""
    __slots__ = ('value', 'addresses')

    def __init__(self, value, addresses=0):
        self.value, self.addresses = value, addresses


class _Symbols:
    """Labels (addresses found in the disassembly) and .set symbols (expressions, read lazily)."""

    def __init__(self):
        self.labels = {}
        self.sets = {}
        self._busy = set()

    def lookup(self, name):
        if name in self.labels:
            return _Value(self.labels[name], 1)
        if name in self.sets and name not in self._busy:
            self._busy.add(name)
            try:
                return self.evaluate(self.sets[name])
            finally:
                self._busy.discard(name)
        raise KeyError(name)

    def evaluate(self, text):
        tokens, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = _EXPR_TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise AsmSourceError('cannot read the expression %r' % text)
            tokens.append(m.groups())
            pos = m.end()
        val, i = self._binary(tokens, 0, 0)
        if i != len(tokens):
            raise AsmSourceError('cannot read the expression %r' % text)
        return val

    def _binary(self, tokens, i, level):
        if level == len(_BINARY):
            return self._unary(tokens, i)
        left, i = self._binary(tokens, i, level + 1)
        while i < len(tokens) and tokens[i][2] in _BINARY[level]:
            op = tokens[i][2]
            right, i = self._binary(tokens, i + 1, level + 1)
            left = _apply(op, left, right)
        return left, i

    def _unary(self, tokens, i):
        if i >= len(tokens):
            raise AsmSourceError('expression ends too early')
        num, ident, op = tokens[i]
        if num is not None:
            return _Value(int(num, 0)), i + 1
        if ident is not None:
            try:
                return self.lookup(ident), i + 1
            except KeyError:
                raise AsmSourceError('unknown symbol %s' % ident) from None
        if op in ('-', '~', '+'):
            v, i = self._unary(tokens, i + 1)
            if v.addresses and op != '+':
                raise AsmSourceError('%s of an address' % op)
            return _Value(-v.value if op == '-' else ~v.value if op == '~' else v.value), i
        if op == '(':
            v, i = self._binary(tokens, i + 1, 0)
            if i >= len(tokens) or tokens[i][2] != ')':
                raise AsmSourceError('unbalanced parentheses')
            return v, i + 1
        raise AsmSourceError('unexpected %r in an expression' % op)


def _apply(op, a, b):
    if op == '+':
        return _Value(a.value + b.value, a.addresses + b.addresses)
    if op == '-':
        return _Value(a.value - b.value, a.addresses - b.addresses)
    if a.addresses or b.addresses:
        raise AsmSourceError('%s on an address' % op)
    x, y = a.value, b.value
    if op == '/':
        if y == 0:
            raise AsmSourceError('division by zero')
        return _Value(int(x / y))
    return _Value({'*': x * y, '<<': x << y, '>>': x >> y, '&': x & y, '|': x | y, '^': x ^ y}[op])


# ------------------------------------------------------------------------------------------
# operands as the source means them
# ------------------------------------------------------------------------------------------

_Reg = collections.namedtuple('_Reg', 'name')
_Imm = collections.namedtuple('_Imm', 'expr')                       # expression text
_Mem = collections.namedtuple('_Mem', 'size base index scale disp')  # disp: [(sign, expression text)]


@functools.lru_cache(maxsize=1)
def _disassembler():
    md = Cs(CS_ARCH_X86, CS_MODE_64)
    md.detail = True
    names = {md.reg_name(r) for r in range(1, X86_REG_ENDING)}
    names.discard(None)
    return md, frozenset(names)


def _operand(text):
    """An operand as _Reg, _Imm (expression text) or _Mem (disp: list of (sign, expression))."""
    _md, regs = _disassembler()
    low = text.lower()
    size = None
    m = re.match(r'(byte|word|dword|qword|xmmword)\s+ptr\s+(.*)$', low)
    if m:
        size, text, low = _SIZES[m.group(1)], text[m.start(2):], m.group(2)
    if low.startswith('['):
        if not low.endswith(']'):
            raise AsmSourceError('cannot read the memory operand %r' % text)
        base = index = None
        scale, disp = 1, []
        inner = text[1:-1]
        terms, sign, cur, depth = [], 1, '', 0
        for ch in inner + '+':
            if ch in '([':
                depth += 1
            elif ch in ')]':
                depth -= 1
            if ch in '+-' and depth == 0 and cur.strip():
                terms.append((sign, cur.strip()))
                sign, cur = (1 if ch == '+' else -1), ''
            elif ch == '-' and depth == 0 and not cur.strip():
                sign = -sign
            elif not (ch == '+' and depth == 0):
                cur += ch
        for sgn, term in terms:
            t = term.lower().replace(' ', '')
            parts = t.split('*')
            if t in regs:
                if sgn < 0:
                    raise AsmSourceError('negative register in %r' % text)
                if base is None:
                    base = t
                elif index is None:
                    index = t
                else:
                    raise AsmSourceError('too many registers in %r' % text)
            elif len(parts) == 2 and (parts[0] in regs or parts[1] in regs):
                reg, factor = (parts[0], parts[1]) if parts[0] in regs else (parts[1], parts[0])
                if index is not None or sgn < 0:
                    raise AsmSourceError('cannot read the index in %r' % text)
                index, scale = reg, factor
            else:
                disp.append((sgn, term))
        return _Mem(size, base, index, scale, disp)
    if size is not None:
        raise AsmSourceError('a size without a memory operand: %r' % text)
    if low in regs:
        return _Reg(low)
    return _Imm(text)


# ------------------------------------------------------------------------------------------
# the check
# ------------------------------------------------------------------------------------------

def _fits(value, bits):
    return -(1 << (bits - 1)) <= value < (1 << bits)


def _describe_insn(insn):
    return ('%s %s' % (insn.mnemonic, insn.op_str)).strip()


def _compare(line, insn, syms):
    """None if insn is what line says, else what differs."""
    want = _MNEMONIC_ALIASES.get(line.op, line.op)
    got = insn.mnemonic
    if got != want and not (want == 'mov' and got == 'movabs'):
        return 'mnemonic %s' % got
    ops = list(insn.operands)
    if not line.args and _STRING_OPS.match(line.op):
        ops = []                       # implicit operands (rdi, rax...) capstone lists
    if len(ops) != len(line.args):
        return '%d operands' % len(ops)
    for n, (arg, op) in enumerate(zip(line.args, ops), 1):
        mine = _operand(arg)
        if isinstance(mine, _Reg):
            if op.type != X86_OP_REG or insn.reg_name(op.reg) != mine.name:
                return 'operand %d' % n
        elif isinstance(mine, _Imm):
            if op.type != X86_OP_IMM:
                return 'operand %d is not an immediate' % n
            v = syms.evaluate(mine.expr).value
            bits = 8 * op.size
            mask = (1 << bits) - 1
            if not _fits(v, bits) or (v & mask) != (op.imm & mask):
                return 'operand %d = %#x, meant %#x' % (n, op.imm & mask, v)
        else:
            if op.type != X86_OP_MEM:
                return 'operand %d is not in memory' % n
            mem = op.mem
            base = insn.reg_name(mem.base) if mem.base else None
            index = insn.reg_name(mem.index) if mem.index else None
            if base != mine.base or index != mine.index:
                return 'operand %d registers [%s, %s]' % (n, base, index)
            scale = syms.evaluate(mine.scale).value if isinstance(mine.scale, str) else mine.scale
            if index is not None and mem.scale != scale:
                return 'operand %d scale %d, meant %d' % (n, mem.scale, scale)
            if mine.size is not None and op.size != mine.size:
                return 'operand %d size %d, meant %d' % (n, op.size, mine.size)
            disp = _Value(0)
            for sgn, term in mine.disp:
                v = syms.evaluate(term)
                disp = _apply('+' if sgn > 0 else '-', disp, v)
            want_disp = disp.value
            if mem.base == X86_REG_RIP and disp.addresses:
                want_disp -= insn.address + insn.size      # [rip + label]: the label's address
            elif disp.addresses:
                return 'operand %d: an absolute address in memory' % n
            if want_disp != mem.disp:
                return 'operand %d displacement %#x, meant %#x' % (n, mem.disp, want_disp)
    return None


def _where(name, line):
    return '%s line %d `%s`' % (name, line.lineno, line.text)


def verify(source, code, address=0, name='assembly'):
    """Check that code (assembled at address) is what source says, instruction by instruction."""
    md, _regs = _disassembler()
    code = bytes(code)
    lines = _statements(source)
    syms = _Symbols()
    # walk the bytes: labels get the addresses they fall at (a .set is read where it is used)
    layout = []
    off = 0
    for line in lines:
        if line.label is not None:
            if line.label in syms.labels:
                raise AsmSourceError('%s: label %s defined twice' % (_where(name, line), line.label))
            syms.labels[line.label] = address + off
            continue
        op = line.op
        if op in ('.set', '.equ'):
            if len(line.args) != 2:
                raise AsmSourceError('%s: .set takes NAME, VALUE' % _where(name, line))
            syms.sets[line.args[0]] = line.args[1]
        elif op == '.p2align':
            if len(line.args) != 2:
                raise AsmSourceError('%s: give the fill byte (.p2align N, FILL)' % _where(name, line))
            pad = -off % (1 << syms.evaluate(line.args[0]).value)
            fill = syms.evaluate(line.args[1]).value & 0xFF
            if code[off:off + pad] != bytes([fill]) * pad:
                raise AsmMismatch('keystone padded %s with %s, meant %d x %#04x'
                                  % (_where(name, line), code[off:off + pad].hex() or 'nothing', pad, fill))
            off += pad
        elif op in _DATA:
            layout.append((line, off, None))
            off += _DATA[op] * len(line.args)
        elif op.startswith('.'):
            raise AsmSourceError('%s: the check does not know %s' % (_where(name, line), op))
        else:
            insn = next(md.disasm(code[off:off + 15], address + off, 1), None)
            if insn is None:
                raise AsmMismatch('keystone output cannot be disassembled at %s (%#x)'
                                  % (_where(name, line), address + off))
            layout.append((line, off, insn))
            off += insn.size
    if off != len(code):
        raise AsmMismatch('%s: keystone produced %d bytes, the source accounts for %d'
                          % (name, len(code), off))
    for line, at, insn in layout:
        if insn is None:
            width = _DATA[line.op]
            for k, arg in enumerate(line.args):
                v = syms.evaluate(arg).value
                got = int.from_bytes(code[at + k * width:at + (k + 1) * width], 'little')
                if not _fits(v, 8 * width) or got != v & ((1 << 8 * width) - 1):
                    raise AsmMismatch('keystone assembled %s as %#x, meant %#x' % (_where(name, line), got, v))
            continue
        why = _compare(line, insn, syms)
        if why is not None:
            raise AsmMismatch('keystone assembled %s as `%s` (%s): refusing to run it'
                              % (_where(name, line), _describe_insn(insn), why))
    return True


@functools.lru_cache(maxsize=32)
def assemble(source, address=0, name='assembly'):
    """Lint, assemble with the radix set, verify; the machine code as bytes."""
    lint(source, name)
    try:
        encoding, _ = make_engine().asm(source, address)
    except KsError as exc:
        raise AsmSourceError('%s: keystone cannot assemble it: %s' % (name, exc)) from None
    code = bytes(encoding or b'')
    verify(source, code, address, name)
    return code


# ------------------------------------------------------------------------------------------
# executable host memory
# ------------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_libc.mprotect.restype = ctypes.c_int


class NativeCode:
    """Machine code in private host pages, read+execute once written (nothing can overwrite it).

    Keep the object for as long as anything may call `address`: the pages are unmapped with it."""

    def __init__(self, code):
        code = bytes(code)
        size = max(mmap.PAGESIZE, -(-len(code) // mmap.PAGESIZE) * mmap.PAGESIZE)
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._map.write(code)
        self.code = code
        view = ctypes.c_char.from_buffer(self._map)
        self.address = ctypes.addressof(view)
        del view
        if _libc.mprotect(self.address, size, mmap.PROT_READ | mmap.PROT_EXEC):
            raise AsmError('cannot make native code executable: %s' % os.strerror(ctypes.get_errno()))

    def intact(self):
        """The pages still hold the verified bytes (debug checks)."""
        return ctypes.string_at(self.address, len(self.code)) == self.code
