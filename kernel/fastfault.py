"""When the CPU may resolve anonymous write faults natively, and the kernel's bookkeeping for those it did.

After the kernel handled a write fault with do_anonymous_page it arms the CPU's native fault hook
(emu/core/fastfault.py) for the rest of that VMA, if nothing could tell the difference: one live task (on
any number of CPUs: the scheduler lets a lone task run freely, and its faults are billed to the CPU it
runs on either way), no pending timed event, no debugger, tracer, per-fault invariant check or profiler, an anonymous private
writable VMA of the plain kind, and enough free memory that none of the next faults would reclaim.
It hands the hook a pool of frames taken from the allocator in alloc_page order. At the next trap the
CPU disarms the hook and calls `fast_faults_done`, which bills and records the faults as the Python
path would have (the same costs, counters and per-handler breakdown, for the batch at once), then gives the
unused frames back so the allocator hands them out in the same order again.

One thing can differ, by design: the last-level-cache model checks the pages an earlier fault mapped
for their first user access (kernel/mm/llc.py) once for the batch instead of at each fault, so such a
page may be found touched a few faults earlier than the Python path would find it, and its cache state
judged a few page-clears earlier. Everything else (instructions, faults, every other cost) is the same.
"""
from faultlab.kernel.arch.cpu_interface import FAST_FAULT_POOL as POOL_CAPACITY
from faultlab.kernel.mm.huge_memory import thp_vma_allowable, thp_vma_allowable_orders
from faultlab.kernel.mm.memory import anon_write_faults_done, anon_write_pte_bits
from faultlab.kernel.mm.pgtable import _PAGE_SOFT_DIRTY
from faultlab.kernel.mm.vma import (VM_GROWSDOWN, VM_HUGETLB, VM_IO, VM_LOCKED, VM_LOCKONFAULT, VM_PFNMAP, VM_SHARED,
                           VM_WRITE)

_NOT_PLAIN = VM_SHARED | VM_LOCKED | VM_LOCKONFAULT | VM_HUGETLB | VM_GROWSDOWN | VM_PFNMAP | VM_IO
MIN_POOL = 8                 # not worth arming for fewer faults


class FastFaults:
    """The armed state: the VMA and the frames handed to the CPU."""

    def __init__(self, kernel):
        self.k = kernel
        self.enabled = True
        self.vma = None
        self.taken = None         # (pfns, how many came from the free list) while armed
        self.armed_count = 0      # times armed
        self.handled = 0          # faults the CPU resolved natively

    def _observed(self):
        """Something would see a difference (or needs every fault in Python)."""
        k = self.k
        chk = k.vm_checker          # --check verifies at traps (after the batch is accounted); not 'full'
        return (k.tracer is not None or k.debugger is not None or (chk is not None and chk.full) or
                k.events.pending or k.nr_live_tasks() != 1 or k.cpu.profiling)

    def arm_after_fault(self, task, vma):
        """A write fault was just resolved by do_anonymous_page in vma: arm the CPU for the VMA."""
        if not self.enabled or vma is None or not vma.anon or vma.vm_flags & _NOT_PLAIN or \
                not vma.vm_flags & VM_WRITE or task.mm.users != 1 or self._observed():
            return
        if thp_vma_allowable(task.mm, vma) or thp_vma_allowable_orders(task.mm, vma) & 0x1FF:
            return                   # its faults may map large folios (do_huge_pmd_anonymous_page, alloc_anon_folio)
        k = self.k
        frames = k.frames
        rec = k.mmsvc.reclaim
        room = frames.nr_free - (rec.wmark_low if rec is not None else 0) - 1
        n = min(POOL_CAPACITY, room, (vma.vm_end - vma.vm_start) >> 12)
        if n < MIN_POOL:
            return
        mm = task.mm
        pfns, from_free = self.taken = frames.take_frames(n)
        self.vma = vma
        vdso = mm.vmas.find_vma(mm.vdso_base) if getattr(mm, 'vdso_base', 0) else None
        vstart, vsize = (vdso.vm_start, vdso.vm_end - vdso.vm_start) if vdso is not None else (0, 0)
        k.cpu.arm_fast_faults(vma.vm_start, vma.vm_end, anon_write_pte_bits(vma) | _PAGE_SOFT_DIRTY, mm.cr3,
                              vstart, vsize, pfns)
        self.armed_count += 1

    def fast_faults_done(self, entries):
        """The CPU resolved `entries` natively with the first len(entries) pool frames: account the
        faults; take the rest of the pool back."""
        k = self.k
        task = k.current
        mm = task.mm
        vma = self.vma
        pages = k.frames.pages
        if entries:
            # one record for the batch: every fault has the same costs but for cache misses
            t0 = k.kcycles + k.idle_cycles
            rec = k.begin_fault_record()
            k.charge('exception_entry', len(entries))
            faults = [(e[0], pages[e[2]]) for e in entries]
            k.frames.init_taken([page for _va, page in faults])
            anon_write_faults_done(mm, vma, faults)
            k.charge('exception_exit', len(entries))
            k.end_fault_record()
            k.account_fault(task, 'do_anonymous_page', 0, rec, t0, len(entries))
        self.handled += len(entries)
        pfns, from_free = self.taken
        k.frames.return_frames(pfns, from_free, len(entries))
        self.taken = None
        self.vma = None
