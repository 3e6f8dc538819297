"""Build the faultlab vDSO: assemble vprefetch.S with keystone (verified, emu/core/asm.py) and wrap it in an ELF64 DSO.

The result is a real x86-64 ``ET_DYN`` shared object, linked at address 0, that the
kernel maps into every process and announces through ``AT_SYSINFO_EHDR``.  File layout
(file offsets equal virtual addresses)::

    ELF header, program headers (PT_LOAD R+X covering the whole image, PT_DYNAMIC, PT_NOTE,
    PT_GNU_STACK)
    .hash .gnu.hash .dynsym .dynstr .gnu.version .gnu.version_d .note
    .text  __ex_table  .dynamic  .shstrtab  section headers
    zero padding to a page multiple

Every exported symbol is an ``STT_FUNC`` in ``.text`` with version ``LINUX_2.6``
(version index 2; index 1 is the base version named after the soname,
``linux-vdso.so.1``).  The vvar page sits one page before the image
(:data:`vdso.vvar.VVAR_OFFSET`).

``__ex_table`` holds 16-byte entries ``{s32 insn; s32 fixup; u32 mask; u32 flags}``:
``insn`` and ``fixup`` are relative to the address of the entry's own field, ``mask``
has bit ``n`` set for each trap number ``n`` the entry handles and ``flags`` bit 0 is
:data:`VDSO_EX_ASYNC`.  :func:`search_exception_table` reads that table from the image
bytes, as the kernel's fault path must.

Use :func:`get_vdso_image` (built once per process); :func:`build_vdso_image` builds
afresh (e.g. from another source file).
"""

import functools
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from faultlab.core.asm import AsmSourceError, assemble

from . import elfwriter as ew
from .vvar import PAGE_SIZE, VVAR_OFFSET, asm_constants

SOURCE = Path(__file__).with_name('vprefetch.S')

SONAME = 'linux-vdso.so.1'
VERSION = 'LINUX_2.6'
#: Version index of VERSION in .gnu.version (1 is the base version).
VERSION_NDX = 2
#: LINUX_VERSION_CODE put in the "Linux" note (6.1.0, matching uname).
LINUX_VERSION_CODE = (6 << 16) | (1 << 8) | 0

X86_TRAP_PF = 14
#: Extable flag: the entry handles faults asynchronously (prefetch_page: do not wait).
VDSO_EX_ASYNC = 1

NR_CLOCK_GETTIME = 228
NR_CLOCK_GETRES = 229

EXTABLE_ENTRY = struct.Struct('<iiII')
TEXT_ALIGN = 16


class ExtableEntry(NamedTuple):
    """One decoded __ex_table entry; offsets are relative to the image start."""
    insn_offset: int
    fixup_offset: int
    mask: int
    flags: int


class ExtableHit(NamedTuple):
    """Result of :func:`search_exception_table`: where to resume, and the entry's flags."""
    fixup_offset: int
    flags: int


@dataclass(frozen=True)
class VdsoImage:
    """A built vDSO image.

    data            the image bytes, padded to a page multiple; map it as is (read+exec)
    symbols         exported name -> offset from the image start (aliases included)
    symbol_sizes    exported name -> st_size
    extable         entries decoded from the image's own __ex_table bytes
    extable_offset  offset of __ex_table in data; extable_size its length in bytes
    text_offset     offset of .text; text_size its length
    vvar_offset     offset of the vvar page relative to the image start (-4096)
    sections        section name -> (offset, size)
    assembly        the text keystone assembled at text_offset (the code, then a .quad per label
                    the builder reads back), verified instruction by instruction (emu/core/asm.py)
    """
    data: bytes
    symbols: dict
    symbol_sizes: dict
    extable: list
    extable_offset: int
    extable_size: int
    text_offset: int
    text_size: int
    vvar_offset: int = VVAR_OFFSET
    sections: dict = field(default_factory=dict)
    assembly: str = ''

    @property
    def size(self):
        """The image size in bytes."""
        return len(self.data)

    @property
    def pages(self):
        """The image size in pages."""
        return len(self.data) // PAGE_SIZE

    def write(self, path):
        """Write the image to a file (e.g. to inspect it with readelf/objdump)."""
        Path(path).write_bytes(self.data)


