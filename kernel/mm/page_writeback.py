"""Dirty page-cache pages and their writeback (mm/page-writeback.c, fs/fs-writeback.c, in small).

Pages of files on the disk (writeback-capable mappings) are accounted when they become dirty
(folio_mark_dirty -> folio_account_dirtied: nr_dirty, nr_dirtied) and when their write starts and ends
(folio_clear_dirty_for_io, folio_start_writeback / folio_end_writeback: nr_writeback, nr_written).
Starting a write cleans and write-protects every PTE mapping the page (page_mkclean), so the next
write to a shared mapping of it takes a write-protect fault again and dirties it anew.

Dirtiers are throttled in balance_dirty_pages against the limits of vm.dirty_ratio / dirty_bytes and
vm.dirty_background_ratio / dirty_background_bytes (domain_dirty_limits over the dirtyable memory:
free pages plus the page cache); crossing the background limit starts background writeback, and a
dirtier over the hard limit sleeps until writes complete. The flusher (wb_workfn) also wakes every
dirty_writeback_centisecs while dirty pages exist and writes back those dirtied more than
dirty_expire_centisecs ago. Writes go to the simulated disk and complete in simulated time.

Simplification: between the free-run ceiling ((bg_thresh + thresh) / 2) and the hard limit Linux
pauses dirtiers in proportion to how far they are into that range (the dirty rate-limit position
ratio); here they are not paused there, only over the hard limit.
"""
from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.mm.page_alloc import PG_dirty, PG_writeback
from faultlab.kernel.mm.pgtable import _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW
from faultlab.kernel.mm.vm_sysctl import VmSysctl
from faultlab.kernel.mm.vma import VM_SHARED

MAX_PAUSE_MS = 200                 # mm/page-writeback.c MAX_PAUSE: HZ / 5
MIN_WRITEBACK_PAGES = 1024         # fs/fs-writeback.c: 4 MiB, the least a background writeback chunk writes
BIO_MAX_VECS = 256                 # include/linux/bio.h: pages in one bio (1 MiB)


def mapping_can_writeback(mapping):
    """mapping_can_writeback: the mapping's pages go to a disk (not shmem, whose pages go to swap)."""
    return mapping is not None and getattr(mapping.inode, 'backing', 'mem') == 'disk'


class DirtyLimits:
    """The dirty thresholds in pages (struct dirty_throttle_control's thresh and bg_thresh)."""
    __slots__ = ('thresh', 'bg_thresh')

    def __init__(self, thresh, bg_thresh):
        self.thresh = thresh
        self.bg_thresh = bg_thresh

    @property
    def freerun(self):
        """dirty_freerun_ceiling: below it dirtiers are never paused."""
        return (self.thresh + self.bg_thresh) // 2


