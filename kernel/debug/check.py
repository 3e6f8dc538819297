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
from faultlab.kernel.mm.ksm_types import PG_ksm
from faultlab.kernel.mm.page_alloc import (PG_lru, PG_active, PG_reserved, PG_pgtable, PG_swapcache, PG_anon,
                                  PG_hwpoison, PG_hugetlb, PG_head)
from faultlab.kernel.mm.pgtable import (_PAGE_PRESENT, _PAGE_RW, _PAGE_PSE, PTE_PFN_MASK, pte_to_swp_entry,
                               pte_flags_str)
from faultlab.kernel.mm.vma import VM_WRITE, VM_SHARED, VM_HUGETLB
from faultlab.kernel.syscalls import SYSCALL_NAMES
from faultlab.kernel.debug.check_thp import ThpViolation, check_thp_pmd, thp_folio_refs

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
    """Raise the InvariantViolation msg % args."""
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
            self.violation = self.report(event, e)
        return self.violation

    def report(self, event, violation):
        """The one-line report of a violation seen after event."""
        return 'kernel invariant violated after %s (check #%d): %s' % (
            self.describe(event), self.checks, violation)

    def describe(self, event):
        """How the report names the event."""
        return str(event)

    def address_spaces(self):
        """Every task's mm, once each, in task order."""
        mms = []
        for t in self.k.tasks.values():
            if all(m is not t.mm for m in mms):
                mms.append(t.mm)
        return mms

    def check_all(self):
        """Walk every address space, then check the pages, the LRU, the page cache and swap against it."""
        k = self.k
        mapped = {}            # pfn -> present PTEs mapping it (all address spaces)
        swapped = {}           # swap offset -> swap PTEs holding it
        tables = set()
        for mm in self.address_spaces():
            check_vma_tree(mm)
            self.check_page_tables(mm, mapped, swapped, tables)
        self.check_pages(mapped, tables)
        check_lru(k.frames, k.lru)
        check_page_cache(k.pagecache)
        count_shmem_swap(k.reclaim, swapped)
        check_swap(k.swapcache, swapped)

    # ---- page tables -----------------------------------------------------------------------------
    def check_page_tables(self, mm, mapped, swapped, tables):
        """Walk all four levels; count mappings; PTEs only inside VMAs, with rights the VMA allows."""
        walk = PageTableWalk(self.k.frames, mm, mapped, swapped, tables)
        walk.walk_pgd_range()
        walk.check_rss()

    # ---- struct page -------------------------------------------------------------------------------
    def check_pages(self, mapped, tables):
        """Every frame's struct page against the PTEs, caches and tables that hold it; the counters add up."""
        audit = PageAudit(self.k, mapped, tables)
        audit.check_free_list()
        check_page = audit.check_page
        for i, page in enumerate(audit.pages[EMU_RESERVED_FRAMES:audit.fresh]):
            if not i & 0x3fff:
                _poll_limit()
            check_page(page)
        audit.check_never_allocated()
        audit.check_counters()


