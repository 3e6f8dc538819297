"""--check: after every fault and syscall, verify the memory-management invariants (CONFIG_DEBUG_VM).

One walk of every address space's page tables counts, per frame, the present PTEs that map it, and per
swap slot the swap PTEs that hold it. Then every frame's `struct page` is checked against what points
at it: refcount = mapcount + page cache + swap cache (+1 for a page-table frame), mapcount = PTEs, the
LRU flags agree with the lists, a cached page is where its mapping and index say, an anonymous page's
reverse map leads back to its PTE, the free-frame accounting adds up, swap use counts equal their
holders. Each VMA tree must be sorted and non-overlapping, every PTE must lie inside a VMA, and a
writable PTE needs a writable VMA. The first violation ends the run with a report naming the event
(fault or syscall) after which it was seen.
"""
import struct
import time

from faultlab.kernel.arch.cpu_interface import EMU_RESERVED_FRAMES, PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.hostlimit import fatal_signal_pending
from faultlab.kernel.mm.mm_types import TASK_SIZE
from faultlab.kernel.mm.page_alloc import (PG_lru, PG_active, PG_reserved, PG_pgtable, PG_swapcache, PG_anon,
                                  PG_hwpoison, PG_hugetlb, PG_head)
from faultlab.kernel.mm.pgtable import (_PAGE_PRESENT, _PAGE_RW, _PAGE_PSE, PTE_PFN_MASK, pte_to_swp_entry,
                               pte_flags_str)
from faultlab.kernel.mm.vma import VM_WRITE, VM_SHARED, VM_HUGETLB

_TABLE = struct.Struct('<512Q')
SWP_HWPOISON = 31


class InvariantViolation(Exception):
    """A kernel data structure is inconsistent (a kernel bug, not a guest error)."""


class CheckInterrupted(Exception):
    """The run's host time limit passed during a verification: it gives no verdict either way."""


def _poll_limit():
    """A full verification of a big machine takes host seconds: give up when --timeout has passed."""
    if fatal_signal_pending():
        raise CheckInterrupted()


def _fail(msg, *args):
    raise InvariantViolation(msg % args if args else msg)


