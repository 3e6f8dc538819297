"""Kernel same-page merging (mm/ksm.c): the stable and unstable trees, merging two identical anonymous
pages into one write-protected KSM page (or into the zero page), breaking such sharing again
(break_ksm, unmerge_ksm_pages), and the per-mm side: MADV_MERGEABLE / MADV_UNMERGEABLE (ksm_madvise),
PR_SET_MEMORY_MERGE (ksm_enable_merge_any / ksm_disable_merge_any), run=2
(unmerge_and_remove_all_rmap_items) and the counters /sys/kernel/mm/ksm and /proc/PID/ksm_stat show.

The trees are dicts by a checksum of the content (zlib's crc32 where Linux uses xxhash), each bucket
compared in full (memcmp_pages) before two pages are merged. ksmd's scanning is in ksm_scan.py.
"""
import errno
import zlib

from faultlab.kernel.arch.cpu_interface import PAGE_SIZE
from faultlab.kernel.mm.memory import page_remove_rmap, vma_page_prot, wp_page_copy
from faultlab.kernel.mm.mm_types import FAULT_FLAG_REMOTE, FAULT_FLAG_UNSHARE, VM_FAULT_OOM, VmFault
from faultlab.kernel.mm.mmap import _isolate, vma_merge_around
from faultlab.kernel.mm.ksm_types import PG_ksm, VM_MERGEABLE
from faultlab.kernel.mm.page_alloc import PG_anon, PG_anon_exclusive, PG_dirty, PG_lru, PG_swapcache
from faultlab.kernel.mm.pgtable import _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, pfn_pte, pte_pfn
from faultlab.kernel.mm.vma import VM_DONTEXPAND, VM_HUGETLB, VM_IO, VM_MAYSHARE, VM_PFNMAP, VM_SHARED

MADV_MERGEABLE, MADV_UNMERGEABLE = 12, 13
KSM_RUN_STOP, KSM_RUN_MERGE, KSM_RUN_UNMERGE = 0, 1, 2
SIZEOF_KSM_RMAP_ITEM = 64          # sizeof(struct ksm_rmap_item) on x86-64 (the profit formulas)
ZERO_CHECKSUM = zlib.crc32(bytes(PAGE_SIZE))


class KsmRmapItem:
    """struct ksm_rmap_item: one virtual page of a registered mm that ksmd has looked at."""
    __slots__ = ('mm', 'address', 'oldchecksum', 'head', 'unstable', 'age', 'remaining_skips')

    def __init__(self, mm, address):
        self.mm = mm
        self.address = address
        self.oldchecksum = None
        self.head = None           # the KsmStableNode whose page this address maps (STABLE_FLAG)
        self.unstable = None       # the scan number it was put in the unstable tree (UNSTABLE_FLAG)
        self.age = 0               # smart scan: scans without a merge
        self.remaining_skips = 0


class KsmStableNode:
    """struct ksm_stable_node: one KSM page and the rmap_items that map it."""
    __slots__ = ('kpfn', 'checksum', 'hlist')

    def __init__(self, kpfn, checksum):
        self.kpfn = kpfn
        self.checksum = checksum
        self.hlist = []


class KsmMmSlot:
    """struct ksm_mm_slot with the mm's own KSM counters (mm->ksm_rmap_items, ksm_merging_pages)."""
    __slots__ = ('mm', 'rmap_items', 'ksm_rmap_items', 'ksm_merging_pages')

    def __init__(self, mm):
        self.mm = mm
        self.rmap_items = {}            # address -> KsmRmapItem (the rmap_list)
        self.ksm_rmap_items = 0
        self.ksm_merging_pages = 0


def vma_ksm_compatible(vma):
    """vma_ksm_compatible: shared, PFN-mapped, I/O, special and hugetlb mappings are never merged."""
    return not vma.vm_flags & (VM_SHARED | VM_MAYSHARE | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_HUGETLB)


def is_ksm_zero_pte(svc, pte):
    """is_ksm_zero_pte: the zero page mapped by KSM (use_zero_pages), marked dirty as Linux marks it."""
    return pte & _PAGE_PRESENT and pte & _PAGE_DIRTY and pte_pfn(pte) == svc.zero_page.pfn


