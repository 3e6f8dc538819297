"""khugepaged (mm/khugepaged.c, Linux 6.12): the kernel thread that collapses the 4 KiB pages of
eligible anonymous memory into transparent huge pages in the background.

An mm enters khugepaged's list when one of its VMAs becomes eligible (khugepaged_enter_vma: MADV_HUGEPAGE,
or enabled=always at mmap or fault time). Every scan_sleep_millisecs of simulated time the thread
looks at pages_to_scan PTEs (khugepaged_do_scan -> khugepaged_scan_mm_slot -> hpage_collapse_scan_pmd)
and collapses an aligned 2 MiB range when at most max_ptes_none of its PTEs are empty, at most
max_ptes_swap swapped out (they are swapped in), at most max_ptes_shared map shared pages, some page
was referenced and every page can be collapsed (the collapse itself is MADV_COLLAPSE's,
kernel/mm/khugepaged.py). After an allocation failure it sleeps alloc_sleep_millisecs. Like ksmd
(kernel/mm/ksm_scan.py) it runs as an event on the simulated clock and its work (a PTE read per
entry, the copy of the pages, the PTE and TLB updates) is billed as kernel cycles of the CPU that runs
the event. It sleeps (no event) while no mm is listed or THP is off, and when every task sleeps with
nothing else pending."""
from faultlab.kernel.mm.huge_memory import (HPAGE_PMD_MASK, HPAGE_PMD_NR, HPAGE_PMD_ORDER, thp_size_dir, thp_state,
                                             thp_vma_allowable)
from faultlab.kernel.mm.khugepaged_file import (SCAN_PTE_MAPPED_HUGEPAGE, collapse_pte_mapped_thp,
                                                hpage_collapse_scan_file, shmem_collapse_allowed, shmem_vma)
from faultlab.kernel.mm.shmem_huge import shmem_vma_suitable
from faultlab.kernel.mm.khugepaged import (SCAN_ALLOC_HUGE_PAGE_FAIL, SCAN_PMD_MAPPED, SCAN_PMD_NULL,
                                           SCAN_SUCCEED, collapse_huge_page, folio_likely_mapped_shared,
                                           is_refcount_suitable)
from faultlab.kernel.mm.page_alloc import PG_anon, PG_referenced
from faultlab.kernel.mm.pgtable import _PAGE_ACCESSED, _PAGE_PRESENT, PMD_SHIFT, PMD_SIZE, pte_pfn
from faultlab.kernel.mm.thp_sysfs import THP, _show_choice, _store_choice, _store_number
from faultlab.kernel.mm.userfaultfd_k import VM_UFFD_FLAGS, _PAGE_UFFD_WP

# the further scan results of hpage_collapse_scan_pmd (enum scan_result)
SCAN_EXCEED_NONE_PTE, SCAN_EXCEED_SWAP_PTE = 'exceed_none_pte', 'exceed_swap_pte'
SCAN_EXCEED_SHARED_PTE, SCAN_LACK_REFERENCED_PAGE = 'exceed_shared_pte', 'lack_referenced_page'
SCAN_PAGE_NULL, SCAN_PAGE_ANON, SCAN_PAGE_COUNT = 'page_null', 'page_anon', 'page_count'
SCAN_PTE_UFFD_WP = 'uffd_wp'
SCAN_FAIL_NONE = 'fail'


class KhugepagedMmSlot:
    """struct khugepaged_mm_slot: one mm on khugepaged's list."""

    def __init__(self, mm):
        self.mm = mm


def knob(svc, name):
    """The value of /sys/kernel/mm/transparent_hugepage/khugepaged/NAME."""
    return thp_state(svc).values['khugepaged/' + name]


def hugepage_pmd_enabled(svc):
    """hugepage_pmd_enabled: 'enabled' is always or madvise, or shmem may have huge pages
    (shmem_hpage_pmd_enabled): khugepaged has something to do."""
    st = thp_state(svc)
    return st is not None and (st.values['enabled'] != 'never' or shmem_hpage_pmd_enabled(st.values))


def shmem_hpage_pmd_enabled(values):
    """shmem_hpage_pmd_enabled: shmem_enabled is not deny, and the PMD size's shmem knob or (inherit)
    the top-level one is not never."""
    if values['shmem_enabled'] == 'deny':
        return False
    per_size = values.get(thp_size_dir(HPAGE_PMD_ORDER) + '/shmem_enabled', 'inherit')
    if per_size != 'inherit':
        return per_size != 'never'
    return values['shmem_enabled'] != 'never'