class VmChecker:
    """Checks one kernel's mm state; `check(event)` returns None or the violation report."""

    def __init__(self, kernel):
        self.k = kernel
        self.checks = 0
        self.violation = None

    # ---- entry ---------------------------------------------------------------------------------
    def check(self, event):
        """Verify every invariant; on the first failure remember and return a one-line report."""
        if self.violation is not None:
            return self.violation
        self.checks += 1
        try:
            self.check_all()
        except CheckInterrupted:
            self.checks -= 1
            return None
        except InvariantViolation as e:
            self.violation = 'kernel invariant violated after %s (check #%d): %s' % (
                self.describe(event), self.checks, e)
        return self.violation

    def describe(self, event):
        return str(event)

    def check_all(self):
        k = self.k
        mms = []
        for t in k.tasks.values():
            if all(m is not t.mm for m in mms):
                mms.append(t.mm)
        frames = k.frames
        mapped = {}            # pfn -> present PTEs mapping it (all address spaces)
        swapped = {}           # swap offset -> swap PTEs holding it
        tables = set()
        for mm in mms:
            check_vma_tree(mm)
            self.check_page_tables(mm, mapped, swapped, tables)
        self.check_pages(mapped, tables)
        check_lru(frames, k.lru)
        check_page_cache(k.pagecache)
        shmem = getattr(k.reclaim, 'shmem', None)
        for off in shmem.swap_offsets() if shmem is not None else ():
            swapped[off] = swapped.get(off, 0) + 1     # a tmpfs page's swap entry holds its slot too
        check_swap(k.swapcache, swapped)

    # ---- page tables -----------------------------------------------------------------------------
    def check_page_tables(self, mm, mapped, swapped, tables):
        """Walk all four levels; count mappings; PTEs only inside VMAs, with rights the VMA allows."""
        frames = self.k.frames
        pages = frames.pages
        nr = frames.phys.nr_frames
        mv = frames.phys.mv
        zero = mm.svc.zero_page
        anon = file = 0
        known = set(mm.pgtables.table_pfns)

        def entries(pfn):
            return _TABLE.unpack_from(mv, pfn << PAGE_SHIFT)

        def table_pfn(e, where):
            pfn = (e & PTE_PFN_MASK) >> PAGE_SHIFT
            if e & _PAGE_PSE:
                _fail('huge entry %#x at %s (no huge pages here)', e, where)
            if pfn >= nr or pfn not in known:
                _fail('%s entry %#x points at frame %#x, not one of this mm\'s page tables', where, e, pfn)
            if not pages[pfn].flags & PG_pgtable:
                _fail('page-table frame %#x lacks PG_pgtable: %r', pfn, pages[pfn])
            tables.add(pfn)
            return pfn

        pgd = mm.pgtables.pgd >> PAGE_SHIFT
        tables.add(pgd)
        vmas = mm.vmas
        for i4, e4 in enumerate(entries(pgd)):
            if not e4:
                continue
            if i4 >= 256:
                _fail('kernel-half PGD entry %d is set (%#x)', i4, e4)
            p3 = table_pfn(e4, 'pgd[%d]' % i4)
            for i3, e3 in enumerate(entries(p3)):
                if not e3:
                    continue
                p2 = table_pfn(e3, 'pud[%d/%d]' % (i4, i3))
                for i2, e2 in enumerate(entries(p2)):
                    if not e2:
                        continue
                    base = (i4 << 39) | (i3 << 30) | (i2 << 21)
                    if e2 & _PAGE_PSE:
                        # a 2 MiB hugetlb leaf: only in a VM_HUGETLB VMA, mapping a pool page's head frame
                        hv = vmas.vma_lookup(base)
                        head = pages[(e2 & PTE_PFN_MASK) >> PAGE_SHIFT] if e2 & _PAGE_PRESENT else None
                        if hv is None or not hv.vm_flags & VM_HUGETLB:
                            _fail('huge entry %#x for %#x outside a hugetlb VMA', e2, base)
                        if head is not None and not (head.flags & PG_hugetlb and head.flags & PG_head):
                            _fail('huge entry %#x maps %r, not a huge page', e2, head)
                        continue
                    p1 = table_pfn(e2, 'pmd[%d/%d/%d]' % (i4, i3, i2))
                    _poll_limit()
                    vma = None
                    for i1, pte in enumerate(entries(p1)):
                        if not pte:
                            continue
                        va = base | (i1 << PAGE_SHIFT)
                        if vma is None or not vma.vm_start <= va < vma.vm_end:
                            vma = vmas.vma_lookup(va)
                            if vma is None:
                                _fail('PTE for %#x (%s) outside any VMA', va, pte_flags_str(pte))
                        if not pte & _PAGE_PRESENT:
                            typ, off = pte_to_swp_entry(pte)
                            if typ == SWP_HWPOISON:
                                continue
                            swapped[off] = swapped.get(off, 0) + 1
                            continue
                        pfn = (pte & PTE_PFN_MASK) >> PAGE_SHIFT
                        if pfn >= nr:
                            _fail('PTE for %#x maps frame %#x beyond RAM', va, pfn)
                        if pte & _PAGE_RW and not vma.vm_flags & VM_WRITE:
                            _fail('writable PTE for %#x in %r', va, vma)
                        page = pages[pfn]
                        if page is zero or page.flags & PG_reserved:
                            if pte & _PAGE_RW:
                                _fail('writable PTE for %#x maps reserved frame %#x (%r)', va, pfn, page)
                            continue
                        if page.refcount <= 0:
                            _fail('PTE for %#x maps free frame %#x (%r) in %r', va, pfn, page, vma)
                        mapped[pfn] = mapped.get(pfn, 0) + 1
                        if page.flags & PG_anon:
                            anon += 1
                            # a page fork shares is at the same address in every mm that maps it
                            if page.index != va >> PAGE_SHIFT or (page.rmap_mm is not mm and page.mapcount <= 1):
                                _fail('anonymous %r mapped at %#x but its reverse map says index %#x in %s',
                                      page, va, page.index, 'this mm' if page.rmap_mm is mm else 'another mm')
                            if page.mapping is not None:
                                _fail('anonymous %r has a page-cache mapping', page)
                        else:
                            file += 1
                            f = vma.vm_file
                            if page.mapping is None or f is None or f.mapping is not page.mapping:
                                _fail('file %r mapped at %#x in %r is not a page of that VMA\'s file',
                                      page, va, vma)
                            if vma.linear_page_index(va) != page.index:
                                _fail('file %r mapped at %#x, where the VMA maps index %#x',
                                      page, va, vma.linear_page_index(va))
                            if pte & _PAGE_RW and not vma.vm_flags & VM_SHARED:
                                _fail('page-cache %r mapped writable at %#x in private %r (COW not broken)',
                                      page, va, vma)
        if anon != mm.rss_anon or file != mm.rss_file:
            _fail('RSS counters say %d anon + %d file pages, the page tables map %d + %d',
                  mm.rss_anon, mm.rss_file, anon, file)

    # ---- struct page -------------------------------------------------------------------------------
    def check_pages(self, mapped, tables):
        k = self.k
        frames = k.frames
        pages = frames.pages
        zero = k.mmsvc.zero_page
        sc = k.swapcache.pages if k.swapcache is not None else {}
        free = frames._free
        free_set = set(free)
        if len(free_set) != len(free):
            _fail('a frame is on the free list twice')
        fresh = frames._fresh
        allocated = nlru = 0
        for i, page in enumerate(pages[EMU_RESERVED_FRAMES:fresh]):
            if not i & 0x3fff:
                _poll_limit()
            ref = page.refcount
            pfn = page.pfn
            if page.flags & PG_hugetlb:
                allocated += 1           # taken from the allocator by the hugetlb pool (kernel/mm/hugetlb.py)
                continue
            if ref == 0:
                if pfn not in free_set:
                    _fail('frame %#x has no references but is not on the free list (leaked): %r', pfn, page)
                if page.flags or page.mapcount or page.mapping is not None:
                    _fail('free frame %#x still has state: %r', pfn, page)
                if pfn in mapped:
                    _fail('free frame %#x is mapped by %d PTEs', pfn, mapped[pfn])
                continue
            if ref < 0:
                _fail('negative refcount: %r', page)
            allocated += 1
            if pfn in free_set:
                _fail('frame %#x is on the free list but has %d references: %r', pfn, ref, page)
            flags = page.flags
            if flags & PG_lru:
                nlru += 1
            if flags & PG_pgtable:
                if pfn not in tables:
                    _fail('page-table frame %#x is not reachable from any address space (leaked)', pfn)
                if ref != 1 or page.mapcount or pfn in mapped:
                    _fail('page-table frame %#x is also used as a data page: %r', pfn, page)
                continue
            if page is zero or flags & PG_reserved:
                continue
            n = mapped.get(pfn, 0)
            if page.mapcount != n:
                _fail('%r: mapcount %d but %d PTEs map it', page, page.mapcount, n)
            in_pc = page.mapping is not None
            if in_pc and page.mapping.pages.get(page.index) is not page:
                _fail('%r says it is page %#x of a file, but the page cache has %r there',
                      page, page.index, page.mapping.pages.get(page.index))
            in_sc = bool(flags & PG_swapcache)
            if in_sc and sc.get(page.private) is not page:
                _fail('%r has PG_swapcache but swap slot %#x holds %r', page, page.private, sc.get(page.private))
            expect = n + in_pc + in_sc + k.mmsvc.gup_refs.get(pfn, 0)     # + pipe buffers and pins
            if flags & PG_hwpoison:
                if ref < expect:
                    _fail('poisoned %r: refcount %d below %d', page, ref, expect)
                continue
            if not expect:
                _fail('%r is allocated but nothing holds it (leaked)', page)
            if ref != expect:
                _fail('%r: refcount %d, expected %d (%d PTEs%s%s)', page, ref, expect, n,
                      ' + page cache' if in_pc else '', ' + swap cache' if in_sc else '')
        for page in pages[fresh:]:
            if page.refcount:
                _fail('never-allocated frame %#x has references: %r', page.pfn, page)
        lru = k.lru
        if lru is not None and nlru != len(lru):
            _fail('%d pages have PG_lru but the LRU lists hold %d', nlru, len(lru))
        if allocated != frames.nr_allocated:
            _fail('nr_allocated is %d but %d frames have references', frames.nr_allocated, allocated)
        if frames.nr_free != len(pages) - EMU_RESERVED_FRAMES - allocated:
            _fail('nr_free is %d, expected %d', frames.nr_free, len(pages) - EMU_RESERVED_FRAMES - allocated)


