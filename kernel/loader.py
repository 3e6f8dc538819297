"""The ELF loader (fs/binfmt_elf.c): static, static-PIE and dynamically linked (PT_INTERP) x86-64
executables, the program interpreter, the initial stack.

Every check of the file comes before anything is mapped, and every failure is an ExecError with a
one-line message naming what is wrong.
"""
import errno
import struct


from faultlab.kernel.arch.cpu_interface import PAGE_SIZE
from faultlab.kernel.cred import INIT_CRED
from faultlab.kernel.mm.mm_types import TASK_SIZE, STACK_TOP
from faultlab.kernel.mm.mmap import do_mmap, do_brk, get_unmapped_area, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, page_align
from faultlab.kernel.mm.vma import VmArea, VM_READ, VM_WRITE, VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC, VM_GROWSDOWN, \
    VM_ACCOUNT, VM_SOFTDIRTY

ELF_ET_DYN_BASE = 0x555555554000      # where a static-PIE is loaded (no randomization)
PT_LOAD, PT_INTERP, PT_PHDR, PT_GNU_STACK = 1, 3, 6, 0x6474E551
ET_EXEC, ET_DYN = 2, 3
EM_X86_64 = 62

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK = 11, 12, 13, 14, 15, 16, 17
AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_SYSINFO_EHDR, AT_MINSIGSTKSZ = 23, 25, 26, 31, 33, 51

# CPUID.1:EDX of the emulated CPU (Unicorn's default x86-64 model), as Linux reports in AT_HWCAP
HWCAP_X86 = 0x078BFBFF
MAX_ARG_STRLEN = 32 * PAGE_SIZE
PATH_MAX = 4096
STACK_INITIAL = 128 << 10


class ExecError(Exception):
    """An executable that cannot be run: a message and the errno execve would return."""

    def __init__(self, msg, err=errno.ENOEXEC):
        super().__init__(msg)
        self.errno = err


class Segment:
    __slots__ = ('vaddr', 'offset', 'filesz', 'memsz', 'flags')

    def __init__(self, vaddr, offset, filesz, memsz, flags):
        self.vaddr, self.offset, self.filesz, self.memsz, self.flags = vaddr, offset, filesz, memsz, flags


class ElfImage:
    """What the loader learned from the headers: segments, entry, program headers, symbols."""

    def __init__(self):
        self.segments = []
        self.entry = 0
        self.phoff = self.phnum = self.phentsize = 0
        self.phdr_vaddr = None
        self.is_pie = False
        self.symbols = []            # [(start, size, name)] sorted, unbiased
        self.aligns = []             # p_align of every PT_LOAD
        self.interp = None           # PT_INTERP: the program interpreter's path (bytes), or None


def printable(b):
    """Bytes from the file as text fit for a one-line message (control characters escaped)."""
    return ''.join(c if c.isprintable() else '\\x%02x' % ord(c) for c in b.decode('latin-1'))


