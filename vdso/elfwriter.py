"""Small helpers for writing ELF64 little-endian files with :mod:`struct`.

Only what a vDSO-like shared object needs: headers, string tables, dynamic symbols,
the SysV and GNU symbol hash tables, symbol versioning (versym/verdef), notes and a
simple file layout allocator.  Nothing here knows about the vDSO itself; see
:mod:`vdso.image` for that.
"""

import struct

# ELF header
ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1
ELFOSABI_NONE = 0
ET_DYN = 3
EM_X86_64 = 62

# Program header types and flags
PT_LOAD = 1
PT_DYNAMIC = 2
PT_NOTE = 4
PT_GNU_STACK = 0x6474e551
PF_X, PF_W, PF_R = 1, 2, 4

# Section header types and flags
SHT_NULL = 0
SHT_PROGBITS = 1
SHT_STRTAB = 3
SHT_HASH = 5
SHT_DYNAMIC = 6
SHT_NOTE = 7
SHT_DYNSYM = 11
SHT_GNU_HASH = 0x6ffffff6
SHT_GNU_VERDEF = 0x6ffffffd
SHT_GNU_VERSYM = 0x6fffffff
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
SHN_UNDEF = 0

# Dynamic tags
DT_NULL = 0
DT_HASH = 4
DT_STRTAB = 5
DT_SYMTAB = 6
DT_STRSZ = 10
DT_SYMENT = 11
DT_SONAME = 14
DT_GNU_HASH = 0x6ffffef5
DT_VERSYM = 0x6ffffff0
DT_VERDEF = 0x6ffffffc
DT_VERDEFNUM = 0x6ffffffd

# Symbols
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_NOTYPE, STT_OBJECT, STT_FUNC = 0, 1, 2
STV_DEFAULT = 0

# Symbol versioning
VER_DEF_CURRENT = 1
VER_FLG_BASE = 1
VER_NDX_LOCAL = 0
VER_NDX_GLOBAL = 1

EHDR = struct.Struct('<16sHHIQQQIHHHHHH')   # Elf64_Ehdr, 64 bytes
PHDR = struct.Struct('<IIQQQQQQ')           # Elf64_Phdr, 56 bytes
SHDR = struct.Struct('<IIQQQQIIQQ')         # Elf64_Shdr, 64 bytes
SYM = struct.Struct('<IBBHQQ')              # Elf64_Sym, 24 bytes
DYN = struct.Struct('<qQ')                  # Elf64_Dyn, 16 bytes
VERDEF = struct.Struct('<HHHHIII')          # Elf64_Verdef, 20 bytes
VERDAUX = struct.Struct('<II')              # Elf64_Verdaux, 8 bytes
NHDR = struct.Struct('<III')                # Elf64_Nhdr, 12 bytes


def align_up(value, alignment):
    """value rounded up to a multiple of alignment (a power of two, or 0/1 for none)."""
    if alignment <= 1:
        return value
    return (value + alignment - 1) & ~(alignment - 1)


def elf_ident(osabi=ELFOSABI_NONE):
    """e_ident for a 64-bit little-endian object."""
    return b'\x7fELF' + bytes([ELFCLASS64, ELFDATA2LSB, EV_CURRENT, osabi]) + bytes(8)


def pack_ehdr(e_type, machine, entry, phoff, phnum, shoff, shnum, shstrndx, flags=0):
    return EHDR.pack(elf_ident(), e_type, machine, EV_CURRENT, entry, phoff, shoff, flags,
                     EHDR.size, PHDR.size, phnum, SHDR.size, shnum, shstrndx)


def pack_phdr(p_type, flags, offset, vaddr, filesz, memsz, align):
    return PHDR.pack(p_type, flags, offset, vaddr, vaddr, filesz, memsz, align)


def pack_shdr(name, sh_type, flags, addr, offset, size, link=0, info=0, addralign=1, entsize=0):
    return SHDR.pack(name, sh_type, flags, addr, offset, size, link, info, addralign, entsize)


def pack_sym(name, value, size, bind, sym_type, shndx, other=STV_DEFAULT):
    return SYM.pack(name, (bind << 4) | (sym_type & 0xf), other, shndx, value, size)


def pack_dynamic(entries):
    """The .dynamic contents for (tag, value) pairs, terminated by DT_NULL."""
    return b''.join(DYN.pack(tag, val) for tag, val in list(entries) + [(DT_NULL, 0)])


def elf_hash(name):
    """The SysV ELF hash of name (bytes or str)."""
    if isinstance(name, str):
        name = name.encode()
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xffffffff
        top = h & 0xf0000000
        if top:
            h ^= top >> 24
        h &= ~top & 0xffffffff
    return h