def hpage_collapse_test_exit_or_disable(mm):
    """hpage_collapse_test_exit_or_disable: the mm has exited or PR_SET_THP_DISABLE is set."""
    return getattr(mm, 'exited', False) or getattr(mm, 'mmf_disable_thp', False)


def hpage_collapse_scan_pmd(mm, vma, haddr):
    """hpage_collapse_scan_pmd (anonymous memory, cc->is_khugepaged): look at the 512 PTEs of one
    aligned 2 MiB range with khugepaged's limits; collapse it (collapse_huge_page) when they allow.
    Returns (scan result, cycles of the scan itself)."""
    svc = mm.svc
    pgt = mm.pgtables
    if (haddr >> PMD_SHIFT) in pgt.thp:
        return SCAN_PMD_MAPPED, 0
    slot = pgt.pmd_slot(haddr, create=False)
    if slot is None or not svc.frames.phys.read64(slot) & _PAGE_PRESENT:
        return SCAN_PMD_NULL, 0
    max_none, max_swap = knob(svc, 'max_ptes_none'), knob(svc, 'max_ptes_swap')
    max_shared = knob(svc, 'max_ptes_shared')
    present = {va: pte for va, _slot, pte in pgt.present_ptes(haddr, haddr + PMD_SIZE, split=False)}
    cost = HPAGE_PMD_NR * svc.cost('khugepaged_pte_scan')
    armed = vma.vm_flags & VM_UFFD_FLAGS
    pages = svc.frames.pages
    none_or_zero = unmapped = shared = referenced = 0
    for i in range(HPAGE_PMD_NR):
        pte = present.get(haddr + (i << 12), 0)
        page = pages[pte_pfn(pte)] if pte & _PAGE_PRESENT else None
        if not pte or page is svc.zero_page:
            none_or_zero += 1
            if not armed and none_or_zero <= max_none:
                continue
            svc.stats['thp_scan_exceed_none_pte'] += 1
            return SCAN_EXCEED_NONE_PTE, cost
        if not pte & _PAGE_PRESENT:                  # is_swap_pte
            unmapped += 1
            if unmapped <= max_swap:
                continue
            svc.stats['thp_scan_exceed_swap_pte'] += 1
            return SCAN_EXCEED_SWAP_PTE, cost
        if pte & _PAGE_UFFD_WP:
            return SCAN_PTE_UFFD_WP, cost
        if page is None:
            return SCAN_PAGE_NULL, cost
        if folio_likely_mapped_shared(svc, page):
            shared += 1
            if shared > max_shared:
                svc.stats['thp_scan_exceed_share_pte'] += 1
                return SCAN_EXCEED_SHARED_PTE, cost
        if not page.flags & PG_anon:
            return SCAN_PAGE_ANON, cost
        if not is_refcount_suitable(svc, page):
            return SCAN_PAGE_COUNT, cost
        if pte & _PAGE_ACCESSED or page.flags & PG_referenced:
            referenced += 1
    if not referenced or (unmapped and referenced < HPAGE_PMD_NR // 2):
        return SCAN_LACK_REFERENCED_PAGE, cost
    alloc_reclaim(svc)
    return collapse_huge_page(mm, vma, haddr), cost


def alloc_reclaim(svc):
    """alloc_charge_folio's gfp for khugepaged (alloc_hugepage_khugepaged_gfpmask): with khugepaged/defrag
    set the allocation may reclaim directly (__GFP_DIRECT_RECLAIM), so memory is freed up to the low
    watermark plus the huge page before the allocation is tried (without waiting for swap writes);
    with defrag 0 it takes what is free or fails."""
    rec = svc.reclaim
    if not knob(svc, 'defrag') or rec is None:
        return
    short = rec.wmark_low + HPAGE_PMD_NR - svc.frames.nr_free
    if short > 0:
        svc.stats['khugepaged_direct_reclaim'] += 1
        rec.try_to_free_pages(short, may_wait=False)


class Khugepaged:
    """The khugepaged kernel thread of one machine, on the simulated clock (schedule(when, callback)),
    with now(), the CPU frequency, the live mms and quiet() (True when no task can run and nothing
    else is due)."""

    def __init__(self, svc, schedule, now, freq_hz, live_mms, quiet):
        self.svc = svc
        self._schedule = schedule
        self._now = now
        self.freq_hz = freq_hz
        self._live_mms = live_mms
        self._quiet = quiet
        self.slots = {}                # mm -> KhugepagedMmSlot, in the order they entered (khugepaged_scan.mm_head)
        self.scan_mm = None            # khugepaged_scan.mm_slot's mm, None at the head of the list
        self.scan_address = 0          # khugepaged_scan.address
        self.pages_collapsed = 0       # khugepaged_pages_collapsed
        self.full_scans = 0            # khugepaged_full_scans
        self.pending = False           # an event is queued
        self.gen = 0                   # the queued event's number (a newer wake-up replaces it)
        self.alloc_retry = False       # the next pass continues one that slept after an allocation failure
        self.cycles = 0                # what khugepaged's scanning cost so far
        svc.khugepaged = self

    # ---- the mm list -------------------------------------------------------------------------
    def enter_vma(self, mm, vma):
        """khugepaged_enter_vma: an mm with a VMA THP may be used in (the sysfs policy enforced)
        enters the list once (__khugepaged_enter, MMF_VM_HUGEPAGE) and wakes khugepaged."""
        if mm in self.slots or not hugepage_pmd_enabled(self.svc) or not vma_collapsible(mm, vma):
            return
        if hpage_collapse_test_exit_or_disable(mm):
            return
        self.slots[mm] = KhugepagedMmSlot(mm)
        self.wake()

    def collect_dead(self):
        """collect_mm_slot: the slots of mms that exited leave the list."""
        alive = set(map(id, self._live_mms()))
        for mm in [m for m in self.slots if id(m) not in alive]:
            del self.slots[mm]
            if self.scan_mm is mm:
                self.scan_mm = None

    def has_work(self):
        """khugepaged_has_work: some mm is listed and THP is on."""
        self.collect_dead()
        return bool(self.slots) and hugepage_pmd_enabled(self.svc)

    def wake(self):
        """wake_up_interruptible(&khugepaged_wait): queue a scan now if khugepaged sleeps."""
        if not self.pending and self.has_work():
            self._queue(self._now())

    def sleep_expired(self):
        """A store to scan_sleep_millisecs, alloc_sleep_millisecs or enabled (khugepaged_sleep_expire = 0,
        start_stop_khugepaged): the thread wakes now and scans with the new values."""
        self.pending = False
        self.wake()

    def _queue(self, when):
        self.pending = True
        self.gen += 1
        gen = self.gen
        self._schedule(when, lambda w: self._run(w, gen))

    # ---- the thread --------------------------------------------------------------------------
    def _run(self, when, gen):
        """One pass of khugepaged(): khugepaged_do_scan, then khugepaged_wait_work (scan_sleep_millisecs,
        or alloc_sleep_millisecs after an allocation failed twice in one pass)."""
        if gen != self.gen:
            return                     # woken earlier since this was queued
        self.pending = False
        if not self.has_work():
            return
        t0 = self._now()
        wait, self.alloc_retry = not self.alloc_retry, False
        alloc_failed = self.khugepaged_do_scan(wait)
        self.alloc_retry = alloc_failed     # the pass goes on after khugepaged_alloc_sleep, without waiting again
        cost = self._now() - t0
        self.cycles += cost
        self.svc.stats['khugepaged_cycles'] += int(cost)
        if self._quiet() or not self.has_work():
            return
        ms = knob(self.svc, 'alloc_sleep_millisecs' if alloc_failed else 'scan_sleep_millisecs')
        sleep = ms * self.freq_hz // 1000
        self._queue(when + cost + max(sleep, self.svc.cost('context_switch')))

    def khugepaged_do_scan(self, wait=True):
        """khugepaged_do_scan: scan up to pages_to_scan PTEs, passing the head of the list at most
        twice; True when the huge page allocation failed and wait is set (the thread sleeps
        alloc_sleep_millisecs in khugepaged_alloc_sleep, then goes on with wait cleared: a second
        failure ends the pass)."""
        pages = knob(self.svc, 'pages_to_scan')
        progress = pass_through_head = 0
        while True:
            if self.scan_mm is None:
                pass_through_head += 1
            if self.has_work() and pass_through_head < 2:
                n, result = self.khugepaged_scan_mm_slot(pages - progress)
                progress += n
            else:
                progress = pages
            if progress >= pages:
                return False
            if result == SCAN_ALLOC_HUGE_PAGE_FAIL:
                return wait

    def khugepaged_scan_mm_slot(self, pages):
        """khugepaged_scan_mm_slot: walk the eligible VMAs of the current mm from scan_address, one
        aligned 2 MiB range at a time, until pages PTEs were looked at; at the end of the mm move to
        the next one (a full scan is counted after the last). Returns (progress, last result)."""
        svc = self.svc
        if self.scan_mm is None:
            self.scan_mm = next(iter(self.slots))
            self.scan_address = 0
        mm = self.scan_mm
        progress = 0
        result = SCAN_FAIL_NONE
        done_mm = True
        if not hpage_collapse_test_exit_or_disable(mm):
            for vma in list(mm.vmas):
                svc.charge('vma_lookup')
                shmem = shmem_vma(vma)
                if not (shmem_collapse_allowed(mm, vma, False) if shmem else thp_vma_allowable(mm, vma)):
                    progress += 1
                    continue
                hstart = (vma.vm_start + PMD_SIZE - 1) & HPAGE_PMD_MASK
                hend = vma.vm_end & HPAGE_PMD_MASK
                if self.scan_address > hend:
                    progress += 1
                    continue
                self.scan_address = max(self.scan_address, hstart)
                stop = False
                while self.scan_address < hend:
                    if shmem:
                        result, cost = khugepaged_scan_file(mm, vma, self.scan_address)
                    else:
                        result, cost = hpage_collapse_scan_pmd(mm, vma, self.scan_address)
                    svc.charge_cycles(cost)
                    if result == SCAN_SUCCEED:
                        self.pages_collapsed += 1
                    self.scan_address += PMD_SIZE
                    progress += HPAGE_PMD_NR
                    if progress >= pages:
                        stop = True
                        break
                if stop:                             # the mm's scan goes on at the next pass
                    done_mm = False
                    break
        if done_mm:
            keys = list(self.slots)
            i = keys.index(mm) if mm in self.slots else len(keys)
            if i + 1 < len(keys):
                self.scan_mm = keys[i + 1]
                self.scan_address = 0
            else:
                self.scan_mm = None
                self.full_scans += 1
            self.collect_dead()
        return progress, result


def vma_collapsible(mm, vma):
    """hugepage_vma_check for khugepaged: anonymous memory THP may use, or a shmem VMA that allows
    huge pages (the sysfs policy enforced)."""
    if shmem_vma(vma):
        return shmem_collapse_allowed(mm, vma, False)
    return thp_vma_allowable(mm, vma)


def khugepaged_scan_file(mm, vma, haddr):
    """khugepaged's file side: hpage_collapse_scan_file with max_ptes_none, and for a range already
    held by a huge folio, collapse_pte_mapped_thp."""
    if not shmem_vma_suitable(vma, haddr):
        return SCAN_FAIL_NONE, 0
    result, cost = hpage_collapse_scan_file(mm, vma, haddr, knob(mm.svc, 'max_ptes_none'))
    if result == SCAN_PTE_MAPPED_HUGEPAGE and collapse_pte_mapped_thp(mm, vma, haddr, False):
        result = SCAN_SUCCEED
    return result, cost


def khugepaged_enter_vma(mm, vma):
    """khugepaged_enter_vma for callers that have only the mm: no-op before khugepaged starts."""
    kh = getattr(mm.svc, 'khugepaged', None)
    if kh is not None:
        kh.enter_vma(mm, vma)


def khugepaged_init(k):
    """start_stop_khugepaged: khugepaged on the machine's simulated clock (asleep until an mm enters),
    its counters in sysfs (pages_collapsed_show, full_scans_show), and the stores that wake it
    (scan_sleep_millisecs_store, alloc_sleep_millisecs_store, enabled_store). After register_sysfs."""
    def quiet():
        return not k.events.pending and len(k.sched.blocked_tasks()) >= k.nr_live_tasks()
    kh = Khugepaged(k.mmsvc, k.events.schedule, k.now, k.costs.freq_hz, k._all_mms, quiet)
    values = thp_state(k.mmsvc).values
    reg = k.vfs.register_synth
    reg(THP + 'khugepaged/pages_collapsed', lambda: '%d\n' % kh.pages_collapsed, None, 0o444)
    reg(THP + 'khugepaged/full_scans', lambda: '%d\n' % kh.full_scans, None, 0o444)

    def waking(store, name):
        def write(data):
            store(name, values, data)
            kh.sleep_expired()
        return write
    for name in ('khugepaged/scan_sleep_millisecs', 'khugepaged/alloc_sleep_millisecs'):
        reg(THP + name, lambda n=name: '%d\n' % values[n], waking(_store_number, name), 0o644)
    reg(THP + 'enabled', lambda: _show_choice('enabled', values), waking(_store_choice, 'enabled'), 0o644)
    return kh


__all__ = ['Khugepaged', 'khugepaged_enter_vma', 'khugepaged_init', 'hpage_collapse_scan_pmd']