def parse_extable(data, offset, size):
    """Decode the __ex_table at data[offset:offset+size] into ExtableEntry's (image offsets)."""
    if size % EXTABLE_ENTRY.size:
        raise ValueError('__ex_table size %d is not a multiple of %d' % (size, EXTABLE_ENTRY.size))
    entries = []
    for pos in range(offset, offset + size, EXTABLE_ENTRY.size):
        insn, fixup, mask, flags = EXTABLE_ENTRY.unpack_from(data, pos)
        entries.append(ExtableEntry(pos + insn, pos + 4 + fixup, mask, flags))
    return entries


def search_exception_table(image, ip_offset, trapnr):
    """The fixup for a trap at image offset ip_offset, read from the image's __ex_table.

    Returns ``ExtableHit(fixup_offset, flags)`` for the first entry whose instruction is
    at ip_offset and whose mask has bit ``trapnr`` set, else None.  Offsets are relative
    to the image start (add the mapping base to get addresses).
    """
    if not 0 <= trapnr < 32:
        return None
    bit = 1 << trapnr
    for entry in parse_extable(image.data, image.extable_offset, image.extable_size):
        if entry.insn_offset == ip_offset and entry.mask & bit:
            return ExtableHit(entry.fixup_offset, entry.flags)
    return None


# ----------------------------------------------------------------------------------
# Assembly
# ----------------------------------------------------------------------------------

_IDENT = r'[A-Za-z_.$][A-Za-z0-9_.$]*'


@dataclass
class _Source:
    """The assembly text with the ELF directives taken out, and what they said."""
    text: str
    exports: dict            # name -> binding (STB_GLOBAL / STB_WEAK), in source order
    functions: set           # names declared @function
    sized: list              # names with a .size
    aliases: dict            # alias -> target
    extable: list            # (insn expr, fixup expr, mask expr, flags expr)


def _parse_source(src, filename):
    """Split the ELF-level directives (see vprefetch.S) from the text keystone assembles."""
    exports, functions, sized, aliases, extable = {}, set(), [], {}, []
    lines = []
    for lineno, raw in enumerate(src.splitlines(), 1):
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        words = line.split(None, 1)
        op, rest = words[0], (words[1] if len(words) > 1 else '')
        args = [a.strip() for a in rest.split(',')] if rest else []
        where = '%s:%d: ' % (filename, lineno)
        if op in ('.globl', '.global', '.weak'):
            for name in args:
                exports[name] = ew.STB_WEAK if op == '.weak' else ew.STB_GLOBAL
        elif op == '.type':
            if len(args) != 2 or args[1] not in ('@function', '%function'):
                raise ValueError(where + 'only ".type NAME, @function" is supported')
            functions.add(args[0])
        elif op == '.size':
            if len(args) != 2 or args[1].replace(' ', '') != '.-' + args[0]:
                raise ValueError(where + 'only ".size NAME, .-NAME" is supported')
            sized.append(args[0])
            lines.append('.Lvdso_size_end_%s:' % args[0])
        elif op == '.vdso_extable':
            if len(args) != 4:
                raise ValueError(where + '.vdso_extable takes INSN, FIXUP, MASK, FLAGS')
            extable.append(tuple(args))
        elif op in ('.section', '.text', '.data', '.hidden', '.previous', '.pushsection',
                    '.popsection', '.intel_syntax', '.att_syntax'):
            raise ValueError(where + '%s is not supported (single .text, Intel syntax)' % op)
        else:
            if op == '.set' and len(args) == 2 and re.fullmatch(_IDENT, args[1]):
                aliases[args[0]] = args[1]
            lines.append(line)
    return _Source('\n'.join(lines), exports, functions, sized, aliases, extable)


def _prelude(text_offset):
    """.set lines for the constants the source may use; .Lvdso_text_start opens the code."""
    consts = dict(asm_constants())
    consts.update(X86_TRAP_PF=X86_TRAP_PF, VDSO_EX_ASYNC=VDSO_EX_ASYNC,
                  NR_clock_gettime=NR_CLOCK_GETTIME, NR_clock_getres=NR_CLOCK_GETRES)
    lines = ['.set %s, %#x' % kv for kv in consts.items()]       # 0x literals: emu/core/asm.py
    lines.append('.Lvdso_text_start:')
    # Code is assembled at its image offset, so the image starts at address 0 and the
    # vvar page at VVAR_OFFSET; express that as a label so [rip + vvar_page] is PC-relative.
    lines.append('.set vvar_page, .Lvdso_text_start - %#x' % (text_offset - VVAR_OFFSET))
    return lines


