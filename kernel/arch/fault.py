"""The x86 page-fault entry (arch/x86/mm/fault.c): error-code decoding, VMA checks, signals."""
from faultlab.kernel.mm.memory import handle_mm_fault
from faultlab.kernel.mm.mm_types import (FAULT_FLAG_WRITE, FAULT_FLAG_USER, FAULT_FLAG_INSTRUCTION, FAULT_FLAG_ALLOW_RETRY,
                                FAULT_FLAG_KILLABLE, FAULT_FLAG_TRIED, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV,
                                VM_FAULT_HWPOISON, VM_FAULT_MAJOR, VM_FAULT_RETRY, TASK_SIZE)
from faultlab.kernel.mm.mmap import expand_stack
from faultlab.kernel.mm.mmap_lock import mmap_read_lock, mmap_read_unlock
from faultlab.kernel.mm.spf import handle_speculative_fault
from faultlab.kernel.mm.vma import VM_READ, VM_WRITE, VM_EXEC, VM_GROWSDOWN

# enum x86_pf_error_code
X86_PF_PROT = 1 << 0
X86_PF_WRITE = 1 << 1
X86_PF_USER = 1 << 2
X86_PF_RSVD = 1 << 3
X86_PF_INSTR = 1 << 4
X86_PF_PK = 1 << 5

SIGBUS, SIGSEGV = 7, 11
SEGV_MAPERR, SEGV_ACCERR = 1, 2
BUS_ADRERR, BUS_MCEERR_AR = 2, 4


def access_str(error_code):
    """'instruction fetch', 'write' or 'read': the access the error code describes."""
    if error_code & X86_PF_INSTR:
        return 'instruction fetch'
    return 'write' if error_code & X86_PF_WRITE else 'read'


class FaultResult:
    """What do_user_addr_fault decided: resolved, or a signal with its reason."""
    __slots__ = ('signal', 'si_code', 'reason', 'vmf', 'ret', 'vma')

    def __init__(self, signal=0, si_code=0, reason='', vmf=None, ret=0, vma=None):
        self.signal = signal
        self.si_code = si_code
        self.reason = reason
        self.vmf = vmf
        self.ret = ret
        self.vma = vma


def bad_area(si_code, reason, vma=None):
    """The SIGSEGV of an address with no mapping (SEGV_MAPERR) or one the mapping forbids (SEGV_ACCERR)."""
    return FaultResult(SIGSEGV, si_code, reason, vma=vma)


def access_error(error_code, vma):
    """True if the access the error code describes is not allowed by the VMA."""
    if error_code & X86_PF_WRITE:
        return not vma.vm_flags & VM_WRITE
    if error_code & X86_PF_INSTR:
        return not vma.vm_flags & VM_EXEC
    if error_code & X86_PF_PROT:
        return True          # read fault on a present page: the PTE forbids it (PROT_NONE)
    return not vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC)


def do_user_addr_fault(mm, address, error_code, extra_flags=0):
    """Handle a user-mode #PF on mm; returns a FaultResult (signal 0 when the fault was resolved)."""
    if error_code & X86_PF_RSVD:
        return FaultResult(SIGBUS, BUS_ADRERR, 'reserved bit set in a page-table entry')
    if address >= TASK_SIZE:
        return bad_area(SEGV_MAPERR if not error_code & X86_PF_PROT else SEGV_ACCERR, 'address in the kernel half')
    flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE | FAULT_FLAG_USER | extra_flags
    if error_code & X86_PF_WRITE:
        flags |= FAULT_FLAG_WRITE
    if error_code & X86_PF_INSTR:
        flags |= FAULT_FLAG_INSTRUCTION
    if mm.users == 1:
        return _do_classic_fault(mm, address, error_code, flags)
    # threads share this mm: try without mmap_lock first (never for mono-threaded processes)
    if mm.svc.spf:
        spf = handle_speculative_fault(mm, address, flags, lambda vma: not access_error(error_code, vma))
        if spf is not None and not spf[0] & VM_FAULT_RETRY:
            return mm_fault_error(spf[0], spf[1], spf[1].vma)
        flags |= FAULT_FLAG_TRIED if spf is not None else 0
    t_acq = mmap_read_lock(mm)
    res = _do_classic_fault(mm, address, error_code, flags)
    mmap_read_unlock(mm, t_acq)
    return res


def _do_classic_fault(mm, address, error_code, flags):
    """The fault under mmap_lock: find the VMA, grow the stack, check access, handle_mm_fault."""
    vma = mm.find_vma(address)
    if vma is None:
        return bad_area(SEGV_MAPERR, 'no mapping at this address')
    if vma.vm_start > address:
        if not vma.vm_flags & VM_GROWSDOWN:
            return bad_area(SEGV_MAPERR, 'no mapping at this address')
        if expand_stack(mm, vma, address):
            return bad_area(SEGV_MAPERR, 'stack cannot grow here (rlimit or guard gap)', vma)
    if access_error(error_code, vma):
        return bad_area(SEGV_ACCERR, '%s not allowed by the mapping (%s)' % (access_str(error_code), vma.prot_str()),
                        vma)
    ret, vmf = handle_mm_fault(mm, vma, address, flags)
    return mm_fault_error(ret, vmf, vma)


def sigbus_reason(vmf):
    """What a VM_FAULT_SIGBUS report says happened, from the handler that gave up."""
    handler = (vmf.handler or '') if vmf is not None else ''
    if 'ENOSPC' in handler:
        return 'no space left on the filesystem for the page (ENOSPC from shmem_fault or page_mkwrite)'
    if 'hugetlb' in handler and 'EOF' not in handler:
        return 'no huge page left in the hugetlb pool'
    return 'access beyond the end of the mapped file'


def mm_fault_error(ret, vmf, vma):
    """handle_mm_fault's VM_FAULT_* as a FaultResult: resolved, OOM (signal -1), SIGBUS or SIGSEGV."""
    res = FaultResult(ret=ret, vmf=vmf, vma=vma)
    if ret & VM_FAULT_OOM:
        res.signal, res.reason = -1, 'out of memory'
    elif ret & VM_FAULT_HWPOISON:
        res.signal, res.si_code, res.reason = SIGBUS, BUS_MCEERR_AR, 'hardware-poisoned page'
    elif ret & VM_FAULT_SIGBUS:
        res.signal, res.si_code, res.reason = SIGBUS, BUS_ADRERR, sigbus_reason(vmf)
    elif ret & VM_FAULT_SIGSEGV:
        res.signal, res.si_code, res.reason = SIGSEGV, SEGV_ACCERR, 'fault handler refused the access'
    return res


__all__ = ['do_user_addr_fault', 'access_str', 'VM_FAULT_MAJOR', 'VM_FAULT_RETRY']
