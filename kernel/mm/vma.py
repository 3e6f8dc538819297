"""Virtual memory areas (struct vm_area_struct) and the per-mm sorted VMA tree."""
import bisect

# vm_flags (include/linux/mm.h)
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_MAYREAD = 0x10
VM_MAYWRITE = 0x20
VM_MAYEXEC = 0x40
VM_MAYSHARE = 0x80
VM_GROWSDOWN = 0x100
VM_PFNMAP = 0x400
VM_LOCKED = 0x2000
VM_IO = 0x4000
VM_SEQ_READ = 0x8000
VM_RAND_READ = 0x10000
VM_DONTCOPY = 0x20000
VM_DONTEXPAND = 0x40000
VM_LOCKONFAULT = 0x80000
VM_ACCOUNT = 0x100000
VM_NORESERVE = 0x200000
VM_HUGETLB = 0x400000
VM_WIPEONFORK = 0x2000000
VM_DONTDUMP = 0x4000000
VM_SOFTDIRTY = 0x8000000

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4


def calc_vm_prot_bits(prot):
    """PROT_* -> VM_READ/WRITE/EXEC."""
    return (VM_READ if prot & PROT_READ else 0) | (VM_WRITE if prot & PROT_WRITE else 0) | \
        (VM_EXEC if prot & PROT_EXEC else 0)


class VmArea:
    """struct vm_area_struct."""
    __slots__ = ('vm_start', 'vm_end', 'vm_flags', 'vm_pgoff', 'vm_file', 'name', 'anon', 'vm_seq',
                 'anon_vma', 'seqcount')

    def __init__(self, start, end, flags, pgoff=0, vm_file=None, name=None):
        self.vm_start = start
        self.vm_end = end
        self.vm_flags = flags
        self.vm_pgoff = pgoff          # file offset in pages (file VMAs), or start >> 12 (anon)
        self.vm_file = vm_file         # an OpenFile (holds the inode and its page cache), or None
        self.name = name               # '[heap]', '[stack]', '[vdso]' ...
        self.anon = vm_file is None
        self.vm_seq = 0                # bumped when the VMA is unmapped
        self.anon_vma = False          # anon_vma_prepare done (first anonymous page of the VMA)
        self.seqcount = None           # kernel.locking.SeqCount once a speculative fault looks at it

    def copy(self):
        v = VmArea(self.vm_start, self.vm_end, self.vm_flags, self.vm_pgoff, self.vm_file, self.name)
        v.anon = self.anon
        v.anon_vma = self.anon_vma
        return v

    def linear_page_index(self, addr):
        """The file page index that addr maps (linear_page_index)."""
        return ((addr - self.vm_start) >> 12) + self.vm_pgoff

    def prot_str(self):
        f = self.vm_flags
        return ('r' if f & VM_READ else '-') + ('w' if f & VM_WRITE else '-') + \
            ('x' if f & VM_EXEC else '-') + ('s' if f & VM_MAYSHARE else 'p')

    def __repr__(self):
        return '<vma %#x-%#x %s%s>' % (self.vm_start, self.vm_end, self.prot_str(),
                                        ' ' + self.name if self.name else '')


class VmaTree:
    """Non-overlapping VMAs sorted by start: O(log n) lookup (bisect over the starts)."""

    def __init__(self):
        self._starts = []
        self._vmas = []

    def __iter__(self):
        return iter(list(self._vmas))

    def __len__(self):
        return len(self._vmas)

    def find_vma(self, addr):
        """The first VMA with vm_end > addr (it may start above addr), or None: Linux's find_vma."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._vmas[i].vm_end > addr:
            return self._vmas[i]
        i += 1
        return self._vmas[i] if i < len(self._vmas) else None

    def vma_lookup(self, addr):
        """The VMA containing addr, or None."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._vmas[i].vm_end > addr:
            return self._vmas[i]
        return None

    def prev(self, vma):
        i = bisect.bisect_left(self._starts, vma.vm_start)
        return self._vmas[i - 1] if i > 0 else None

    def next(self, vma):
        i = bisect.bisect_left(self._starts, vma.vm_start)
        return self._vmas[i + 1] if i + 1 < len(self._vmas) else None

    def insert(self, vma):
        i = bisect.bisect_left(self._starts, vma.vm_start)
        if (i > 0 and self._vmas[i - 1].vm_end > vma.vm_start) or \
                (i < len(self._vmas) and self._vmas[i].vm_start < vma.vm_end):
            raise AssertionError("overlapping VMA %r" % vma)
        self._starts.insert(i, vma.vm_start)
        self._vmas.insert(i, vma)

    def remove(self, vma):
        i = bisect.bisect_left(self._starts, vma.vm_start)
        if i >= len(self._vmas) or self._vmas[i] is not vma:
            raise AssertionError("VMA not in tree %r" % vma)
        del self._starts[i]
        del self._vmas[i]

    def overlapping(self, start, end):
        """VMAs that intersect [start, end), in order."""
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        out = []
        while i < len(self._vmas) and self._vmas[i].vm_start < end:
            v = self._vmas[i]
            if v.vm_end > start:
                out.append(v)
            i += 1
        return out

    def check(self):
        """Invariant: sorted, non-empty, non-overlapping."""
        prev_end = 0
        for s, v in zip(self._starts, self._vmas):
            assert s == v.vm_start and v.vm_start < v.vm_end and v.vm_start >= prev_end, v
            prev_end = v.vm_end