class PageTableWalk:
    """One walk of an mm's page tables (mm/pagewalk.c's levels), counting what the PTEs map."""

    def __init__(self, frames, mm, mapped, swapped, tables):
        self.mm = mm
        self.pages = frames.pages
        self.nr = frames.phys.nr_frames
        self.mv = frames.phys.mv
        self.zero = mm.svc.zero_page
        self.known = set(mm.pgtables.table_pfns)
        self.vmas = mm.vmas
        self.mapped, self.swapped, self.tables = mapped, swapped, tables
        self.anon = self.file = 0

    def entries(self, pfn):
        """The 512 entries of the table in frame pfn."""
        return _TABLE.unpack_from(self.mv, pfn << PAGE_SHIFT)

    def table_pfn(self, e, where):
        """The frame of the next-level table entry e points at; it must be one of this mm's tables."""
        pfn = (e & PTE_PFN_MASK) >> PAGE_SHIFT
        if e & _PAGE_PSE:
            _fail('huge entry %#x at %s (no huge pages here)', e, where)
        if pfn >= self.nr or pfn not in self.known:
            _fail('%s entry %#x points at frame %#x, not one of this mm\'s page tables', where, e, pfn)
        if not self.pages[pfn].flags & PG_pgtable:
            _fail('page-table frame %#x lacks PG_pgtable: %r', pfn, self.pages[pfn])
        self.tables.add(pfn)
        return pfn

    def walk_pgd_range(self):
        """The PGD: user-half entries only."""
        pgd = self.mm.pgtables.pgd >> PAGE_SHIFT
        self.tables.add(pgd)
        for i4, e4 in enumerate(self.entries(pgd)):
            if not e4:
                continue
            if i4 >= 256:
                _fail('kernel-half PGD entry %d is set (%#x)', i4, e4)
            self.walk_pud_range(self.table_pfn(e4, 'pgd[%d]' % i4), i4)

    def walk_pud_range(self, p3, i4):
        """One PUD table: every entry points at a PMD table."""
        for i3, e3 in enumerate(self.entries(p3)):
            if e3:
                self.walk_pmd_range(self.table_pfn(e3, 'pud[%d/%d]' % (i4, i3)), i4, i3)

    def walk_pmd_range(self, p2, i4, i3):
        """One PMD table: a 2 MiB hugetlb leaf or a PTE table per entry."""
        for i2, e2 in enumerate(self.entries(p2)):
            if not e2:
                continue
            base = (i4 << 39) | (i3 << 30) | (i2 << 21)
            if e2 & _PAGE_PSE:
                self.check_huge_pmd(e2, base)
                continue
            p1 = self.table_pfn(e2, 'pmd[%d/%d/%d]' % (i4, i3, i2))
            _poll_limit()
            self.walk_pte_range(p1, base)

    def check_huge_pmd(self, e2, base):
        """A 2 MiB hugetlb leaf: only in a VM_HUGETLB VMA, mapping a pool page's head frame."""
        if (base >> 21) in self.mm.pgtables.thp:          # a transparent huge page (check_thp.py)
            try:
                self.anon += check_thp_pmd(self, e2, base)
            except ThpViolation as e:
                _fail(str(e))
            return
        hv = self.vmas.vma_lookup(base)
        head = self.pages[(e2 & PTE_PFN_MASK) >> PAGE_SHIFT] if e2 & _PAGE_PRESENT else None
        if hv is None or not hv.vm_flags & VM_HUGETLB:
            _fail('huge entry %#x for %#x outside a hugetlb VMA', e2, base)
        if head is not None and not (head.flags & PG_hugetlb and head.flags & PG_head):
            _fail('huge entry %#x maps %r, not a huge page', e2, head)

    def walk_pte_range(self, p1, base):
        """One PTE table: each entry lies inside a VMA; check it as a swap or a present PTE."""
        vma = None
        check_present_pte, count_swap_pte = self.check_present_pte, self.count_swap_pte
        for i1, pte in enumerate(self.entries(p1)):
            if not pte:
                continue
            va = base | (i1 << PAGE_SHIFT)
            if vma is None or not vma.vm_start <= va < vma.vm_end:
                vma = self.vmas.vma_lookup(va)
                if vma is None:
                    _fail('PTE for %#x (%s) outside any VMA', va, pte_flags_str(pte))
            if pte & _PAGE_PRESENT:
                check_present_pte(pte, va, vma)
            else:
                count_swap_pte(pte)

    def count_swap_pte(self, pte):
        """A swap PTE holds its slot (a hwpoison entry holds none)."""
        typ, off = pte_to_swp_entry(pte)
        if typ != SWP_HWPOISON:
            self.swapped[off] = self.swapped.get(off, 0) + 1

    def check_present_pte(self, pte, va, vma):
        """A present PTE: a frame in RAM, rights the VMA allows, a live page whose rmap leads back here."""
        pfn = (pte & PTE_PFN_MASK) >> PAGE_SHIFT
        if pfn >= self.nr:
            _fail('PTE for %#x maps frame %#x beyond RAM', va, pfn)
        if pte & _PAGE_RW and not vma.vm_flags & VM_WRITE:
            _fail('writable PTE for %#x in %r', va, vma)
        page = self.pages[pfn]
        if page is self.zero or page.flags & PG_reserved:
            if pte & _PAGE_RW:
                _fail('writable PTE for %#x maps reserved frame %#x (%r)', va, pfn, page)
            return
        if page.refcount <= 0:
            _fail('PTE for %#x maps free frame %#x (%r) in %r', va, pfn, page, vma)
        self.mapped[pfn] = self.mapped.get(pfn, 0) + 1
        if page.flags & PG_anon:
            self.anon += 1
            self.check_anon_rmap(page, va)
        else:
            self.file += 1
            self.check_file_rmap(page, pte, va, vma)

    def check_anon_rmap(self, page, va):
        """An anonymous page's reverse map: its index is the address, in this mm unless fork shares it."""
        mm = self.mm
        if page.flags & PG_ksm:
            return                   # a KSM page is mapped at many addresses: its stable node lists them
        # a page fork shares is at the same address in every mm that maps it
        if page.index != va >> PAGE_SHIFT or (page.rmap_mm is not mm and page.mapcount <= 1):
            _fail('anonymous %r mapped at %#x but its reverse map says index %#x in %s',
                  page, va, page.index, 'this mm' if page.rmap_mm is mm else 'another mm')
        if page.mapping is not None:
            _fail('anonymous %r has a page-cache mapping', page)

    def check_file_rmap(self, page, pte, va, vma):
        """A file page: a page of the VMA's file at the index the VMA maps there; writable only if shared."""
        f = vma.vm_file
        if page.mapping is None or f is None or f.mapping is not page.mapping:
            _fail('file %r mapped at %#x in %r is not a page of that VMA\'s file', page, va, vma)
        if vma.linear_page_index(va) != page.index:
            _fail('file %r mapped at %#x, where the VMA maps index %#x', page, va, vma.linear_page_index(va))
        if pte & _PAGE_RW and not vma.vm_flags & VM_SHARED:
            _fail('page-cache %r mapped writable at %#x in private %r (COW not broken)', page, va, vma)

    def check_rss(self):
        """The mm's RSS counters equal the anonymous and file pages the walk found."""
        mm = self.mm
        if self.anon != mm.rss_anon or self.file != mm.rss_file:
            _fail('RSS counters say %d anon + %d file pages, the page tables map %d + %d',
                  mm.rss_anon, mm.rss_file, self.anon, self.file)


