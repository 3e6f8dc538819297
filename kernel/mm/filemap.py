"""The page cache: file pages keyed by (inode, index), read through the block device with read-ahead.

A read submits block requests that complete later in simulated time. The page is locked and not
uptodate until then; whoever needs its contents waits (`wait_on_page_locked`), which advances the
waiting CPU's clock to the completion (counted as I/O wait). Pages of memory-backed files (tmpfs,
memfd) never touch the disk.
"""
from faultlab.kernel.arch.cpu_interface import PAGE_SIZE, PAGE_SHIFT
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.mm.page_alloc import PG_locked, PG_uptodate, PG_dirty, PG_readahead, PG_referenced, \
    PG_writeback
from faultlab.kernel.mm.page_writeback import Writeback, mapping_can_writeback

VM_READAHEAD_PAGES = 32          # 128 KiB, the default bdi->ra_pages


def _reclaimable(page):
    """A cache page that can be dropped: clean, unmapped, not under I/O, no extra references."""
    return not (page.mapcount or page.flags & (PG_dirty | PG_locked | PG_writeback) or page.refcount > 1)


class FileRaState:
    """struct file_ra_state: the read-ahead window of one open file."""
    __slots__ = ('start', 'size', 'async_size', 'ra_pages', 'mmap_miss', 'prev_index')

    def __init__(self, ra_pages=VM_READAHEAD_PAGES):
        self.start = self.size = self.async_size = 0
        self.ra_pages = ra_pages
        self.mmap_miss = 0
        self.prev_index = -1


class AddressSpace:
    """struct address_space: the cached pages of one inode, and the last writeback error (wb_err)."""
    __slots__ = ('inode', 'pages', 'wb_err')

    def __init__(self, inode):
        self.inode = inode
        self.pages = {}
        self.wb_err = 0

    @property
    def nrpages(self):
        return len(self.pages)


def get_init_ra_size(size, max_pages):
    """Initial read-ahead window for a first sequential read of `size` pages (mm/readahead.c)."""
    newsize = 1
    while newsize < size:
        newsize <<= 1
    if newsize <= max_pages // 32:
        newsize *= 4
    elif newsize <= max_pages // 4:
        newsize *= 2
    else:
        newsize = max_pages
    return min(newsize, max_pages)


def get_next_ra_size(cur, max_pages):
    """Ramp the window up: x4 while small, then x2, capped."""
    if cur < max_pages // 16:
        return min(4 * cur, max_pages)
    return min(2 * cur, max_pages)


