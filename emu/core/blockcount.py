"""Exact guest instruction and cycle counting with a block hook written in machine code.

A Python block hook costs a call per executed block (5-8 M insn/s); this one runs in native code at
close to Unicorn's hook-free speed. It looks the block up in an open-addressing hash table keyed by
(address, size) whose value packs (instructions, cycles); Python is called only for a block it has
never seen (the `miss` callback decodes it once). A block that starts with the budget already used
up is not counted and the hook tail-calls uc_emu_stop: Unicorn does not run a block whose hook asked
to stop (it runs on the next emu_start). So quanta end on block boundaries, overshoot the budget by
less than one block, and every emu_start makes progress.

State array (uint64) shared with the native code:
  0 insns   1 budget (stop when insns >= budget)   2 &uc_emu_stop   3 table   4 mask
  5 miss callback   6 last block addr   7 last block size   8 blocks   9 last value   10 cycles
  11 per-slot execution counts (0: not counting)   12 slot the miss callback filled

Per-block execution counts (for `faultlab profile`) are off by default: with st[11] == 0 the hook
pays one load and one branch. When on, st[11] points at an array parallel to the hash table and the
hook increments the slot of every block it counts (not one it stops at). The counts are handed to a
sink (`set_block_sink`) before the table is cleared and when `harvest()` is called, together with
the blocks a fault cut short (`uncount`), so a profiler can attribute exact cycles per instruction.
"""
import ctypes

from unicorn import UC_HOOK_BLOCK
from unicorn.unicorn_py3.unicorn import uclib
from unicorn.unicorn_py3.arch.types import uc_hook_h

from faultlab.core.asm import NATIVE_CHECKS, NativeCode, NativeStateError, assemble

ST_INSNS, ST_BUDGET, ST_STOP, ST_TABLE, ST_MASK, ST_MISS, ST_LAST_ADDR, ST_LAST_SIZE, ST_BLOCKS, \
    ST_LAST_VALUE, ST_CYCLES, ST_COUNTS, ST_MISS_SLOT = range(13)

# void hook(uc_engine *uc /*rdi*/, uint64_t addr /*rsi*/, uint32_t size /*edx*/, uint64_t *st /*rcx*/)
# (numbers of two or more digits are 0x literals: emu/core/asm.py; [rcx+8*i] is st[i])
_HOOK_ASM = """
    mov r8d, edx
    mov [rcx+0x30], rsi
    mov [rcx+0x38], r8
    inc qword ptr [rcx+0x40]
    mov r9, r8
    shl r9, 0x30
    or r9, rsi
    mov r10, r9
    shr r10, 2
    mov r11, r9
    shr r11, 0x11
    xor r10, r11
    and r10, [rcx+0x20]
    mov r11, [rcx+0x18]
probe:
    mov rax, r10
    shl rax, 4
    add rax, r11
    cmp [rax], r9
    je hit
    cmp qword ptr [rax], 0
    je miss
    inc r10
    and r10, [rcx+0x20]
    jmp probe
hit:
    mov rax, [rax+8]
account:
    mov [rcx+0x48], rax
    mov rdx, [rcx]
    cmp rdx, [rcx+8]
    jae stop
    mov edx, eax
    add [rcx], rdx
    shr rax, 0x20
    add [rcx+0x50], rax
    mov rax, [rcx+0x58]
    test rax, rax
    jz done
    inc qword ptr [rax+r10*8]
done:
    ret
stop:
    jmp qword ptr [rcx+0x10]
miss:
    push rcx
    push rdi
    mov rdx, r8
    sub rsp, 8
    call qword ptr [rcx+0x28]
    add rsp, 8
    pop rdi
    pop rcx
    mov r10, [rcx+0x60]
    jmp account
"""

MISS_CB = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p)
NO_LIMIT = (1 << 64) - 1