def parse_elf(data, name):
    """Validate an executable's bytes and return an ElfImage (raises ExecError)."""
    if len(data) < 4 or data[:4] != b'\x7fELF':
        if data[:2] == b'#!':
            line = printable(data.split(b'\n', 1)[0][:80])
            raise ExecError("%s: is a script (%s); faultlab runs x86-64 ELF executables only" % (name, line))
        raise ExecError("%s: not an ELF file (bad magic)" % name)
    if len(data) < 64:
        raise ExecError("%s: truncated ELF header (%d bytes, need 64)" % (name, len(data)))
    if data[4] != 2:
        raise ExecError("%s: %s ELF; faultlab runs 64-bit x86-64 executables only"
                        % (name, '32-bit' if data[4] == 1 else 'unknown-class'))
    if data[5] != 1:
        raise ExecError("%s: big-endian ELF; x86-64 is little-endian" % name)
    e_type, e_machine = struct.unpack_from('<HH', data, 16)
    if e_machine != EM_X86_64:
        raise ExecError("%s: ELF for machine %d, not x86-64 (62)" % (name, e_machine))
    if e_type not in (ET_EXEC, ET_DYN):
        raise ExecError("%s: ELF type %d is not an executable (need ET_EXEC or ET_DYN)" % (name, e_type))
    entry, phoff = struct.unpack_from('<QQ', data, 24)
    phentsize, phnum = struct.unpack_from('<HH', data, 54)
    if phentsize != 56:
        raise ExecError("%s: program header entry size %d, expected 56" % (name, phentsize))
    if phnum == 0 or phnum > 65536 // 56:
        raise ExecError("%s: %d program headers" % (name, phnum))
    if phoff + phnum * phentsize > len(data) or phoff + phnum * phentsize < phoff:
        raise ExecError("%s: program headers at %#x run past the end of the file (%d bytes)"
                        % (name, phoff, len(data)))
    img = ElfImage()
    img.entry, img.phoff, img.phnum, img.phentsize = entry, phoff, phnum, phentsize
    img.is_pie = e_type == ET_DYN
    for i in range(phnum):
        p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, p_align = \
            struct.unpack_from('<IIQQQQQQ', data, phoff + i * 56)
        if p_type == PT_INTERP and img.interp is None:
            img.interp = _read_interp(data, name, p_offset, p_filesz)
        if p_type == PT_PHDR:
            img.phdr_vaddr = p_vaddr
        if p_type != PT_LOAD:
            continue
        what = "%s: PT_LOAD segment %d" % (name, i)
        if p_filesz > p_memsz:
            raise ExecError("%s: file size %#x exceeds memory size %#x" % (what, p_filesz, p_memsz))
        if p_offset + p_filesz > len(data) or p_offset + p_filesz < p_offset:
            raise ExecError("%s: file range %#x+%#x past the end of the file (%d bytes)"
                            % (what, p_offset, p_filesz, len(data)))
        if (p_vaddr - p_offset) % PAGE_SIZE:
            raise ExecError("%s: address %#x and offset %#x are not congruent modulo the page size"
                            % (what, p_vaddr, p_offset))
        img.aligns.append(p_align)
        if p_align and p_align & (p_align - 1):
            raise ExecError("%s: alignment %#x is not a power of two" % (what, p_align))
        if p_memsz == 0:
            continue
        if p_vaddr + p_memsz > TASK_SIZE or p_vaddr + p_memsz < p_vaddr:
            raise ExecError("%s: address range %#x+%#x outside user space" % (what, p_vaddr, p_memsz))
        seg = Segment(p_vaddr, p_offset, p_filesz, p_memsz, p_flags)
        for other in img.segments:
            if (seg.vaddr & ~0xFFF) < page_align(other.vaddr + other.memsz) and \
                    (other.vaddr & ~0xFFF) < page_align(seg.vaddr + seg.memsz):
                raise ExecError("%s: overlaps another segment at %#x" % (what, other.vaddr))
        img.segments.append(seg)
    if not img.segments:
        raise ExecError("%s: no loadable segments" % name)
    img.segments.sort(key=lambda s: s.vaddr)
    if img.is_pie and img.segments[0].vaddr != 0:
        img.is_pie = img.segments[0].vaddr < 0x10000
    if img.phdr_vaddr is None:
        for s in img.segments:
            if s.offset <= phoff < s.offset + s.filesz:
                img.phdr_vaddr = s.vaddr + phoff - s.offset
    img.symbols = _read_symbols(data)
    return img


def _read_interp(data, name, offset, filesz):
    """The PT_INTERP path as load_elf_binary checks it: 2..PATH_MAX bytes, read whole from the file
    (EIO when short), NUL-terminated."""
    if filesz > PATH_MAX or filesz < 2:
        raise ExecError("%s: PT_INTERP of %d bytes (need 2 to %d)" % (name, filesz, PATH_MAX))
    raw = data[offset:offset + filesz]
    if len(raw) != filesz:
        raise ExecError("%s: PT_INTERP at %#x runs past the end of the file" % (name, offset), errno.EIO)
    if raw[-1] != 0:
        raise ExecError("%s: PT_INTERP %s is not NUL-terminated" % (name, printable(raw[:80])))
    return raw.split(b'\0', 1)[0]


def has_interp(host_path):
    """True if the host file is an ELF executable with a PT_INTERP (a quick look at its program
    headers; False for anything unreadable or malformed, which exec then reports)."""
    try:
        with open(host_path, 'rb') as f:
            ehdr = f.read(64)
            if len(ehdr) < 64 or ehdr[:4] != b'\x7fELF':
                return False
            phoff, = struct.unpack_from('<Q', ehdr, 32)
            phentsize, phnum = struct.unpack_from('<HH', ehdr, 54)
            if phentsize != 56 or not 0 < phnum <= 65536 // 56:
                return False
            f.seek(phoff)
            phdrs = f.read(56 * phnum)
    except (OSError, ValueError, OverflowError):
        return False
    return any(struct.unpack_from('<I', phdrs, i)[0] == PT_INTERP for i in range(0, len(phdrs) - 55, 56))