class PageAudit:
    """The struct page checks of one verification, with the totals they add up."""

    def __init__(self, k, mapped, tables):
        self.k = k
        self.frames = frames = k.frames
        self.pages = frames.pages
        self.fresh = frames._fresh
        self.zero = k.mmsvc.zero_page
        self.sc = k.swapcache.pages if k.swapcache is not None else {}
        self.free_set = set(frames._free)
        self.mapped, self.tables = mapped, tables
        self.allocated = self.nlru = 0

    def check_free_list(self):
        """No frame is on the free list twice."""
        if len(self.free_set) != len(self.frames._free):
            _fail('a frame is on the free list twice')

    def check_page(self, page):
        """One frame below the never-allocated ones: free, a hugetlb pool page, a page table or a data page."""
        if page.flags & PG_hugetlb:
            self.allocated += 1           # taken from the allocator by the hugetlb pool (kernel/mm/hugetlb.py)
            return
        ref = page.refcount
        if ref == 0:
            self.check_free_page(page)
            return
        if ref < 0:
            _fail('negative refcount: %r', page)
        self.allocated += 1
        if page.pfn in self.free_set:
            _fail('frame %#x is on the free list but has %d references: %r', page.pfn, ref, page)
        flags = page.flags
        if flags & PG_lru:
            self.nlru += 1
        if flags & PG_pgtable:
            self.check_pgtable_page(page)
        elif page is not self.zero and not flags & PG_reserved:
            self.check_data_page(page)

    def check_free_page(self, page):
        """A frame without references is on the free list, without state, and not mapped."""
        pfn = page.pfn
        if pfn not in self.free_set:
            _fail('frame %#x has no references but is not on the free list (leaked): %r', pfn, page)
        if page.flags or page.mapcount or page.mapping is not None:
            _fail('free frame %#x still has state: %r', pfn, page)
        if pfn in self.mapped:
            _fail('free frame %#x is mapped by %d PTEs', pfn, self.mapped[pfn])

    def check_pgtable_page(self, page):
        """A page-table frame is reachable from an address space and used for nothing else."""
        pfn = page.pfn
        if pfn not in self.tables:
            _fail('page-table frame %#x is not reachable from any address space (leaked)', pfn)
        if page.refcount != 1 or page.mapcount or pfn in self.mapped:
            _fail('page-table frame %#x is also used as a data page: %r', pfn, page)

    def check_data_page(self, page):
        """mapcount = PTEs; refcount = PTEs + page cache + swap cache + pins (at least that if poisoned)."""
        n = self.check_mapcount(page)
        in_pc = self.check_page_cache_entry(page)
        in_sc = self.check_swap_cache_entry(page)
        ref = page.refcount
        expect = n + in_pc + in_sc + self.k.mmsvc.gup_refs.get(page.pfn, 0)     # + pipe buffers and pins
        expect += thp_folio_refs(self.k.mmsvc, page)
        if page.flags & PG_hwpoison:
            if ref < expect:
                _fail('poisoned %r: refcount %d below %d', page, ref, expect)
            return
        if not expect:
            _fail('%r is allocated but nothing holds it (leaked)', page)
        if ref != expect:
            _fail('%r: refcount %d, expected %d (%d PTEs%s%s)', page, ref, expect, n,
                  ' + page cache' if in_pc else '', ' + swap cache' if in_sc else '')

    def check_mapcount(self, page):
        """The page's mapcount equals the present PTEs that map it; returns that count."""
        n = self.mapped.get(page.pfn, 0)
        if page.mapcount != n:
            _fail('%r: mapcount %d but %d PTEs map it', page, page.mapcount, n)
        return n

    def check_page_cache_entry(self, page):
        """A page with a mapping is at its index in that mapping; returns whether it is in the page cache."""
        in_pc = page.mapping is not None
        if in_pc and page.mapping.pages.get(page.index) is not page:
            _fail('%r says it is page %#x of a file, but the page cache has %r there',
                  page, page.index, page.mapping.pages.get(page.index))
        return in_pc

    def check_swap_cache_entry(self, page):
        """A PG_swapcache page is in its swap slot; returns whether it is in the swap cache."""
        in_sc = bool(page.flags & PG_swapcache)
        if in_sc and self.sc.get(page.private) is not page:
            _fail('%r has PG_swapcache but swap slot %#x holds %r', page, page.private, self.sc.get(page.private))
        return in_sc

    def check_never_allocated(self):
        """Frames past the allocator's high-water mark have no references."""
        for page in self.pages[self.fresh:]:
            if page.refcount:
                _fail('never-allocated frame %#x has references: %r', page.pfn, page)

    def check_counters(self):
        """The LRU size, nr_allocated and nr_free agree with the pages."""
        frames, pages, allocated = self.frames, self.pages, self.allocated
        lru = self.k.lru
        if lru is not None and self.nlru != len(lru):
            _fail('%d pages have PG_lru but the LRU lists hold %d', self.nlru, len(lru))
        if allocated != frames.nr_allocated:
            _fail('nr_allocated is %d but %d frames have references', frames.nr_allocated, allocated)
        if frames.nr_free != len(pages) - EMU_RESERVED_FRAMES - allocated:
            _fail('nr_free is %d, expected %d', frames.nr_free, len(pages) - EMU_RESERVED_FRAMES - allocated)


