"""Speculative page faults: a fault resolved without mmap_lock, checked against the VMA sequence counts.

The locks it is checked against are in kernel/mm/mmap_lock.py. handle_speculative_fault
resolves a fault without mmap_lock, as the SPF series does: find the VMA under the VMA-tree lock, check
the VMA (supported kind, anon_vma, access), check the page tables exist, then at pte_map_lock time
check that the VMA's sequence count and the PMD did not change and trylock the PTE lock. Any conflict
aborts (counted as spf_<reason>) and the caller falls back to the classic path.

Host execution of a kernel path is atomic, so "concurrently" means overlapping in simulated time with
another CPU's hold (kernel/locking.py). The work a speculative fault does before pte_map_lock is known
from the handler it is about to run, so the check happens up front and an aborted attempt is billed
for the work it wasted.
"""
from faultlab.kernel.mm.memory import handle_pte_fault
from faultlab.kernel.mm.mm_types import FAULT_FLAG_SPECULATIVE, FAULT_FLAG_WRITE, VM_FAULT_RETRY, VmFault
from faultlab.kernel.mm.page_alloc import PG_anon, PG_locked, PG_uptodate
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_RW, pte_to_swp_entry
from faultlab.kernel.mm.mmap_lock import cacheline_touch, lock_wait, vma_seqcount
from faultlab.kernel.mm.vma import VM_GROWSDOWN, VM_HUGETLB, VM_IO, VM_PFNMAP, VM_SHARED

SPF_ABORTS = ('spf_vma_changed', 'spf_vma_noanon', 'spf_vma_notsup', 'spf_vma_access', 'spf_pmd_changed',
              'spf_pte_lock', 'spf_swap_notcached', 'spf_page_lock', 'spf_file_notcached')


def _work_before_pte_lock(mm, vma, pte, flags, page):
    """Cycles a speculative handler spends before pte_map_lock (allocation, zeroing or copying)."""
    cost = mm.svc.cost
    if pte == 0:
        if vma.anon:
            return cost('page_alloc') + cost('page_zero') if flags & FAULT_FLAG_WRITE else 0
        return cost('pagecache_lookup') + (cost('page_alloc') + cost('page_copy')
                                           if flags & FAULT_FLAG_WRITE and not vma.vm_flags & VM_SHARED else 0)
    if not pte & _PAGE_PRESENT:
        return cost('pagecache_lookup')
    if flags & FAULT_FLAG_WRITE and not pte & _PAGE_RW:
        return 0 if page is not None and page.mapcount == 1 and page.flags & PG_anon else \
            cost('page_alloc') + cost('page_copy')
    return 0


class SpfAbort(Exception):
    """The speculative path gives up (reason: one of SPF_ABORTS), having wasted `wasted` cycles."""

    def __init__(self, reason, wasted=0):
        super().__init__(reason)
        self.reason = reason
        self.wasted = wasted


def handle_speculative_fault(mm, address, flags, access_ok):
    """Try to resolve a fault without mmap_lock; returns (ret, vmf), or None to take the classic path.

    access_ok(vma) tells whether the access is allowed by the VMA (arch code's access_error).
    """
    t0 = mm.svc.sched.now()
    vma = get_vma(mm, address, t0)
    if vma is None:
        return None                       # no VMA: the classic path decides
    if vma.vm_start > address:
        put_vma(mm, vma)
        return None                       # stack growth: the classic path
    try:
        return __handle_speculative_fault(mm, vma, address, flags, access_ok, t0)
    except SpfAbort as abort:
        spf_abort(mm, abort)
        return None
    finally:
        put_vma(mm, vma)


def get_vma(mm, address, t0):
    """find_vma under the VMA-tree rwlock (an rwlock_t: spins only while a writer updates the tree),
    taking a reference on the VMA. read_lock and read_unlock write the lock's word, get_vma's
    atomic_inc the VMA's vm_ref_count: cache lines every faulting CPU writes (kernel.locking.CacheLine)."""
    svc = mm.svc
    rb = mm.locks.mm_rb
    lock_wait(mm, rb, rb.read_wait(t0, svc.sched.cpu_id()), t0, spin=True)
    cacheline_touch(mm, rb.word)                  # read_lock
    svc.charge('spf_vma_get')
    vma = mm.vmas.find_vma(address)
    if vma is not None:
        cacheline_touch(mm, vma_seqcount(vma).ref)    # atomic_inc(&vma->vm_ref_count)
    cacheline_touch(mm, rb.word)                  # read_unlock
    return vma


def put_vma(mm, vma):
    """put_vma: atomic_dec_and_test of the VMA's reference count, once the speculative fault is done."""
    cacheline_touch(mm, vma_seqcount(vma).ref)


def spf_abort(mm, abort):
    """Bill the work an aborted attempt wasted and count its reason."""
    if abort.wasted:
        mm.svc.charge_cycles(abort.wasted)
    mm.svc.stats[abort.reason] += 1


