"""Transparent huge pages for anonymous memory (mm/huge_memory.c, Linux 6.12).

A fault in an eligible range with an empty PMD maps a 2 MiB compound page (512 naturally aligned
frames) with one PMD leaf (do_huge_pmd_anonymous_page), or the huge zero page on a read fault. Each
huge PMD has a page table deposited with it (pgtable_trans_huge_deposit) so that splitting it
(__split_huge_pmd) never needs memory: PageTables.thp maps each huge PMD's index to that table.

The compound page ("folio") is tracked here: ThpState.folios maps the head's pfn to its entire
mapcount (how many PMDs map it). Every frame of a live folio holds one reference for the folio; a
PTE mapping of a frame (after a PMD split) adds one reference and one to its mapcount, as for any
page. When no PMD maps the folio any more it is split into 512 order-0 pages (split_huge_page),
dropping the folio's references: frames nothing maps are freed, the others carry on as 4 KiB pages
on the LRU. Compound pages are not on the LRU themselves; reclaim splits a huge PMD before it
swaps the pages out (kernel/mm/vmscan.py).

Multi-size THP (orders 2 .. 8, hugepages-<size>kB/enabled): alloc_anon_folio picks the largest allowed
order for a write fault in a PTE table and kernel/mm/memory.py maps all of its pages at once. Those
folios are mapped by PTEs only, and each page carries its own mapcount and exclusive flag, so COW,
partial unmap, mprotect and swap treat them page by page, as Linux does a PTE-mapped large folio.
"""
from faultlab.kernel.mm.llc import charge_page_zero
from faultlab.kernel.mm.mm_types import FAULT_FLAG_WRITE, FAULT_FLAG_UNSHARE, VM_FAULT_FALLBACK, VM_FAULT_OOM
from faultlab.kernel.mm.page_alloc import (PG_anon, PG_anon_exclusive, PG_dirty, PG_exec, PG_head, PG_lru,
                                           PG_reserved, PG_swapbacked, PG_tail, PG_uptodate)
from faultlab.kernel.mm.pgtable import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PSE, _PAGE_RW,
                                        _PAGE_SOFT_DIRTY, _PAGE_TABLE, PMD_PFN_MASK, PMD_SHIFT, PMD_SIZE,
                                        protection_map)
from faultlab.kernel.mm.userfaultfd_k import VM_UFFD_FLAGS
from faultlab.kernel.mm.vma import VM_EXEC, VM_HUGETLB, VM_IO, VM_PFNMAP, VM_READ, VM_SHARED, VM_WRITE

# vm_flags of madvise(MADV_HUGEPAGE / MADV_NOHUGEPAGE) (include/linux/mm.h)
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000

HPAGE_PMD_ORDER = 9
# the frames of a large folio mapped by PTEs (alloc_anon_folio): the first one is the folio's head, the
# others its tails (folio_test_large_rmappable for /proc/kpageflags); a frame loses them when it is freed
PG_large_head = 1 << 20
PG_large_tail = 1 << 21
HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER
HPAGE_PMD_MASK = ~(PMD_SIZE - 1)
_FOLIO_FLAGS = PG_anon | PG_anon_exclusive | PG_swapbacked | PG_dirty | PG_uptodate


class ThpState:
    """The THP knobs (/sys/kernel/mm/transparent_hugepage, kernel/mm/thp_sysfs.py keeps the values),
    the live compound pages and the huge zero folio."""

    def __init__(self, values):
        self.values = values         # knob name -> value, shared with the sysfs files
        self.folios = {}             # head pfn -> entire mapcount (PMD mappings)
        self.huge_zero_pfn = None    # the huge zero folio's first frame, once allocated
        self.mthp_stats = {}         # (order, name) -> count: hugepages-<size>kB/stats (count_mthp_stat)
        self.file_pmd = {}           # head pfn -> entire mapcount of shmem folios (kernel/mm/shmem_huge.py)


def count_mthp_stat(st, order, name):
    """count_mthp_stat: one more event of a size's stats/ file."""
    st.mthp_stats[order, name] = st.mthp_stats.get((order, name), 0) + 1


def thp_state(svc):
    """The ThpState of the machine, or None (THP not set up: as "never")."""
    return getattr(svc, 'thp', None)


