"""The page-fault handlers (mm/memory.c): handle_mm_fault and what it dispatches to, plus zapping."""
from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.mm.mm_types import (
    FAULT_FLAG_WRITE, FAULT_FLAG_RETRY_NOWAIT, FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_USER, FAULT_FLAG_UNSHARE, VmFault,
    VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_MAJOR, VM_FAULT_RETRY, VM_FAULT_NOPAGE, VM_FAULT_HWPOISON)
from faultlab.kernel.mm.page_alloc import PG_anon, PG_swapbacked, PG_dirty, PG_exec, PG_locked, PG_uptodate, \
    PG_hwpoison, PG_readahead, PG_lru, PG_reserved, PG_anon_exclusive
from faultlab.kernel.mm.pgtable import (
    _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_RW, _PAGE_PRESENT, _PAGE_SOFT_DIRTY, pfn_pte, pte_pfn, protection_map, PTE_PFN_MASK,
    pte_to_swp_entry, swp_entry_to_pte)
from faultlab.kernel.mm.mmap_lock import pte_lock_classic, pte_unlock_classic, zap_hold, note_pmd_change
from faultlab.kernel.mm.vma import VM_EXEC, VM_SHARED, VM_WRITE, VM_READ, VM_RAND_READ, VM_SEQ_READ, VM_HUGETLB
from faultlab.kernel.mm.llc import charge_page_zero, charge_pages_zero, charge_page_copy, note_user_mapped, \
    charge_first_touches
from faultlab.kernel.mm import hugetlb
from faultlab.kernel.mm.page_writeback import do_page_mkwrite, fault_dirty_shared_page
from faultlab.kernel.mm.ksm_types import PG_ksm
from faultlab.kernel.mm.hugetlb_unmap import zap_huge_pmd_range
from faultlab.kernel.mm.shmem import is_shmem_mapping
from faultlab.kernel.mm.shmem_fault import shmem_fault, vma_maps_writable_on_read
from faultlab.kernel.mm.shmem_huge import filemap_map_pmd
from faultlab.kernel.mm.huge_memory import (PG_large_head, PG_large_tail, alloc_anon_folio, huge_pmd_fault,
                                             move_huge_pmd, thp_maybe, thp_pmds, zap_huge_pmds)
from faultlab.kernel.mm.userfaultfd_k import (POISON_MARKER, VM_UFFD_FLAGS, VM_UFFD_MINOR, VM_UFFD_WP, WP_MARKER,
                                     _PAGE_SWP_UFFD_WP, _PAGE_UFFD_WP, userfaultfd_fault)


def vma_page_prot(vma):
    """vma->vm_page_prot: the leaf bits for a page mapped with the VMA's full rights."""
    return protection_map[vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC)]


def _map_page(mm, vmf, page, prot, soft_dirty=None):
    """set_pte_at for a newly mapped page (no flush needed: the entry was empty or not present).

    Soft-dirty goes with dirty (x86's pte_mkdirty sets both) unless the caller says otherwise.
    """
    if vmf.vma.vm_flags & VM_EXEC:
        page.flags |= PG_exec
    if soft_dirty is None:
        soft_dirty = prot & _PAGE_DIRTY
    if vmf.orig_pte == WP_MARKER:            # set_pte_range: the page keeps the marker's uffd-wp
        prot = (prot | _PAGE_UFFD_WP) & ~_PAGE_RW
    # set_pte at the slot the fault already holds (no walk), through the RAM's 64-bit view
    mm.pgtables.ptes[vmf.slot >> 3] = (page.pfn << PAGE_SHIFT) | prot | (_PAGE_SOFT_DIRTY if soft_dirty else 0)
    mm.svc.charge('pte_set')


def handle_mm_fault(mm, vma, address, flags):
    """Resolve a fault on address inside vma; returns (VM_FAULT_* bits, the VmFault record)."""
    charge_first_touches(mm.svc)
    if vma.vm_flags & VM_HUGETLB:
        return hugetlb.hugetlb_fault(mm, vma, address, flags)
    vmf = VmFault(vma, address, flags)
    mm.svc.charge('fault_handle')
    if vma.anon and thp_maybe(mm, vma):
        ret = huge_pmd_fault(mm, vmf)        # create_huge_pmd / wp_huge_pmd (kernel/mm/huge_memory.py)
        if ret is not None:
            if mm.users > 1:
                note_pmd_change(mm, vmf.address)
            return ret, vmf
    nr_tables = len(mm.pgtables.table_pfns)
    try:
        vmf.slot = mm.pgtables.pte_slot(vmf.address, create=True)
    except MemoryError:
        return VM_FAULT_OOM, vmf
    if mm.users == 1:
        return handle_pte_fault(mm, vmf), vmf
    if len(mm.pgtables.table_pfns) != nr_tables:
        note_pmd_change(mm, vmf.address)        # pte_alloc installed a table: a racing SPF sees it
    ptl = pte_lock_classic(mm, vmf.slot)       # threads may race on this table: model its lock
    ret = handle_pte_fault(mm, vmf)
    pte_unlock_classic(mm, ptl)
    return ret, vmf


