"""Physical frames: the `struct page` descriptors and the order-0 frame allocator."""
from faultlab.kernel.arch.cpu_interface import EMU_RESERVED_FRAMES

POPULATE_CHUNK = 1024          # frames (4 MiB) of host memory faulted in at a time

# page flags (include/linux/page-flags.h names)
PG_locked = 1 << 0
PG_referenced = 1 << 1
PG_uptodate = 1 << 2
PG_dirty = 1 << 3
PG_lru = 1 << 4
PG_active = 1 << 5
PG_reserved = 1 << 6
PG_writeback = 1 << 7
PG_swapbacked = 1 << 8
PG_anon = 1 << 9            # PageAnon (Linux keeps it in page->mapping's low bit)
PG_hwpoison = 1 << 10
PG_readahead = 1 << 11
PG_pgtable = 1 << 12
PG_swapcache = 1 << 13
PG_mlocked = 1 << 14
PG_exec = 1 << 15           # was mapped executable: the CPU may hold translated code for it
PG_hugetlb = 1 << 16        # part of a 2 MiB hugetlb page (owned by the hugetlb pool, never by the free list)
PG_head = 1 << 17           # the first frame of a huge page (the one whose descriptor counts for all)
PG_anon_exclusive = 1 << 18  # PageAnonExclusive: an anonymous page mapped by one process only, never shared
PG_tail = 1 << 19           # a frame of a transparent huge page after its head (PageTail)

FLAG_NAMES = [(PG_locked, 'locked'), (PG_referenced, 'referenced'), (PG_uptodate, 'uptodate'),
              (PG_dirty, 'dirty'), (PG_lru, 'lru'), (PG_active, 'active'), (PG_reserved, 'reserved'),
              (PG_writeback, 'writeback'), (PG_swapbacked, 'swapbacked'), (PG_anon, 'anon'),
              (PG_hwpoison, 'hwpoison'), (PG_readahead, 'readahead'), (PG_pgtable, 'pgtable'),
              (PG_swapcache, 'swapcache'), (PG_mlocked, 'mlocked'), (PG_exec, 'exec'),
              (PG_hugetlb, 'hugetlb'), (PG_head, 'head'), (PG_anon_exclusive, 'anon_exclusive'),
              (PG_tail, 'tail')]


class Page:
    """struct page: one per physical frame."""
    __slots__ = ('pfn', 'refcount', 'mapcount', 'flags', 'mapping', 'index', 'private', 'io_done_at', 'rmap_mm')

    def __init__(self, pfn):
        self.pfn = pfn
        self.refcount = 0
        self.mapcount = 0
        self.flags = 0
        self.mapping = None      # the page cache (AddressSpace) for file pages, None for anon
        self.index = 0           # page offset within the file, or the virtual page for anon pages
        self.private = 0         # swap entry for swap-cache pages
        self.io_done_at = 0      # simulated time when the read that fills it completes
        self.rmap_mm = None      # the address space an anonymous page is mapped in (reverse map)

    def __repr__(self):
        return '<page pfn=%#x ref=%d map=%d %s>' % (self.pfn, self.refcount, self.mapcount,
                                                   '|'.join(n for b, n in FLAG_NAMES if self.flags & b))