class NativeBlockCounter:
    """Counts executed instructions and cycles per block; stops emulation at a budget."""

    def __init__(self, uc, describe_block, table_bits=16):
        """describe_block(addr, size) -> (instructions, cycles) for a block never seen before."""
        # everything the hook reaches is kept here for as long as the hook is installed (the Unicorn
        # engine, which the owner keeps, frees the hook with itself): the code pages, the table,
        # the state array and the miss callback's thunk
        self._code = NativeCode(assemble(_HOOK_ASM, 0, 'the native block hook (emu/core/blockcount.py)'))
        fn = self._code.address
        self._entries = 1 << table_bits
        self._table = (ctypes.c_uint64 * (2 * self._entries))()
        self._used = 0
        self.st = st = (ctypes.c_uint64 * 16)()
        st[ST_BUDGET] = NO_LIMIT
        st[ST_STOP] = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        st[ST_TABLE] = ctypes.addressof(self._table)
        st[ST_MASK] = self._entries - 1
        self._describe = describe_block
        self.error = None
        self._counts = None             # per-slot execution counts while a block sink is set
        self._sink = None
        self._partials = None           # {(addr, size, n): times the last n insns did not retire}
        self._miss_cb = MISS_CB(self._miss)
        st[ST_MISS] = ctypes.cast(self._miss_cb, ctypes.c_void_p).value
        h = uc_hook_h()
        err = uclib.uc_hook_add(uc._uch, ctypes.byref(h), UC_HOOK_BLOCK, ctypes.c_void_p(fn),
                                ctypes.cast(st, ctypes.c_void_p), ctypes.c_uint64(1), ctypes.c_uint64(0))
        if err:
            raise RuntimeError("cannot install the native block hook (uc error %d)" % err)
        self.handle = h.value

    @staticmethod
    def _key(addr, size):
        return (size << 48) | addr

    def _slot(self, key):
        mask = self._entries - 1
        i = ((key >> 2) ^ (key >> 17)) & mask
        t = self._table
        while t[2 * i] not in (0, key):
            i = (i + 1) & mask
        return i

    def _miss(self, _uc, addr, size, _st):
        try:
            insns, cycles = self._describe(addr, size)
        except Exception as e:          # never let an exception unwind through native code
            self.error = e
            self.st[ST_BUDGET] = 0      # the hook stops before this block runs
            insns, cycles = 0, 0
        value = (insns & 0xFFFFFFFF) | ((cycles & 0xFFFFFFFF) << 32)
        try:
            if self._used * 2 >= self._entries:
                self.clear()            # (a profiler's sink runs here)
            if NATIVE_CHECKS:
                self.check()
        except Exception as e:
            self.error = e
            self.st[ST_BUDGET] = 0
        # the hook counts the slot named in st[ST_MISS_SLOT]: always the one filled now
        key = self._key(addr, size)
        i = self._slot(key)
        if self._table[2 * i] == 0:
            self._used += 1
        self._table[2 * i] = key
        self._table[2 * i + 1] = value
        self.st[ST_MISS_SLOT] = i
        return value

    def check(self):
        """Debug check (FAULTLAB_NATIVE_CHECKS=1): the state the hook reads points at the live
        arrays and callback, and its code pages hold the verified bytes."""
        st = self.st
        want = {ST_TABLE: ctypes.addressof(self._table), ST_MASK: self._entries - 1,
                ST_MISS: ctypes.cast(self._miss_cb, ctypes.c_void_p).value,
                ST_COUNTS: ctypes.addressof(self._counts) if self._sink is not None else 0}
        bad = [i for i, v in want.items() if st[i] != v]
        if bad or not self._code.intact() or not self._used < self._entries:
            raise NativeStateError('native block hook state is inconsistent (fields %s, code %s, %d/%d '
                                   'slots used)' % (bad, 'intact' if self._code.intact() else 'changed',
                                                    self._used, self._entries))

    def clear(self):
        """Forget every block (code changed, or the table is getting full)."""
        if self._sink is not None:
            self.harvest()
        ctypes.memset(self._table, 0, ctypes.sizeof(self._table))
        self._used = 0

    # per-block execution counts (profiling)
    def set_block_sink(self, sink):
        """Count executions per block and hand them to sink(counts, partials); None turns counting off.

        counts: [(addr, size, executions)]; partials: [(addr, size, n, times)], n being how many
        instructions at the end of the block did not retire (a fault cut it), `times` times.
        """
        if sink is None:
            if self._sink is not None:
                self.harvest()
            self.st[ST_COUNTS] = 0      # the hook stops using the array before it is freed
            self._sink = self._counts = self._partials = None
            return
        if self._sink is None:
            self._counts = (ctypes.c_uint64 * self._entries)()
            self._partials = {}
            self.st[ST_COUNTS] = ctypes.addressof(self._counts)
        self._sink = sink

    @property
    def counting(self):
        return self._sink is not None

    def harvest(self):
        """Hand the counts gathered so far to the sink and zero them."""
        if self._sink is None:
            return
        counts = memoryview(self._counts).cast('B').cast('Q')
        table = memoryview(self._table).cast('B').cast('Q')
        out = []
        for i, n in enumerate(counts):
            if n:
                key = table[2 * i]
                out.append((key & 0xFFFFFFFFFFFF, key >> 48, n))
        ctypes.memset(self._counts, 0, ctypes.sizeof(self._counts))
        partials = [k + (v,) for k, v in self._partials.items()]
        self._partials.clear()
        if out or partials:
            self._sink(out, partials)

    # counters
    @property
    def insns(self):
        return self.st[ST_INSNS]

    @property
    def cycles(self):
        return self.st[ST_CYCLES]

    @property
    def blocks(self):
        return self.st[ST_BLOCKS]

    def last_block(self):
        """(addr, size) of the block whose hook ran last."""
        return self.st[ST_LAST_ADDR], self.st[ST_LAST_SIZE]

    def uncount(self, insns, cycles):
        """Take back instructions that were counted but did not retire (a fault cut the block)."""
        self.st[ST_INSNS] -= insns
        self.st[ST_CYCLES] -= cycles
        if self._partials is not None and insns:
            k = (self.st[ST_LAST_ADDR], self.st[ST_LAST_SIZE], insns)
            self._partials[k] = self._partials.get(k, 0) + 1

    def set_budget(self, insns_from_now):
        self.st[ST_BUDGET] = NO_LIMIT if insns_from_now is None else self.st[ST_INSNS] + insns_from_now