def handle_pte_fault(mm, vmf):
    """Dispatch on the current PTE: none, swap entry, or present."""
    pte = vmf.orig_pte = mm.pgtables.ptes[vmf.slot >> 3]
    if vmf.vma.vm_flags & VM_UFFD_FLAGS:         # registered with a userfaultfd: its handler may take it
        ret = userfaultfd_fault(mm, vmf, pte)
        if ret is not None:
            return ret
    if pte == 0 or pte == WP_MARKER:         # do_pte_missing: a uffd-wp marker is none to the fault
        if vmf.vma.anon:
            return do_anonymous_page(mm, vmf)
        if vmf.vma.vm_file is None:          # a special mapping ([vdso], [vvar]) has all its pages
            return VM_FAULT_SIGBUS
        return do_fault(mm, vmf)
    if not pte & _PAGE_PRESENT:
        return do_swap_page(mm, vmf)
    if vmf.flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE) and not pte & _PAGE_RW:
        return do_wp_page(mm, vmf)
    # spurious: the hardware will set A/D itself when the access is retried
    vmf.handler = 'spurious'
    return 0


def do_anonymous_page(mm, vmf):
    """First touch of anonymous memory: the shared zero page for reads, a zeroed page for writes."""
    svc = mm.svc
    if not vmf.flags & FAULT_FLAG_WRITE:
        vmf.handler = 'do_anonymous_page(zero)'
        prot = vma_page_prot(vmf.vma) & ~_PAGE_RW
        _map_page(mm, vmf, svc.zero_page, prot, soft_dirty=False)     # not written: not soft-dirty (Linux)
        return 0
    vmf.handler = 'do_anonymous_page'
    if vmf.orig_pte == 0:
        folio = alloc_anon_folio(mm, vmf, mm.pgtables.ptes, vmf.slot >> 3)
        if folio is not None:
            return map_anon_folio(mm, vmf, *folio)
    page = alloc_anon_page(mm, vmf, zero=True)
    if page is None:
        return _alloc_failed(vmf)
    vmf.vma.anon_vma = True              # anon_vma_prepare
    page_add_new_anon_rmap(mm, page, vmf.address)
    _map_page(mm, vmf, page, anon_write_pte_bits(vmf.vma))
    return 0


def map_anon_folio(mm, vmf, start, pfn, order):
    """do_anonymous_page's end for a large folio (alloc_anon_folio): folio_add_new_anon_rmap and
    set_ptes of all 2^order PTEs at once, one fault mapping them all."""
    svc = mm.svc
    vma = vmf.vma
    vma.anon_vma = True                  # anon_vma_prepare
    n = 1 << order
    bits = anon_write_pte_bits(vma) | _PAGE_SOFT_DIRTY
    ptes = mm.pgtables.ptes
    base = (vmf.slot >> 3) - ((vmf.address - start) >> PAGE_SHIFT)
    pages = svc.frames.pages
    exe = PG_exec if vma.vm_flags & VM_EXEC else 0
    for i in range(n):
        page = pages[pfn + i]
        page_add_new_anon_rmap(mm, page, start + (i << PAGE_SHIFT))
        page.flags |= exe | (PG_large_tail if i else PG_large_head)
        ptes[base + i] = ((pfn + i) << PAGE_SHIFT) | bits
    svc.charge('pte_set', n)
    vmf.handler = 'do_anonymous_page(mthp)'
    vmf.page = pages[pfn + ((vmf.address - start) >> PAGE_SHIFT)]
    return 0


def anon_write_pte_bits(vma):
    """The leaf bits do_anonymous_page maps a new page with on a write fault (vma_page_prot, dirty,
    young; soft-dirty with dirty)."""
    return protection_map[vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC)] | _PAGE_DIRTY | _PAGE_ACCESSED