def domain_dirty_limits(knobs, available):
    """domain_dirty_limits for the global domain: thresholds from the bytes knobs when set, else the
    ratios of `available` (global_dirtyable_memory) pages; bg_thresh below thresh."""
    if knobs.dirty_bytes:
        thresh = -(-knobs.dirty_bytes // PAGE_SIZE)
    else:
        thresh = knobs.dirty_ratio * available // 100
    if knobs.dirty_background_bytes:
        bg_thresh = -(-knobs.dirty_background_bytes // PAGE_SIZE)
    else:
        bg_thresh = knobs.dirty_background_ratio * available // 100
    if bg_thresh >= thresh:
        bg_thresh = thresh // 2
    return DirtyLimits(thresh, bg_thresh)


class Writeback:
    """The dirty-page accounting and the writeback of one page cache (one bdi_writeback)."""

    def __init__(self, pagecache):
        self.pc = pagecache
        self.knobs = None              # kernel.mm.vm_sysctl.VmSysctl (set_knobs); Linux's defaults before
        self.nr_dirty = 0              # NR_FILE_DIRTY
        self.nr_writeback = 0          # NR_WRITEBACK
        self.dirty_inodes = {}         # id(inode) -> [mapping, dirtied_when]: the wb's b_dirty list
        self.inflight = []             # completion times of the writes in flight
        self.timer_armed = False

    def set_knobs(self, knobs):
        """The vm sysctls (dirty_ratio, ...) the limits follow."""
        self.knobs = knobs

    def _knobs(self):
        if self.knobs is None:
            self.knobs = VmSysctl()
        return self.knobs

    # ---- accounting ------------------------------------------------------------------------------
    def folio_mark_dirty(self, page):
        """Mark a page dirty; a clean page of a writeback-capable mapping is accounted (nr_dirty,
        nr_dirtied) and its inode joins the dirty list (__mark_inode_dirty, dirtied_when)."""
        if page.flags & PG_dirty:
            return False
        page.flags |= PG_dirty
        mapping = page.mapping
        if not mapping_can_writeback(mapping):
            return False
        self.nr_dirty += 1
        self.pc.stats['nr_dirtied'] += 1
        if id(mapping.inode) not in self.dirty_inodes:
            self.dirty_inodes[id(mapping.inode)] = [mapping, self.pc.sched.now()]
        self._arm_timer()
        return True

    def account_cleaned(self, page, clear=True):
        """folio_account_cleaned / folio_cancel_dirty: a dirty page of a file on the disk stops being
        dirty without a write of ours (truncated, written by reclaim); other pages lose PG_dirty only
        when `clear` (a shmem page leaving the cache for swap keeps it)."""
        if page.flags & PG_dirty and mapping_can_writeback(page.mapping):
            page.flags &= ~PG_dirty
            self.nr_dirty = max(0, self.nr_dirty - 1)
        elif clear:
            page.flags &= ~PG_dirty

    def folio_clear_dirty_for_io(self, page):
        """Clear the page's dirty state before its write: write-protect and clean every PTE mapping it
        (page_mkclean, so the next write through a shared mapping faults and dirties it again), fold
        what the PTEs said into the page; True when it was dirty."""
        dirty = bool(page.flags & PG_dirty) | self.page_mkclean(page)
        if page.flags & PG_dirty and mapping_can_writeback(page.mapping):
            self.nr_dirty = max(0, self.nr_dirty - 1)
        page.flags &= ~PG_dirty
        return dirty

    def page_mkclean(self, page):
        """Write-protect and clean the page's PTEs in shared mappings; True when one was dirty."""
        rmap = self.pc.rmap_walk
        if rmap is None or not page.mapcount:
            return False
        dirty = False
        phys = self.pc.frames.phys
        flushed = []
        for mm, vma, _va, slot, pte in rmap(page):
            if not vma.vm_flags & VM_SHARED or not pte & _PAGE_PRESENT:
                continue
            if pte & (_PAGE_RW | _PAGE_DIRTY):
                dirty |= bool(pte & _PAGE_DIRTY)
                phys.write64(slot, pte & ~(_PAGE_RW | _PAGE_DIRTY))
                self.pc.charge('pte_set')
                if mm not in flushed:
                    flushed.append(mm)
        for mm in flushed:
            self.pc.flush_tlb(mm)
        return dirty

    # ---- writing -----------------------------------------------------------------------------------
    def _prepare_write(self, page):
        """folio_clear_dirty_for_io and the page's data to its file: the page's disk block, or None when
        there is nothing to write (clean, past EOF, a deleted file, a hole, a write error)."""
        mapping = page.mapping
        if mapping is None or page.flags & PG_writeback:
            return None
        if not self.folio_clear_dirty_for_io(page):
            return None
        inode = mapping.inode
        if getattr(inode, 'evicted', False):      # a deleted file's data goes nowhere
            return None
        start = page.index << PAGE_SHIFT
        if start >= inode.size:
            return None
        n = min(PAGE_SIZE, inode.size - start)
        try:
            inode.write_page(page.index, bytes(self.pc.frames.phys.frame(page.pfn)[:n]))
        except FsError as e:                       # mapping_set_error: fsync/msync report it
            mapping.wb_err = -e.errno
            return None
        return inode.bmap(page.index)

    def _submit_writes(self, batch, at=None):
        """Issue the writes of [(block, page)]: one block request per run of contiguous blocks of at most
        BIO_MAX_VECS pages (the bios ext4_writepages builds), at simulated time `at` (default now), each
        page under writeback until its request completes. Returns the pages started."""
        runs = []
        for block, page in sorted(batch, key=lambda bp: bp[0]):
            if runs and runs[-1][0] + len(runs[-1][1]) == block and len(runs[-1][1]) < BIO_MAX_VECS:
                runs[-1][1].append(page)
            else:
                runs.append([block, [page]])
        when = self.pc.sched.now() if at is None else at
        for block, pages in runs:
            for page in pages:
                page.flags |= PG_writeback
            self.nr_writeback += len(pages)
            self.pc.charge('io_submit')
            req = self.pc.blockdev.submit('write', block, len(pages), when, self._end_writeback(pages))
            for page in pages:
                page.io_done_at = req.complete_time
            self.inflight.append(req.complete_time)
        return len(batch)

    def write_page(self, page, at=None):
        """Write one dirty page (its own block request); False when nothing was written."""
        block = self._prepare_write(page)
        return block is not None and bool(self._submit_writes([(block, page)], at))

    def _end_writeback(self, pages):
        def end_io(req):
            """folio_end_writeback of every page of the request: the write completed."""
            self.pc.charge('io_complete')
            for page in pages:
                if page.flags & PG_writeback:
                    page.flags &= ~PG_writeback
                    self.nr_writeback = max(0, self.nr_writeback - 1)
                    self.pc.stats['nr_written'] += 1
            if req.complete_time in self.inflight:
                self.inflight.remove(req.complete_time)
        return end_io

    def write_mapping(self, mapping, start=0, end=None, at=None):
        """do_writepages over [start, end] of a mapping (pages in index order, writes issued at `at`,
        default now); pages started."""
        batch = []
        for index in sorted(mapping.pages):
            if index < start or (end is not None and index > end):
                continue
            page = mapping.pages[index]
            if page.flags & PG_dirty:           # a shared mapping's writable PTE has its page dirty already
                block = self._prepare_write(page)
                if block is not None:
                    batch.append((block, page))
        if not any(p.flags & PG_dirty for p in mapping.pages.values()):
            self.dirty_inodes.pop(id(mapping.inode), None)
        return self._submit_writes(batch, at)

    def wait_mapping(self, mapping):
        """filemap_fdatawait: sleep until no page of the mapping is under writeback."""
        last = max((p.io_done_at for p in mapping.pages.values() if p.flags & PG_writeback), default=None)
        if last is not None:
            self.pc.sched.wait_until(last, 'io')

    # ---- limits and throttling ---------------------------------------------------------------------
    def dirtyable(self):
        """global_dirtyable_memory: free pages plus the page cache."""
        pc = self.pc
        return pc.frames.nr_free + sum(m.nrpages for m in pc.mappings.values())

    def limits(self):
        """The global dirty thresholds now (domain_dirty_limits)."""
        return domain_dirty_limits(self._knobs(), self.dirtyable())

    def balance_dirty_pages_ratelimited(self, mapping):
        """After dirtying a page of mapping: start background writeback over the background limit, and
        sleep while the dirty and writeback pages are over the hard limit (balance_dirty_pages)."""
        if not mapping_can_writeback(mapping):
            return
        lim = self.limits()
        if self.nr_dirty + self.nr_writeback <= lim.freerun:
            return
        if self.nr_dirty > lim.bg_thresh:
            self.background_writeback(lim)
        waited = 0
        max_pause = MAX_PAUSE_MS * self.pc.blockdev.freq_hz // 1000
        while self.nr_dirty + self.nr_writeback > lim.thresh and self.inflight:
            self.pc.stats['balance_dirty_pages_pauses'] += 1
            t0 = self.pc.sched.now()
            self.pc.sched.wait_until(min(min(self.inflight), t0 + max_pause - waited), 'io')
            waited += self.pc.sched.now() - t0
            if waited >= max_pause:
                break
            if self.nr_dirty > lim.bg_thresh:
                self.background_writeback(lim)

    def background_writeback(self, lim=None, at=None):
        """wb_start_background_writeback, done at once: write back dirty pages, oldest inode first, until
        the dirty pages are at or below the background limit, in chunks of at least MIN_WRITEBACK_PAGES
        (writeback_chunk_size), contiguous blocks in one request."""
        lim = lim or self.limits()
        self.pc.stats['nr_background_writeback'] += 1
        goal = min(lim.bg_thresh, max(0, self.nr_dirty - MIN_WRITEBACK_PAGES))
        for key, (mapping, _when) in sorted(self.dirty_inodes.items(), key=lambda kv: kv[1][1]):
            batch = []
            for index in sorted(mapping.pages):
                if self.nr_dirty <= goal:
                    break
                page = mapping.pages[index]
                if page.flags & PG_dirty:
                    block = self._prepare_write(page)
                    if block is not None:
                        batch.append((block, page))
            self._submit_writes(batch, at)
            if not any(p.flags & PG_dirty for p in mapping.pages.values()):
                self.dirty_inodes.pop(key, None)
            if self.nr_dirty <= goal:
                return

    # ---- the flusher ----------------------------------------------------------------------------------
    def _centisecs(self, cs):
        return cs * self.pc.blockdev.freq_hz // 100

    def _arm_timer(self, base=None):
        """wb_wakeup_delayed: the flusher wakes dirty_writeback_centisecs after `base` (default now; 0:
        never)."""
        cs = self._knobs().dirty_writeback_centisecs
        if self.timer_armed or not cs:
            return
        self.timer_armed = True
        base = self.pc.sched.now() if base is None else base
        self.pc.blockdev.events.schedule(base + self._centisecs(cs), self.wb_workfn)

    def wb_workfn(self, when):
        """The periodic flusher at simulated time `when` (its timer's; the event may run later, when the
        CPU comes back from a sleep: the wake-ups in between then run one after the other, each at its
        own time): write back the inodes dirtied more than dirty_expire_centisecs ago
        (wb_check_old_data_flush), and down to the background limit; wake again while dirty pages
        remain."""
        self.timer_armed = False
        expire = self._centisecs(self._knobs().dirty_expire_centisecs)
        for key, (mapping, dirtied) in list(self.dirty_inodes.items()):
            if when - dirtied >= expire:
                self.write_mapping(mapping, at=when)
                self.dirty_inodes.pop(key, None)
        if self.nr_dirty > self.limits().bg_thresh:
            self.background_writeback(at=when)
        if self.dirty_inodes:
            self._arm_timer(base=when)


def do_page_mkwrite(svc, page):
    """->page_mkwrite before a clean page of a shared file mapping becomes writable: for a file on the
    disk ext4_page_mkwrite (sb_start_pagefault, the block reservation of delayed allocation, which the
    fault's reserve_backing did, and file_update_time); shmem has none."""
    mapping = page.mapping
    if not mapping_can_writeback(mapping):
        return
    svc.charge('page_mkwrite')
    touch = getattr(mapping.inode, 'touch_mtime', None)
    if touch is not None:
        touch()


def fault_dirty_shared_page(svc, page):
    """After a write fault made a shared file page writable: folio_mark_dirty (accounted for a file on
    the disk) and balance_dirty_pages_ratelimited, which may throttle the faulting task."""
    wb = svc.pagecache.writeback
    wb.folio_mark_dirty(page)
    wb.balance_dirty_pages_ratelimited(page.mapping)