def vma_thp_disabled(mm, vma):
    """vma_thp_disabled: MADV_NOHUGEPAGE on the VMA or PR_SET_THP_DISABLE on the process."""
    return bool(vma.vm_flags & VM_NOHUGEPAGE) or getattr(mm, 'mmf_disable_thp', False)


def thp_vma_suitable(vma, addr):
    """thp_vma_suitable_order for the PMD order: the aligned 2 MiB around addr lies inside the VMA."""
    haddr = addr & HPAGE_PMD_MASK
    return vma.vm_start <= haddr and haddr + PMD_SIZE <= vma.vm_end


# the orders anonymous memory may use (include/linux/huge_mm.h THP_ORDERS_ALL_ANON: 16 KiB .. 2 MiB) and
# the file orders with only a shmem_enabled knob (THP_ORDERS_ALL_FILE_DEFAULT adds order 1)
THP_ORDERS_ALL_ANON = tuple(range(2, HPAGE_PMD_ORDER + 1))
THP_ORDERS_ALL_FILE = tuple(range(1, HPAGE_PMD_ORDER + 1))


def thp_size_dir(order):
    """The sysfs directory name of an order (thpsize_create: 'hugepages-%lukB')."""
    return 'hugepages-%dkB' % (4 << order)


# order -> its 'enabled' knob, with Linux's default: 'inherit' for the PMD order (huge_anon_orders_inherit
# = BIT(PMD_ORDER)), 'never' for the others
_ENABLED_KNOBS = {order: (thp_size_dir(order) + '/enabled', 'inherit' if order == HPAGE_PMD_ORDER else 'never')
                  for order in THP_ORDERS_ALL_ANON}


def thp_order_enabled(st, order):
    """hugepages-<size>kB/enabled of an order."""
    return st.values.get(*_ENABLED_KNOBS[order])


def thp_vma_allowable_orders(mm, vma):
    """__thp_vma_allowable_orders for anonymous memory (TVA_ENFORCE_SYSFS), as a bit mask of orders: each
    order's own 'enabled' (always; madvise with VM_HUGEPAGE; inherit follows the top-level 'enabled'),
    nothing disabled THP (vma_thp_disabled), the VMA is private anonymous memory of the plain kind."""
    st = thp_state(mm.svc)
    if st is None or vma_thp_disabled(mm, vma):
        return 0
    if not vma.anon or vma.vm_flags & (VM_SHARED | VM_HUGETLB | VM_PFNMAP | VM_IO) or vma.name == '[vdso]':
        return 0
    madv = bool(vma.vm_flags & VM_HUGEPAGE)
    top = st.values['enabled']
    inherit = top == 'always' or (top == 'madvise' and madv)
    orders = 0
    values = st.values
    for order, (key, default) in _ENABLED_KNOBS.items():
        v = values.get(key, default)
        if v == 'always' or (v == 'madvise' and madv) or (v == 'inherit' and inherit):
            orders |= 1 << order
    return orders


def thp_vma_allowable(mm, vma):
    """__thp_vma_allowable_orders for the PMD order (anonymous memory): the sysfs policy allows it
    and the VMA covers at least one aligned 2 MiB range (for smaps: THPeligible)."""
    if not thp_vma_allowable_orders(mm, vma) & (1 << HPAGE_PMD_ORDER):
        return False
    return thp_vma_suitable(vma, vma.vm_end - PMD_SIZE)


def thp_vma_eligible(mm, vma):
    """smaps' THPeligible (__thp_vma_allowable_orders with TVA_SMAPS): some allowed order, of any size,
    has a naturally aligned range ending at the VMA's end inside it (thp_vma_suitable_order)."""
    orders = thp_vma_allowable_orders(mm, vma)
    for order in THP_ORDERS_ALL_ANON:
        size = 4096 << order
        start = (vma.vm_end - size) & ~(size - 1)
        if orders & (1 << order) and vma.vm_start <= start:
            return True
    return False


