"""Guest addresses to function names: the program's ELF symbols (the loader's task.symbols, read with
pyelftools) and the vDSO's exported symbols, for profiles, traces and stack unwinding."""
import bisect

UNKNOWN = '[unknown]'


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
        entries.sort()
        self._entries = entries
        self._starts = [e[0] for e in entries]
        self._func_starts = set(self._starts)
        prog = [(s, n) for s, n, _ in entries if not base <= s < self.vdso_end]
        self.text_lo = min((s for s, _ in prog), default=0)
        self.text_hi = max((s + max(n, 1) for s, n in prog), default=0)
        self._cache = {}
        self._kernel = kernel
        self._cfi = None

    @property
    def cfi(self):
        """The program's call-frame information (emu/cfi.py), read once from its executable."""
        if self._cfi is None:
            from emu.cfi import CfiTable
            self._cfi = CfiTable(b'')
            data = _read_executable(self._kernel, self.task)
            if data:
                is_dyn = data[16:18] == b'\x03\x00'           # e_type ET_DYN: loaded at the PIE base
                from kernel.loader import ELF_ET_DYN_BASE
                self._cfi = CfiTable(data, ELF_ET_DYN_BASE if is_dyn else 0)
        return self._cfi

    def lookup(self, addr):
        """(name, start) of the symbol containing addr, or None."""
        hit = self._cache.get(addr)
        if hit is not None or addr in self._cache:
            return hit
        res = None
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            start, size, name = self._entries[i]
            if addr - start < size or (size == 0 and addr - start < 4096):
                res = (name, start)
            elif self.vdso_base <= addr < self.vdso_end:
                res = ('[vdso]', self.vdso_base)
        elif self.vdso_base <= addr < self.vdso_end:
            res = ('[vdso]', self.vdso_base)
        if len(self._cache) < 1 << 20:
            self._cache[addr] = res
        return res

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
        return self.text_lo <= addr < self.text_hi or self.vdso_base <= addr < self.vdso_end


def _read_executable(kernel, task):
    """The bytes of the task's executable as exec read them (straight from the filesystem: no
    simulated I/O, nothing in the page cache changes), or None."""
    try:
        inode = kernel.vfs.lookup(task.exe_path)
        return b''.join(inode.read_page(i) for i in range((inode.size + 4095) // 4096))
    except Exception:
        return None