def count_shmem_swap(reclaim, swapped):
    """A tmpfs page's swap entry holds its slot too."""
    shmem = getattr(reclaim, 'shmem', None)
    for off in shmem.swap_offsets() if shmem is not None else ():
        swapped[off] = swapped.get(off, 0) + 1


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
        """Check after event? Always in full mode and after the address-space calls, else within the budget."""
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
            report = self.violation = self.with_unchecked_range(report)
        self.end_run(report)

    def with_unchecked_range(self, report):
        """The report naming the events since the last consistent check, which were not all checked."""
        n, ev = self.last_clean or (0, None)
        return '%s [events %d..%d were not all checked; the last consistent state was after %s]' % (
            report, n + 1, self.events, self.describe(ev) if ev else 'exec')

    def end_run(self, report):
        """The run ends: every process exits, and the first one carries the report (exit 70)."""
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
        """The event as the report names it: the end of the run, a page fault or a syscall with its arguments."""
        if event[0] == 'end':
            return 'the end of the run'
        if event[0] == 'fault':
            _, rip, addr, err = event
            task = self.k.current
            return 'page fault at %#x (error code %#x) from rip=%#x <%s>' % (
                addr, err, rip, self.k.symbolize(task, rip) if task is not None else '??')
        _, nr, args, rip = event
        return 'syscall %s(%s) [nr %d] at rip=%#x' % (SYSCALL_NAMES.get(nr, 'unknown'),
                                                       ', '.join('%#x' % a for a in args), nr, rip)