def thp_maybe(mm, vma):
    """Cheap test before the PMD level of a fault: the mm has huge PMDs, or the VMA might get one."""
    if mm.pgtables.thp:
        return True
    st = thp_state(mm.svc)
    if st is None:
        return False
    v = thp_order_enabled(st, HPAGE_PMD_ORDER)
    if v == 'always' or (v == 'inherit' and st.values['enabled'] == 'always'):
        return True
    return bool(vma.vm_flags & VM_HUGEPAGE) and v != 'never'


def thp_fault_allowed(mm, vma, address):
    """The fault path's check: allowable, the 2 MiB around address inside the VMA, and no userfaultfd
    registration (its handler resolves missing pages 4 KiB at a time here)."""
    return (not vma.vm_flags & VM_UFFD_FLAGS and thp_vma_allowable(mm, vma)
            and thp_vma_suitable(vma, address))


def is_huge_zero_pmd(svc, e):
    """is_huge_zero_pmd: the entry maps the huge zero folio."""
    st = thp_state(svc)
    return st is not None and st.huge_zero_pfn is not None and (e & PMD_PFN_MASK) >> 12 == st.huge_zero_pfn


def thp_pmd_of(mm, address):
    """(slot, entry) of the THP PMD leaf mapping address, or (None, 0)."""
    pgt = mm.pgtables
    if (address >> PMD_SHIFT) not in pgt.thp:
        return None, 0
    slot = pgt.pmd_slot(address, create=False)
    return slot, mm.svc.frames.phys.read64(slot)


# ---- allocation ---------------------------------------------------------------------------------
def get_huge_zero_folio(svc):
    """get_huge_zero_folio: the huge zero folio, allocated (zeroed) at its first use; None without memory."""
    st = thp_state(svc)
    if st.huge_zero_pfn is None:
        pfn = svc.frames.alloc_contig_pages(HPAGE_PMD_ORDER)
        if pfn is None:
            return None
        svc.frames.phys.mv[pfn << 12:(pfn << 12) + PMD_SIZE] = bytes(PMD_SIZE)
        for p in svc.frames.pages[pfn:pfn + HPAGE_PMD_NR]:
            p.flags = PG_reserved | PG_uptodate | PG_tail    # never freed, never in the reverse map
        svc.frames.pages[pfn].flags ^= PG_tail | PG_head
        st.huge_zero_pfn = pfn
        svc.stats['thp_zero_page_alloc'] += 1
    return st.huge_zero_pfn


def vma_alloc_anon_folio_pmd(mm, vma, haddr, stat=True):
    """vma_alloc_folio(order 9) + clear_huge_page: a zeroed compound page for haddr, or None. The
    allocation does not dip below the low watermark (Linux's THP gfp mask under defrag=madvise does
    no direct reclaim for an allocation that would need it: the fault falls back to 4 KiB)."""
    svc = mm.svc
    rec = svc.reclaim
    if rec is not None and svc.frames.nr_free - HPAGE_PMD_NR < rec.wmark_low:
        return None
    pfn = svc.frames.alloc_contig_pages(HPAGE_PMD_ORDER)
    if pfn is None:
        return None
    svc.charge('page_alloc')
    svc.frames.phys.mv[pfn << 12:(pfn << 12) + PMD_SIZE] = bytes(PMD_SIZE)
    if stat:                                          # (a collapse copies into it instead)
        charge_page_zero(svc, pfn, HPAGE_PMD_NR)      # clear_huge_page: 512 page clears
        svc.stats['pages_zeroed'] += HPAGE_PMD_NR
    flags = _FOLIO_FLAGS | (PG_exec if vma.vm_flags & VM_EXEC else 0)
    vpn = haddr >> 12
    pages = svc.frames.pages
    for i in range(HPAGE_PMD_NR):
        p = pages[pfn + i]
        p.flags = flags | (PG_head if i == 0 else PG_tail)
        p.index = vpn + i
        p.rmap_mm = mm
    thp_state(svc).folios[pfn] = 1
    if svc.lru is not None:
        svc.lru.add(pages[pfn], active=True)       # folio_add_lru_vma: the head stands for the folio
    return pfn