def check_vma_tree(mm):
    """Sorted, non-empty, page-aligned, non-overlapping VMAs inside user space; the index agrees."""
    tree = mm.vmas
    starts, vmas = tree._starts, tree._vmas
    if len(starts) != len(vmas):
        _fail('VMA tree index has %d starts for %d VMAs', len(starts), len(vmas))
    prev = None
    for s, v in zip(starts, vmas):
        if s != v.vm_start:
            _fail('VMA tree index says %#x for %r', s, v)
        if v.vm_start >= v.vm_end or (v.vm_start | v.vm_end) & (PAGE_SIZE - 1) or v.vm_end > TASK_SIZE:
            _fail('malformed VMA %r', v)
        if prev is not None and prev.vm_end > v.vm_start:
            _fail('VMAs %r and %r overlap or are out of order', prev, v)
        if v.anon and v.vm_file is not None:
            _fail('%r is marked anonymous but maps a file', v)
        prev = v


def check_lru(frames, lru):
    """Every LRU page is live, on exactly one list, with PG_lru (and PG_active on the active list)."""
    if lru is None:
        return
    pages = frames.pages
    for name, lst, active in (('active', lru.active, True), ('inactive', lru.inactive, False)):
        for pfn, page in lst.items():
            if pages[pfn] is not page:
                _fail('%s LRU key %#x holds %r', name, pfn, page)
            if page.refcount <= 0:
                _fail('free %r is on the %s LRU list', page, name)
            if not page.flags & PG_lru or bool(page.flags & PG_active) != active:
                _fail('%r is on the %s LRU list with the wrong flags', page, name)
    both = lru.active.keys() & lru.inactive.keys()
    if both:
        _fail('frame %#x is on both LRU lists', next(iter(both)))


