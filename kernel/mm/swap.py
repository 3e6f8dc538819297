"""The swap area and the swap cache (mm/swapfile.c, mm/swap_state.c).

The swap area is a range of blocks on the simulated disk: a slot per page, with a use count (PTEs
holding the entry plus the swap cache). A page being written out or read in sits in the swap cache,
locked while its I/O is in flight; swap-in reads a cluster of neighbouring slots (read-ahead).
The slots' bytes live in the disk's host file (kernel/block/store.py), not in the emulator's memory.
"""
from faultlab.kernel.arch.cpu_interface import PAGE_SIZE
from faultlab.kernel.block.store import DiskStore
from faultlab.kernel.mm.page_alloc import PG_locked, PG_uptodate, PG_swapcache, PG_writeback, PG_anon, PG_swapbacked

SWAP_TYPE = 0
SWAP_BLOCK_BASE = 1 << 24          # swap lives after the filesystem's blocks on the same disk
SWAP_CLUSTER_PAGES = 8             # page_cluster = 3
ZERO_PAGE = bytes(PAGE_SIZE)


class SwapArea:
    """struct swap_info_struct: slots, their use counts, and the data written to them."""

    def __init__(self, nr_slots, region=None):
        """region: nr_slots blocks of the disk's host file (a BlockRegion) that hold the slots' data;
        None: a temporary file of its own."""
        self.nr_slots = nr_slots
        self.swap_map = [0] * nr_slots
        if region is None:
            region = DiskStore(block_size=PAGE_SIZE).region(0, nr_slots)
        self.data = region              # slot -> bytes of the slots written (BlockRegion)
        self._next = 1                 # slot 0 is the header, as in Linux
        self.inuse = 0

    @property
    def nr_free(self):
        return self.nr_slots - 1 - self.inuse

    def get_swap_page(self):
        """A free slot (use count 1), or None when swap is full."""
        if self.nr_free <= 0:
            return None
        n = self.nr_slots
        i = self._next
        while self.swap_map[i]:
            i = i + 1 if i + 1 < n else 1
        self.swap_map[i] = 1
        self._next = i + 1 if i + 1 < n else 1
        self.inuse += 1
        return i

    def swap_duplicate(self, offset):
        self.swap_map[offset] += 1

    def swap_free(self, offset):
        """Drop one use of a slot; the slot is free again at zero."""
        self.swap_map[offset] -= 1
        if self.swap_map[offset] == 0:
            self.data.pop(offset, None)
            self.inuse -= 1


class SwapCache:
    """Pages that have a swap slot: being written out, or read in and not yet mapped."""

    def __init__(self, frames, area, blockdev, sched, charge, stats):
        self.frames = frames
        self.area = area
        self.blockdev = blockdev
        self.sched = sched
        self.charge = charge
        self.stats = stats
        self.pages = {}

    def peek(self, offset):
        """The swap-cache page for a slot, without the lookup's cost (speculative checks)."""
        if offset in self.area.data.pending:       # it may be mapped and written to: its bytes go out first
            self.area.data.flush()
        return self.pages.get(offset)

    def lookup_swap_cache(self, offset):
        self.charge('pagecache_lookup')
        if offset in self.area.data.pending:
            self.area.data.flush()
        return self.pages.get(offset)

    def add_to_swap_cache(self, page, offset, new_slot=False):
        """The cache holds a page reference and (unless the slot was just allocated for it) a slot use."""
        page.flags |= PG_swapcache
        page.private = offset
        page.refcount += 1
        self.pages[offset] = page
        if not new_slot:
            self.area.swap_duplicate(offset)

    def delete_from_swap_cache(self, page):
        offset = page.private
        if self.pages.get(offset) is page:
            if offset in self.area.data.pending:   # the frame may be reused: its bytes go out first
                self.area.data.flush()
            del self.pages[offset]
            page.flags &= ~PG_swapcache
            self.area.swap_free(offset)
            self.frames.put_page(page)

    def swap_writepage(self, page, on_done, store=True):
        """Write a page to its slot (asynchronously); on_done(page) at completion. store: the slot
        keeps the bytes (an anonymous page's only copy); a shmem page's bytes stay with its file,
        and swap-in read-ahead of anonymous neighbours passes over its slot."""
        offset = page.private
        data = self.area.data
        if store:
            data.defer(offset, self.frames.phys.frame(page.pfn))
        page.flags |= PG_writeback
        self.charge('io_submit')
        self.stats['pswpout'] += 1

        def end_write(_req):
            if data.pending:
                data.flush()
            page.flags &= ~PG_writeback
            on_done(page)
        req = self.blockdev.submit('write', SWAP_BLOCK_BASE + offset, 1, self.sched.now(), end_write)
        return req

    def swap_cluster_readahead(self, offset, alloc_page):
        """Start reads for the slot and its in-use neighbours in the aligned cluster; the page for
        offset (locked until its read completes), or None if no page could be allocated."""
        start = offset & ~(SWAP_CLUSTER_PAGES - 1)
        want = None
        batch = []
        for off in range(max(1, start), min(self.area.nr_slots, start + SWAP_CLUSTER_PAGES)):
            if not self.area.swap_map[off] or off in self.pages:
                if off == offset:
                    want = self.pages.get(off)
                continue
            if off != offset and off not in self.area.data:
                continue
            page = alloc_page()
            if page is None:
                break
            frame = self.frames.phys.frame(page.pfn)
            if not self.area.data.read_into(off, frame):
                frame[:] = ZERO_PAGE
            page.flags |= PG_locked | PG_anon | PG_swapbacked
            self.add_to_swap_cache(page, off)
            page.refcount -= 1            # only the swap cache holds it
            batch.append(page)
            if off == offset:
                want = page
        if batch:
            self.charge('io_submit')
            self.stats['pswpin'] += len(batch)
            first = batch[0].private
            req = self.blockdev.submit('read', SWAP_BLOCK_BASE + first, len(batch), self.sched.now(),
                                       _end_read(batch, self.charge))
            for p in batch:
                p.io_done_at = req.complete_time
        return want


def _end_read(pages, charge):
    def end_io(_req):
        charge('io_complete')
        for p in pages:
            p.flags = (p.flags | PG_uptodate) & ~PG_locked
    return end_io