def alloc_anon_folio(mm, vmf, ptes, first):
    """alloc_anon_folio (mm/memory.c) for the orders below the PMD's: the largest allowed order whose
    naturally aligned range around the fault lies inside the VMA (thp_vma_suitable_order) and has only
    none PTEs (pte_range_none; ptes[first + i] are the table's entries, first that of the fault); its
    frames are allocated together and cleared. Returns (start address, first pfn, order), or None for
    order 0 (no order allowed or fits, a userfaultfd-armed VMA, or no memory: anon_fault_fallback).

    The 2^order pages are mapped by PTEs each as its own page (mapcount, exclusive flag, reverse map),
    which is how a PTE-mapped large folio behaves for COW, partial unmap, mprotect and swap."""
    vma = vmf.vma
    if vma.vm_flags & VM_UFFD_FLAGS:
        return None                               # userfaultfd_armed: order 0
    orders = thp_vma_allowable_orders(mm, vma) & ((1 << HPAGE_PMD_ORDER) - 1)
    if not orders:
        return None
    svc = mm.svc
    st = thp_state(svc)
    rec = svc.reclaim
    addr = vmf.address
    for order in range(HPAGE_PMD_ORDER - 1, 1, -1):
        if not orders & (1 << order):
            continue
        n = 1 << order
        start = addr & ~((n << 12) - 1)
        if start < vma.vm_start or start + (n << 12) > vma.vm_end:
            continue
        base = first - ((addr - start) >> 12)
        if any(ptes[base:base + n]):
            continue
        if rec is not None and svc.frames.nr_free - n < rec.wmark_low:
            pfn = None                            # no direct reclaim for a large folio: fall back
        else:
            pfn = svc.frames.alloc_contig_pages(order)
        if pfn is None:
            count_mthp_stat(st, order, 'anon_fault_fallback')
            continue
        svc.charge('page_alloc')
        svc.frames.phys.mv[pfn << 12:(pfn + n) << 12] = bytes(n << 12)
        charge_page_zero(svc, pfn, n)             # folio_zero_user
        svc.stats['pages_zeroed'] += n
        count_mthp_stat(st, order, 'anon_fault_alloc')
        return start, pfn, order
    return None


def mk_huge_pmd(vma, pfn, write):
    """mk_huge_pmd with the VMA's rights; a write fault's entry is dirty (and soft-dirty) and young."""
    e = (pfn << 12) | protection_map[vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC)] | _PAGE_PSE | _PAGE_ACCESSED
    if write:
        e |= _PAGE_DIRTY | _PAGE_SOFT_DIRTY
    else:
        e &= ~_PAGE_RW
    return e


def _deposit(mm):
    """pte_alloc_one for pgtable_trans_huge_deposit: a zeroed table frame kept for a later split."""
    pfn = mm.svc.frames.alloc_table()
    if pfn is not None:
        mm.pgtables.table_pfns[pfn] = None            # counted in VmPTE, as mm_inc_nr_ptes does
    return pfn


def _withdraw_free(mm, key):
    """pgtable_trans_huge_withdraw + pte_free: the deposited table of a zapped huge PMD."""
    pfn = mm.pgtables.thp.pop(key)
    del mm.pgtables.table_pfns[pfn]
    mm.svc.frames.put_page(mm.svc.frames.pages[pfn])


def set_huge_pmd(mm, slot, key, entry, deposit):
    """set_pmd_at of a new huge PMD over deposit (a page table the caller emptied and unlinked)."""
    _set_pmd(mm, slot, key, entry, deposit)


def _set_pmd(mm, slot, key, entry, deposit):
    """set_pmd_at of a huge PMD with its deposited table."""
    pgt = mm.pgtables
    mm.svc.frames.phys.write64(slot, entry)
    pgt.thp[key] = deposit
    if pgt.split_hook is None:           # 4 KiB walkers of this mm split huge PMDs through it
        pgt.split_hook = lambda va: __split_huge_pmd(mm, va & HPAGE_PMD_MASK)
    mm.svc.charge('pte_set')


