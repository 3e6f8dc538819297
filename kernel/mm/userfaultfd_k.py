"""The fault side of userfaultfd (include/linux/userfaultfd_k.h, fs/userfaultfd.c handle_userfault).

A VMA registered with a userfaultfd carries VM_UFFD_MISSING, VM_UFFD_WP and/or VM_UFFD_MINOR; the
context it belongs to is found through its mm (`mm.uffd_ranges`: [start, end, ctx] entries that
registration writes, as vma->vm_userfaultfd_ctx). A fault the mode covers goes to
handle_userfault: with UFFD_FEATURE_SIGBUS it is a SIGBUS; otherwise a uffd_msg is queued on the
context, the faulting thread sleeps (in simulated time: its CPU runs another task or idles) and the
fault returns VM_FAULT_RETRY; once a resolving ioctl (or UFFDIO_WAKE, or the descriptor's last
close) wakes it, the thread runs the faulting instruction again. With UFFD_FEATURE_WP_ASYNC a write
to a write-protected page queues nothing: the kernel clears the uffd-wp state itself
(userfaultfd_wp_async; do_wp_page's and hugetlb_fault's asynchronous path) and the page is written,
which PAGEMAP_SCAN then reports (kernel/mm/pagemap_scan.py).

A fault from the kernel's own access to user memory (copy_to_user/copy_from_user, gup, MADV_POPULATE:
FAULT_FLAG_USER clear) inside a system call sleeps the same way; faultin_page then raises
UserfaultRetry, the call leaves the CPU unfinished and, once woken, runs again from its start and
finds the page (Linux resumes the copy where it stopped; the calls that copy to user memory after a
side effect undo it first, as read() restores the file position).
"""
import struct

from faultlab.kernel.mm.mm_types import (FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_RETRY_NOWAIT, FAULT_FLAG_SPECULATIVE,
                                FAULT_FLAG_USER, FAULT_FLAG_WRITE, VM_FAULT_RETRY, VM_FAULT_SIGBUS)
from faultlab.kernel.mm.pgtable import (_PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, protection_map,
                                        swp_entry_to_pte)
from faultlab.kernel.mm.vma import VM_EXEC, VM_HUGETLB, VM_READ, VM_WRITE
from faultlab.kernel.signal import ERESTARTSYS

VM_UFFD_MISSING = 0x00000200
VM_UFFD_WP = 0x00001000
VM_UFFD_MINOR = 1 << 41
VM_UFFD_FLAGS = VM_UFFD_MISSING | VM_UFFD_WP | VM_UFFD_MINOR
_PAGE_UFFD_WP = 1 << 10              # _PAGE_SOFTW2: the PTE is write-protected for userfaultfd
_PAGE_SWP_UFFD_WP = 1 << 2           # _PAGE_USER of a swap PTE: it was write-protected when swapped out

# UFFDIO_POISON's PTE marker (PTE_MARKER_POISONED): a hwpoison swap entry at an offset naming no
# page; a fault on it in a registered range is VM_FAULT_SIGBUS (BUS_ADRERR, as Linux 6.18 reports
# it); zap and munmap drop it like any hwpoison entry
POISON_MARKER_OFFSET = (1 << 36) - 1
POISON_MARKER = swp_entry_to_pte(31, POISON_MARKER_OFFSET)     # swap type SWP_HWPOISON
# the uffd-wp marker (PTE_MARKER_UFFD_WP) of an empty PTE write-protected in shmem, or in anonymous
# memory with UFFD_FEATURE_WP_UNPOPULATED: the page mapped there later is write-protected
WP_MARKER = swp_entry_to_pte(31, POISON_MARKER_OFFSET - 1)

UFFD_EVENT_PAGEFAULT = 0x12
UFFD_PAGEFAULT_FLAG_WRITE, UFFD_PAGEFAULT_FLAG_WP, UFFD_PAGEFAULT_FLAG_MINOR = 1, 2, 4
UFFD_FEATURE_SIGBUS = 1 << 7
UFFD_FEATURE_WP_UNPOPULATED = 1 << 13
UFFD_FEATURE_WP_ASYNC = 1 << 15
UFFD_FEATURE_THREAD_ID = 1 << 8
UFFD_USER_MODE_ONLY = 1