class KsmState:
    """The KSM globals of one machine: knobs, trees, counters, mm slots, and ksmd (set by ksm_scan)."""

    def __init__(self, svc, live_mms):
        """svc: the MmServices; live_mms() yields the address spaces of the live tasks."""
        self.svc = svc
        self.live_mms = live_mms
        self.run = KSM_RUN_STOP
        self.pages_to_scan = 100
        self.sleep_millisecs = 20
        self.merge_across_nodes = 1
        self.use_zero_pages = 0
        self.max_page_sharing = 256
        self.stable_node_chains_prune_millisecs = 2000
        self.smart_scan = 1
        self.advisor_mode = 'none'
        self.advisor_max_cpu = 70
        self.advisor_min_pages_to_scan = 500
        self.advisor_max_pages_to_scan = 30000
        self.advisor_target_scan_time = 200
        self.stable_tree = {}            # checksum -> [KsmStableNode] (a chain's dups when more than one)
        self.stable_by_pfn = {}          # kpfn -> KsmStableNode (folio_stable_node)
        self.unstable_tree = {}          # checksum -> [KsmRmapItem], emptied at each full scan
        self.slots = {}                  # mm -> KsmMmSlot, in registration order (ksm_mm_head)
        self.pages_shared = self.pages_sharing = self.pages_unshared = 0
        self.pages_skipped = self.pages_scanned = 0
        self.rmap_items = 0
        self.seqnr = 0                   # ksm_scan.seqnr: full scans done
        self.ksmd = None                 # the Ksmd that scans (kernel/mm/ksm_scan.py)

    # ---- registration ------------------------------------------------------------------------
    def wake_ksmd(self):
        """wake_up_interruptible(&ksm_thread_wait)."""
        if self.ksmd is not None:
            self.ksmd.wake()

    def ksm_enter(self, mm):
        """__ksm_enter: add the mm to ksm_mm_head (MMF_VM_MERGEABLE) and wake ksmd."""
        mm.mmf_vm_mergeable = True
        self.slots.setdefault(mm, KsmMmSlot(mm))
        self.wake_ksmd()

    def mm_slots(self):
        """The registered mms that still live, in registration order (an mm a fork or an execve
        registered, ksm_fork, gets its slot here)."""
        live = list(self.live_mms())
        for mm in live:
            if getattr(mm, 'mmf_vm_mergeable', False) and mm not in self.slots:
                self.slots[mm] = KsmMmSlot(mm)
        alive = set(map(id, live))
        for mm in [m for m in self.slots if id(m) not in alive]:
            self.ksm_exit(mm)
        return [s for s in self.slots.values()]

    def ksm_exit(self, mm):
        """__ksm_exit (and ksmd's clean-up of a dead mm): its rmap_items leave the trees."""
        slot = self.slots.pop(mm, None)
        if slot is not None:
            for item in list(slot.rmap_items.values()):
                self.free_rmap_item(slot, item)

    def get_rmap_item(self, slot, address):
        """get_next_rmap_item: the mm's item for address, allocated on first sight."""
        item = slot.rmap_items.get(address)
        if item is None:
            item = slot.rmap_items[address] = KsmRmapItem(slot.mm, address)
            slot.ksm_rmap_items += 1
            self.rmap_items += 1
        return item

    def free_rmap_item(self, slot, item):
        """remove_rmap_item_from_tree + free_rmap_item."""
        self.remove_rmap_item_from_tree(item)
        del slot.rmap_items[item.address]
        slot.ksm_rmap_items -= 1
        self.rmap_items -= 1

    # ---- trees -------------------------------------------------------------------------------
    def remove_rmap_item_from_tree(self, item):
        """Take the item off its stable node (pages_sharing or pages_shared drop) or out of the
        unstable tree (pages_unshared drops)."""
        node = item.head
        if node is not None:
            node.hlist.remove(item)
            if node.hlist:
                self.pages_sharing -= 1
            else:
                self.pages_shared -= 1
            slot = self.slots.get(item.mm)
            if slot is not None:
                slot.ksm_merging_pages -= 1
            item.head = None
        elif item.unstable is not None:
            if item.unstable == self.seqnr:
                bucket = self.unstable_tree.get(item.oldchecksum)
                if bucket and item in bucket:
                    bucket.remove(item)
            self.pages_unshared -= 1
            item.unstable = None

    def stable_tree_append(self, item, node):
        """stable_tree_append: one more mapping of the KSM page; the first counts as shared, the
        others as sharing."""
        if node.hlist:
            self.pages_sharing += 1
        else:
            self.pages_shared += 1
        node.hlist.append(item)
        item.head = node
        item.age = 0
        slot = self.slots.get(item.mm)
        if slot is not None:
            slot.ksm_merging_pages += 1

    def get_ksm_page(self, node):
        """get_ksm_page: the node's page while it still is that KSM page, else None (the node is
        stale and leaves the tree: remove_node_from_stable_tree)."""
        page = self.svc.frames.pages[node.kpfn]
        if page.flags & PG_ksm and page.refcount > 0 and self.stable_by_pfn.get(node.kpfn) is node:
            return page
        self.remove_node_from_stable_tree(node)
        return None

    def remove_node_from_stable_tree(self, node):
        """The node's rmap_items lose it; the node leaves the stable tree."""
        for item in list(node.hlist):
            self.remove_rmap_item_from_tree(item)
        bucket = self.stable_tree.get(node.checksum)
        if bucket and node in bucket:
            bucket.remove(node)
            if not bucket:
                del self.stable_tree[node.checksum]
        if self.stable_by_pfn.get(node.kpfn) is node:
            del self.stable_by_pfn[node.kpfn]

    def stable_tree_insert(self, kpage, checksum):
        """stable_tree_insert: kpage becomes a KSM page with a new node (a dup of a full chain when
        pages with its content already have max_page_sharing mappings)."""
        node = KsmStableNode(kpage.pfn, checksum)
        self.stable_tree.setdefault(checksum, []).append(node)
        self.stable_by_pfn[kpage.pfn] = node
        return node

    def stable_node_chains(self):
        """stable_node_chains: contents with more than one KSM page (max_page_sharing reached)."""
        return sum(1 for b in self.stable_tree.values() if len(b) > 1)

    def stable_node_dups(self):
        """stable_node_dups: the KSM pages of those chains."""
        return sum(len(b) for b in self.stable_tree.values() if len(b) > 1)

    def remove_all_stable_nodes(self):
        """remove_all_stable_nodes: forget every node (their pages stay KSM pages until freed)."""
        for bucket in list(self.stable_tree.values()):
            for node in list(bucket):
                self.remove_node_from_stable_tree(node)

    # ---- counters ----------------------------------------------------------------------------
    def mm_ksm_zero_pages(self, mm):
        """mm->ksm_zero_pages: the KSM-marked zero-page entries the mm maps now."""
        n = 0
        for vma in mm.vmas:
            if vma.vm_flags & VM_MERGEABLE:
                n += sum(1 for _va, _slot, pte in mm.pgtables.present_ptes(vma.vm_start, vma.vm_end)
                         if is_ksm_zero_pte(self.svc, pte))
        return n

    def ksm_zero_pages(self):
        """The global ksm_zero_pages."""
        return sum(self.mm_ksm_zero_pages(mm) for mm in self.live_mms())

    def pages_volatile(self):
        """pages_volatile_show: rmap_items in no tree (changing too fast to be merged)."""
        return max(0, self.rmap_items - self.pages_shared - self.pages_sharing - self.pages_unshared)

    def general_profit(self):
        """general_profit_show: bytes saved by sharing and zero pages minus the rmap_items' size."""
        return (self.pages_sharing + self.ksm_zero_pages()) * PAGE_SIZE - self.rmap_items * SIZEOF_KSM_RMAP_ITEM

    def ksm_process_profit(self, mm):
        """ksm_process_profit."""
        slot = self.slots.get(mm)
        merging, items = (slot.ksm_merging_pages, slot.ksm_rmap_items) if slot else (0, 0)
        return (merging + self.mm_ksm_zero_pages(mm)) * PAGE_SIZE - items * SIZEOF_KSM_RMAP_ITEM

    def ksm_merging_pages(self, mm):
        slot = self.slots.get(mm)
        return slot.ksm_merging_pages if slot else 0

    def ksm_rmap_items(self, mm):
        slot = self.slots.get(mm)
        return slot.ksm_rmap_items if slot else 0