@dataclass
class _Assembled:
    """What the assembler produced: the code and the label values read back from it."""
    code: bytes
    symbols: dict            # name -> image offset
    sizes: dict              # name -> size
    extable: list            # (insn offset, fixup offset, mask, flags)
    source: str              # the text assembled


def _label_queries(parsed):
    """The label expressions read back after assembly: code end, exports, .size ends, extable fields."""
    queries = ['.Lvdso_code_end']
    queries += list(parsed.exports)
    queries += ['.Lvdso_size_end_%s' % n for n in parsed.sized]
    for entry in parsed.extable:
        queries += ['(%s)' % e for e in entry]
    return queries


def _assembly_text(parsed, text_offset, queries):
    """The text keystone assembles: the prelude, the code, then one .quad per query."""
    return '\n'.join(_prelude(text_offset) + [parsed.text, '.Lvdso_code_end:']
                     + ['.quad %s' % q for q in queries]) + '\n'


def _assemble_text(src, text_offset):
    """Machine code for src at text_offset; a source error becomes a ValueError."""
    try:
        # keystone with its radix set, every instruction checked against the source (emu/core/asm.py)
        return assemble(src, text_offset, 'the vDSO')
    except AsmSourceError as exc:
        raise ValueError('assembling the vDSO source failed: %s' % exc) from None


def _split_label_table(out, nqueries, text_offset):
    """Separate the code from the .quad table after it; returns (code, label values)."""
    table_size = 8 * nqueries
    if len(out) < table_size:
        raise ValueError('assembling the vDSO source produced too little output')
    values = struct.unpack('<%dQ' % nqueries, out[-table_size:])
    code = out[:-table_size]
    if text_offset + len(code) != values[0]:
        raise ValueError('assembler output does not match its labels (%#x != %#x)'
                         % (text_offset + len(code), values[0]))
    return code, values


def _read_labels(parsed, values):
    """Symbol offsets, symbol sizes and extable entries from the label values, in query order."""
    pos = 1
    symbols = {}
    for name in parsed.exports:
        symbols[name] = values[pos]
        pos += 1
    sizes = {}
    for name in parsed.sized:
        sizes[name] = values[pos] - symbols.get(name, values[pos])
        pos += 1
    extable = []
    for _ in parsed.extable:
        extable.append(values[pos:pos + 4])
        pos += 4
    for alias, target in parsed.aliases.items():
        if alias in symbols and alias not in sizes and target in sizes:
            sizes[alias] = sizes[target]
    return symbols, sizes, extable


def _check_symbols_in_code(symbols, text_offset, code_end):
    """Every exported symbol must point into the assembled code."""
    for name, off in symbols.items():
        if not text_offset <= off < code_end:
            raise ValueError('exported symbol %s is outside the code' % name)


def _assemble(parsed, text_offset):
    """Assemble at text_offset; label values come back through a table of .quad's appended to the code."""
    queries = _label_queries(parsed)
    src = _assembly_text(parsed, text_offset, queries)
    code, values = _split_label_table(_assemble_text(src, text_offset), len(queries), text_offset)
    symbols, sizes, extable = _read_labels(parsed, values)
    _check_symbols_in_code(symbols, text_offset, values[0])
    return _Assembled(code, symbols, sizes, extable, src)


# ----------------------------------------------------------------------------------
# ELF image
# ----------------------------------------------------------------------------------

# Section indices, in file order.
(_S_NULL, _S_HASH, _S_GNU_HASH, _S_DYNSYM, _S_DYNSTR, _S_VERSYM, _S_VERDEF, _S_NOTE,
 _S_TEXT, _S_EXTABLE, _S_DYNAMIC, _S_SHSTRTAB) = range(12)
_SECTION_NAMES = ('', '.hash', '.gnu.hash', '.dynsym', '.dynstr', '.gnu.version', '.gnu.version_d',
                  '.note', '.text', '__ex_table', '.dynamic', '.shstrtab')
_NUM_PHDRS = 4