def do_huge_pmd_anonymous_page(mm, vmf, slot):
    """The first fault in an empty, eligible PMD range: the huge zero folio on a read (use_zero_page),
    else a new cleared compound page mapped writable; VM_FAULT_FALLBACK when none can be had
    (thp_fault_fallback), VM_FAULT_OOM without memory for the deposited table."""
    svc = mm.svc
    vma = vmf.vma
    haddr = vmf.address & HPAGE_PMD_MASK
    key = haddr >> PMD_SHIFT
    st = thp_state(svc)
    if getattr(svc, 'khugepaged', None) is not None:
        svc.khugepaged.enter_vma(mm, vma)          # khugepaged_enter_vma (kernel/mm/khugepaged_scan.py)
    if not vmf.flags & FAULT_FLAG_WRITE and st.values['use_zero_page']:
        zpfn = get_huge_zero_folio(svc)
        if zpfn is not None:
            deposit = _deposit(mm)
            if deposit is None:
                return VM_FAULT_OOM
            vmf.handler = 'do_huge_pmd_anonymous_page(zero)'
            _set_pmd(mm, slot, key, mk_huge_pmd(vma, zpfn, False), deposit)     # set_huge_zero_folio
            return 0
    pfn = vma_alloc_anon_folio_pmd(mm, vma, haddr)
    if pfn is None:
        svc.stats['thp_fault_fallback'] += 1
        return VM_FAULT_FALLBACK
    deposit = _deposit(mm)
    if deposit is None:
        free_folio(svc, pfn)
        return VM_FAULT_OOM
    vmf.handler = 'do_huge_pmd_anonymous_page'
    vma.anon_vma = True
    _set_pmd(mm, slot, key, mk_huge_pmd(vma, pfn, True), deposit)
    mm.rss_add(anon=HPAGE_PMD_NR)
    svc.stats['thp_fault_alloc'] += 1
    vmf.page = svc.frames.pages[pfn]
    return 0


def free_folio(svc, pfn):
    """A folio nothing maps any more: every frame's folio reference goes (free_transhuge_page)."""
    svc.frames.release_pages(_split_folio(svc, pfn))


def _split_folio(svc, pfn):
    """__split_huge_page: the compound page becomes 512 order-0 pages; returns them, each still holding
    the folio's reference (the caller drops it). Mapped ones join the LRU."""
    del thp_state(svc).folios[pfn]
    pages = svc.frames.pages[pfn:pfn + HPAGE_PMD_NR]
    lru = svc.lru
    for p in pages:
        p.flags &= ~(PG_head | PG_tail)
        if p.mapcount > 0 and lru is not None and not p.flags & PG_lru:
            lru.add(p, active=True)
    svc.stats['thp_split_page'] += 1
    return pages


def folio_put_pmd(svc, pfn):
    """One PMD mapping of the folio is gone: drop it from the entire mapcount; the last one splits the
    folio and frees what nothing else maps."""
    st = thp_state(svc)
    if pfn in st.file_pmd:               # a shmem folio: the PMD's mapping of each page goes, the cache keeps it
        st.file_pmd[pfn] -= 1
        if not st.file_pmd[pfn]:
            del st.file_pmd[pfn]
        for p in svc.frames.pages[pfn:pfn + HPAGE_PMD_NR]:
            p.mapcount -= 1
            svc.frames.put_page(p)
        return
    st.folios[pfn] -= 1
    if not st.folios[pfn]:
        free_folio(svc, pfn)


def folio_maybe_pinned(svc, pfn):
    """folio_maybe_dma_pinned / folio_ref_count beyond the mappings: a frame with more references
    than the folio's and its PTE mappings."""
    return any(p.refcount > 1 + p.mapcount for p in svc.frames.pages[pfn:pfn + HPAGE_PMD_NR])


def folio_exclusive(svc, pfn):
    """Only this PMD maps the folio and nothing else holds it (wp_can_reuse_anon_folio for a PMD)."""
    pages = svc.frames.pages
    if pages[pfn].flags & PG_anon_exclusive:
        return True
    return thp_state(svc).folios.get(pfn) == 1 and not folio_maybe_pinned(svc, pfn) and \
        not any(p.mapcount for p in pages[pfn:pfn + HPAGE_PMD_NR])


def _set_exclusive(svc, pfn, on):
    for p in svc.frames.pages[pfn:pfn + HPAGE_PMD_NR]:
        if on:
            p.flags |= PG_anon_exclusive
        else:
            p.flags &= ~PG_anon_exclusive


