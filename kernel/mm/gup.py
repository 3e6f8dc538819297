"""Faulting pages in from the kernel side (mm/gup.c): populate, and access to user memory."""
import errno

from faultlab.kernel.hostlimit import fatal_signal_pending
from faultlab.kernel.mm.memory import handle_mm_fault
from faultlab.kernel.mm.mm_types import (FAULT_FLAG_WRITE, VM_FAULT_ERROR, VM_FAULT_OOM, VM_FAULT_HWPOISON,
                                VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, VM_FAULT_MAJOR, VM_FAULT_RETRY)
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_RW
from faultlab.kernel.mm.vma import VM_READ, VM_WRITE, VM_EXEC, VM_IO, VM_PFNMAP
from faultlab.kernel.mm.hugetlb_types import vma_kernel_pagesize
from faultlab.kernel.mm.userfaultfd_k import UserfaultRetry

EHWPOISON = 133          # not in Python's errno module; Linux asm-generic/errno.h


def mm_account_gup_fault(mm, ret):
    """mm_account_fault for a fault taken by GUP (no regs): vmstat's pgfault counts it (failed ones too),
    the current task's min_flt/maj_flt count a resolved one, perf's page-fault events do not."""
    if ret & VM_FAULT_RETRY:
        return
    svc = mm.svc
    svc.stats['gup_pgfault'] += 1
    if ret & VM_FAULT_ERROR:
        return
    task = svc.sched.current_task()
    if task is None:
        return
    if ret & VM_FAULT_MAJOR:
        svc.stats['gup_pgmajfault'] += 1
        task.majflt += 1
    else:
        task.minflt += 1


def faultin_page(mm, vma, address, write, account=True):
    """Make one page present (and writable if asked) through handle_mm_fault; VM_FAULT bits. account: the
    fault is GUP's (mm_account_gup_fault); khugepaged's swap-in (do_swap_page, no mm_account_fault) and a
    copy_to/from_user fault pass False (the latter is a CPU fault in Linux, counted with regs: faultlab
    counts neither it nor its perf event)."""
    pte = mm.pgtables.get_pte(address)
    if pte & _PAGE_PRESENT and (not write or pte & _PAGE_RW):
        mm.svc.charge('pgtable_walk_level', 4)     # follow_page: the walk finds it mapped
        return 0
    ret, vmf = handle_mm_fault(mm, vma, address, FAULT_FLAG_WRITE if write else 0)
    mm.svc.stats['kernel_faultins'] += 1
    if account:
        mm_account_gup_fault(mm, ret)
    if ret & VM_FAULT_RETRY and vmf.handler == 'handle_userfault':
        raise UserfaultRetry()          # asleep in handle_userfault: the system call runs again
    return ret


def populate_vma_page_range(mm, start, end, write):
    """MAP_POPULATE / mlock: fault in every page of [start, end) that lies in a VMA; errors ignored."""
    addr = start
    while addr < end:
        vma = mm.vmas.vma_lookup(addr)
        if vma is None:
            nxt = mm.vmas.find_vma(addr)
            if nxt is None or nxt.vm_start >= end:
                return
            addr = nxt.vm_start
            continue
        stop = min(end, vma.vm_end)
        if not vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC):
            addr = stop                      # check_vma_flags: a PROT_NONE VMA is not populated
            continue
        step = vma_kernel_pagesize(vma)
        while addr < stop:
            if fatal_signal_pending() or faultin_page(mm, vma, addr, write) & VM_FAULT_ERROR:
                return
            addr = (addr & ~(step - 1)) + step


def faultin_vma_page_range(mm, vma, start, end, write):
    """Fault in [start, end) of one VMA through handle_mm_fault, as the CPU would (no trap costs).

    Returns (pages done, -errno or 0): -EINVAL for a mapping that cannot be populated this way,
    -ENOMEM, -EHWPOISON, -EFAULT (SIGBUS/SIGSEGV) as madvise(MADV_POPULATE_*) reports them, -EINTR
    when the run's host time limit (a fatal signal) interrupts it.
    """
    if vma.vm_flags & (VM_IO | VM_PFNMAP):
        return 0, -errno.EINVAL
    if not vma.vm_flags & (VM_WRITE if write else VM_READ):
        return 0, -errno.EINVAL
    done = 0
    step = vma_kernel_pagesize(vma)             # follow_hugetlb_page: one fault per huge page
    for addr in range(start & ~(step - 1), end, step):
        if fatal_signal_pending():
            return done, -errno.EINTR          # __get_user_pages: a fatal signal ends the walk
        ret = faultin_page(mm, vma, max(addr, start), write)
        if ret & VM_FAULT_MAJOR:
            mm.svc.stats['populate_major'] += 1
        if ret & VM_FAULT_ERROR:
            if ret & VM_FAULT_OOM:
                return done, -errno.ENOMEM
            if ret & VM_FAULT_HWPOISON:
                return done, -EHWPOISON
            return done, -errno.EFAULT
        done += (min(end, addr + step) - max(addr, start)) >> 12
    return done, 0