class _Tables:
    """The symbol-related sections; their sizes depend only on the symbol names."""

    def __init__(self, names, values, sizes, bindings):
        nbuckets = ew.gnu_hash_nbuckets(len(names))
        order = [''] + ew.gnu_hash_order(names, nbuckets)
        self.order = order
        strtab = _dynstr(order)
        self.soname_off = strtab[SONAME]
        self.dynstr = strtab.bytes()
        self.dynsym = _dynsym(order, strtab, values, sizes, bindings)
        self.hash = ew.sysv_hash_section(order)
        self.gnu_hash = ew.gnu_hash_section(order, 1, nbuckets)
        self.versym = _versym(order)
        self.verdef = _verdef(strtab)
        self.verdefnum = 2


def _dynstr(order):
    """.dynstr: the symbol names in symbol-table order, then the soname and the version name."""
    strtab = ew.StringTable()
    for name in order[1:]:
        strtab.add(name)
    strtab.add(SONAME)
    strtab.add(VERSION)
    return strtab


def _dynsym(order, strtab, values, sizes, bindings):
    """.dynsym: the null symbol, then one STT_FUNC in .text per exported name, in order."""
    syms = [bytes(ew.SYM.size)]
    for name in order[1:]:
        syms.append(ew.pack_sym(strtab[name], values[name], sizes.get(name, 0),
                                bindings[name], ew.STT_FUNC, _S_TEXT))
    return b''.join(syms)


def _versym(order):
    """.gnu.version: local for the null symbol, VERSION for every exported one."""
    return struct.pack('<%dH' % len(order), ew.VER_NDX_LOCAL, *[VERSION_NDX] * (len(order) - 1))


def _verdef(strtab):
    """.gnu.version_d: the base version (named after the soname) and VERSION."""
    return ew.verdef_section([
        (ew.VER_FLG_BASE, ew.VER_NDX_GLOBAL, strtab[SONAME], SONAME),
        (0, VERSION_NDX, strtab[VERSION], VERSION),
    ])


@dataclass
class _Sections:
    """Where each section sits in the image (file offset = address) and what it holds."""
    off: dict = field(default_factory=dict)         # section index -> offset
    contents: dict = field(default_factory=dict)    # section index -> bytes
    shoff: int = 0                                  # offset of the section header table
    total: int = 0                                  # image size, a page multiple

    def place(self, lay, idx, blob, align):
        """Put section idx's bytes at the layout's next offset with the given alignment."""
        self.off[idx] = lay.place(len(blob), align)
        self.contents[idx] = blob


def _shstrtab():
    """The section-name string table: each section's name offset, and the table's bytes."""
    tab = ew.StringTable()
    offs = [tab.add(n) for n in _SECTION_NAMES]
    return offs, tab.bytes()


def _read_source(source_path):
    """The parsed vDSO source; every exported symbol must be declared a function."""
    parsed = _parse_source(source_path.read_text(), source_path.name)
    missing = [n for n in parsed.exports if n not in parsed.functions]
    if missing:
        raise ValueError('exported symbols without ".type NAME, @function": %s' % missing)
    return parsed


def _linux_note():
    """The "Linux" note carrying LINUX_VERSION_CODE."""
    return ew.note('Linux', 0, struct.pack('<I', LINUX_VERSION_CODE))


def _place_symbol_sections(lay, tables, note):
    """Lay out the sections before .text (hash tables, symbols, versions, the note)."""
    secs = _Sections()
    secs.place(lay, _S_HASH, tables.hash, 8)
    secs.place(lay, _S_GNU_HASH, tables.gnu_hash, 8)
    secs.place(lay, _S_DYNSYM, tables.dynsym, 8)
    secs.place(lay, _S_DYNSTR, tables.dynstr, 1)
    secs.place(lay, _S_VERSYM, tables.versym, 2)
    secs.place(lay, _S_VERDEF, tables.verdef, 8)
    secs.place(lay, _S_NOTE, note, 4)
    return secs


def _symbol_tables(parsed, asm, sized_like):
    """The symbol sections with the assembled values; their sizes are those laid out in pass 1."""
    names = list(parsed.exports)
    tables = _Tables(names, asm.symbols, asm.sizes, parsed.exports)
    assert len(tables.dynsym) == len(sized_like.dynsym) and len(tables.dynstr) == len(sized_like.dynstr)
    return tables


