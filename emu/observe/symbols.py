"""Guest addresses to function names: the program's ELF symbols (the loader's task.symbols), the
ELF files mapped into the address space (the dynamic loader, libc and the other shared objects:
their .symtab, or .dynsym when stripped, found through the file-backed executable mappings) and the
vDSO's exported symbols, for profiles, traces and stack unwinding."""
import bisect

from faultlab.observe.cfi import CfiTable
from faultlab.kernel.debugmon import exec_file_at, exec_file_mappings
from faultlab.kernel.loader import ExecError, parse_elf

UNKNOWN = '[unknown]'


class MappedObject:
    """One ELF file mapped into the address space: its span, load bias, symbols and (lazily) CFI."""

    def __init__(self, path, lo, hi, bias, data, symbols, code):
        self.path, self.lo, self.hi, self.bias, self.symbols = path, lo, hi, bias, symbols
        self.code = code                # [(start, end)] of its executable mappings
        self.label = '[%s]' % path.rsplit('/', 1)[-1]      # code without a symbol: named by its file
        self._data = data
        self._cfi = None

    @property
    def cfi(self):
        """The object's .eh_frame, read when first asked for."""
        if self._cfi is None:
            self._cfi = CfiTable(self._data, self.bias)
            self._data = None
        return self._cfi


class CfiSet:
    """The call-frame information of every mapped object: rule(pc) asks the one holding pc."""

    def __init__(self, objects):
        self._objects = objects

    def __len__(self):
        return len(self._objects)

    def rule(self, pc):
        for o in self._objects:
            if o.lo <= pc < o.hi:
                return o.cfi.rule(pc)
        return None


def mapped_objects(mm, known=()):
    """{inode: MappedObject} for the ELF files with an executable mapping in mm, except those in
    known. The load bias comes from the mapping of the file page its PT_LOAD starts in."""
    out = {}
    for inode, maps in exec_file_mappings(mm, known).items():
        data = _read_inode(inode)
        if not data:
            continue
        try:
            img = parse_elf(data, maps[0].path)
        except ExecError:
            continue
        first = min(maps, key=lambda m: m.pgoff)
        seg = next((sg for sg in img.segments if sg.offset >> 12 == first.pgoff), None)
        if seg is None:
            continue
        bias = first.start - (seg.vaddr & ~0xFFF)
        out[inode] = MappedObject(maps[0].path, min(m.start for m in maps), max(m.end for m in maps), bias, data,
                                  [(st + bias, size, name) for st, size, name in img.symbols],
                                  [(m.start, m.end) for m in maps if m.executable])
    return out


