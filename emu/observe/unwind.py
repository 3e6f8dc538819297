"""Guest call stacks: DWARF call-frame information first, return-address scanning where there is none.

With the program's .eh_frame (emu/observe/cfi.py) each frame's caller is exact: CFA from rsp or rbp, the
return address and the saved rbp read from the stack. Code without CFI (the vDSO, hand-written
assembly) falls back to scanning for one frame, then CFI takes over again.

The scan: gcc -O2 code keeps no frame-pointer chain, so the stack is scanned upwards from RSP for
words that are return addresses: they point into a known function and the bytes just before them are a call
instruction (E8 rel32, or FF /2 in any of its register and memory forms). A direct call must target
the function of the frame found so far (that rejects stale return addresses left in locals); an
indirect call, or a direct call to an address that is no function start (a PLT/IFUNC stub), is
accepted unchecked. A function reached by a tail call (jmp) has no return address of its own, so its
caller's frame fails the check and the stack ends there: stacks can be truncated, never invented
from calls that are not on it. Memory is read through the page tables without faulting.
"""
import struct

from faultlab.observe.cfi import DW_RSP, OUTERMOST

MAX_SCAN_BYTES = 64 << 10
MAX_DEPTH = 64
_MASK64 = (1 << 64) - 1


def _call_len_ff(b, i):
    """Length of an FF /2 (call near indirect) starting at b[i], or 0 if it is not one."""
    if i < 0 or i + 1 >= len(b) or b[i] != 0xFF:
        return 0
    modrm = b[i + 1]
    if (modrm >> 3) & 7 != 2:
        return 0
    mod, rm = modrm >> 6, modrm & 7
    n = 2
    if mod == 3:
        return n
    if rm == 4:                               # SIB
        if i + 2 >= len(b):
            return 0
        n += 1
        if mod == 0 and b[i + 2] & 7 == 5:
            n += 4
    elif mod == 0 and rm == 5:                # rip-relative
        n += 4
    n += 1 if mod == 1 else 4 if mod == 2 else 0
    return n


def call_before(read_code, ret):
    """How the instruction before return address `ret` calls: None (not a call), 'indirect', or the
    direct call's target address."""
    b = read_code(ret - 8, 8) if ret >= 8 else None
    if not b or len(b) != 8:
        return None
    if b[3] == 0xE8:
        return (ret + struct.unpack_from('<i', b, 4)[0]) & _MASK64
    for length in (2, 3, 4, 6, 7):
        if _call_len_ff(b, 8 - length) == length:
            return 'indirect'
    return None


def _candidates(sym, read_code, rsp, max_bytes):
    """[(return address, how)] for every stack word from rsp up that looks like a return address."""
    out = []
    addr, end = rsp, rsp + max_bytes
    while addr < end:
        n = min(4096 - (addr & 0xFFF), end - addr)
        data = read_code(addr, n)
        if not data or len(data) < 8:
            break
        data = data[:len(data) & ~7]
        for (w,) in struct.iter_unpack('<Q', data):
            if sym.maybe_code(w - 1) and sym.lookup(w - 1) is not None:
                how = call_before(read_code, w)
                if how is not None:
                    out.append((w, how))
        addr += n
    return out


ROOTS = frozenset(('_start', '__clone', '__clone3', 'clone', 'clone3', 'start_thread'))
MAX_CANDIDATES = 256