def _fill_symbol_sections(secs, tables):
    """Replace pass 1's placeholder symbol sections with the real ones (same sizes, same offsets)."""
    secs.contents.update({
        _S_HASH: tables.hash, _S_GNU_HASH: tables.gnu_hash, _S_DYNSYM: tables.dynsym,
        _S_DYNSTR: tables.dynstr, _S_VERSYM: tables.versym, _S_VERDEF: tables.verdef,
    })


def _exception_table(entries, base):
    """__ex_table's bytes for (insn, fixup, mask, flags) image offsets, the table placed at base."""
    extable = b''
    for i, (insn, fixup, mask, flags) in enumerate(entries):
        entry = base + i * EXTABLE_ENTRY.size
        extable += EXTABLE_ENTRY.pack(insn - entry, fixup - (entry + 4), mask, flags)
    return extable


def _dynamic_section(tables, off):
    """.dynamic: the soname and where the dynamic linker finds the symbol and version tables."""
    return ew.pack_dynamic([
        (ew.DT_SONAME, tables.soname_off),
        (ew.DT_HASH, off[_S_HASH]),
        (ew.DT_GNU_HASH, off[_S_GNU_HASH]),
        (ew.DT_STRTAB, off[_S_DYNSTR]),
        (ew.DT_SYMTAB, off[_S_DYNSYM]),
        (ew.DT_STRSZ, len(tables.dynstr)),
        (ew.DT_SYMENT, ew.SYM.size),
        (ew.DT_VERSYM, off[_S_VERSYM]),
        (ew.DT_VERDEF, off[_S_VERDEF]),
        (ew.DT_VERDEFNUM, tables.verdefnum),
    ])


def _place_code_sections(lay, secs, tables, asm):
    """Lay out .text (where it was assembled), __ex_table, .dynamic, .shstrtab and the headers."""
    text_offset = ew.align_up(lay.end, TEXT_ALIGN)
    secs.place(lay, _S_TEXT, asm.code, TEXT_ALIGN)
    assert secs.off[_S_TEXT] == text_offset
    secs.place(lay, _S_EXTABLE, _exception_table(asm.extable, ew.align_up(lay.end, 8)), 8)
    secs.place(lay, _S_DYNAMIC, _dynamic_section(tables, secs.off), 8)
    secs.place(lay, _S_SHSTRTAB, _shstrtab()[1], 1)
    secs.shoff = lay.place(len(_SECTION_NAMES) * ew.SHDR.size, 8)
    secs.total = ew.align_up(lay.end, PAGE_SIZE)


def _section_attrs(verdefnum):
    """Per section index: (type, flags, link, info, align, entsize) of its header."""
    A, AX = ew.SHF_ALLOC, ew.SHF_ALLOC | ew.SHF_EXECINSTR
    return {
        _S_HASH: (ew.SHT_HASH, A, _S_DYNSYM, 0, 8, 4),
        _S_GNU_HASH: (ew.SHT_GNU_HASH, A, _S_DYNSYM, 0, 8, 0),
        _S_DYNSYM: (ew.SHT_DYNSYM, A, _S_DYNSTR, 1, 8, ew.SYM.size),
        _S_DYNSTR: (ew.SHT_STRTAB, A, 0, 0, 1, 0),
        _S_VERSYM: (ew.SHT_GNU_VERSYM, A, _S_DYNSYM, 0, 2, 2),
        _S_VERDEF: (ew.SHT_GNU_VERDEF, A, _S_DYNSTR, verdefnum, 8, 0),
        _S_NOTE: (ew.SHT_NOTE, A, 0, 0, 4, 0),
        _S_TEXT: (ew.SHT_PROGBITS, AX, 0, 0, TEXT_ALIGN, 0),
        _S_EXTABLE: (ew.SHT_PROGBITS, A, 0, 0, 8, 0),
        _S_DYNAMIC: (ew.SHT_DYNAMIC, A, _S_DYNSTR, 0, 8, ew.DYN.size),
        _S_SHSTRTAB: (ew.SHT_STRTAB, 0, 0, 0, 1, 0),
    }