def anon_write_faults_done(mm, vma, faults):
    """The kernel's share of write faults the CPU's native hook already resolved, each with a zeroed
    page mapped with anon_write_pte_bits: the bookkeeping and costs of handle_mm_fault and
    do_anonymous_page (find_vma, fault_handle, page_alloc, clear_page, pte_set), without the
    allocation and the PTE writes; faults = [(address, page)] in the order they happened."""
    svc = mm.svc
    n = len(faults)
    svc.charge('vma_lookup', n)          # find_vma in the classic path
    charge_first_touches(svc, n)
    svc.charge('fault_handle', n)
    svc.charge('page_alloc', n)
    charge_pages_zero(svc, [page.pfn for _va, page in faults])
    svc.stats['pages_zeroed'] += n
    vma.anon_vma = True
    flags = PG_anon | PG_anon_exclusive | PG_swapbacked | PG_dirty | PG_uptodate | \
        (PG_exec if vma.vm_flags & VM_EXEC else 0)
    for va, page in faults:              # page_add_new_anon_rmap
        page.flags |= flags
        page.mapcount = 1
        page.index = va >> PAGE_SHIFT
        page.rmap_mm = mm
    if svc.lru is not None:
        svc.lru.add_active([page for _va, page in faults])
    mm.rss_add(anon=n)
    svc.charge('pte_set', n)


def _alloc_failed(vmf):
    """No page: a NOWAIT fault gives up at once (the caller retries later); others are OOM."""
    if vmf.flags & FAULT_FLAG_RETRY_NOWAIT and vmf.flags & FAULT_FLAG_ALLOW_RETRY:
        return VM_FAULT_RETRY
    return VM_FAULT_OOM


def alloc_anon_page(mm, vmf, zero):
    """alloc_page for user memory, charged to the cycle model, with light or full reclaim."""
    svc = mm.svc
    light = bool(vmf.flags & FAULT_FLAG_RETRY_NOWAIT)
    rec = svc.reclaim
    if rec is not None:
        free = svc.frames.nr_free
        # a NOWAIT (prefetch) allocation does no reclaim and does not dip below the min watermark
        if light and free < rec.wmark_min:
            return None
        if free < rec.wmark_low:
            rec.balance(light)
    page = svc.frames.alloc_page(zero=zero)
    if page is None and not light and svc.pagecache.reclaim_hook:
        svc.pagecache.reclaim_hook(32)
        page = svc.frames.alloc_page(zero=zero)
    if page is None:
        return None
    _account_alloc(svc, page, zero)
    return page


def _account_alloc(svc, page, zero):
    svc.charge('page_alloc')
    if zero:
        charge_page_zero(svc, page.pfn)
    svc.stats['pages_zeroed' if zero else 'pages_allocated'] += 1


def page_add_new_anon_rmap(mm, page, address):
    """A new anonymous page mapped at address (exclusively: RMAP_EXCLUSIVE): reverse map, accounting,
    the active LRU list."""
    page.flags |= PG_anon | PG_anon_exclusive | PG_swapbacked | PG_dirty | PG_uptodate
    page.mapcount = 1
    page.index = address >> PAGE_SHIFT
    page.rmap_mm = mm
    mm.rss_add(anon=1)
    if mm.svc.lru is not None:
        mm.svc.lru.add(page, active=True)


def do_fault(mm, vmf):
    """A file-backed VMA with no PTE: read, copy-on-write, or shared fault."""
    if not vmf.flags & FAULT_FLAG_WRITE:
        return do_read_fault(mm, vmf)
    if not vmf.vma.vm_flags & VM_SHARED:
        return do_cow_fault(mm, vmf)
    return do_shared_fault(mm, vmf)


def _file_of(vma):
    return vma.vm_file


def __do_fault(mm, vmf):
    """Get the file page for the fault (filemap_fault); sets vmf.page with a reference held."""
    mapping = vmf.vma.vm_file.mapping
    if is_shmem_mapping(mapping):             # vm_ops->fault: shmem_fault, no read-ahead
        ret, page = shmem_fault(mm, vmf, mapping)
    else:
        ret, page = filemap_fault(mm, vmf)
    if page is not None:
        write_shared = vmf.flags & FAULT_FLAG_WRITE and vmf.vma.vm_flags & VM_SHARED
        if mm.svc.pagecache.fault_reserve(page.mapping, page.index, write_shared):
            vmf.handler = 'no space (ENOSPC)'
            return VM_FAULT_SIGBUS             # shmem_fault / ->page_mkwrite found no space (ENOSPC)
        page.refcount += 1
        vmf.page = page
    return ret