def parse_interp(data, name):
    """Validate the program interpreter's bytes (an ElfImage): load_elf_binary reads its header
    (EIO when the file is shorter) and refuses anything but an x86-64 ELF executable or shared
    object with ELIBBAD."""
    if len(data) < 64:
        raise ExecError("%s: interpreter is too short for an ELF header (%d bytes)" % (name, len(data)),
                        errno.EIO)
    try:
        img = parse_elf(data, name)
    except ExecError as e:
        raise ExecError("bad ELF interpreter: %s" % e, errno.ELIBBAD) from None
    img.interp = None                # an interpreter's own PT_INTERP is ignored
    return img


def total_mapping_size(img):
    """The span of the PT_LOAD segments, first page to last byte (page-aligned)."""
    first = img.segments[0].vaddr & ~0xFFF
    return page_align(max(s.vaddr + s.memsz for s in img.segments)) - first


_SYMBOL_TYPES = (1, 2)            # STT_OBJECT, STT_FUNC
SHT_SYMTAB, SHT_DYNSYM = 2, 11


def _read_symbols(data):
    """Function and object symbols from .symtab, or .dynsym when the file is stripped (shared
    libraries), for reports and profiles (best effort: a missing or malformed table gives none;
    undefined symbols are left out). Read with struct: exec should not wait for a generic ELF parser."""
    try:
        shoff, = struct.unpack_from('<Q', data, 40)
        shentsize, shnum = struct.unpack_from('<HH', data, 58)
        if not shoff or shentsize != 64 or shoff + shnum * 64 > len(data):
            return []
        sections = [struct.unpack_from('<IIQQQQIIQQ', data, shoff + i * 64) for i in range(shnum)]
        out = []
        kinds = {sec[1] for sec in sections}
        want = SHT_SYMTAB if SHT_SYMTAB in kinds else SHT_DYNSYM
        for _name, sh_type, _fl, _addr, off, size, link, _info, _align, entsize in sections:
            if sh_type != want or entsize != 24 or link >= shnum or off + size > len(data):
                continue
            str_off, str_size = sections[link][4], sections[link][5]
            strtab = data[str_off:str_off + str_size]
            for st_name, st_info, _other, shndx, value, sym_size in struct.iter_unpack(
                    '<IBBHQQ', data[off:off + size - size % 24]):
                if st_info & 0xF in _SYMBOL_TYPES and value and st_name and shndx:
                    end = strtab.find(b'\0', st_name)
                    name = strtab[st_name:end if end >= 0 else len(strtab)]
                    if name:
                        out.append((value, sym_size, name.decode('utf-8', 'replace')))
            break
        out.sort()
        return out
    except (struct.error, IndexError):
        return []


def _prot(flags):
    return (1 if flags & 4 else 0) | (2 if flags & 2 else 0) | (4 if flags & 1 else 0)


def elf_map_segments(mm, umem, exe_file, img, bias, main=True):
    """Map the PT_LOAD segments at bias (file-backed, bss anonymous); for the main program also
    record start/end of code and data. Returns the end of the last segment in memory."""
    end = 0
    for s in img.segments:
        vaddr = s.vaddr + bias
        start = vaddr & ~0xFFF
        prot = _prot(s.flags)
        file_end = vaddr + s.filesz
        mem_end = vaddr + s.memsz
        if s.filesz:
            length = page_align(file_end) - start
            r = do_mmap(mm, start, length, prot, MAP_PRIVATE | MAP_FIXED, exe_file, (s.offset - (vaddr - start)) >> 12)
            if r < 0:
                raise ExecError("cannot map segment at %#x: errno %d" % (vaddr, -r), -r)
            # padzero: the rest of the last file page is bss, not file bytes
            if s.memsz > s.filesz and file_end & 0xFFF:
                if not umem.write(file_end, bytes(PAGE_SIZE - (file_end & 0xFFF))):
                    raise ExecError("cannot clear the bss tail at %#x" % file_end, errno.EFAULT)
            anon_start = page_align(file_end)
        else:
            anon_start = start
        if page_align(mem_end) > anon_start:
            r = do_mmap(mm, anon_start, page_align(mem_end) - anon_start, prot,
                        MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, None, 0)
            if r < 0:
                raise ExecError("cannot map bss at %#x: errno %d" % (anon_start, -r), -r)
        if main and s.flags & 1:
            mm.start_code = mm.start_code or start
            mm.end_code = max(mm.end_code, file_end)
        elif main:
            mm.start_data = mm.start_data or vaddr
            mm.end_data = max(mm.end_data, file_end)
        end = max(end, mem_end)
    return end


