"""Page reclaim (mm/vmscan.c, mm/rmap.c): LRU lists aged with the Accessed bit, unmapping, pageout.

Two lists, active and inactive, ordered oldest first. Reclaim scans the inactive list: a page whose
PTEs had the Accessed bit set (the CPU sets it) gets a second chance on the active list; others are
unmapped: clean file pages are dropped, dirty ones written back first, anonymous pages go to swap
(their PTEs become swap entries) and are freed once the write completes. When the inactive list runs
short, the oldest active pages are deactivated (their Accessed bits cleared).
"""
import collections
import itertools

from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT
from faultlab.kernel.mm.page_alloc import (PG_head, PG_lru, PG_active, PG_anon, PG_locked, PG_writeback, PG_dirty,
                                  PG_swapcache, PG_reserved, PG_referenced)
from faultlab.kernel.mm.pgtable import (_PAGE_PRESENT, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_RW, _PAGE_SOFT_DIRTY, pte_pfn,
                                swp_entry_to_pte)
from faultlab.kernel.mm.huge_memory import folio_entire_mapcount, split_huge_page
from faultlab.kernel.mm.shmem import ShmemSwap, is_shmem_mapping
from faultlab.kernel.mm.swap import SWAP_TYPE
from faultlab.kernel.mm.userfaultfd_k import VM_UFFD_WP, WP_MARKER, _PAGE_SWP_UFFD_WP, _PAGE_UFFD_WP
from faultlab.kernel.mm.vma import VM_LOCKED


class LruLists:
    """The active and inactive lists (all evictable pages: anonymous and page cache)."""

    def __init__(self):
        self.active = collections.OrderedDict()
        self.inactive = collections.OrderedDict()

    def add(self, page, active=False):
        """lru_cache_add: new pages go to the tail of a list."""
        page.flags |= PG_lru
        (self.active if active else self.inactive)[page.pfn] = page
        if active:
            page.flags |= PG_active

    def add_active(self, pages):
        """lru_cache_add of new pages straight onto the active list (a batch of anonymous faults)."""
        active = self.active
        for page in pages:
            page.flags |= PG_lru | PG_active
            active[page.pfn] = page

    def remove_many(self, pages):
        """Take freed pages off their lists (a batch of release_pages)."""
        active, inactive = self.active, self.inactive
        for page in pages:
            (active if page.flags & PG_active else inactive).pop(page.pfn, None)
            page.flags &= ~(PG_lru | PG_active)

    def remove(self, page):
        self.active.pop(page.pfn, None)
        self.inactive.pop(page.pfn, None)
        page.flags &= ~(PG_lru | PG_active)

    def activate(self, page):
        self.inactive.pop(page.pfn, None)
        self.active[page.pfn] = page
        page.flags |= PG_active

    def deactivate(self, page):
        self.active.pop(page.pfn, None)
        self.inactive[page.pfn] = page
        page.flags &= ~PG_active

    def __len__(self):
        return len(self.active) + len(self.inactive)