class FrameAllocator:
    """Order-0 allocator over the machine's RAM (a LIFO free list, like the per-CPU lists)."""

    def __init__(self, phys, lru):
        """lru: the LRU lists (LruLists) a freed page leaves."""
        self.phys = phys
        self.lru = lru
        self.pages = [Page(pfn) for pfn in range(phys.nr_frames)]
        for p in self.pages[:EMU_RESERVED_FRAMES]:
            p.flags = PG_reserved
            p.refcount = 1
        # Frames never handed out are still zero (fresh host memory): they come from `_fresh` upward,
        # in chunks whose host memory is populated in one go. Freed frames go to the LIFO free list
        # (cache-hot, reused first) and must be zeroed on reuse.
        self._free = []
        self._fresh = EMU_RESERVED_FRAMES
        self._populated = EMU_RESERVED_FRAMES
        self.nr_allocated = 0
        self.peak_allocated = 0
        self.stale_code = False   # a frame that held code was freed or rewritten: translated blocks must go

    @property
    def nr_free(self):
        return len(self._free) + self.phys.nr_frames - self._fresh

    def _take_fresh(self):
        pfn = self._fresh
        if pfn >= self._populated:
            n = min(POPULATE_CHUNK, self.phys.nr_frames - pfn)
            self.phys.populate(pfn << 12, n << 12)
            self._populated = pfn + n
        self._fresh = pfn + 1
        return pfn

    def alloc_page(self, zero=True):
        """alloc_page(): a frame with refcount 1, zero-filled if asked; None when memory is exhausted."""
        if self._free:
            pfn = self._free.pop()
            if zero:
                self.phys.zero_frame(pfn)
        elif self._fresh < self._populated:          # the common case, without a call
            pfn = self._fresh
            self._fresh = pfn + 1
        elif self._fresh < self.phys.nr_frames:
            pfn = self._take_fresh()
        else:
            return None
        page = self.pages[pfn]
        page.refcount = 1
        page.mapcount = 0
        page.flags = 0
        page.mapping = None
        page.index = 0
        page.private = 0
        self.nr_allocated += 1
        if self.nr_allocated > self.peak_allocated:
            self.peak_allocated = self.nr_allocated
        return page

    def take_frames(self, n):
        """Reserve up to n frames, in the order alloc_page would hand them out, for faults the CPU maps
        itself; returns (pfns, how many of them came from the free list). Their struct pages are set
        up when the kernel accounts the faults (init_taken); the peak count follows the frames used."""
        take = min(n, self.nr_free)
        from_free = min(take, len(self._free))
        pfns = self._free[len(self._free) - from_free:][::-1]
        del self._free[len(self._free) - from_free:]
        fresh = take - from_free
        if fresh:
            first = self._fresh
            self._populate_to(first + fresh)
            self._fresh = first + fresh
            pfns.extend(range(first, first + fresh))
        self.nr_allocated += take
        return pfns, from_free

    def init_taken(self, pages):
        """alloc_page's set-up of reserved frames the CPU has now mapped."""
        for page in pages:
            page.refcount = 1
            page.mapping = None
            page.private = 0

    def _populate_to(self, end):
        while self._populated < end:
            n = min(POPULATE_CHUNK, self.phys.nr_frames - self._populated)
            self.phys.populate(self._populated << 12, n << 12)
            self._populated += n

    def return_frames(self, pfns, from_free, used):
        """Give back the frames of take_frames after the first `used`, so that alloc_page hands them out
        again in the same order (never-used fresh frames go back to the fresh, still zero, ones)."""
        back = len(pfns) - used
        self.nr_allocated -= back
        fresh_back = min(back, len(pfns) - from_free)
        self._fresh -= fresh_back
        rest = pfns[used:len(pfns) - fresh_back]
        self._free.extend(reversed(rest))
        if self.nr_allocated > self.peak_allocated:
            self.peak_allocated = self.nr_allocated

    def release_pages(self, pages):
        """put_page for each page of a batch (the mmu_gather of an unmap), freeing the last references
        with one pass over the LRU lists."""
        freed = [page for page in pages if self._drop_ref(page)]
        self.lru.remove_many([p for p in freed if p.flags & PG_lru])
        for page in freed:
            self._free_frame(page)

    def note_kernel_write(self, page):
        """The kernel wrote into a frame (copy_to_user, a page-cache write): if it is mapped as code,
        the CPU's translated blocks of it are stale (x86 keeps instruction fetch coherent)."""
        if page.flags & PG_exec:
            self.stale_code = True

    def get_page(self, page):
        page.refcount += 1

    def put_page(self, page):
        """Drop a reference; free the frame when the last one goes. Returns True if freed."""
        if not self._drop_ref(page):
            return False
        if page.flags & PG_lru:
            self.lru.remove(page)
        self._free_frame(page)
        return True

    def _drop_ref(self, page):
        """Drop a reference: True if it was the last one and the frame is to be freed."""
        page.refcount -= 1
        if page.refcount > 0:
            return False
        if page.refcount < 0:
            raise AssertionError("put_page on a free page %r" % page)
        return not page.flags & PG_reserved

    def _free_frame(self, page):
        """The frame (off the LRU lists) goes back to the free list."""
        if page.flags & PG_exec:
            self.stale_code = True
        page.flags = 0
        page.rmap_mm = None
        page.mapping = None
        self._free.append(page.pfn)
        self.nr_allocated -= 1

    def alloc_contig_pages(self, order):
        """alloc_contig_pages: 2**order free frames, naturally aligned (an order-N buddy block).

        Returns the first pfn, or None when no such run is free. The frames get refcount 1 and count as
        allocated; their contents are not cleared (frames never used before are zero).
        """
        n = 1 << order
        start = (self._fresh + n - 1) & ~(n - 1)
        if start + n <= self.phys.nr_frames:
            self._free.extend(range(self._fresh, start))     # skipped for alignment: ordinary free frames
            self.phys.populate(start << 12, n << 12)
            self._fresh = start + n
            self._populated = max(self._populated, self._fresh)
        else:
            free = set(self._free)
            first = (EMU_RESERVED_FRAMES + n - 1) & ~(n - 1)
            start = next((b for b in range(first, self._fresh - n + 1, n)
                          if all(p in free for p in range(b, b + n))), None)
            if start is None:
                return None
            self._free = [p for p in self._free if not start <= p < start + n]
        for pfn in range(start, start + n):
            page = self.pages[pfn]
            page.refcount, page.mapcount, page.flags = 1, 0, 0
            page.mapping, page.index, page.private = None, 0, 0
        self.nr_allocated += n
        self.peak_allocated = max(self.peak_allocated, self.nr_allocated)
        return start

    def free_contig_pages(self, pfn, order):
        """Give a block from alloc_contig_pages back to the free list."""
        for p in range(pfn, pfn + (1 << order)):
            page = self.pages[p]
            page.refcount, page.mapcount, page.flags = 0, 0, 0
            page.mapping = page.rmap_mm = None
            self._free.append(p)
        self.nr_allocated -= 1 << order

    def alloc_table(self):
        """A zeroed frame for a page-table level (pfn), or None."""
        page = self.alloc_page(zero=True)
        if page is None:
            return None
        page.flags |= PG_pgtable
        return page.pfn