def gnu_hash(name):
    """The GNU hash (DJB, h*33 + c, seed 5381) of name, 32 bits."""
    if isinstance(name, str):
        name = name.encode()
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xffffffff
    return h


class StringTable:
    """A string table (.dynstr, .shstrtab): offset 0 is the empty string; strings are deduplicated."""

    def __init__(self):
        self._data = bytearray(b'\0')
        self._offsets = {b'': 0}

    def add(self, s):
        """Offset of s in the table, adding it if needed."""
        if isinstance(s, str):
            s = s.encode()
        if s not in self._offsets:
            self._offsets[s] = len(self._data)
            self._data += s + b'\0'
        return self._offsets[s]

    def __getitem__(self, s):
        return self._offsets[s.encode() if isinstance(s, str) else s]

    def bytes(self):
        return bytes(self._data)


def sysv_hash_section(names, nbucket=None):
    """A DT_HASH table for a symbol table whose i-th entry is named names[i].

    names[0] is the null symbol and is not hashed.  Words are 32-bit: nbucket, nchain,
    bucket[nbucket], chain[nchain]; nchain equals the number of symbols.
    """
    nchain = len(names)
    if nbucket is None:
        nbucket = max(1, nchain // 2) | 1
    bucket = [0] * nbucket
    chain = [0] * nchain
    for idx in range(1, nchain):
        b = elf_hash(names[idx]) % nbucket
        chain[idx] = bucket[b]
        bucket[b] = idx
    return struct.pack('<%dI' % (2 + nbucket + nchain), nbucket, nchain, *bucket, *chain)


def gnu_hash_nbuckets(count):
    """A reasonable GNU hash bucket count for count hashed symbols."""
    return max(1, count // 2) | 1


def gnu_hash_order(names, nbuckets):
    """names reordered as a GNU-hashed symbol table needs them: grouped by bucket, stable."""
    return sorted(names, key=lambda n: gnu_hash(n) % nbuckets)


def gnu_hash_section(names, symoffset, nbuckets, bloom_words=1, bloom_shift=6):
    """A DT_GNU_HASH table for a symbol table whose i-th entry is named names[i].

    Symbols below symoffset are not hashed; the rest must already be grouped by
    bucket (see :func:`gnu_hash_order`).  Layout: nbuckets, symoffset, bloom_size,
    bloom_shift (32-bit words), bloom[bloom_size] (64-bit words), buckets[nbuckets],
    then one chain word per hashed symbol (hash with bit 0 marking the end of a bucket).
    """
    if bloom_words & (bloom_words - 1) or bloom_words == 0:
        raise ValueError('bloom_words must be a power of two')
    hashed = names[symoffset:]
    hashes = [gnu_hash(n) for n in hashed]
    buckets_of = [h % nbuckets for h in hashes]
    if buckets_of != sorted(buckets_of):
        raise ValueError('symbols are not grouped by GNU hash bucket')
    bloom = [0] * bloom_words
    for h in hashes:
        word = (h // 64) % bloom_words
        bloom[word] |= (1 << (h % 64)) | (1 << ((h >> bloom_shift) % 64))
    buckets = [0] * nbuckets
    chain = []
    for i, (h, b) in enumerate(zip(hashes, buckets_of)):
        if buckets[b] == 0:
            buckets[b] = symoffset + i
        last = i + 1 == len(hashes) or buckets_of[i + 1] != b
        chain.append((h & ~1) | (1 if last else 0))
    return (struct.pack('<4I', nbuckets, symoffset, bloom_words, bloom_shift)
            + struct.pack('<%dQ' % bloom_words, *bloom)
            + struct.pack('<%dI' % (nbuckets + len(chain)), *buckets, *chain))


def verdef_section(definitions):
    """An SHT_GNU_verdef section for (flags, ndx, name_offset, name) tuples, one aux each."""
    out = bytearray()
    for i, (flags, ndx, name_off, name) in enumerate(definitions):
        nxt = 0 if i + 1 == len(definitions) else VERDEF.size + VERDAUX.size
        out += VERDEF.pack(VER_DEF_CURRENT, flags, ndx, 1, elf_hash(name), VERDEF.size, nxt)
        out += VERDAUX.pack(name_off, 0)
    return bytes(out)


def note(name, n_type, desc):
    """One ELF note: header, NUL-terminated name and desc, each padded to 4 bytes."""
    if isinstance(name, str):
        name = name.encode()
    name += b'\0'
    return (NHDR.pack(len(name), len(desc), n_type)
            + name.ljust(align_up(len(name), 4), b'\0')
            + desc.ljust(align_up(len(desc), 4), b'\0'))


class Layout:
    """Assigns file offsets: place() puts a blob at the next offset with the given alignment."""

    def __init__(self, start=0):
        self.end = start

    def place(self, size, align=1):
        offset = align_up(self.end, align)
        self.end = offset + size
        return offset