def check_page_cache(pc):
    """Each cached page knows its mapping and index and is live."""
    for mapping in pc.mappings.values():
        for index, page in mapping.pages.items():
            if page.mapping is not mapping or page.index != index:
                _fail('page cache index %#x holds %r whose mapping/index disagree', index, page)
            if page.refcount <= 0:
                _fail('page cache index %#x holds free %r', index, page)


def check_swap(sc, swapped):
    """Each slot's use count = swap PTEs holding it + the swap cache; in-use count adds up."""
    if sc is None:
        return
    area = sc.area
    smap = area.swap_map
    if not area.inuse and not swapped and not sc.pages:
        return
    for off, page in sc.pages.items():
        if page.private != off or not page.flags & PG_swapcache:
            _fail('swap cache slot %#x holds %r', off, page)
    for off, n in swapped.items():
        if off <= 0 or off >= area.nr_slots:
            _fail('swap PTE with offset %#x outside the swap area (%d slots)', off, area.nr_slots)
    inuse = 0
    for off, count in enumerate(smap):
        if not count:
            continue
        inuse += 1
        want = swapped.get(off, 0) + (off in sc.pages)
        if count != want:
            _fail('swap slot %#x has use count %d, but %d PTEs%s hold it', off, count, swapped.get(off, 0),
                  ' and the swap cache' if off in sc.pages else '')
    for off in swapped:
        if not smap[off]:
            _fail('swap PTE for free slot %#x', off)
    if inuse != area.inuse:
        _fail('swap area says %d slots in use, %d have users', area.inuse, inuse)