class UserfaultRetry(Exception):
    """A kernel access to user memory went to userfaultfd: the system call sleeps and restarts."""


class UserfaultWaitQueue:
    """struct userfaultfd_wait_queue: one thread sleeping in a fault, with the message it queued, and
    what its wake-up returns (None: the faulting instruction runs again; -ERESTARTSYS: the system
    call whose copy faulted runs again)."""
    __slots__ = ('task', 'msg', 'address', 'since', 'ret')

    def __init__(self, task, msg, address, since, ret=None):
        self.task = task
        self.msg = msg
        self.address = address
        self.since = since
        self.ret = ret


def vma_is_shmem(vma):
    """The VMA maps a tmpfs file (shmem, memfd, MAP_SHARED anonymous memory)."""
    f = vma.vm_file
    return f is not None and not vma.vm_flags & VM_HUGETLB and getattr(f.inode.sb, 'fstype', '') == 'tmpfs'


def hugetlb_cached_page(vma, address):
    """The hugetlbfs file's page behind address (huge index as vma_hugecache_offset), or None."""
    idx = ((address - vma.vm_start) >> 21) + (vma.vm_pgoff >> 9)
    return vma.vm_file.inode.hpages.get(idx)


def hugetlb_userfault(mm, vmf, entry):
    """The userfaultfd checks of hugetlb_fault and hugetlb_no_page (mm/hugetlb.c): a missing page in
    the file (past EOF is still SIGBUS), a MINOR fault on a page the file has, a write to a uffd-wp
    huge PMD (with UFFD_FEATURE_WP_ASYNC the kernel clears the bit itself and goes on to the CoW
    path, as hugetlb_fault does), a uffd-wp marker; the VM_FAULT_* result, or None when the kernel
    handles the fault."""
    vma = vmf.vma
    f = vma.vm_flags
    marker = entry == WP_MARKER | _PAGE_PSE
    if entry == 0 or marker:                  # hugetlb_no_page: a marker is none to it
        inode = vma.vm_file.inode
        if ((vmf.address - vma.vm_start) >> 21) + (vma.vm_pgoff >> 9) >= (inode.size + (1 << 21) - 1) >> 21:
            return None
        cached = hugetlb_cached_page(vma, vmf.address) is not None
        if not cached and f & VM_UFFD_MISSING:
            return handle_userfault(mm, vmf, VM_UFFD_MISSING)
        if cached and f & VM_UFFD_MINOR:
            return handle_userfault(mm, vmf, VM_UFFD_MINOR)
        if not marker or (f & VM_UFFD_WP and not vmf.flags & FAULT_FLAG_WRITE):
            return None                       # a read maps the page keeping the marker's uffd-wp
        if f & VM_UFFD_WP and not userfaultfd_wp_async(mm, vma):
            return handle_userfault(mm, vmf, VM_UFFD_WP)
        # an asynchronous write (its page would be mapped write-protected and the next fault clear
        # that), or a marker left in a range no longer registered: the marker goes, the access retries
        vmf.handler = 'pte_marker_clear'
        mm.svc.frames.phys.write64(vmf.slot, 0)
        mm.svc.charge('pte_set')
        return 0
    if entry & _PAGE_PRESENT and entry & _PAGE_UFFD_WP and f & VM_UFFD_WP and vmf.flags & FAULT_FLAG_WRITE and \
            not entry & _PAGE_RW:
        if not userfaultfd_wp_async(mm, vma):
            return handle_userfault(mm, vmf, VM_UFFD_WP)
        vmf.orig_pte = entry & ~_PAGE_UFFD_WP          # huge_pte_clear_uffd_wp, then on to hugetlb_wp
        mm.svc.frames.phys.write64(vmf.slot, vmf.orig_pte)
        mm.svc.charge('pte_set')
    return None


def userfaultfd_wp_async(mm, vma):
    """userfaultfd_wp_async: the VMA is registered for WP with a context that asked for
    UFFD_FEATURE_WP_ASYNC (a write to a write-protected page is resolved by the kernel)."""
    if not vma.vm_flags & VM_UFFD_WP:
        return False
    ctx = userfaultfd_ctx_of(mm, vma.vm_start)
    return ctx is not None and bool(ctx.features & UFFD_FEATURE_WP_ASYNC)