def elf_et_dyn_bias(img):
    """Where an ET_DYN program goes: ELF_ET_DYN_BASE aligned down to its largest PT_LOAD alignment
    (maximum_alignment), less its first segment's page."""
    align = max([s_align for s_align in img.aligns if s_align and not s_align & (s_align - 1)] + [PAGE_SIZE])
    return ((ELF_ET_DYN_BASE & ~(align - 1)) - img.segments[0].vaddr) & ~0xFFF


def load_elf_binary(mm, umem, exe_file, img, bias):
    """Map the program's segments and set the brk after them; returns the program's entry point."""
    end = elf_map_segments(mm, umem, exe_file, img, bias)
    mm.start_brk = mm.brk = page_align(end)
    do_brk(mm, mm.brk)
    return img.entry + bias


def load_elf_interp(mm, umem, interp_file, img):
    """Map the program interpreter: an ET_DYN one where get_unmapped_area puts its whole span (top
    down below mmap_base, as Linux without randomization), an ET_EXEC one at its addresses.
    Returns its load bias (AT_BASE for ET_DYN)."""
    bias = 0
    if img.is_pie:
        first = img.segments[0].vaddr & ~0xFFF
        start = get_unmapped_area(mm, first, total_mapping_size(img), False)
        if start < 0:
            raise ExecError("no room for the interpreter (%d KiB)" % (total_mapping_size(img) >> 10), -start)
        bias = start - first
    elf_map_segments(mm, umem, interp_file, img, bias, main=False)
    return bias


def create_elf_tables(mm, umem, argv, envp, execfn, img, bias, entry, random_bytes, vdso_base=0, interp_base=0,
                      cred=None):
    """Build the initial stack as Linux lays it out; returns the initial stack pointer."""
    for s in list(argv) + list(envp):
        if len(s) + 1 > MAX_ARG_STRLEN:
            raise ExecError("argument or environment string too long", errno.E2BIG)
    mm.start_stack = STACK_TOP
    image = bytearray()                # everything from sp up to STACK_TOP - 8, built top-down

    def push(b):
        image[0:0] = b
        return STACK_TOP - 8 - len(image)

    p_execfn = push(execfn + b'\0')
    env_ptrs = [push(e + b'\0') for e in reversed(envp)][::-1]
    arg_ptrs = [push(a + b'\0') for a in reversed(argv)][::-1]
    mm.arg_start = arg_ptrs[0] if arg_ptrs else p_execfn
    mm.env_start = env_ptrs[0] if env_ptrs else p_execfn
    mm.arg_end = mm.env_start
    mm.env_end = p_execfn
    p_platform = push(b'x86_64\0')
    p_random = push(random_bytes)
    cred = cred or INIT_CRED                 # the exec'ing task's ids (AT_SECURE: set-id)
    auxv = []
    if vdso_base:
        auxv.append((AT_SYSINFO_EHDR, vdso_base))
    auxv += [(AT_MINSIGSTKSZ, 2048), (AT_HWCAP, HWCAP_X86), (AT_PAGESZ, PAGE_SIZE), (AT_CLKTCK, 100),
             (AT_PHDR, (img.phdr_vaddr or 0) + bias), (AT_PHENT, 56), (AT_PHNUM, img.phnum), (AT_BASE, interp_base),
             (AT_FLAGS, 0), (AT_ENTRY, entry), (AT_UID, cred.uid), (AT_EUID, cred.euid), (AT_GID, cred.gid),
             (AT_EGID, cred.egid), (AT_SECURE, int(cred.uid != cred.euid or cred.gid != cred.egid)),
             (AT_RANDOM, p_random), (AT_HWCAP2, 0), (AT_EXECFN, p_execfn),
             (AT_PLATFORM, p_platform), (AT_NULL, 0)]
    mm.saved_auxv = auxv
    words = [len(argv)] + arg_ptrs + [0] + env_ptrs + [0] + [x for kv in auxv for x in kv]
    sp = (STACK_TOP - 8 - len(image) - 8 * len(words)) & ~0xF
    block = struct.pack('<%dQ' % len(words), *words)
    pad = (STACK_TOP - 8 - len(image)) - (sp + len(block))
    full = block + bytes(pad) + bytes(image) + bytes(8)
    start = min(STACK_TOP - STACK_INITIAL, sp & ~0xFFF)
    mm.vmas.insert(VmArea(start, STACK_TOP, VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_GROWSDOWN
                          | VM_ACCOUNT | VM_SOFTDIRTY, start >> 12, None, '[stack]'))
    mm.total_vm += (STACK_TOP - start) >> 12
    if not umem.write(sp, full):
        raise ExecError("cannot write the initial stack", errno.EFAULT)
    return sp