# ---- merging (called by ksmd) ------------------------------------------------------------------
def page_checksum(svc, page):
    """calc_checksum: a checksum of the page's content (one read of 4 KiB)."""
    return zlib.crc32(svc.frames.phys.frame(page.pfn))


def pages_identical(svc, a, b):
    """pages_identical (memcmp_pages)."""
    phys = svc.frames.phys
    return bytes(phys.frame(a.pfn)) == bytes(phys.frame(b.pfn))


def page_is_zero(svc, page):
    return not any(svc.frames.phys.frame(page.pfn))


def write_protect_page(svc, mm, address, page):
    """write_protect_page: make the PTE mapping page at address read-only and clean (its dirty bit
    goes to the page); refused (False) when the page may be pinned or the PTE moved on."""
    slot = mm.pgtables.pte_slot(address, create=False)
    if slot is None:
        return None
    phys = svc.frames.phys
    pte = phys.read64(slot)
    if not pte & _PAGE_PRESENT or pte_pfn(pte) != page.pfn:
        return None
    swapped = 1 if page.flags & PG_swapcache else 0
    if page.mapcount + swapped != page.refcount:
        return None                      # GUP holds a reference: the page may be written through it
    if pte & (_PAGE_RW | _PAGE_DIRTY):
        if pte & _PAGE_DIRTY:
            page.flags |= PG_dirty
        pte &= ~(_PAGE_RW | _PAGE_DIRTY)
        phys.write64(slot, pte)
        svc.charge('pte_set')
        svc.flush_tlb(mm)
    page.flags &= ~PG_anon_exclusive     # folio_try_share_anon_rmap_pte
    return slot