def userfaultfd_ctx_of(mm, address):
    """vma->vm_userfaultfd_ctx.ctx for the VMA at address: the context that registered it, or None."""
    for start, end, ctx in getattr(mm, 'uffd_ranges', ()):
        if start <= address < end:
            return ctx
    return None


def is_swap_pte(pte):
    """A swap entry of a swapped-out page (not a hwpoison entry or a marker, swap type 31)."""
    return bool(pte) and not pte & _PAGE_PRESENT and pte >> 59 != 31


def uffd_wp_pte(pte, enable):
    """The PTE with its uffd-wp state set or cleared: a present PTE's bit (write access goes with
    setting it), a swap entry's, a marker; 0 for a marker cleared."""
    if pte == WP_MARKER:
        return pte if enable else 0
    if pte & _PAGE_PRESENT:
        return (pte | _PAGE_UFFD_WP) & ~_PAGE_RW if enable else pte & ~_PAGE_UFFD_WP
    if is_swap_pte(pte):
        return pte | _PAGE_SWP_UFFD_WP if enable else pte & ~_PAGE_SWP_UFFD_WP
    return pte


def userfaultfd_set_owner(mm, start, end, ctx):
    """Record ctx as the owner of [start, end) (None: no owner), replacing older records there."""
    kept = []
    for s, e, c in getattr(mm, 'uffd_ranges', []):
        if e <= start or s >= end:
            kept.append([s, e, c])
            continue
        if s < start:
            kept.append([s, start, c])
        if e > end:
            kept.append([end, e, c])
    if ctx is not None:
        kept.append([start, end, ctx])
    kept.sort(key=lambda r: r[0])
    mm.uffd_ranges = kept


def userfault_msg(address, flags, reason, features, tid):
    """The 32-byte struct uffd_msg of a page fault."""
    pf = 0
    if flags & FAULT_FLAG_WRITE:
        pf |= UFFD_PAGEFAULT_FLAG_WRITE
    if reason & VM_UFFD_WP:
        pf |= UFFD_PAGEFAULT_FLAG_WP
    if reason & VM_UFFD_MINOR:
        pf |= UFFD_PAGEFAULT_FLAG_MINOR
    ptid = tid if features & UFFD_FEATURE_THREAD_ID else 0
    return struct.pack('<BBHIQQI4x', UFFD_EVENT_PAGEFAULT, 0, 0, 0, pf, address, ptid)


def userfaultfd_fault(mm, vmf, pte):
    """The hook in handle_pte_fault for a VMA with VM_UFFD_* flags: the VM_FAULT_* result when the
    fault goes to userfaultfd (missing page, minor fault on a cached shmem page, write to a
    uffd-wp PTE), None when the kernel handles it as usual."""
    vma = vmf.vma
    f = vma.vm_flags
    if pte == 0 or pte == WP_MARKER:
        ret = None
        if vma.anon:
            if f & VM_UFFD_MISSING:
                ret = handle_userfault(mm, vmf, VM_UFFD_MISSING)
        elif vma_is_shmem(vma):
            cached = mm.svc.pagecache.peek(vma.vm_file.inode, vmf.pgoff) is not None
            if cached and f & VM_UFFD_MINOR:
                ret = handle_userfault(mm, vmf, VM_UFFD_MINOR)
            elif not cached and f & VM_UFFD_MISSING:
                ret = handle_userfault(mm, vmf, VM_UFFD_MISSING)
        if ret is not None or pte == 0:
            return ret
        return pte_marker_handle_uffd_wp(mm, vmf)
    if pte & _PAGE_PRESENT and pte & _PAGE_UFFD_WP and f & VM_UFFD_WP and vmf.flags & FAULT_FLAG_WRITE and \
            not pte & _PAGE_RW:
        if not userfaultfd_wp_async(mm, vma):
            return handle_userfault(mm, vmf, VM_UFFD_WP)
        # do_wp_page's asynchronous path: the kernel clears the uffd-wp bit (invisible to the
        # user, no flush) and goes on to reuse or copy the page as for any write-protect fault
        vmf.handler = 'do_wp_page(uffd-wp async)'
        vmf.orig_pte = pte & ~_PAGE_UFFD_WP
        mm.pgtables.ptes[vmf.slot >> 3] = vmf.orig_pte
        mm.svc.charge('pte_set')
        return None
    if is_swap_pte(pte) and pte & _PAGE_SWP_UFFD_WP and f & VM_UFFD_WP and vmf.flags & FAULT_FLAG_WRITE and \
            not userfaultfd_wp_async(mm, vma):
        return handle_userfault(mm, vmf, VM_UFFD_WP)     # a write-protected page in swap
    if pte == POISON_MARKER:
        vmf.handler = 'uffd poison marker'
        return VM_FAULT_SIGBUS               # handle_pte_marker: PTE_MARKER_POISONED (BUS_ADRERR)
    return None


