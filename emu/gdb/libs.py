"""The shared libraries of a dynamically linked program, for gdb's qXfer:libraries-svr4:read.

The dynamic loader keeps them in its link_map list (glibc's elf/link.h): the program's PT_DYNAMIC
holds DT_DEBUG = &_r_debug once the loader has run, r_debug.r_map is the first link_map (the main
program), and each link_map is {l_addr, l_name, l_ld, l_next, l_prev}. The answer is GDB's "Library
List Format for SVR4 Targets" (the GDB manual, appendix E), as gdbserver builds it: the main
program's link_map as main-lm, every other one as a <library> whose lmid names its namespace by
the address of that namespace's r_debug (the default namespace only: dlmopen's are not walked).
"""
import struct

from faultlab.xmlescape import quoteattr

AT_PHDR, AT_PHNUM = 3, 5
PT_DYNAMIC, PT_PHDR = 2, 6
DT_NULL, DT_DEBUG = 0, 21
MAX_DYNAMIC = 1024            # entries of PT_DYNAMIC looked at
MAX_LIBRARIES = 4096          # link_maps followed (a corrupt list cannot loop forever)
EMPTY = '<library-list-svr4 version="1.0"/>'


def _u64s(read, addr, n):
    data = read(addr, 8 * n)
    if data is None or len(data) != 8 * n:
        return None
    return struct.unpack('<%dQ' % n, data)


def _cstr(read, addr, limit=4096):
    out = b''
    while len(out) < limit:
        chunk = read(addr + len(out), 256)
        if not chunk:
            return None
        nul = chunk.find(b'\0')
        if nul >= 0:
            return out + chunk[:nul]
        out += chunk
    return out


def find_r_debug(read, auxv):
    """The address of the loader's r_debug (DT_DEBUG in the program's PT_DYNAMIC), or 0 while the
    loader has not set it (or for a static program)."""
    aux = dict(auxv)
    phdr, phnum = aux.get(AT_PHDR, 0), aux.get(AT_PHNUM, 0)
    if not phdr or not 0 < phnum <= 65536 // 56:
        return 0
    raw = read(phdr, 56 * phnum)
    if raw is None or len(raw) != 56 * phnum:
        return 0
    headers = [struct.unpack_from('<IIQQQQQQ', raw, 56 * i) for i in range(phnum)]
    # the load bias: where the headers are against where the file says they are
    bias = None
    for h in headers:
        if h[0] == PT_PHDR:
            bias = phdr - h[3]
    dyn = next((h for h in headers if h[0] == PT_DYNAMIC), None)
    if bias is None or dyn is None:
        return 0
    entries = min(dyn[5] // 16, MAX_DYNAMIC)
    words = _u64s(read, (dyn[3] + bias) & (1 << 64) - 1, 2 * entries) if entries else None
    if words is None:
        return 0
    for i in range(0, len(words), 2):
        if words[i] == DT_NULL:
            break
        if words[i] == DT_DEBUG:
            return words[i + 1]
    return 0


def library_list_svr4(read, auxv):
    """The XML document for qXfer:libraries-svr4:read; read(addr, n) -> bytes or None."""
    r_debug = find_r_debug(read, auxv)
    if not r_debug:
        return EMPTY
    head = _u64s(read, r_debug, 2)              # r_version (int, padded), r_map
    if head is None or not head[1]:
        return EMPTY
    lm, prev, main_lm, libs = head[1], 0, 0, []
    while lm and len(libs) < MAX_LIBRARIES:
        fields = _u64s(read, lm, 5)
        if fields is None:
            break
        l_addr, l_name, l_ld, l_next, l_prev = fields
        if l_prev != prev:                      # not the list we started walking: stop
            break
        if not prev:
            main_lm = lm                        # the first entry is the program itself
        else:
            name = _cstr(read, l_name) if l_name else b''
            libs.append('<library name=%s lm="%#x" l_addr="%#x" l_ld="%#x" lmid="%#x"/>'
                        % (quoteattr((name or b'').decode('utf-8', 'replace')), lm, l_addr, l_ld, r_debug))
        prev, lm = lm, l_next
    return ('<library-list-svr4 version="1.0" main-lm="%#x">' % main_lm + ''.join(libs)
            + '</library-list-svr4>')