def replace_page(svc, mm, vma, slot, page, kpage):
    """replace_page: map kpage (or the zero page, marked as KSM's) where page was mapped."""
    phys = svc.frames.phys
    prot = vma_page_prot(vma) & ~_PAGE_RW
    if kpage is svc.zero_page:
        phys.write64(slot, pfn_pte(kpage.pfn, prot) | _PAGE_DIRTY)     # pte_mkdirty(pte_mkspecial())
        page_remove_rmap(mm, page)                                      # dec_mm_counter(MM_ANONPAGES)
    else:
        kpage.mapcount += 1
        kpage.refcount += 1
        phys.write64(slot, pfn_pte(kpage.pfn, prot))
        page_remove_rmap(mm, page)
        mm.rss_add(anon=1)               # folio_add_anon_rmap_pte: kpage is anonymous too
    svc.charge('pte_set')
    svc.flush_tlb(mm)
    svc.frames.put_page(page)
    svc.stats['ksm_pages_merged'] += 1


def set_page_stable_node(svc, page):
    """folio_set_stable_node: the page becomes a KSM page; KSM pages are not put on the LRU here
    (never reclaimed: faultlab's reverse map of anonymous pages is by address, which KSM pages break)."""
    page.flags |= PG_ksm
    if page.flags & PG_lru and svc.lru is not None:
        svc.lru.remove(page)
        page.flags &= ~PG_lru


def try_to_merge_one_page(svc, mm, vma, address, page, kpage):
    """try_to_merge_one_page: write-protect page; with kpage None make it a KSM page, else map kpage
    instead when the contents are the same. True on success."""
    if page is kpage:
        return True
    if not page.flags & PG_anon or page.flags & PG_ksm and kpage is not None:
        return False
    slot = write_protect_page(svc, mm, address, page)
    if slot is None:
        return False
    if kpage is None:
        set_page_stable_node(svc, page)
        return True
    svc.charge_cycles(svc.cost('page_copy'))            # memcmp_pages
    if not pages_identical(svc, page, kpage):
        return False
    replace_page(svc, mm, vma, slot, page, kpage)
    return True


# ---- unmerging --------------------------------------------------------------------------------
def break_ksm(svc, mm, vma, address):
    """break_ksm: an UNSHARE fault on a KSM page or a KSM zero page maps a private copy (read-only,
    as an unshare leaves it). 0, or -ENOMEM."""
    slot = mm.pgtables.pte_slot(address, create=False)
    if slot is None:
        return 0
    pte = svc.frames.phys.read64(slot)
    if not pte & _PAGE_PRESENT:
        return 0
    page = svc.frames.pages[pte_pfn(pte)]
    if not (page.flags & PG_ksm or is_ksm_zero_pte(svc, pte)):
        return 0
    vmf = VmFault(vma, address, FAULT_FLAG_UNSHARE | FAULT_FLAG_REMOTE)
    vmf.slot = slot
    vmf.orig_pte = pte
    ret = wp_page_copy(mm, vmf, page)
    return -errno.ENOMEM if ret & VM_FAULT_OOM else 0