def unwind(sym, read_code, rip, rsp, max_bytes=MAX_SCAN_BYTES, max_depth=MAX_DEPTH):
    """[rip, return address, ...] innermost first (the addresses, not names; name a return address
    by ret - 1, its call instruction).

    Every word that looks like a return address is a candidate; a caller link from a frame to a
    candidate higher up the stack is checked (a direct call targeting the frame's function) or
    unchecked (an indirect call, or a call through a stub). Of all chains, the one chosen ends at
    the program's root (_start, a thread start) if any does, then has the most checked links, then
    the fewest frames: stale return addresses of indirect calls left in locals do not slip in
    between real frames, and an unchecked link is only taken when the chain needs it.
    """
    frames = [rip]
    cur = sym.lookup(rip)
    if cur is None:
        return frames
    cands = _candidates(sym, read_code, rsp, max_bytes)[:MAX_CANDIDATES]
    funcs = [sym.lookup(w - 1) for w, _ in cands]    # w - 1: the call, even at the end of a noreturn caller
    n = len(cands)

    def link(func, k):
        """0 no link, 2 checked, 1 unchecked: can candidate k be the caller of a frame in func?"""
        how = cands[k][1]
        if how == func[1]:
            return 2
        if how == 'indirect' or not sym.is_func_start(how):
            return 1
        return 0

    # best[j]: (reaches root, checked links, -frames) of the best chain continuing above candidate j
    best = [None] * n
    nxt = [None] * n
    for j in range(n - 1, -1, -1):
        b = (funcs[j][0] in ROOTS, 0, 0)
        for k in range(j + 1, n):
            kind = link(funcs[j], k)
            if kind:
                r, c, f = best[k]
                cand = (r, c + (kind == 2), f - 1)
                if cand > b:
                    b, nxt[j] = cand, k
        best[j] = b
    top, first = (cur[0] in ROOTS, 0, 0), None
    for k in range(n):
        kind = link(cur, k)
        if kind:
            r, c, f = best[k]
            cand = (r, c + (kind == 2), f - 1)
            if cand > top:
                top, first = cand, k
    k = first
    while k is not None and len(frames) < max_depth:
        frames.append(cands[k][0])
        k = nxt[k]
    return frames


def _u64(read_code, addr):
    b = read_code(addr, 8) if 0 <= addr < (1 << 47) else None
    return struct.unpack('<Q', b)[0] if b and len(b) == 8 else None


def nearest_caller(sym, read_code, pc, rsp, max_bytes=4096):
    """The first word above rsp that can be the return address of a call to pc's function."""
    cur = sym.lookup(pc)
    if cur is None:
        return None
    for w, how in _candidates(sym, read_code, rsp, max_bytes):
        if how == 'indirect' or how == cur[1] or not sym.is_func_start(how):
            return w
    return None


def unwind_cfi(sym, cfi, read_code, rip, rsp, rbp, max_depth=MAX_DEPTH):
    """[rip, return address, ...] innermost first, by CFI; a frame without CFI is found by scanning."""
    frames = [rip]
    pc = rip
    while len(frames) < max_depth:
        rule = cfi.rule(pc) if cfi is not None else None
        if rule is OUTERMOST:
            break
        if rule is None:
            # no CFI here: the nearest return address by scanning (one frame), then CFI again
            ret = nearest_caller(sym, read_code, frames[-1], rsp)
            if ret is None:
                break
            where = _find_word(read_code, rsp, ret, 4096)
            if where is None:
                break
            rsp = where + 8
        else:
            base = rsp if rule.cfa_reg == DW_RSP else rbp
            if base is None:
                break
            cfa = base + rule.cfa_off
            ret = _u64(read_code, cfa + rule.ra)
            if ret is None:
                break
            if rule.rbp is not None:
                rbp = _u64(read_code, cfa + rule.rbp)
            rsp = cfa
        if ret == 0 or sym.lookup(ret - 1) is None:
            break
        frames.append(ret)
        pc = ret - 1                       # the call instruction: the caller's row, even after a noreturn call
    return frames


def _find_word(read_code, start, value, max_bytes):
    addr, end = start, start + max_bytes
    while addr < end:
        n = min(4096 - (addr & 0xFFF), end - addr)
        data = read_code(addr, n)
        if not data or len(data) < 8:
            return None
        for i, (w,) in enumerate(struct.iter_unpack('<Q', data[:len(data) & ~7])):
            if w == value:
                return addr + 8 * i
        addr += n
    return None