class Symbolizer:
    """Function lookup for one task's address space."""

    def __init__(self, kernel, task):
        self.task = task
        entries = list(getattr(task, 'symbols', None) or ())        # (start, size, name), sorted
        self.vdso_base = base = getattr(task.mm, 'vdso_base', 0) or 0
        vdso = getattr(kernel, 'vdso', None)
        self.vdso_end = 0
        if base and vdso is not None:
            img = vdso.image
            seen = {}
            for name, off in img.symbols.items():
                # aliases share an offset: keep the __vdso_ name (what the image's code is called)
                if off not in seen or name.startswith('__vdso_'):
                    seen[off] = name
            for off, name in seen.items():
                entries.append((base + off, img.symbol_sizes.get(name, 0), name))
            self.vdso_end = base + len(vdso.text_pfns) * 4096
        self._objects = {}             # inode -> MappedObject: the program, its interpreter, libraries
        self._cfi = None
        self._set_entries(entries)
        self._add_objects()

    def _set_entries(self, entries):
        entries.sort()
        self._entries = entries
        self._starts = [e[0] for e in entries]
        self._func_starts = set(self._starts)
        code = [(s, n) for s, n, _ in entries if not self.vdso_base <= s < self.vdso_end]
        self.text_lo = min((s for s, _ in code), default=0)
        self.text_hi = max((s + max(n, 1) for s, n in code), default=0)
        self._cache = {}

    def _add_objects(self):
        """Take in the ELF files mapped since the last look (the dynamic loader maps libraries while
        the program runs); True if there were new ones. An object whose span already has symbols
        (the program and its interpreter, from exec) adds none."""
        mm = getattr(self.task, 'mm', None)
        new = mapped_objects(mm, self._objects) if mm is not None else {}
        if not new:
            return False
        entries = list(self._entries)
        for inode, obj in new.items():
            self._objects[inode] = obj
            i = bisect.bisect_left(self._starts, obj.lo)
            if not (i < len(self._starts) and self._starts[i] < obj.hi):
                entries += obj.symbols
        self._set_entries(entries)
        self._cfi = None
        return True

    def _unseen_object_at(self, addr):
        """True if addr lies in an executable file mapping this symbolizer has not read yet."""
        mm = getattr(self.task, 'mm', None)
        inode = exec_file_at(mm, addr) if mm is not None else None
        return inode is not None and inode not in self._objects

    @property
    def cfi(self):
        """The call-frame information (emu/observe/cfi.py) of the program and its shared objects, each
        object's read from its file when a pc first falls in it."""
        if self._cfi is None:
            self._cfi = CfiSet(sorted(self._objects.values(), key=lambda o: o.lo))
        return self._cfi

    def lookup(self, addr):
        """(name, start) of the symbol containing addr, ('[FILE]', its start) for other code of a
        mapped file, or None."""
        hit = self._cache.get(addr)
        if hit is not None or addr in self._cache:
            return hit
        res = self._find(addr)
        if res is None and self._unseen_object_at(addr) and self._add_objects():
            res = self._find(addr)
        if len(self._cache) < 1 << 20:
            self._cache[addr] = res
        return res

    def _find(self, addr):
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            start, size, name = self._entries[i]
            if addr - start < size or (size == 0 and addr - start < 4096):
                return (name, start)
        if self.vdso_base <= addr < self.vdso_end:
            return ('[vdso]', self.vdso_base)
        obj = self._object_code_at(addr)
        return (obj.label, obj.lo) if obj is not None else None

    def _object_code_at(self, addr):
        """The mapped object whose executable mapping holds addr, or None."""
        for obj in self._objects.values():
            if obj.lo <= addr < obj.hi and any(lo <= addr < hi for lo, hi in obj.code):
                return obj
        return None

    def name(self, addr):
        hit = self.lookup(addr)
        return hit[0] if hit else UNKNOWN

    def frame_names(self, frames):
        """Names of unwound frames [pc, return address, ...] outermost first (a return address is
        named by its call instruction, ret - 1)."""
        return tuple([self.name(a - 1) for a in reversed(frames[1:])] + [self.name(frames[0])])

    def is_func_start(self, addr):
        return addr in self._func_starts

    def maybe_code(self, addr):
        """A cheap first test for stack scanning: addr lies in the span of known code."""
        return self.text_lo <= addr < self.text_hi or self.vdso_base <= addr < self.vdso_end or \
            self._object_code_at(addr) is not None


class SymbolizerCache:
    """One Symbolizer per address space: threads share theirs, and switching between them (or between
    processes) keeps what was read (rebuilding on every switch re-read every mapped ELF file)."""

    MAX = 64

    def __init__(self, kernel):
        self.kernel = kernel
        self._by_mm = {}                # id(mm) -> (mm, Symbolizer), oldest first

    def current(self):
        """The Symbolizer of the running task's address space, or None when nothing runs."""
        task = self.kernel.current
        if task is None:
            return None
        mm = getattr(task, 'mm', None)
        hit = self._by_mm.get(id(mm))
        if hit is not None and hit[0] is mm:
            return hit[1]
        sym = Symbolizer(self.kernel, task)
        self._by_mm[id(mm)] = (mm, sym)
        if len(self._by_mm) > self.MAX:
            del self._by_mm[next(iter(self._by_mm))]
        return sym


def _read_inode(inode):
    """A mapped file's bytes straight from its filesystem (no simulated I/O, nothing in the page
    cache changes), or None."""
    try:
        return b''.join(inode.read_page(i) for i in range((inode.size + 4095) // 4096))
    except Exception:
        return None
