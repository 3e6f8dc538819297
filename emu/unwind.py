"""Guest call stacks without frame pointers: return-address scanning with call-site checks.

gcc -O2 code keeps no frame-pointer chain, so the stack is scanned upwards from RSP for words that
are return addresses: they point into a known function and the bytes just before them are a call
instruction (E8 rel32, or FF /2 in any of its register and memory forms). A direct call must target
the function of the frame found so far (that rejects stale return addresses left in locals); an
indirect call, or a direct call to an address that is no function start (a PLT/IFUNC stub), is
accepted unchecked. A function reached by a tail call (jmp) has no return address of its own, so its
caller's frame fails the check and the stack ends there: stacks can be truncated, never invented
from calls that are not on it. Memory is read through the page tables without faulting.
"""
import struct

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
            if sym.maybe_code(w) and sym.lookup(w) is not None:
                how = call_before(read_code, w)
                if how is not None:
                    out.append((w, how))
        addr += n
    return out


def unwind(sym, read_code, rip, rsp, max_bytes=MAX_SCAN_BYTES, max_depth=MAX_DEPTH):
    """[rip, return address, ...] innermost first (the addresses, not names).

    For each frame the caller is the nearest candidate whose direct call targets this frame's
    function; only if there is none, the nearest indirect (or stub) call: a stale return address
    of an indirect call must not hide the real, checkable one above it.
    """
    frames = [rip]
    cur = sym.lookup(rip)
    if cur is None:
        return frames
    cands = _candidates(sym, read_code, rsp, max_bytes)
    i = 0
    while i < len(cands) and len(frames) < max_depth:
        pick = None
        for j in range(i, len(cands)):
            how = cands[j][1]
            if how == cur[1]:
                pick = j
                break
            if pick is None and (how == 'indirect' or not sym.is_func_start(how)):
                pick = j
        if pick is None:
            break
        ret = cands[pick][0]
        frames.append(ret)
        cur = sym.lookup(ret)
        i = pick + 1
    return frames