def __handle_speculative_fault(mm, vma, address, flags, access_ok, t0):
    """The speculative path once the VMA is found: check it, read the PTE, lock it, handle the fault."""
    ts = mm.svc.sched.now()
    vma_check_speculative(mm, vma, ts, access_ok)
    slot = pte_offset_speculative(mm, address)
    pte = mm.svc.frames.phys.read64(slot)
    page = pte_page_speculative(mm, vma, address, pte, ts)
    t_lock = ts + _work_before_pte_lock(mm, vma, pte, flags, page)
    ptl = pte_map_lock(mm, vma, address, slot, t0, ts, t_lock)
    return handle_pte_fault_speculative(mm, vma, address, flags, slot, pte, ptl, ts)


def vma_has_changed(mm, vma, t_from, t_to):
    """A writer had the VMA's sequence count odd between t_from and t_to (read_seqcount_retry)."""
    return vma_seqcount(vma).changed(t_from, t_to, mm.svc.sched.cpu_id())


def vma_check_speculative(mm, vma, ts, access_ok):
    """The VMA is stable, of a kind the speculative path handles, has its anon_vma, and allows the access."""
    if vma_has_changed(mm, vma, ts, ts):
        raise SpfAbort('spf_vma_changed')
    if vma.vm_flags & (VM_GROWSDOWN | VM_HUGETLB | VM_PFNMAP | VM_IO) or \
            (not vma.anon and not mm.svc.spf_file) or vma.vm_file is None and not vma.anon:
        raise SpfAbort('spf_vma_notsup')
    if vma.anon and not vma.anon_vma:
        raise SpfAbort('spf_vma_noanon')    # anon_vma_prepare needs mmap_lock
    if not access_ok(vma):
        raise SpfAbort('spf_vma_access')


def pte_offset_speculative(mm, address):
    """The PTE slot of address, walking without allocating; pmd_none (no PTE table yet) gives up."""
    slot = mm.pgtables.pte_slot(address, create=False)
    if slot is None:
        raise SpfAbort('spf_vma_notsup')
    return slot


def pte_page_speculative(mm, vma, address, pte, ts):
    """The page the handler will work on (None for an empty PTE), if it can be had without sleeping."""
    if pte & _PAGE_PRESENT:
        return mm.svc.frames.pages[pte >> 12 & ((1 << 40) - 1)]
    if pte:
        return do_swap_page_speculative(mm, pte, ts)
    if not vma.anon:
        do_fault_speculative(mm, vma, address)
    return None


def do_swap_page_speculative(mm, pte, ts):
    """do_swap_page's speculative part: only a page already in the swap cache, locked with trylock."""
    sc = mm.svc.swapcache
    page = sc.peek(pte_to_swp_entry(pte)[1]) if sc is not None else None
    if page is None:
        raise SpfAbort('spf_swap_notcached')
    if page.flags & PG_locked and getattr(page, 'io_done_at', 0) > ts:
        raise SpfAbort('spf_page_lock')
    return page


def do_fault_speculative(mm, vma, address):
    """A file fault goes on only if the page is cached, uptodate and unlocked (__do_fault may sleep)."""
    pc = mm.svc.pagecache.peek(vma.vm_file.inode, vma.linear_page_index(address))
    if pc is None or not pc.flags & PG_uptodate or pc.flags & PG_locked:
        raise SpfAbort('spf_file_notcached')


def pte_map_lock(mm, vma, address, slot, t0, ts, t_lock):
    """At t_lock the VMA (checked at ts) and the PMD (since the fault began at t0) must be unchanged and
    the PTE lock free (spin_trylock); returns the PTE lock."""
    if vma_has_changed(mm, vma, ts, t_lock):
        raise SpfAbort('spf_vma_changed', t_lock - ts)
    cpu = mm.svc.sched.cpu_id()
    if mm.locks.pmd_changes(address).changed(t0, t_lock, cpu):
        raise SpfAbort('spf_pmd_changed', t_lock - ts)
    ptl = mm.locks.pte_lock(slot)
    if ptl.is_locked(t_lock, cpu):
        raise SpfAbort('spf_pte_lock', t_lock - ts)
    return ptl


def handle_pte_fault_speculative(mm, vma, address, flags, slot, pte, ptl, ts):
    """Run handle_pte_fault with FAULT_FLAG_SPECULATIVE; on success the PTE lock was held until now."""
    vmf = VmFault(vma, address, flags | FAULT_FLAG_SPECULATIVE)
    vmf.slot = slot
    mm.svc.charge('fault_handle')
    ret = handle_pte_fault(mm, vmf)
    if ret & VM_FAULT_RETRY:
        return ret, vmf
    pte_unmap_unlock_speculative(mm, ptl, ts)
    count_speculative_fault(mm, pte)
    return ret, vmf


def pte_unmap_unlock_speculative(mm, ptl, ts):
    """Record the PTE lock's hold: the PTE update at the handler's end (never before the VMA check at ts)."""
    svc = mm.svc
    t1 = svc.sched.now()
    ptl.holds.add(max(ts, t1 - svc.cost('pte_set')), t1, svc.sched.cpu_id())


def count_speculative_fault(mm, pte):
    """count_vm_event(SPECULATIVE_PGFAULT); a swap PTE was a speculative do_swap_page from the swap cache."""
    stats = mm.svc.stats
    stats['spf'] += 1
    if pte and not pte & _PAGE_PRESENT:
        stats['swapin_speculative'] += 1