def pte_marker_handle_uffd_wp(mm, vmf):
    """A fault on a uffd-wp marker that no MISSING/MINOR fault took: a write is the WP fault the page
    would give once mapped write-protected; a read of anonymous memory maps the zero page
    write-protected (do_anonymous_page with the marker's uffd-wp); a read of a file-backed range goes
    on as a fault on an empty PTE (None: do_pte_missing, whose page keeps the uffd-wp); in a range no
    longer registered for WP the marker goes and the access retries (pte_marker_clear)."""
    vma = vmf.vma
    svc = mm.svc
    if vma.vm_flags & VM_UFFD_WP and vmf.flags & FAULT_FLAG_WRITE:
        if not userfaultfd_wp_async(mm, vma):
            return handle_userfault(mm, vmf, VM_UFFD_WP)
        # asynchronous: the page mapped write-protected in place of the marker would be made
        # writable by the write's next fault at once; the marker goes and the write maps it
        vmf.handler = 'pte_marker_clear(uffd-wp async)'
        mm.pgtables.ptes[vmf.slot >> 3] = 0
        svc.charge('pte_set')
        return 0
    if vma.vm_flags & VM_UFFD_WP and vma.anon:
        vmf.handler = 'do_anonymous_page(zero, uffd-wp)'
        prot = protection_map[vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC)] & ~_PAGE_RW
        mm.pgtables.ptes[vmf.slot >> 3] = (svc.zero_page.pfn << 12) | prot | _PAGE_ACCESSED | _PAGE_UFFD_WP
    elif vma.vm_flags & VM_UFFD_WP:
        return None
    else:
        vmf.handler = 'pte_marker_clear'
        mm.pgtables.ptes[vmf.slot >> 3] = 0
    svc.charge('pte_set')
    return 0


def handle_userfault(mm, vmf, reason):
    """Hand the fault to the registered context: SIGBUS mode, or queue a message and sleep (RETRY)."""
    ctx = userfaultfd_ctx_of(mm, vmf.address)
    if ctx is None or ctx.released:
        return None                       # not (or no longer) registered: the kernel handles it
    vmf.handler = 'handle_userfault'
    if vmf.flags & FAULT_FLAG_SPECULATIVE:
        return VM_FAULT_RETRY             # never without mmap_lock: the classic path takes it
    if ctx.features & UFFD_FEATURE_SIGBUS:
        return VM_FAULT_SIGBUS
    sched = mm.svc.sched
    task = sched.current_task()
    ret = None
    if not vmf.flags & FAULT_FLAG_USER:
        if ctx.flags & UFFD_USER_MODE_ONLY:
            return VM_FAULT_SIGBUS
        if not getattr(task, 'in_syscall', False) or task.mm is not mm:
            return VM_FAULT_SIGBUS        # no system call to restart (or another mm's): -EFAULT
        ret = -ERESTARTSYS
    elif not vmf.flags & FAULT_FLAG_ALLOW_RETRY:
        return VM_FAULT_SIGBUS
    if vmf.flags & FAULT_FLAG_RETRY_NOWAIT:
        return VM_FAULT_RETRY
    msg = userfault_msg(vmf.address, vmf.flags, reason, ctx.features, task.tid)
    ctx.queue_fault(UserfaultWaitQueue(task, msg, vmf.address, sched.now(), ret))
    task.waiting_on = 'userfaultfd(%#x)' % vmf.address
    sched.block(task, 'D')
    return VM_FAULT_RETRY