# ---- the fault path -----------------------------------------------------------------------------
def huge_pmd_fault(mm, vmf):
    """handle_mm_fault's PMD level for anonymous memory: create_huge_pmd on an empty PMD of an eligible
    range, wp_huge_pmd on a write to a read-only huge PMD, huge_pmd_set_accessed otherwise. Returns the
    VM_FAULT bits, or None to go on at the PTE level (after a fallback, which splits)."""
    pgt = mm.pgtables
    address = vmf.address
    key = address >> PMD_SHIFT
    if key in pgt._pt_cache:
        return None
    vma = vmf.vma
    if key not in pgt.thp:
        if not thp_fault_allowed(mm, vma, address):
            return None
        try:
            slot = pgt.pmd_slot(address, create=True)
        except MemoryError:
            return VM_FAULT_OOM
        if mm.svc.frames.phys.read64(slot):
            return None                                  # a page table is there: the PTE level
        ret = do_huge_pmd_anonymous_page(mm, vmf, slot)
        return None if ret == VM_FAULT_FALLBACK else ret
    slot = pgt.pmd_slot(address, create=False)
    e = mm.svc.frames.phys.read64(slot)
    if vmf.flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE) and not e & _PAGE_RW:
        ret = do_huge_pmd_wp_page(mm, vmf, slot, e)
        if ret != VM_FAULT_FALLBACK:
            return ret
        __split_huge_pmd(mm, address & HPAGE_PMD_MASK)  # wp_huge_pmd: split, then the PTE level
        return None
    vmf.handler = 'huge_pmd_set_accessed'
    new = e | _PAGE_ACCESSED | (_PAGE_DIRTY if vmf.flags & FAULT_FLAG_WRITE else 0)
    if new != e:
        mm.svc.frames.phys.write64(slot, new)
    return 0


def do_huge_pmd_wp_page(mm, vmf, slot, e):
    """A write (or unshare) fault on a read-only huge PMD: reuse an exclusive folio in place; the huge
    zero folio and a shared folio fall back (the caller splits the PMD and copies 4 KiB: Linux 6.12)."""
    svc = mm.svc
    if is_huge_zero_pmd(svc, e):
        return VM_FAULT_FALLBACK
    pfn = (e & PMD_PFN_MASK) >> 12
    if not folio_exclusive(svc, pfn):
        return VM_FAULT_FALLBACK
    _set_exclusive(svc, pfn, True)
    if vmf.flags & FAULT_FLAG_UNSHARE:
        vmf.handler = 'do_huge_pmd_wp_page(unshare)'
        return 0
    vmf.handler = 'do_huge_pmd_wp_page(reuse)'
    rw = _PAGE_RW if vmf.vma.vm_flags & VM_WRITE else 0           # maybe_pmd_mkwrite
    svc.frames.phys.write64(slot, e | rw | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_SOFT_DIRTY)
    svc.charge('pte_set')
    return 0


# ---- splitting ----------------------------------------------------------------------------------
_PTE_KEEP = ~(PMD_PFN_MASK | _PAGE_PSE) & ((1 << 64) - 1)


def __split_huge_pmd(mm, haddr):
    """__split_huge_pmd_locked: the huge PMD at haddr becomes the deposited page table with 512 PTEs
    to the same frames, keeping the entry's bits (write, dirty, young, soft-dirty, uffd-wp, NX); the
    huge zero folio becomes 512 mappings of the 4 KiB zero page. Every frame gets its own mapping."""
    svc = mm.svc
    pgt = mm.pgtables
    key = haddr >> PMD_SHIFT
    table_pfn = pgt.thp.pop(key)
    slot = pgt.pmd_slot(haddr, create=False)
    phys = svc.frames.phys
    e = phys.read64(slot)
    bits = e & _PTE_KEEP
    base = table_pfn << 12
    ptes = pgt.ptes
    q = base >> 3
    if is_huge_zero_pmd(svc, e):
        zpte = (svc.zero_page.pfn << 12) | (bits & ~_PAGE_RW)
        for i in range(HPAGE_PMD_NR):
            ptes[q + i] = zpte
    else:
        pfn = (e & PMD_PFN_MASK) >> 12
        for i in range(HPAGE_PMD_NR):
            ptes[q + i] = ((pfn + i) << 12) | bits
        pages = svc.frames.pages
        head_flags = pages[pfn].flags & (_FOLIO_FLAGS | PG_exec)
        for p in pages[pfn:pfn + HPAGE_PMD_NR]:
            p.flags |= head_flags
            if not p.mapcount:
                p.rmap_mm = mm                   # the reverse map of its first PTE mapping
            p.mapcount += 1
            p.refcount += 1
        folio_put_pmd(svc, pfn)
    phys.write64(slot, base | _PAGE_TABLE)
    pgt._pt_cache[key] = base
    svc.stats['thp_split_pmd'] += 1
    svc.charge('pte_set', HPAGE_PMD_NR + 1)
    svc.flush_tlb(mm)