class Reclaim:
    """kswapd and direct reclaim for one machine."""

    def __init__(self, frames, pagecache, swapcache, lru, mms, charge, flush_tlb, stats, sched):
        """mms() yields every address space (for the reverse map of file pages)."""
        self.frames = frames
        self.pagecache = pagecache
        self.swapcache = swapcache
        self.lru = lru
        self.mms = mms
        self.charge = charge
        self.flush_tlb = flush_tlb
        self.stats = stats
        self.sched = sched
        n = frames.phys.nr_frames
        self.wmark_min = max(16, n // 128)
        self.wmark_low = self.wmark_min * 5 // 4
        self.wmark_high = self.wmark_min * 3 // 2
        self._writeback = 0
        # tmpfs/memfd pages go to swap, not away (mm/shmem.c); page-cache misses look there first
        self.shmem = ShmemSwap(frames, pagecache, swapcache, lru, stats)

    # ---- reverse map ------------------------------------------------------------------------
    def rmap_walk(self, page):
        """[(mm, vma, va, slot, pte)] for every present PTE that maps the page."""
        out = []
        if page.flags & PG_anon:
            if page.rmap_mm is None:
                return out
            # an anonymous page is at the same address in every mm that shares it (fork's COW copies)
            va = page.index << PAGE_SHIFT
            for mm in [page.rmap_mm] if page.mapcount <= 1 else self.mms():
                vma = mm.vmas.vma_lookup(va)
                slot = mm.pgtables.pte_slot(va, create=False) if vma is not None else None
                if slot is not None:
                    pte = self.frames.phys.read64(slot)
                    if pte & _PAGE_PRESENT and pte_pfn(pte) == page.pfn:
                        out.append((mm, vma, va, slot, pte))
            return out
        mapping = page.mapping
        if mapping is None or not page.mapcount:
            return out
        for mm in self.mms():
            for vma in mm.vmas:
                f = vma.vm_file
                if f is None or f.mapping is not mapping:
                    continue
                off = page.index - vma.vm_pgoff
                va = vma.vm_start + (off << PAGE_SHIFT)
                if off < 0 or va >= vma.vm_end:
                    continue
                slot = mm.pgtables.pte_slot(va, create=False)
                if slot is None:
                    continue
                pte = self.frames.phys.read64(slot)
                if pte & _PAGE_PRESENT and pte_pfn(pte) == page.pfn:
                    out.append((mm, vma, va, slot, pte))
        return out

    def page_referenced(self, page):
        """Test and clear the Accessed bits of the page's PTEs; how many were set (plus PG_referenced)."""
        n = 0
        phys = self.frames.phys
        for mm, vma, va, slot, pte in self.rmap_walk(page):
            if vma.vm_flags & VM_LOCKED:
                return -1
            if pte & _PAGE_ACCESSED:
                phys.write64(slot, pte & ~_PAGE_ACCESSED)
                n += 1
        if page.flags & PG_referenced:
            page.flags &= ~PG_referenced
            n += 1
        return n

    def try_to_unmap(self, page, swap_offset=None):
        """Remove every PTE mapping the page (a swap entry for anonymous pages); False if locked."""
        phys = self.frames.phys
        maps = self.rmap_walk(page)
        if any(vma.vm_flags & VM_LOCKED for _, vma, _, _, _ in maps):
            return False
        for mm, vma, va, slot, pte in maps:
            if pte & _PAGE_DIRTY:
                page.flags |= PG_dirty
            if swap_offset is not None:
                # _PAGE_SWP_SOFT_DIRTY (bit 1 of a swap PTE) keeps the soft-dirty state
                sd = _PAGE_RW if pte & _PAGE_SOFT_DIRTY else 0
                if pte & _PAGE_UFFD_WP:
                    sd |= _PAGE_SWP_UFFD_WP          # pte_swp_mkuffd_wp: the state survives swap
                phys.write64(slot, swp_entry_to_pte(SWAP_TYPE, swap_offset) | sd)
                self.swapcache.area.swap_duplicate(swap_offset)
                mm.rss_add(anon=-1)
                mm.swap_ents = getattr(mm, 'swap_ents', 0) + 1
            else:                                    # pte_install_uffd_wp_if_needed: a uffd-wp marker
                wp = pte & _PAGE_UFFD_WP and vma.vm_flags & VM_UFFD_WP and not vma.anon
                phys.write64(slot, WP_MARKER if wp else 0)
                mm.rss_add(file=-1)
            self.charge('pte_set')
            page.mapcount -= 1
            self.frames.put_page(page)
        return True

    # ---- reclaiming one page ------------------------------------------------------------------
    def pageout(self, page, force=False):
        """Try to reclaim one page; True if it was freed or its freeing is under way."""
        if page.flags & (PG_locked | PG_writeback | PG_reserved) or not page.flags & PG_lru:
            return False
        if page.flags & PG_head and page.rmap_mm is not None and \
                folio_entire_mapcount(page.rmap_mm.svc, page.pfn):
            # shrink_folio_list: a PMD-mapped THP is split before its pages go to swap
            if not split_huge_page(page.rmap_mm.svc, page, self.mms):
                return False
        if not force:
            ref = self.page_referenced(page)
            if ref < 0:
                self.lru.activate(page)
                return False
            if ref and page.mapcount:
                self.lru.activate(page)
                self.stats['pgactivate'] += 1
                return False
        if page.flags & PG_anon:
            return self._pageout_anon(page)
        return self._pageout_file(page)

    def _pageout_file(self, page):
        if is_shmem_mapping(page.mapping):       # shmem_writepage: to swap, or it stays
            moved = self.shmem.writepage(self, page)
            if moved is not None:
                if moved:
                    self.stats['pgsteal'] += 1
                return moved
        if not self.try_to_unmap(page):
            return False
        if page.flags & PG_dirty:
            self.pagecache.write_one_page(page)
            self.stats['pgpgout'] += 1
        if page.refcount > 1:          # someone still holds it (e.g. a fault in progress)
            return False
        self.pagecache.delete_from_page_cache(page)
        self.stats['pgsteal'] += 1
        return True

    def _pageout_anon(self, page):
        sc = self.swapcache
        if not page.flags & PG_swapcache:
            offset = sc.area.get_swap_page()
            if offset is None:
                return False
            sc.add_to_swap_cache(page, offset, new_slot=True)
        offset = page.private
        if not self.try_to_unmap(page, offset):
            sc.delete_from_swap_cache(page)
            return False
        self.lru.remove(page)
        self.swap_out(page)
        self.stats['pgsteal'] += 1
        return True

    def swap_out(self, page, store=True):
        """Start the swap write of a page in the swap cache (off the LRU, unmapped); it leaves the
        swap cache, and RAM, when the write completes unless someone took it meanwhile."""
        sc = self.swapcache
        self._writeback += 1

        def done(p):
            self._writeback -= 1
            if p.refcount == 1 and not p.mapcount:
                sc.delete_from_swap_cache(p)
        sc.swap_writepage(page, done, store)

    # ---- scanning -----------------------------------------------------------------------------------
    def shrink_active_list(self, nr):
        """Move the oldest active pages to the inactive list, clearing their Accessed bits."""
        moved = 0
        for pfn in list(itertools.islice(self.lru.active, nr)):
            page = self.lru.active[pfn]
            self.page_referenced(page)
            self.lru.deactivate(page)
            self.stats['pgdeactivate'] += 1
            moved += 1
        return moved

    def try_to_free_pages(self, nr, may_wait=True):
        """Reclaim until nr pages are free or nothing more can be done; returns pages reclaimed."""
        self.charge('fault_handle')
        target = self.frames.nr_free + nr
        freed = 0
        for _round in range(4):
            if len(self.lru.inactive) < max(nr, len(self.lru.active) // 2):
                self.shrink_active_list(max(nr, 32))
            self.flush_tlb()                      # cleared Accessed bits must be seen by the CPU
            # scan a bounded batch from the cold end, as shrink_inactive_list does (SWAP_CLUSTER_MAX-ish)
            for pfn in list(itertools.islice(self.lru.inactive, max(4 * nr, 64))):
                if self.frames.nr_free + self._writeback >= target:
                    break
                page = self.lru.inactive.get(pfn)
                if page is None:
                    continue
                self.stats['pgscan'] += 1
                self.charge('pagecache_lookup')
                if self.pageout(page):
                    freed += 1
            self.flush_tlb()
            if self.frames.nr_free >= target:
                break
            if self._writeback and may_wait:
                # wait for the swap writes that free memory
                self.sched.wait_until(self.sched.next_event_time(), 'reclaim')
                if self.frames.nr_free >= target:
                    break
        return freed

    def zone_watermark_ok(self, order):
        """__zone_watermark_ok against the min watermark: do more than wmark_min free pages stay
        after taking a block of 2**order? (free_pages -= (1 << order) - 1; free_pages <= min fails)"""
        return self.frames.nr_free - ((1 << order) - 1) > self.wmark_min

    def balance(self, light=False):
        """Before an allocation: below the low watermark, reclaim up to the high one (not for light)."""
        free = self.frames.nr_free
        if light or free >= self.wmark_low:
            return
        self.stats['kswapd_runs'] += 1
        self.try_to_free_pages(self.wmark_high - free)

    def direct_reclaim(self, nr):
        return self.try_to_free_pages(nr)