def unmerge_ksm_pages(svc, mm, vma, start, end):
    """unmerge_ksm_pages: break every KSM mapping in [start, end) of vma."""
    for va, _slot, pte in mm.pgtables.present_ptes(start, end):
        if not pte & _PAGE_PRESENT:
            continue
        err = break_ksm(svc, mm, vma, va)
        if err:
            return err
    return 0


def ksm_madvise(mm, vma, start, end, advice):
    """ksm_madvise for [start, end) of vma: MADV_MERGEABLE sets VM_MERGEABLE on compatible VMAs
    (registering the mm), MADV_UNMERGEABLE unmerges the range and clears it. 0 or -errno."""
    ksm = getattr(mm.svc, 'ksm', None)
    if ksm is None:
        return 0                         # mm services built without ksm_init (unit tests): as before
    if advice == MADV_MERGEABLE:
        if vma.vm_flags & VM_MERGEABLE or not vma_ksm_compatible(vma):
            return 0                     # just ignore the advice
        if not getattr(mm, 'mmf_vm_mergeable', False) or mm not in ksm.slots:
            ksm.ksm_enter(mm)
        new = vma.vm_flags | VM_MERGEABLE
    else:
        if not vma.vm_flags & VM_MERGEABLE:
            return 0
        if vma.anon_vma:
            err = unmerge_ksm_pages(mm.svc, mm, vma, start, end)
            if err:
                return err
        new = vma.vm_flags & ~VM_MERGEABLE
    for v in _isolate(mm, start, end):
        v.vm_flags = new
        v.vm_seq += 1
        vma_merge_around(mm, v)
    return 0


def ksm_add_vmas(mm):
    """ksm_add_vmas: every compatible VMA of a MMF_VM_MERGE_ANY mm is mergeable (ksm_add_vma does the
    same for each new one; faultlab marks them when ksmd or a query looks)."""
    for vma in mm.vmas:
        if vma_ksm_compatible(vma):
            vma.vm_flags |= VM_MERGEABLE


def ksm_enable_merge_any(mm):
    """PR_SET_MEMORY_MERGE 1."""
    if getattr(mm, 'mmf_vm_merge_any', False):
        return 0
    ksm = getattr(mm.svc, 'ksm', None)
    if ksm is not None and (not getattr(mm, 'mmf_vm_mergeable', False) or mm not in ksm.slots):
        ksm.ksm_enter(mm)
    mm.mmf_vm_merge_any = True
    ksm_add_vmas(mm)
    return 0


def ksm_disable_merge_any(mm):
    """PR_SET_MEMORY_MERGE 0: unmerge and clear VM_MERGEABLE everywhere (ksm_del_vmas), then the flag."""
    if not getattr(mm, 'mmf_vm_merge_any', False):
        return 0
    for vma in list(mm.vmas):
        if vma.vm_flags & VM_MERGEABLE:
            err = unmerge_ksm_pages(mm.svc, mm, vma, vma.vm_start, vma.vm_end)
            if err:
                return err
            vma.vm_flags &= ~VM_MERGEABLE
    mm.mmf_vm_merge_any = False
    return 0


def unmerge_and_remove_all_rmap_items(ksm):
    """run=2: unmerge every mergeable VMA of every registered mm and free every rmap_item
    (remove_trailing_rmap_items); only mms that are exiting leave the list, the others stay registered
    with their flags; the stable nodes go and full_scans starts again from 0."""
    for slot in ksm.mm_slots():
        mm = slot.mm
        for vma in list(mm.vmas):
            if vma.vm_flags & VM_MERGEABLE and vma.anon_vma:
                err = unmerge_ksm_pages(ksm.svc, mm, vma, vma.vm_start, vma.vm_end)
                if err:
                    return err
        for item in list(slot.rmap_items.values()):
            ksm.free_rmap_item(slot, item)
    ksm.remove_all_stable_nodes()
    ksm.unstable_tree.clear()
    ksm.seqnr = 0
    if ksm.ksmd is not None:
        ksm.ksmd.reset_scan()
    return 0


__all__ = ['KsmState', 'ksm_madvise', 'ksm_enable_merge_any', 'ksm_disable_merge_any',
           'unmerge_and_remove_all_rmap_items']