def _program_headers(secs):
    """The program headers: one R+X PT_LOAD for the whole image, PT_DYNAMIC, PT_NOTE, PT_GNU_STACK."""
    off, total = secs.off, secs.total
    dynamic, note = secs.contents[_S_DYNAMIC], secs.contents[_S_NOTE]
    return [
        ew.pack_phdr(ew.PT_LOAD, ew.PF_R | ew.PF_X, 0, 0, total, total, PAGE_SIZE),
        ew.pack_phdr(ew.PT_DYNAMIC, ew.PF_R, off[_S_DYNAMIC], off[_S_DYNAMIC],
                     len(dynamic), len(dynamic), 8),
        ew.pack_phdr(ew.PT_NOTE, ew.PF_R, off[_S_NOTE], off[_S_NOTE], len(note), len(note), 4),
        # Not in the Linux vDSO; says "no executable stack" to loaders that dlopen() the file.
        ew.pack_phdr(ew.PT_GNU_STACK, ew.PF_R | ew.PF_W, 0, 0, 0, 0, 16),
    ]


def _write_headers(buf, secs):
    """The ELF header and the program headers at the start of the image."""
    buf[0:ew.EHDR.size] = ew.pack_ehdr(ew.ET_DYN, ew.EM_X86_64, 0, ew.EHDR.size, _NUM_PHDRS,
                                       secs.shoff, len(_SECTION_NAMES), _S_SHSTRTAB)
    phdrs = _program_headers(secs)
    buf[ew.EHDR.size:ew.EHDR.size + len(phdrs) * ew.PHDR.size] = b''.join(phdrs)


def _write_sections(buf, secs, verdefnum):
    """Each section's bytes and the section header table; returns name -> (offset, size)."""
    attrs = _section_attrs(verdefnum)
    name_offs = _shstrtab()[0]
    shdrs = [ew.pack_shdr(0, ew.SHT_NULL, 0, 0, 0, 0)]
    sections = {}
    for idx in range(1, len(_SECTION_NAMES)):
        blob, at = secs.contents[idx], secs.off[idx]
        buf[at:at + len(blob)] = blob
        sh_type, flags, link, info, align, entsize = attrs[idx]
        addr = at if flags & ew.SHF_ALLOC else 0
        shdrs.append(ew.pack_shdr(name_offs[idx], sh_type, flags, addr, at, len(blob),
                                  link, info, align, entsize))
        sections[_SECTION_NAMES[idx]] = (at, len(blob))
    buf[secs.shoff:secs.shoff + len(shdrs) * ew.SHDR.size] = b''.join(shdrs)
    return sections


def _write_elf(secs, verdefnum):
    """The image bytes (zero-padded to a page multiple) and name -> (offset, size) of its sections."""
    buf = bytearray(secs.total)
    _write_headers(buf, secs)
    sections = _write_sections(buf, secs, verdefnum)
    return bytes(buf), sections


def _vdso_image(data, sections, secs, asm, names):
    """The VdsoImage of the written bytes; the exception table is decoded back from them."""
    ex_off, ex_size = secs.off[_S_EXTABLE], len(secs.contents[_S_EXTABLE])
    return VdsoImage(
        data=data,
        symbols=dict(asm.symbols),
        symbol_sizes={n: asm.sizes.get(n, 0) for n in names},
        extable=parse_extable(data, ex_off, ex_size),
        extable_offset=ex_off,
        extable_size=ex_size,
        text_offset=secs.off[_S_TEXT],
        text_size=len(asm.code),
        sections=sections,
        assembly=asm.source,
    )


def build_vdso_image(source_path=SOURCE):
    """Assemble source_path and return the VdsoImage (not cached)."""
    parsed = _read_source(Path(source_path))
    names = list(parsed.exports)
    lay = ew.Layout(ew.EHDR.size + _NUM_PHDRS * ew.PHDR.size)
    # Pass 1: the symbol tables' sizes do not depend on the symbol values.
    dummy = _Tables(names, dict.fromkeys(names, 0), {}, parsed.exports)
    secs = _place_symbol_sections(lay, dummy, _linux_note())
    # Pass 2: assemble where the code will live, then build the real tables.
    asm = _assemble(parsed, ew.align_up(lay.end, TEXT_ALIGN))
    tables = _symbol_tables(parsed, asm, dummy)
    _fill_symbol_sections(secs, tables)
    _place_code_sections(lay, secs, tables, asm)
    data, sections = _write_elf(secs, tables.verdefnum)
    return _vdso_image(data, sections, secs, asm, names)


@functools.lru_cache(maxsize=1)
def get_vdso_image():
    """The vDSO image built from vprefetch.S, built once per process."""
    return build_vdso_image()
