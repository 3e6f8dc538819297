"""ksmd (mm/ksm.c ksm_scan_thread): every sleep_millisecs of simulated time it scans pages_to_scan
pages of the registered mms (ksm_do_scan -> scan_get_next_rmap_item -> cmp_and_merge_page). It runs
as an event on the simulated clock; its work (a checksum per page, a full compare per candidate, the
PTE updates) is billed as kernel cycles of the CPU that runs the event, so ksmd takes its share of a
CPU as a kernel thread does. It sleeps (no event) while run is not 1 or no mm is registered, and when
every task sleeps with nothing else pending (nothing could change what it would find)."""
from faultlab.kernel.mm.ksm import (KSM_RUN_MERGE, ZERO_CHECKSUM, ksm_add_vmas, page_checksum, page_is_zero,
                                    pages_identical, try_to_merge_one_page)
from faultlab.kernel.mm.ksm_types import PG_ksm, VM_MERGEABLE
from faultlab.kernel.mm.page_alloc import PG_anon, PG_head, PG_hugetlb, PG_lru
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, pte_pfn


class Ksmd:
    """The ksmd kernel thread of one machine, on the simulated clock (schedule(when, callback)),
    with now(), the CPU frequency and quiet() (True when no task can run and nothing else is due)."""

    def __init__(self, ksm, schedule, now, freq_hz, quiet):
        self.ksm = ksm
        self.svc = ksm.svc
        self._schedule = schedule
        self._now = now
        self.freq_hz = freq_hz
        self._quiet = quiet
        self.pending = False           # an event is queued
        self.cycles = 0                # what ksmd's scanning cost so far
        self.reset_scan()
        ksm.ksmd = self

    def reset_scan(self):
        """ksm_scan back at the head of the mm list."""
        self.slot_list = None          # the mm slots of the current full scan
        self.slot_index = 0
        self.addresses = None          # the addresses of the current mm to visit
        self.addr_index = 0
        self.visited = set()

    def should_run(self):
        """ksmd_should_run: merging is on and some mm is registered."""
        return self.ksm.run & KSM_RUN_MERGE and bool(self.ksm.mm_slots())

    def wake(self):
        """Queue the next scan now, if ksmd should run and is asleep."""
        if not self.pending and self.should_run():
            self.pending = True
            self._schedule(self._now(), self._run)

    def _run(self, when):
        """One wake-up of ksm_scan_thread: scan, then sleep sleep_millisecs (or until woken)."""
        self.pending = False
        if not self.should_run():
            return
        t0 = self._now()
        self.svc.charge_cycles(ksm_do_scan(self, self.ksm.pages_to_scan))
        cost = self._now() - t0            # with the PTE updates and TLB flushes billed on the way
        self.cycles += cost
        self.svc.stats['ksmd_cycles'] += int(cost)
        if self._quiet() or not self.should_run():
            return
        self.pending = True
        sleep = self.ksm.sleep_millisecs * self.freq_hz // 1000
        self._schedule(when + cost + max(sleep, self.svc.cost('context_switch')), self._run)


def _mergeable_addresses(ksm, mm):
    """The addresses scan_get_next_rmap_item will visit in mm: anonymous pages mapped by PTEs in
    VM_MERGEABLE VMAs, in address order."""
    if getattr(mm, 'mmf_vm_merge_any', False):
        ksm_add_vmas(mm)
    out = []
    for vma in list(mm.vmas):
        if vma.vm_flags & VM_MERGEABLE and vma.anon_vma:
            out += [va for va, _slot, pte in mm.pgtables.present_ptes(vma.vm_start, vma.vm_end) if pte & _PAGE_PRESENT]
    return out


def follow_page(svc, mm, address):
    """The anonymous small page mapped at address in a mergeable VMA (vma, page), or None."""
    vma = mm.vmas.vma_lookup(address)
    if vma is None or not vma.vm_flags & VM_MERGEABLE:
        return None
    slot = mm.pgtables.pte_slot(address, create=False)
    if slot is None:
        return None
    pte = svc.frames.phys.read64(slot)
    if not pte & _PAGE_PRESENT:
        return None
    page = svc.frames.pages[pte_pfn(pte)]
    if page is svc.zero_page or not page.flags & PG_anon or page.flags & (PG_hugetlb | PG_head):
        return None
    return vma, page


def skip_age(age):
    """skip_age: how many scans a page that stayed unique is skipped for."""
    return 1 if age <= 3 else 2 if age <= 5 else 4 if age <= 8 else 8


def should_skip_rmap_item(ksm, page, item):
    """should_skip_rmap_item (smart_scan): a page that stayed unmerged for scans is skipped for a while;
    KSM pages never are."""
    if not ksm.smart_scan or page.flags & PG_ksm:
        return False
    age = item.age
    if age < 255:
        item.age += 1
    if age < 3:
        return False
    if item.remaining_skips:
        item.remaining_skips -= 1
        return True
    item.remaining_skips = skip_age(age)
    return False