def filemap_fault(mm, vmf):
    """Find the page in the page cache, or read it (with read-around); (VM_FAULT bits, page)."""
    svc = mm.svc
    pc = svc.pagecache
    f = _file_of(vmf.vma)
    mapping = f.mapping
    index = vmf.pgoff
    if index >= pc.last_index(mapping):
        return VM_FAULT_SIGBUS, None
    ret = 0
    page = pc.find_get_page(mapping, index)
    nowait = vmf.flags & FAULT_FLAG_RETRY_NOWAIT
    if page is not None:
        svc.stats['pagecache_hits'] += 1
        if page.flags & PG_readahead:
            page.refcount += 1                  # held while read-ahead allocates (and may reclaim)
            do_async_mmap_readahead(mm, vmf, f, page)
            page.refcount -= 1
    else:
        svc.stats['pagecache_misses'] += 1
        do_sync_mmap_readahead(mm, vmf, f)
        page = mapping.pages.get(index)
        if page is None:
            if nowait and vmf.flags & FAULT_FLAG_ALLOW_RETRY:
                return VM_FAULT_RETRY, None       # a light allocation failed: give up, no I/O
            return VM_FAULT_OOM, None
        ret = VM_FAULT_MAJOR
    if page.flags & PG_locked:
        if nowait and vmf.flags & FAULT_FLAG_ALLOW_RETRY:
            return ret | VM_FAULT_RETRY, None
        pc.wait_on_page_locked(page)
        ret |= VM_FAULT_MAJOR
    if page.flags & PG_hwpoison:
        return VM_FAULT_HWPOISON, None
    return ret, page