def split_huge_page(svc, head, mms):
    """split_huge_page for reclaim: split every PMD that maps the live compound page head (the folio is
    then 512 order-0 pages, which reclaim can swap one by one). mms(): every address space."""
    key = head.index >> (PMD_SHIFT - 12)
    for mm in [head.rmap_mm] + [m for m in mms() if m is not head.rmap_mm]:
        if mm is None or key not in mm.pgtables.thp:
            continue
        slot = mm.pgtables.pmd_slot(key << PMD_SHIFT, create=False)
        if (svc.frames.phys.read64(slot) & PMD_PFN_MASK) >> 12 == head.pfn:
            __split_huge_pmd(mm, key << PMD_SHIFT)
        if not folio_entire_mapcount(svc, head.pfn):
            return True
    return not folio_entire_mapcount(svc, head.pfn)


def split_huge_pmd_address(mm, address):
    """split_huge_pmd_address: split the huge PMD mapping address, if there is one."""
    if (address >> PMD_SHIFT) in mm.pgtables.thp:
        __split_huge_pmd(mm, address & HPAGE_PMD_MASK)


def split_huge_pmd_edges(mm, start, end):
    """The huge PMDs only partly inside [start, end) are split (zap_pmd_range, change_pmd_range,
    vma_adjust_trans_huge); those wholly inside stay."""
    if mm.pgtables.thp:
        for a in (start, end):
            if a & (PMD_SIZE - 1):
                split_huge_pmd_address(mm, a)


def vma_adjust_trans_huge(mm, addr):
    """A VMA boundary is about to fall at addr: a huge PMD across it is split."""
    if addr & (PMD_SIZE - 1):
        split_huge_pmd_address(mm, addr)


# ---- whole huge PMDs ----------------------------------------------------------------------------
def thp_pmds(mm, start, end):
    """[(haddr, slot, entry)] of the THP PMD leaves wholly inside [start, end)."""
    thp = mm.pgtables.thp
    if not thp:
        return []
    lo, hi = (start + PMD_SIZE - 1) >> PMD_SHIFT, end >> PMD_SHIFT
    keys = sorted(k for k in thp if lo <= k < hi)
    pgt = mm.pgtables
    rd = mm.svc.frames.phys.read64
    out = []
    for k in keys:
        slot = pgt.pmd_slot(k << PMD_SHIFT, create=False)
        out.append((k << PMD_SHIFT, slot, rd(slot)))
    return out


def zap_huge_pmd(mm, haddr, slot, e):
    """zap_huge_pmd: clear the PMD, free its deposited table, drop the folio's mapping (the last one
    frees it); the huge zero folio stays."""
    svc = mm.svc
    svc.frames.phys.write64(slot, 0)
    _withdraw_free(mm, haddr >> PMD_SHIFT)
    if not is_huge_zero_pmd(svc, e):
        pfn = (e & PMD_PFN_MASK) >> 12
        if pfn in thp_state(svc).file_pmd:
            mm.rss_add(file=-HPAGE_PMD_NR)
        else:
            mm.rss_add(anon=-HPAGE_PMD_NR)
        folio_put_pmd(svc, pfn)


def zap_huge_pmds(mm, start, end):
    """zap_pmd_range's THP part: split those partly inside, zap those wholly inside; the count."""
    if not mm.pgtables.thp:
        return 0
    split_huge_pmd_edges(mm, start, end)
    n = 0
    for haddr, slot, e in thp_pmds(mm, start, end):
        zap_huge_pmd(mm, haddr, slot, e)
        n += 1
    if n:
        mm.svc.charge('pte_set', n)
        mm.svc.flush_tlb(mm)
    return n


