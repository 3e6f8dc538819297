"""Faulting pages in from the kernel side (mm/gup.c): populate, and access to user memory."""
from kernel.mm.memory import handle_mm_fault
from kernel.mm.mm_types import FAULT_FLAG_WRITE, FAULT_FLAG_REMOTE, VM_FAULT_ERROR
from kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_RW


def faultin_page(mm, vma, address, write):
    """Make one page present (and writable if asked) through handle_mm_fault; VM_FAULT bits."""
    pte = mm.pgtables.get_pte(address)
    if pte & _PAGE_PRESENT and (not write or pte & _PAGE_RW):
        return 0
    ret, vmf = handle_mm_fault(mm, vma, address, FAULT_FLAG_WRITE if write else 0)
    mm.svc.stats['kernel_faultins'] += 1
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
        while addr < stop:
            if faultin_page(mm, vma, addr, write) & VM_FAULT_ERROR:
                return
            addr += 4096