def do_sync_mmap_readahead(mm, vmf, f):
    """Read-around on an mmap cache miss (mm/filemap.c)."""
    pc = mm.svc.pagecache
    ra = f.ra
    flags = vmf.vma.vm_flags
    nowait = bool(vmf.flags & FAULT_FLAG_RETRY_NOWAIT)
    if flags & VM_RAND_READ or not ra.ra_pages:
        pc.page_cache_ra_unbounded(f.mapping, vmf.pgoff, 1, nowait=nowait)
        return
    if flags & VM_SEQ_READ:
        pc.page_cache_sync_ra(f.mapping, ra, vmf.pgoff, 1)
        return
    ra.start = max(0, vmf.pgoff - ra.ra_pages // 2)
    ra.size = ra.ra_pages
    ra.async_size = ra.ra_pages // 4
    pc.page_cache_ra_unbounded(f.mapping, ra.start, ra.size, ra.async_size, nowait=nowait)


def do_async_mmap_readahead(mm, vmf, f, page):
    """A hit on the read-ahead marker: start the next window."""
    if vmf.vma.vm_flags & VM_RAND_READ:
        return
    mm.svc.pagecache.page_cache_async_ra(f.mapping, f.ra, page)


def do_fault_around(mm, vmf):
    """Map already-cached pages around a read fault (fault_around_bytes window), no I/O."""
    nr = mm.svc.fault_around_bytes >> PAGE_SHIFT
    vma = vmf.vma
    addr = vmf.address
    mask = ~(nr * PAGE_SIZE - 1)
    pmd_start = addr & ~((1 << 21) - 1)
    start = max(addr & mask, vma.vm_start, pmd_start)
    end = min(start + nr * PAGE_SIZE, vma.vm_end, pmd_start + (1 << 21))
    return filemap_map_pages(mm, vmf, start, end)


def read_fault_prot(vma, writable):
    """The protection a read fault maps a file page with: vm_page_prot, read-only unless writable (a
    shared writable VMA that needs no write notification: shmem, vma_maps_writable_on_read)."""
    prot = vma_page_prot(vma)
    return prot if writable else prot & ~_PAGE_RW


def filemap_map_pages(mm, vmf, start, end):
    """Map every uptodate, unlocked cached page in [start, end) whose PTE is empty; count them."""
    svc = mm.svc
    pc = svc.pagecache
    vma = vmf.vma
    f = _file_of(vma)
    mapping = f.mapping
    eof = pc.last_index(mapping)
    writable = vma_maps_writable_on_read(vma)
    if is_shmem_mapping(mapping) and filemap_map_pmd(mm, vmf, mapping, writable):
        svc.stats['fault_around_pages'] += 1
        return 1                                       # a shmem huge folio mapped by a PMD
    prot = read_fault_prot(vma, writable)
    phys = svc.frames.phys
    mapped = 0
    for va in range(start, end, PAGE_SIZE):
        index = vma.linear_page_index(va)
        if index >= eof:
            break
        page = mapping.pages.get(index)
        if page is None or not page.flags & PG_uptodate or page.flags & (PG_locked | PG_hwpoison):
            continue
        if page.flags & PG_readahead:
            continue                    # leave the marker for the async read-ahead
        slot = mm.pgtables.pte_slot(va, create=True)
        if phys.read64(slot):
            continue
        if vma.vm_flags & VM_EXEC:
            page.flags |= PG_exec
        page.refcount += 1
        page.mapcount += 1
        phys.write64(slot, pfn_pte(page.pfn, prot))
        svc.charge('pte_set')
        if vmf.flags & FAULT_FLAG_USER:
            note_user_mapped(svc, slot, page)
        mm.rss_add(file=1)
        mapped += 1
        if va == vmf.address:
            vmf.page = page
    if mapped:
        svc.stats['fault_around_pages'] += mapped
    return mapped


def do_read_fault(mm, vmf):
    """Read fault on a file page: try fault-around, else read the page and map it read-only."""
    svc = mm.svc
    if svc.fault_around_bytes >> PAGE_SHIFT > 1 and not vmf.vma.vm_flags & (VM_UFFD_WP | VM_UFFD_MINOR):
        vmf.around = do_fault_around(mm, vmf)          # not for userfaultfd WP/MINOR (uffd_disable_fault_around)
        if vmf.page is not None:
            vmf.handler = 'do_read_fault(fault-around)'
            vmf.around -= 1
            return VM_FAULT_NOPAGE
    ret = __do_fault(mm, vmf)
    if vmf.page is None:
        return ret
    vmf.handler = 'do_read_fault'
    page = vmf.page
    page.mapcount += 1
    mm.rss_add(file=1)
    _map_page(mm, vmf, page, read_fault_prot(vmf.vma, vma_maps_writable_on_read(vmf.vma)))
    if vmf.flags & FAULT_FLAG_USER:
        note_user_mapped(svc, vmf.slot, page)
    return ret


def do_cow_fault(mm, vmf):
    """Write fault on a private file page: copy it into a new anonymous page."""
    svc = mm.svc
    ret = __do_fault(mm, vmf)
    if vmf.page is None:
        return ret
    new = alloc_anon_page(mm, vmf, zero=False)
    if new is None:
        svc.frames.put_page(vmf.page)
        return _alloc_failed(vmf)
    vmf.handler = 'do_cow_fault'
    svc.frames.phys.copy_frame(new.pfn, vmf.page.pfn)
    charge_page_copy(svc, new.pfn, vmf.page.pfn)
    svc.stats['pages_copied'] += 1
    svc.frames.put_page(vmf.page)          # the reference __do_fault took
    vmf.page = new
    vmf.vma.anon_vma = True              # anon_vma_prepare
    page_add_new_anon_rmap(mm, new, vmf.address)
    _map_page(mm, vmf, new, vma_page_prot(vmf.vma) | _PAGE_DIRTY | _PAGE_ACCESSED)
    return ret


def do_shared_fault(mm, vmf):
    """Write fault on a shared file page: ->page_mkwrite, map it writable, fault_dirty_shared_page."""
    ret = __do_fault(mm, vmf)
    if vmf.page is None:
        return ret
    vmf.handler = 'do_shared_fault'
    page = vmf.page
    do_page_mkwrite(mm.svc, page)
    page.mapcount += 1
    mm.rss_add(file=1)
    _map_page(mm, vmf, page, vma_page_prot(vmf.vma) | _PAGE_DIRTY | _PAGE_ACCESSED)
    fault_dirty_shared_page(mm.svc, page)
    return ret


def do_wp_page(mm, vmf):
    """Write to a present read-only PTE in a writable VMA: reuse, mark dirty, or copy (COW); with
    FAULT_FLAG_UNSHARE (a read-only pin of a possibly shared anonymous page) make it exclusive."""
    svc = mm.svc
    phys = svc.frames.phys
    pte = vmf.orig_pte
    page = svc.frames.pages[pte_pfn(pte)]
    vma = vmf.vma
    unshare = vmf.flags & FAULT_FLAG_UNSHARE
    if unshare and (vma.vm_flags & VM_SHARED or page is svc.zero_page or not page.flags & PG_anon):
        vmf.handler = 'do_wp_page(unshare)'
        return 0                              # only anonymous pages in private mappings are unshared
    if vma.vm_flags & VM_SHARED:
        if page.mapping is not None and svc.pagecache.fault_reserve(page.mapping, page.index, True):
            vmf.handler = 'no space (ENOSPC)'
            return VM_FAULT_SIGBUS             # wp_page_shared: ->page_mkwrite found no space (ENOSPC)
        vmf.handler = 'do_wp_page(shared)'           # wp_page_shared
        do_page_mkwrite(svc, page)
        phys.write64(vmf.slot, pte | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_SOFT_DIRTY)
        svc.charge('pte_set')
        fault_dirty_shared_page(svc, page)
        return 0
    if page is not svc.zero_page and page.flags & PG_anon and not page.flags & PG_ksm and \
            (page.flags & PG_anon_exclusive or wp_can_reuse_anon_page(page)):     # a KSM page is always copied
        page.flags |= PG_anon_exclusive
        if unshare:
            vmf.handler = 'do_wp_page(unshare)'
            return 0
        vmf.handler = 'do_wp_page(reuse)'
        rw = _PAGE_RW if vma.vm_flags & VM_WRITE else 0     # maybe_mkwrite: a FOLL_FORCE write stays read-only
        phys.write64(vmf.slot, pte | rw | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_SOFT_DIRTY)
        svc.charge('pte_set')
        return 0
    return wp_page_copy(mm, vmf, page)


def wp_can_reuse_anon_page(page):
    """wp_can_reuse_anon_folio: a page not marked exclusive is still ours alone when nothing else
    holds a reference (no other mapping, no pipe or pin)."""
    return page.mapcount == 1 and page.refcount == 1


def wp_page_copy(mm, vmf, old):
    """Break COW: copy (or zero, for the zero page) into a new page and switch the PTE to it."""
    svc = mm.svc
    is_zero = old is svc.zero_page
    new = alloc_anon_page(mm, vmf, zero=is_zero)
    if new is None:
        return _alloc_failed(vmf)
    vmf.handler = 'do_wp_page(copy)'
    if not is_zero:
        svc.frames.phys.copy_frame(new.pfn, old.pfn)
        charge_page_copy(svc, new.pfn, old.pfn)
        svc.stats['pages_copied'] += 1
    vmf.vma.anon_vma = True              # anon_vma_prepare
    page_add_new_anon_rmap(mm, new, vmf.address)
    if vmf.flags & FAULT_FLAG_UNSHARE:       # the copy stays read-only, soft-dirty as the old entry was
        entry = (pfn_pte(new.pfn, vma_page_prot(vmf.vma)) & ~_PAGE_RW) | _PAGE_ACCESSED | \
            (vmf.orig_pte & _PAGE_SOFT_DIRTY)
    else:
        entry = pfn_pte(new.pfn, vma_page_prot(vmf.vma)) | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_SOFT_DIRTY
    svc.frames.phys.write64(vmf.slot, entry)
    svc.charge('pte_set')
    svc.flush_tlb(mm)                  # the old translation (other frame) may be cached for reads
    if not is_zero:
        page_remove_rmap(mm, old)
        svc.frames.put_page(old)
    vmf.page = new
    return 0


_PAGE_SWP_SOFT_DIRTY = _PAGE_RW   # soft-dirty of a swapped-out page lives in the swap PTE's bit 1
SWP_HWPOISON = 31          # swap type of a hwpoison entry (a poisoned page was unmapped here)


def memory_failure(mm, vma, address):
    """A memory error hit the page mapped at address: mark it poisoned and replace the PTE by a
    hwpoison entry, so the next access gets SIGBUS (BUS_MCEERR_AR)."""
    svc = mm.svc
    slot = mm.pgtables.pte_slot(address, create=False)
    pte = svc.frames.phys.read64(slot) if slot is not None else 0
    if not pte & _PAGE_PRESENT:
        return
    page = svc.frames.pages[pte_pfn(pte)]
    if page is svc.zero_page or page.flags & PG_reserved:
        return
    page.flags |= PG_hwpoison
    svc.frames.phys.write64(slot, swp_entry_to_pte(SWP_HWPOISON, page.pfn))
    page_remove_rmap(mm, page)
    svc.flush_tlb(mm)
    svc.stats['hwpoisoned_pages'] += 1       # the frame is never reused: its reference is kept


def do_swap_page(mm, vmf):
    """A swap entry in the PTE: find the page in the swap cache or read it (with cluster read-ahead)."""
    svc = mm.svc
    sc = svc.swapcache
    vmf.handler = 'do_swap_page'
    if sc is None:
        return VM_FAULT_SIGBUS
    _type, offset = pte_to_swp_entry(vmf.orig_pte)
    if vmf.orig_pte == POISON_MARKER:           # handle_pte_marker: UFFDIO_POISON's marker
        vmf.handler = 'uffd poison marker'
        return VM_FAULT_SIGBUS
    if _type == SWP_HWPOISON:
        vmf.handler = 'hwpoison'
        return VM_FAULT_HWPOISON
    ret = 0
    page = sc.lookup_swap_cache(offset)
    nowait = vmf.flags & FAULT_FLAG_RETRY_NOWAIT and vmf.flags & FAULT_FLAG_ALLOW_RETRY
    if page is None:
        ret = VM_FAULT_MAJOR

        def alloc():
            return alloc_anon_page(mm, vmf, zero=False)
        page = sc.swap_cluster_readahead(offset, alloc)
        if page is None:
            return _alloc_failed(vmf)
    if page.flags & PG_locked:
        if nowait:
            return ret | VM_FAULT_RETRY
        svc.sched.wait_until(page.io_done_at, 'io')
        ret |= VM_FAULT_MAJOR
    # the PTE may have changed while we waited (another fault swapped it in)
    if svc.frames.phys.read64(vmf.slot) != vmf.orig_pte:
        return ret
    # map it, exclusively: the slot is no longer needed (like try_to_free_swap)
    page.refcount += 1
    page.mapcount = 1
    page.index = vmf.address >> PAGE_SHIFT
    page.rmap_mm = mm
    page.flags |= PG_anon | PG_anon_exclusive | PG_swapbacked | PG_dirty
    mm.rss_add(anon=1)
    mm.swap_ents = getattr(mm, 'swap_ents', 0) - 1
    sc.area.swap_free(offset)                 # the PTE's use of the slot
    sc.delete_from_swap_cache(page)           # the cache's use, and its page reference
    if svc.lru is not None and not page.flags & PG_lru:
        svc.lru.add(page, active=True)
    prot = vma_page_prot(vmf.vma) | _PAGE_ACCESSED | _PAGE_DIRTY
    if vmf.orig_pte & _PAGE_SWP_UFFD_WP:
        prot = (prot | _PAGE_UFFD_WP) & ~_PAGE_RW   # still write-protected for userfaultfd
    _map_page(mm, vmf, page, prot, soft_dirty=vmf.orig_pte & _PAGE_SWP_SOFT_DIRTY)
    vmf.page = page
    return ret


def page_remove_rmap(mm, page):
    """One mapping of the page in mm is gone."""
    page.mapcount -= 1
    if page.flags & PG_anon:
        mm.rss_add(anon=-1)
        if page.mapcount and page.rmap_mm is mm:
            rmap_move_to_other_mm(mm, page)
    else:
        mm.rss_add(file=-1)


def rmap_move_to_other_mm(mm, page):
    """A page fork shared is no longer mapped in mm: its reverse map points to an mm that maps it."""
    va = page.index << PAGE_SHIFT
    rec = mm.svc.reclaim
    for other in rec.mms() if rec is not None else ():
        if other is not mm:
            slot = other.pgtables.pte_slot(va, create=False)
            if slot is not None and pte_pfn(other.svc.frames.phys.read64(slot)) == page.pfn:
                page.rmap_mm = other
                return


def zap_pte_range(mm, start, end):
    """Unmap [start, end): drop page references, carry PTE dirty bits to file pages; flush the TLB.

    Returns the number of entries cleared.
    """
    svc = mm.svc
    thp = zap_huge_pmds(mm, start, end)     # zap_pmd_range: whole huge PMDs go, partial ones are split
    frames = svc.frames
    pages = frames.pages
    ptes = mm.pgtables.ptes
    zero = svc.zero_page
    gather = []                  # the mmu_gather: pages freed after the PTEs are cleared
    n = anon = file = 0          # like Linux's rss[] vector: RSS is adjusted once, after the loop
    shared = mm.users > 1
    t0 = svc.sched.now() if shared else 0
    tables = {}
    for va, slot, pte in list(mm.pgtables.present_ptes(start, end)):
        ptes[slot >> 3] = 0                     # pte_clear at the slot the walk found
        n += 1
        if shared:
            tables[slot & ~0xFFF] = tables.get(slot & ~0xFFF, 0) + 1
        if not pte & _PAGE_PRESENT:
            _free_swap_pte(mm, pte)
            continue
        page = pages[(pte & PTE_PFN_MASK) >> PAGE_SHIFT]
        if page is zero or page.flags & PG_reserved:
            continue
        # page_remove_rmap, with the RSS change batched
        page.mapcount -= 1
        if page.flags & PG_anon:
            anon += 1
            if page.mapcount and page.rmap_mm is mm:
                rmap_move_to_other_mm(mm, page)
        else:
            file += 1
            if pte & _PAGE_DIRTY:
                page.flags |= PG_dirty
        gather.append(page)
    if anon or file:
        mm.rss_add(anon=-anon, file=-file)      # add_mm_rss_vec
    if n:
        svc.charge('pte_set', n)
    # the PTE lock of each table is held while its entries are cleared, one table after the other;
    # the pages are freed after it is dropped (the mmu_gather batch)
    for table in sorted(tables):
        t1 = t0 + svc.cost('pte_set') * tables[table]
        zap_hold(mm, table, t0, t1)
        t0 = t1
    if n:
        svc.flush_tlb(mm)                   # tlb_finish_mmu: after the PTE locks are released
    frames.release_pages(gather)
    return n + thp + zap_huge_pmd_range(mm, start, end)


def _free_swap_pte(mm, pte):
    """free_swap_and_cache: a zapped swap entry drops its use of the slot."""
    sc = mm.svc.swapcache
    if sc is None:
        return
    _type, offset = pte_to_swp_entry(pte)
    if _type == SWP_HWPOISON:
        return
    sc.area.swap_free(offset)
    mm.swap_ents = getattr(mm, 'swap_ents', 0) - 1
    page = sc.pages.get(offset)
    if page is not None and page.refcount == 1 and not page.flags & PG_locked and not page.mapcount:
        sc.delete_from_swap_cache(page)


def copy_page_range_move(mm, old_start, new_start, length):
    """move_page_tables for mremap: move every entry from the old range to the new one."""
    phys = mm.svc.frames.phys
    moved = 0
    if not (new_start - old_start) & ((1 << 21) - 1):     # move_huge_pmd: both sides PMD-aligned
        for va, _slot, _e in thp_pmds(mm, old_start, old_start + length):
            if move_huge_pmd(mm, va, new_start + (va - old_start)):
                moved += 1
    for va, slot, pte in list(mm.pgtables.present_ptes(old_start, old_start + length)):
        new_slot = mm.pgtables.pte_slot(new_start + (va - old_start), create=True)
        phys.write64(new_slot, pte)
        phys.write64(slot, 0)
        page = mm.svc.frames.pages[pte_pfn(pte)] if pte & _PAGE_PRESENT else None
        if page is not None and page.flags & PG_anon:
            page.index = (new_start + (va - old_start)) >> PAGE_SHIFT
        moved += 1
    if moved:
        mm.svc.charge('pte_set', 2 * moved)
        mm.svc.flush_tlb(mm)
    return moved


def fold_pte_dirty(mm, vma):
    """Carry hardware dirty bits of a shared file VMA into its pages (before write-back)."""
    frames = mm.svc.frames
    for va, slot, pte in mm.pgtables.present_ptes(vma.vm_start, vma.vm_end, split=False):
        if pte & _PAGE_PRESENT and pte & _PAGE_DIRTY:
            page = frames.pages[pte_pfn(pte)]
            if page.mapping is not None:
                page.flags |= PG_dirty
    for _va, _slot, e in thp_pmds(mm, vma.vm_start, vma.vm_end):     # a shmem folio's PMD: the whole folio
        if e & _PAGE_DIRTY:
            pfn = ((e & PTE_PFN_MASK) >> PAGE_SHIFT) & ~511
            for page in frames.pages[pfn:pfn + 512]:
                if page.mapping is not None:
                    page.flags |= PG_dirty


__all__ = ['handle_mm_fault', 'zap_pte_range', 'do_fault_around', 'filemap_map_pages',
           'copy_page_range_move', 'fold_pte_dirty', 'vma_page_prot']
