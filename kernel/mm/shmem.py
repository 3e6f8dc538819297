"""tmpfs and memfd pages under memory pressure (mm/shmem.c shmem_writepage, shmem_swapin_folio).

A shmem page has no disk behind it: reclaim cannot drop it, only move it to swap. shmem_writepage
takes a swap slot, unmaps the page, moves it from the page cache to the swap cache, starts the swap
write and leaves a swap entry at its index in the file (here: `entries`); the page is freed once
the write completes. Without a free slot the page stays resident (AOP_WRITEPAGE_ACTIVATE), so a
machine without swap keeps every tmpfs page in RAM, as Linux does. A later read or fault of that
index misses the page cache and comes back through a swap read (shmem_swapin_folio), or straight
from the swap cache if the page is still there; either way the slot is freed once the page is back
in the page cache.

The file's bytes stay in the inode's own store (kernel/fs/tmpfs.py), which the page's contents are
written to before it leaves RAM; the swap slot, its I/O and the frame are what this module models.
"""
from faultlab.kernel.mm.page_alloc import PG_dirty, PG_locked, PG_swapcache, PG_writeback
from faultlab.kernel.mm.shmem_huge import split_shmem_folio_for_swap
from faultlab.kernel.mm.swap import SWAP_BLOCK_BASE


def is_shmem_mapping(mapping):
    """shmem_mapping(): the page cache of a tmpfs or memfd file (not hugetlbfs or secretmem)."""
    inode = mapping.inode if mapping is not None else None
    return inode is not None and getattr(inode.sb, 'fstype', None) == 'tmpfs' and \
        getattr(inode, 'backing', None) == 'mem'


def shmem_resident_pages(pagecache):
    """NR_SHMEM (Shmem in /proc/meminfo): the shmem pages in the page cache."""
    return sum(m.nrpages for m in pagecache.mappings.values() if is_shmem_mapping(m))


class ShmemSwap:
    """The swap entries of shmem files: id(inode) -> (inode, size seen, {index: swap offset})."""

    def __init__(self, frames, pagecache, swapcache, lru, stats):
        self.frames = frames
        self.pagecache = pagecache
        self.swapcache = swapcache
        self.lru = lru
        self.stats = stats
        self.entries = {}

    @property
    def nr_swapped(self):
        """info->swapped summed over every file: shmem pages that are in swap."""
        return sum(len(e[2]) for e in self.entries.values())

    def swap_offsets(self):
        """The swap slot of every shmem page in swap (one use of the slot each)."""
        for _inode, _size, ents in self.entries.values():
            yield from ents.values()

    def _free_entry(self, offset):
        """shmem_free_swap: the file's use of the slot ends."""
        self.swapcache.area.swap_free(offset)

    def _file_entries(self, inode):
        """The index -> offset map of a live file, after dropping the entries its truncation or
        eviction freed (shmem_undo_range / shmem_evict_inode free the swap entries they cover)."""
        key = id(inode)
        e = self.entries.get(key)
        if e is None:
            return None
        if inode.evicted:
            for off in e[2].values():
                self._free_entry(off)
            del self.entries[key]
            return None
        if inode.size < e[1]:
            last = (inode.size + 4095) >> 12
            for index in [i for i in e[2] if i >= last]:
                self._free_entry(e[2].pop(index))
        self.entries[key] = (inode, inode.size, e[2])
        return e[2]

    def has_entry(self, inode, index):
        """True if page index of the file is in swap (a swap entry in its page cache's place)."""
        if id(inode) not in self.entries:
            return False
        ents = self._file_entries(inode)          # drops the entries a truncation or eviction freed
        return ents is not None and index in ents

    def reap(self):
        """Free the swap entries of files evicted or truncated since they were swapped out."""
        for inode, _size, _ents in list(self.entries.values()):
            self._file_entries(inode)

    def writepage(self, reclaim, page):
        """shmem_writepage from reclaim: True if the page left RAM (or is on its way out), False if it
        stays (no swap slot, mapped locked, in use); None for a page of an evicted file (nothing to
        keep: reclaim drops it as any clean page)."""
        mapping = page.mapping
        inode = mapping.inode
        if inode.evicted:
            return None
        split_shmem_folio_for_swap(self.frames, self.stats, page, reclaim.mms)   # split_huge_page first
        sc = self.swapcache
        offset = sc.area.get_swap_page()
        if offset is None:
            self.lru.activate(page)            # redirty + AOP_WRITEPAGE_ACTIVATE: no swap to go to
            return False
        if not reclaim.try_to_unmap(page) or page.refcount > 1:
            sc.area.swap_free(offset)
            return False
        if page.flags & PG_dirty:
            self.pagecache.write_one_page(page)     # the file's store keeps what the swap slot holds
        index = page.index
        # shmem_delete_from_page_cache + add_to_swap_cache: the swap cache takes the page cache's place
        del mapping.pages[index]
        self.lru.remove(page)
        page.mapping = None
        sc.add_to_swap_cache(page, offset, new_slot=True)
        self.frames.put_page(page)                  # the page cache's reference
        sc.area.swap_duplicate(offset)              # the file's swap entry
        ents = self._file_entries(inode)
        if ents is None:
            ents = {}
            self.entries[id(inode)] = (inode, inode.size, ents)
        old = ents.get(index)
        if old is not None:                         # a stale entry the page was rewritten over
            self._free_entry(old)
        ents[index] = offset
        reclaim.swap_out(page, store=False)
        return True

    def swapin(self, mapping, page):
        """shmem_swapin_folio for a page-cache miss at page.index of a shmem file (the new page is
        being filled from the file): the swap block to read it from, or None when it is not in
        swap or its page was still in the swap cache (copied at once). The slot is freed either way."""
        ents = self._file_entries(mapping.inode)
        if not ents:
            return None
        offset = ents.pop(page.index, None)
        if offset is None:
            return None
        sc = self.swapcache
        cached = sc.peek(offset)
        block = None
        if cached is not None and cached.flags & PG_swapcache:
            if cached.refcount == 1 and not cached.flags & (PG_locked | PG_writeback):
                sc.delete_from_swap_cache(cached)   # only the swap cache holds it: free it now
        else:
            block = SWAP_BLOCK_BASE + offset
            self.stats['pswpin'] += 1
        self._free_entry(offset)
        if not ents:
            self.entries.pop(id(mapping.inode), None)
        return block