def scan_get_next_rmap_item(ksmd):
    """The next (item, vma, page) to look at, advancing over the mms; at the end of an mm its items
    that were not visited go (remove_trailing_rmap_items); after the last mm a full scan is counted
    and the unstable tree starts empty. None at the end of a full scan with nothing to look at."""
    ksm = ksmd.ksm
    svc = ksmd.svc
    while True:
        if ksmd.slot_list is None:
            ksm.unstable_tree.clear()          # root_unstable_tree = RB_ROOT
            ksmd.slot_list = ksm.mm_slots()
            ksmd.slot_index = 0
            ksmd.addresses = None
        if ksmd.slot_index >= len(ksmd.slot_list):
            ksm.seqnr += 1                     # a full scan is done
            ksmd.slot_list = None
            return None
        slot = ksmd.slot_list[ksmd.slot_index]
        if ksmd.addresses is None:
            ksmd.addresses = _mergeable_addresses(ksm, slot.mm) if ksm.slots.get(slot.mm) is slot else []
            ksmd.addr_index = 0
            ksmd.visited = set()
        while ksmd.addr_index < len(ksmd.addresses):
            address = ksmd.addresses[ksmd.addr_index]
            ksmd.addr_index += 1
            found = follow_page(svc, slot.mm, address)
            if found is None:
                continue
            vma, page = found
            item = ksm.get_rmap_item(slot, address)
            ksmd.visited.add(address)
            if should_skip_rmap_item(ksm, page, item):
                ksm.pages_skipped += 1
                continue
            return item, vma, page
        if ksm.slots.get(slot.mm) is slot:
            for address in [a for a in slot.rmap_items if a not in ksmd.visited]:
                ksm.free_rmap_item(slot, slot.rmap_items[address])
        ksmd.slot_index += 1
        ksmd.addresses = None


def stable_tree_search(ksm, page, checksum):
    """stable_tree_search: a KSM page with the same content that may take one more mapping."""
    svc = ksm.svc
    cost = 0
    for node in list(ksm.stable_tree.get(checksum, ())):
        kpage = ksm.get_ksm_page(node)
        if kpage is None:
            continue
        cost += svc.cost('page_copy')
        if pages_identical(svc, page, kpage) and len(node.hlist) < ksm.max_page_sharing:
            return node, kpage, cost
    return None, None, cost


def unstable_tree_search_insert(ksm, item, page, checksum):
    """unstable_tree_search_insert: an item of the unstable tree whose page has the same content
    (item, vma, page), or None after inserting this item."""
    svc = ksm.svc
    cost = 0
    bucket = ksm.unstable_tree.setdefault(checksum, [])
    for other in list(bucket):
        found = follow_page(svc, other.mm, other.address)
        if found is None or found[1] is page or found[1].flags & PG_ksm:
            continue
        cost += svc.cost('page_copy')
        if pages_identical(svc, page, found[1]):
            return (other,) + found, cost
    bucket.append(item)
    item.unstable = ksm.seqnr
    item.oldchecksum = checksum
    ksm.pages_unshared += 1
    return None, cost


def cmp_and_merge_page(ksm, item, vma, page):
    """cmp_and_merge_page: merge the page into a KSM page with the same content, or with the zero page,
    or with an identical page of the unstable tree; returns the cycles of its checksums and compares
    (the PTE updates and TLB flushes are billed where they happen)."""
    svc = ksm.svc
    node = ksm.stable_by_pfn.get(page.pfn) if page.flags & PG_ksm else None
    if node is not None and item.head is node:
        return 0
    ksm.remove_rmap_item_from_tree(item)
    if node is not None:                        # a KSM page this item does not know yet (fork)
        ksm.stable_tree_append(item, node)
        return 0
    cost = svc.cost('page_copy')                # the checksum reads the page
    checksum = page_checksum(svc, page)
    snode, kpage, c = stable_tree_search(ksm, page, checksum)
    cost += c
    if snode is not None:
        if try_to_merge_one_page(svc, item.mm, vma, item.address, page, kpage):
            ksm.stable_tree_append(item, snode)
        return cost
    if item.oldchecksum != checksum:            # changed since the last scan: volatile for now
        item.oldchecksum = checksum
        return cost
    if ksm.use_zero_pages and checksum == ZERO_CHECKSUM and page_is_zero(svc, page):
        try_to_merge_one_page(svc, item.mm, vma, item.address, page, svc.zero_page)
        return cost
    found, c = unstable_tree_search_insert(ksm, item, page, checksum)
    cost += c
    if found is None:
        return cost
    tree_item, tree_vma, tree_page = found
    # try_to_merge_two_pages: this page becomes the KSM page, the tree's page is replaced by it
    if not try_to_merge_one_page(svc, item.mm, vma, item.address, page, None):
        return cost
    if not try_to_merge_one_page(svc, tree_item.mm, tree_vma, tree_item.address, tree_page, page):
        page.flags &= ~PG_ksm                   # break_cow: nothing else maps it, it is ours again
        if svc.lru is not None and not page.flags & PG_lru:
            svc.lru.add(page, active=True)
        return cost
    ksm.remove_rmap_item_from_tree(tree_item)
    snode = ksm.stable_tree_insert(page, checksum)
    ksm.stable_tree_append(tree_item, snode)
    ksm.stable_tree_append(item, snode)
    return cost


def ksm_do_scan(ksmd, scan_npages):
    """ksm_do_scan: look at up to scan_npages pages; returns the cycles the work cost."""
    ksm = ksmd.ksm
    cost = 0
    for _ in range(scan_npages):
        nxt = scan_get_next_rmap_item(ksmd)
        if nxt is None:
            break
        item, vma, page = nxt
        cost += ksmd.svc.cost('vma_lookup') + cmp_and_merge_page(ksm, item, vma, page)
        ksm.pages_scanned += 1
    return cost