def copy_huge_pmd(dst, src, vma, haddr, slot, e):
    """copy_huge_pmd at fork: the child maps the same folio, both read-only (COW); a possibly pinned
    folio is split in the parent instead, so the 4 KiB copy gives the child its own copy. False on OOM."""
    svc = src.svc
    huge_zero = is_huge_zero_pmd(svc, e)
    pfn = (e & PMD_PFN_MASK) >> 12
    if pfn in thp_state(svc).file_pmd:
        return True                              # a shmem PMD: the child faults it again (vma_needs_copy)
    if not huge_zero and getattr(src, 'has_pinned', False) and folio_maybe_pinned(svc, pfn):
        __split_huge_pmd(src, haddr)
        return True
    try:
        dslot = dst.pgtables.pmd_slot(haddr, create=True)
    except MemoryError:
        return False
    deposit = _deposit(dst)
    if deposit is None:
        return False
    if not huge_zero:
        _set_exclusive(svc, pfn, False)          # folio_try_dup_anon_rmap_pmd
        thp_state(svc).folios[pfn] += 1
        dst.rss_add(anon=HPAGE_PMD_NR)
        if e & _PAGE_RW:
            e &= ~_PAGE_RW                       # pmdp_set_wrprotect in the parent, and the child's too
            svc.frames.phys.write64(slot, e)
    _set_pmd(dst, dslot, haddr >> PMD_SHIFT, e, deposit)
    return True


def change_huge_pmd(mm, vma, slot, e, prot):
    """change_huge_pmd for mprotect: the new rights on a whole huge PMD (write only ever removed)."""
    new = e
    if not prot & _PAGE_RW:
        new &= ~_PAGE_RW
    new = (new & ~(1 << 63)) | (prot & (1 << 63))
    if not vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC):
        new &= ~4
    else:
        new |= 4
    if new != e:
        mm.svc.frames.phys.write64(slot, new)
        return 1
    return 0


def move_huge_pmd(mm, old_haddr, new_haddr):
    """move_huge_pmd for mremap: the PMD and its deposited table move to the new aligned address."""
    pgt = mm.pgtables
    phys = mm.svc.frames.phys
    oslot = pgt.pmd_slot(old_haddr, create=False)
    e = phys.read64(oslot)
    nslot = pgt.pmd_slot(new_haddr, create=True)
    if phys.read64(nslot):
        return False
    deposit = pgt.thp.pop(old_haddr >> PMD_SHIFT)
    phys.write64(oslot, 0)
    _set_pmd(mm, nslot, new_haddr >> PMD_SHIFT, e, deposit)
    if not is_huge_zero_pmd(mm.svc, e) and (e & PMD_PFN_MASK) >> 12 not in thp_state(mm.svc).file_pmd:
        pfn = (e & PMD_PFN_MASK) >> 12
        for i, p in enumerate(mm.svc.frames.pages[pfn:pfn + HPAGE_PMD_NR]):
            p.index = (new_haddr >> 12) + i
    return True


# ---- accounting ---------------------------------------------------------------------------------
def folio_entire_mapcount(svc, pfn):
    """folio_entire_mapcount: how many PMDs map the folio (0 if it is not a live THP)."""
    st = thp_state(svc)
    return (st.folios.get(pfn, 0) or st.file_pmd.get(pfn, 0)) if st is not None else 0


def nr_anon_thp_pages(svc):
    """NR_ANON_THPS in pages: each compound page some PMD maps (meminfo AnonHugePages)."""
    st = thp_state(svc)
    if st is None:
        return 0
    return len(st.folios) * HPAGE_PMD_NR


__all__ = ['alloc_anon_folio', 'thp_vma_eligible', 'thp_vma_allowable_orders', 'VM_HUGEPAGE', 'VM_NOHUGEPAGE', 'ThpState',
           'huge_pmd_fault', 'zap_huge_pmds', 'copy_huge_pmd',
           'thp_vma_allowable']