EX_SOFTWARE = 70      # the exit status of a run ended by a kernel bug (sysexits.h), as the CLI uses


# the syscalls that change address spaces are always checked (mmap, mprotect, munmap, brk, mremap,
# msync, madvise, mlock, munlock, mlockall, munlockall, exit, exit_group, mlock2)
_ALWAYS = frozenset((9, 10, 11, 12, 25, 26, 28, 149, 150, 151, 152, 60, 231, 325))


class TrapChecker(VmChecker):
    """The kernel's hook: describe the trap, check after it, end the run on a violation.

    mode 'full' checks after every trap. Otherwise (mode True) the checker keeps its own cost below
    `ratio` times the rest of the run: traps that change address spaces are always checked, others
    when the budget allows; a violation then names the event where it was first seen and the last
    event after which everything was still consistent.
    """

    def __init__(self, kernel, mode=True, ratio=1.0):
        super().__init__(kernel)
        self.full = mode == 'full'
        self.ratio = ratio
        self.events = 0
        self.skipped = 0
        self.last_clean = None          # (event number, event) of the last check that passed
        self._check_time = 0.0
        self._other_time = 0.0
        self._mark = time.perf_counter()

    def _due(self, event):
        if self.full or (event[0] == 'syscall' and event[1] in _ALWAYS):
            return True
        return self._check_time <= self.ratio * self._other_time

    def syscall_event(self):
        """What the syscall about to run is (captured before the handler changes registers)."""
        g = self.k.cpu.gpr
        return ('syscall', g[0], (g[7], g[6], g[2], g[10], g[8], g[9]), self.k.cpu.rip)

    def after_trap(self, event):
        """Check after a fault or syscall; a violation kills the task with the report (exit 70)."""
        if self.violation is not None:
            return
        self.events += 1
        t0 = time.perf_counter()
        self._other_time += t0 - self._mark
        if not self._due(event) or fatal_signal_pending():
            self.skipped += 1
            self._mark = time.perf_counter()
            return
        report = self.check(event)
        t1 = self._mark = time.perf_counter()
        self._check_time += t1 - t0
        if report is None:
            if not fatal_signal_pending():          # an interrupted check proved nothing
                self.last_clean = (self.events, event)
            return
        if self.skipped:
            n, ev = self.last_clean or (0, None)
            report = self.violation = '%s [events %d..%d were not all checked; the last consistent state ' \
                'was after %s]' % (report, n + 1, self.events, self.describe(ev) if ev else 'exec')
        # the run ends: every process exits, and the first one carries the report
        k = self.k
        for t in list(k.tasks.values()):
            if not t.exited:
                k.do_group_exit(t, EX_SOFTWARE)
        first = k.tasks[min(k.tasks)] if k.tasks else None
        if first is not None:
            first.killed_by = (0, report)
            first.exit_code = EX_SOFTWARE
        k.cpu.stop()

    def final_check(self):
        """After the run: one full check of the final state (None or the report)."""
        if self.violation is None:
            self.check(('end', ))
        return self.violation

    def describe(self, event):
        if event[0] == 'end':
            return 'the end of the run'
        if event[0] == 'fault':
            _, rip, addr, err = event
            task = self.k.current
            return 'page fault at %#x (error code %#x) from rip=%#x <%s>' % (
                addr, err, rip, self.k.symbolize(task, rip) if task is not None else '??')
        _, nr, args, rip = event
        from faultlab.kernel.syscalls import SYSCALL_NAMES
        return 'syscall %s(%s) [nr %d] at rip=%#x' % (SYSCALL_NAMES.get(nr, 'unknown'),
                                                       ', '.join('%#x' % a for a in args), nr, rip)