class PageCache:
    """All address spaces, plus the read/write-back machinery."""

    def __init__(self, frames, lru, blockdev, sched, charge, stats):
        """lru: the LRU lists new pages join; sched: now() and wait_until(t, why); charge(cost_name,
        n=1) bills kernel cycles. Reclaim comes later (set_reclaim)."""
        self.frames = frames
        self.lru = lru
        self.blockdev = blockdev
        self.sched = sched
        self.charge = charge
        self.stats = stats
        self.mappings = {}        # id(inode) -> AddressSpace
        self.reclaim_hook = None  # called with the number of pages wanted when allocation fails
        self.balance_hook = None  # called before an allocation that may reclaim (kswapd watermarks)
        self.shmem_swap = None    # kernel.mm.shmem.ShmemSwap: where shmem pages out of RAM are
        self.rmap_walk = None     # reclaim's reverse map (page_mkclean before a write), set_reclaim
        self.flush_tlb = None
        self.writeback = Writeback(self)    # dirty accounting, throttling and the flusher

    def set_reclaim(self, reclaim):
        """Hand the page cache its reclaim, which is built on the page cache (it scans and evicts its
        pages), so it comes second: direct reclaim when an allocation fails, the kswapd watermark
        check before one that may reclaim, and the swap that holds shmem pages out of RAM."""
        self.reclaim_hook = reclaim.direct_reclaim
        self.balance_hook = reclaim.balance
        self.shmem_swap = reclaim.shmem
        self.rmap_walk = reclaim.rmap_walk
        self.flush_tlb = reclaim.flush_tlb

    def set_vm_sysctl(self, knobs):
        """The vm sysctls the dirty limits and the flusher follow (vm.dirty_ratio, ...)."""
        self.writeback.set_knobs(knobs)

    # ---- lookup -----------------------------------------------------------------------
    def mapping_of(self, inode):
        m = self.mappings.get(id(inode))
        if m is None:
            m = self.mappings[id(inode)] = AddressSpace(inode)
        return m

    def find_get_page(self, mapping, index):
        """The cached page at index (no reference taken: the caller maps or copies it at once)."""
        self.charge('pagecache_lookup')
        page = mapping.pages.get(index)
        if page is not None:
            page.flags |= PG_referenced
        return page

    def peek(self, inode, index):
        """The cached page of inode at index, if any, without charging a lookup (speculative checks)."""
        m = self.mappings.get(id(inode))
        return m.pages.get(index) if m is not None else None

    @staticmethod
    def last_index(mapping):
        """Index one past the last page that holds file data (EOF)."""
        return (mapping.inode.size + PAGE_SIZE - 1) >> PAGE_SHIFT

    # ---- reading ------------------------------------------------------------------------
    def _alloc_cache_page(self):
        if self.balance_hook is not None:
            self.balance_hook()
        page = self.frames.alloc_page(zero=False)
        if page is None and self.reclaim_hook is not None:
            self.reclaim_hook(32)
            page = self.frames.alloc_page(zero=False)
        if page is not None:
            self.charge('page_alloc')
        return page

    def add_to_page_cache_lru(self, page, mapping, index):
        """Insert a new page into the cache and the LRU."""
        self.charge('pagecache_insert')
        page.mapping = mapping
        page.index = index
        page.refcount += 1               # the cache's own reference
        mapping.pages[index] = page
        self.lru.add(page)

    def page_cache_ra_unbounded(self, mapping, index, nr, lookahead=0, nowait=False):
        """Start reads for the missing pages in [index, index+nr); mark the read-ahead trigger page.

        Returns the number of pages for which I/O was started. Stops at EOF. With nowait, stop
        quietly when memory is short instead of reclaiming (a light allocation).
        """
        end = min(index + nr, self.last_index(mapping))
        batch = []
        started = 0
        for i in range(index, end):
            if i in mapping.pages:
                self._submit(mapping, batch)
                batch = []
                continue
            page = self.frames.alloc_page(zero=False) if nowait else self._alloc_cache_page()
            if page is None:
                break
            if nowait:
                self.charge('page_alloc')
            page.flags |= PG_locked
            self.add_to_page_cache_lru(page, mapping, i)
            page.refcount -= 1           # only the cache holds it now
            if lookahead and i == end - lookahead:
                page.flags |= PG_readahead
            batch.append(page)
            started += 1
        self._submit(mapping, batch)
        return started

    def _submit(self, mapping, pages):
        """Fill pages from the inode and issue block reads for runs of contiguous blocks."""
        if not pages:
            return
        inode = mapping.inode
        runs = []                        # [first block, [pages]]
        now = self.sched.now()
        for page in pages:
            data = inode.read_page(page.index)
            dst = self.frames.phys.frame(page.pfn)
            dst[:len(data)] = data
            if len(data) < PAGE_SIZE:
                dst[len(data):] = bytes(PAGE_SIZE - len(data))
            if getattr(inode, 'backing', 'mem') == 'disk':
                block = inode.bmap(page.index)
            else:                        # a shmem page in swap comes back by a swap read
                block = self.shmem_swap.swapin(mapping, page) if self.shmem_swap is not None else None
            if block is None:            # a hole or a memory-backed file: ready at once
                page.flags = (page.flags | PG_uptodate) & ~PG_locked
                page.io_done_at = now
                continue
            self.charge('readahead_page')
            if runs and runs[-1][0] + len(runs[-1][1]) == block:
                runs[-1][1].append(page)
            else:
                runs.append([block, [page]])
        for block, run in runs:
            self.charge('io_submit')
            req = self.blockdev.submit('read', block, len(run), self.sched.now(), self._end_read(run))
            for page in run:
                page.io_done_at = req.complete_time
            self.stats['major_io_pages'] += len(run)

    def _end_read(self, pages):
        def end_io(_req):
            self.charge('io_complete')          # the completion interrupt
            for page in pages:
                page.flags = (page.flags | PG_uptodate) & ~PG_locked
        return end_io

    def wait_on_page_locked(self, page):
        """Sleep until the page's read completes."""
        if page.flags & PG_locked:
            self.sched.wait_until(page.io_done_at, 'io')

    def page_cache_sync_ra(self, mapping, ra, index, req_count):
        """On-demand read-ahead on a cache miss during read() (sequential detection)."""
        max_pages = ra.ra_pages
        if index == 0 or index == ra.prev_index + 1 or index == ra.start + ra.size:
            if index == ra.start + ra.size and ra.size:
                ra.start, ra.size = index, get_next_ra_size(ra.size, max_pages)
            else:
                ra.start, ra.size = index, get_init_ra_size(req_count, max_pages)
            ra.async_size = ra.size - req_count if ra.size > req_count else ra.size
        else:                            # random read: just what was asked for
            ra.start, ra.size, ra.async_size = index, req_count, 0
        self.page_cache_ra_unbounded(mapping, ra.start, ra.size, ra.async_size)

    def page_cache_async_ra(self, mapping, ra, page):
        """Hit on a PG_readahead page: start the next window before it is needed."""
        page.flags &= ~PG_readahead
        ra.start += ra.size
        ra.size = get_next_ra_size(ra.size, ra.ra_pages)
        ra.async_size = ra.size
        self.page_cache_ra_unbounded(mapping, ra.start, ra.size, ra.async_size)

    def read_cache_page(self, mapping, index, ra=None, req_count=1):
        """Get an uptodate page for index, reading it (with read-ahead) on a miss. None past EOF/OOM."""
        if index >= self.last_index(mapping):
            return None
        page = self.find_get_page(mapping, index)
        if page is None:
            self.stats['pagecache_misses'] += 1
            if ra is not None:
                self.page_cache_sync_ra(mapping, ra, index, req_count)
            else:
                self.page_cache_ra_unbounded(mapping, index, 1)
            page = mapping.pages.get(index)
            if page is None:
                return None
            if ra is not None and page.flags & PG_readahead:
                # filemap_get_pages: the batch after page_cache_sync_readahead ends at this page (not
                # uptodate yet); a large read's window has its marker on it (async_size == size), and
                # filemap_readahead starts the next window and clears it at once
                self.page_cache_async_ra(mapping, ra, page)
        else:
            self.stats['pagecache_hits'] += 1
            if ra is not None and page.flags & PG_readahead:
                self.page_cache_async_ra(mapping, ra, page)
        if ra is not None:
            ra.prev_index = index
        self.wait_on_page_locked(page)
        return page

    # ---- writing --------------------------------------------------------------------------
    def grab_cache_page_write_begin(self, mapping, index, whole_page):
        """A page to write into: cached, or new (read first unless the write covers it all)."""
        page = self.find_get_page(mapping, index)
        if page is not None:
            self.wait_on_page_locked(page)
            return page
        if not whole_page and index < self.last_index(mapping):
            return self.read_cache_page(mapping, index)
        page = self._alloc_cache_page()
        if page is None:
            return None
        self.frames.phys.zero_frame(page.pfn)
        self.add_to_page_cache_lru(page, mapping, index)
        page.refcount -= 1
        page.flags |= PG_uptodate
        return page

    def set_page_dirty(self, page):
        """A write() dirtied the page: folio_mark_dirty (accounted for a file on the disk), then
        balance_dirty_pages_ratelimited, which may start writeback or make the writer sleep."""
        self.writeback.folio_mark_dirty(page)
        self.writeback.balance_dirty_pages_ratelimited(page.mapping)

    @staticmethod
    def reserve_backing(mapping, index):
        """The filesystem's part of write_begin and ->page_mkwrite: back page `index` (a tmpfs page
        counted against the size limit, a disk block) before it is dirtied, so that writeback cannot
        fail. 0, or -errno (ENOSPC) for the write to fail or the fault to be a SIGBUS."""
        reserve = getattr(mapping.inode, 'reserve_page', None)
        if reserve is None:
            return 0
        try:
            reserve(index)
        except FsError as e:
            return -e.errno
        return 0

    def fault_reserve(self, mapping, index, write_shared):
        """The backing a fault on page `index` needs: shmem_fault allocates (and accounts) the page on
        every fault of a memory-backed file; a disk file only on a write to a shared mapping
        (->page_mkwrite). 0 or -errno."""
        if write_shared or getattr(mapping.inode, 'backing', 'mem') == 'mem':
            return self.reserve_backing(mapping, index)
        return 0

    def write_one_page(self, page):
        """Reclaim's write of a dirty page (pageout, and shmem's copy to its store before swap): the data
        to its inode and a block write (asynchronous) for a file on the disk, the page clean at once (the
        caller has unmapped it or keeps it)."""
        mapping = page.mapping
        inode = mapping.inode
        if getattr(inode, 'evicted', False):        # a deleted file's data goes nowhere (no space used)
            self.writeback.account_cleaned(page)
            return
        size = inode.size
        start = page.index << PAGE_SHIFT
        if start < size:
            n = min(PAGE_SIZE, size - start)
            try:
                inode.write_page(page.index, bytes(self.frames.phys.frame(page.pfn)[:n]))
            except FsError as e:             # mapping_set_error: fsync/msync report it, the run goes on
                mapping.wb_err = -e.errno
                self.writeback.account_cleaned(page)
                return
            if getattr(inode, 'backing', 'mem') == 'disk':
                block = inode.bmap(page.index)
                if block is not None:
                    self.charge('io_submit')
                    self.blockdev.submit('write', block, 1, self.sched.now())
                    self.stats['nr_written'] += 1
        self.writeback.account_cleaned(page)

    def filemap_write_and_wait(self, mapping, dirty_check=None):
        """Write back every dirty page of a mapping (fsync/msync/munmap of shared mappings).

        dirty_check(page) lets the caller fold PTE dirty bits into the page first. A file on the disk
        is written as the flusher writes it (pages cleaned and write-protected, under writeback until
        their writes complete) and waited for (filemap_fdatawait). Returns the writeback error recorded
        since the last call (file_check_and_advance_wb_err), 0 or -errno.
        """
        if mapping_can_writeback(mapping):
            if dirty_check is not None:
                for index in sorted(mapping.pages):
                    dirty_check(mapping.pages[index])
            self.writeback.write_mapping(mapping)
            self.writeback.wait_mapping(mapping)
            err, mapping.wb_err = mapping.wb_err, 0
            return err
        for index in sorted(mapping.pages):
            page = mapping.pages[index]
            if dirty_check is not None:
                dirty_check(page)
            if page.flags & PG_dirty:
                self.write_one_page(page)
        err, mapping.wb_err = mapping.wb_err, 0
        return err

    # ---- removal -----------------------------------------------------------------------------
    def delete_from_page_cache(self, page):
        if page.flags & PG_writeback:                 # truncate_inode_pages_range: folio_wait_writeback
            self.sched.wait_until(page.io_done_at, 'io')
        self.writeback.account_cleaned(page, clear=False)   # a dirty file page dropped (truncate)
        mapping = page.mapping
        if mapping is not None and mapping.pages.get(page.index) is page:
            del mapping.pages[page.index]
        self.lru.remove(page)
        page.mapping = None
        self.frames.put_page(page)

    def truncate_inode_pages(self, mapping, start_index):
        """Drop cached pages at or beyond start_index that are not mapped; zero the rest's tails."""
        for index in [i for i in mapping.pages if i >= start_index]:
            page = mapping.pages[index]
            if page.mapcount == 0:
                self.delete_from_page_cache(page)

    def truncate_inode_pages_final(self, mapping):
        """The inode was evicted: drop its whole page cache (unmapped by now) and the address space."""
        for index in list(mapping.pages):
            page = mapping.pages[index]
            if page.mapcount == 0:
                self.delete_from_page_cache(page)
        if not mapping.pages:
            self.mappings.pop(id(mapping.inode), None)

    def invalidate_mapping_pages(self, mapping, start=0, end=None):
        """Drop clean, unmapped, unlocked pages in [start, end] (POSIX_FADV_DONTNEED, drop_caches)."""
        n = 0
        for index in sorted(mapping.pages):
            if index < start or (end is not None and index > end):
                continue
            page = mapping.pages[index]
            if not _reclaimable(page):
                continue
            self.delete_from_page_cache(page)
            n += 1
        return n

    def drop_caches(self):
        """echo 1 > /proc/sys/vm/drop_caches: drop every clean unmapped page-cache page."""
        return sum(self.invalidate_mapping_pages(m) for m in list(self.mappings.values()))
