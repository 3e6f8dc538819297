"""Non-cooperative userfaultfd events (fs/userfaultfd.c dup_userfaultfd, mremap_userfaultfd_prep,
userfaultfd_remove, userfaultfd_unmap_prep, userfaultfd_event_wait_completion).

A context that asked for UFFD_FEATURE_EVENT_FORK, _REMAP, _REMOVE or _UNMAP learns of the changes
to its ranges: fork (the child's registered ranges go to a new context whose descriptor the reader
receives in the message), mremap (the registration follows the move), madvise(MADV_DONTNEED,
MADV_FREE, MADV_REMOVE) and munmap. The thread that caused the event sleeps until a reader has
read it, as in Linux; here the change is made first and the system call then sleeps with its
result, so the order the handler sees (the event before any fault at the new place) is Linux's.
Without the feature, fork and mremap drop the registration from the copy (userfaultfd_reset_ctx)
and clear its uffd-wp bits; with it, the child's copy keeps them, on hugetlb and shmem too (the
huge PMDs and the markers fork copies for a registered VMA).
"""
import struct

from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_PSE
from faultlab.kernel.mm.userfaultfd_k import (VM_UFFD_FLAGS, VM_UFFD_WP, WP_MARKER, _PAGE_UFFD_WP, uffd_wp_pte,
                                     userfaultfd_ctx_of, userfaultfd_set_owner)
from faultlab.kernel.mm.vma import VM_HUGETLB

UFFD_EVENT_FORK, UFFD_EVENT_REMAP, UFFD_EVENT_REMOVE, UFFD_EVENT_UNMAP = 0x13, 0x14, 0x15, 0x16
UFFD_FEATURE_EVENT_FORK = 1 << 1
UFFD_FEATURE_EVENT_REMAP = 1 << 2
UFFD_FEATURE_EVENT_REMOVE = 1 << 3
UFFD_FEATURE_EVENT_UNMAP = 1 << 6


class UserfaultEvent:
    """struct userfaultfd_wait_queue of an event: the thread waiting for it to be read, the message
    (FORK: the new context, whose descriptor the read creates)."""
    __slots__ = ('task', 'ctx', 'msg', 'new_ctx')

    def __init__(self, task, ctx, msg, new_ctx=None):
        self.task = task
        self.ctx = ctx
        self.msg = msg
        self.new_ctx = new_ctx

    def message(self, ufd=0):
        """The 32-byte struct uffd_msg (FORK: with the reader's descriptor of the new context)."""
        if self.new_ctx is not None:
            return struct.pack('<BBHII20x', UFFD_EVENT_FORK, 0, 0, 0, ufd)
        return self.msg


def _current(mm):
    """The task in a system call on mm that an event is charged to, or None."""
    task = mm.svc.sched.current_task()
    if task is None or task.mm is not mm or not getattr(task, 'in_syscall', False):
        return None
    return task


def _note(mm, ctx, msg, new_ctx=None):
    """Keep the event for the end of the current system call."""
    task = _current(mm)
    if task is None or ctx is None or ctx.released:
        return
    pending = getattr(task, 'uffd_events', None)
    if pending is None:
        pending = task.uffd_events = []
    pending.append(UserfaultEvent(task, ctx, msg, new_ctx))


def userfaultfd_event_wait_completion(task, ret):
    """The system call that caused events ends here: queue them and sleep until all are read, then
    return ret (the call's result); ret at once if none is left to wait for. (The system call exit
    passes the kernel first; the sleep goes through the task's mm services.)"""
    events = getattr(task, 'uffd_events', None)
    if not events:
        return ret
    task.uffd_events = None
    live = [e for e in events if not e.ctx.released]
    if not live or task.exited:
        return ret
    task.uffd_events_left = len(live)
    task.uffd_event_ret = ret
    for e in live:
        e.ctx.queue_event(e)
    task.waiting_on = 'userfaultfd_event'
    task.mm.svc.sched.block(task, 'D')
    return BLOCKED


def userfaultfd_event_done(ev):
    """An event was read (or its context released): its thread runs on once all of its are."""
    task = ev.task
    task.uffd_events_left = getattr(task, 'uffd_events_left', 1) - 1
    if task.uffd_events_left <= 0:
        task.mm.svc.sched.wake(task, task.uffd_event_ret)


def _reset_range(mm, start, end):
    """userfaultfd_reset_ctx: the VMAs of [start, end) lose their registration and uffd-wp bits."""
    vmas = mm.vmas.overlapping(start, end)
    for vma in vmas:
        vma.vm_flags &= ~VM_UFFD_FLAGS
    if any(not v.vm_flags & VM_HUGETLB for v in vmas):
        ptes = mm.pgtables.ptes
        for _va, slot, pte in list(mm.pgtables.present_ptes(start, end)):
            ptes[slot >> 3] = uffd_wp_pte(pte, False)
    userfaultfd_set_owner(mm, start, end, None)


def dup_userfaultfd(oldmm, mm):
    """fork: the child's copies of registered ranges go to a new context per parent context with
    EVENT_FORK (a FORK message on the parent's), the others lose their registration."""
    ranges = getattr(oldmm, 'uffd_ranges', None)
    mm.uffd_ranges = []
    if not ranges:
        return
    made = {}
    copied = set()
    for s, e, ctx in ranges:
        if not mm.vmas.overlapping(s, e):
            continue                             # VM_DONTCOPY
        if ctx.released or not ctx.features & UFFD_FEATURE_EVENT_FORK:
            _reset_range(mm, s, e)
            continue
        new = made.get(id(ctx))
        if new is None:
            new = made[id(ctx)] = ctx.fork_ctx(mm)
            _note(oldmm, ctx, None, new)
        userfaultfd_set_owner(mm, s, e, new)
        dup_uffd_wp_entries(oldmm, mm, s, e, copied)


def uffd_wp_kept_on_fork(oldmm, vma):
    """vma_needs_copy's userfaultfd_wp(dst_vma): the child's copy of vma stays registered for
    write-protection (VM_UFFD_WP with a live context that has EVENT_FORK), so fork keeps its uffd-wp
    bits and markers."""
    if not vma.vm_flags & VM_UFFD_WP:
        return False
    return any(s < vma.vm_end and vma.vm_start < e and not ctx.released and ctx.features & UFFD_FEATURE_EVENT_FORK
               for s, e, ctx in getattr(oldmm, 'uffd_ranges', None) or ())


def dup_uffd_wp_entries(oldmm, mm, start, end, copied):
    """copy_page_range's share for a child range that stays registered for WP (vma_needs_copy:
    userfaultfd_wp(dst_vma)): the uffd-wp markers of a shared VMA, which fork copies no entry for
    otherwise (dup_mm copied hugetlb VMAs with theirs); `copied` holds the VMAs done."""
    for vma in mm.vmas.overlapping(start, end):
        if not vma.vm_flags & VM_UFFD_WP or id(vma) in copied or vma.vm_flags & VM_HUGETLB:
            continue
        lo, hi = max(start, vma.vm_start), min(end, vma.vm_end)
        for va, _slot, pte in list(oldmm.pgtables.present_ptes(lo, hi, split=False)):
            if pte != WP_MARKER:
                continue
            try:
                dslot = mm.pgtables.pte_slot(va, create=True)
            except MemoryError:
                return
            if not mm.pgtables.ptes[dslot >> 3]:
                mm.pgtables.ptes[dslot >> 3] = WP_MARKER       # copy_pte_marker


def mremap_userfaultfd_prep(mm, old_addr, new_addr, length):
    """mremap moved [old_addr, old_addr + length) to new_addr: with EVENT_REMAP the registration
    follows (a REMAP message), without it the new range is not registered."""
    ctx = userfaultfd_ctx_of(mm, old_addr)
    if ctx is None:
        return
    if ctx.released or not ctx.features & UFFD_FEATURE_EVENT_REMAP:
        _reset_range(mm, new_addr, new_addr + length)
        return
    userfaultfd_set_owner(mm, new_addr, new_addr + length, ctx)
    _note(mm, ctx, struct.pack('<BBHIQQQ', UFFD_EVENT_REMAP, 0, 0, 0, old_addr, new_addr, length))


def userfaultfd_remove(mm, vma, start, end):
    """madvise(MADV_DONTNEED/FREE/REMOVE) on a registered range: a REMOVE message with EVENT_REMOVE."""
    if not vma.vm_flags & VM_UFFD_FLAGS:
        return
    ctx = userfaultfd_ctx_of(mm, start)
    if ctx is not None and ctx.features & UFFD_FEATURE_EVENT_REMOVE:
        _note(mm, ctx, struct.pack('<BBHIQQ8x', UFFD_EVENT_REMOVE, 0, 0, 0, start, end))


def uffd_wp_zap_prepare(mm, vma, start, end):
    """zap_install_uffd_wp_if_needed, first half: the (slot, marker) pairs of [start, end) of a
    file-backed VMA registered for WP whose entries are write-protected (the zap must leave markers
    there); for hugetlb the huge PMDs (__unmap_hugepage_range leaves a marker for a uffd-wp one)."""
    if vma.anon or not vma.vm_flags & VM_UFFD_WP:
        return ()
    if vma.vm_flags & VM_HUGETLB:
        return [(slot, WP_MARKER | _PAGE_PSE) for _va, slot, e in mm.pgtables.huge_pmds(start, end)
                if e == WP_MARKER | _PAGE_PSE or (e & _PAGE_PRESENT and e & _PAGE_UFFD_WP)]
    return [(slot, WP_MARKER) for _va, slot, pte in mm.pgtables.present_ptes(start, end)
            if pte != uffd_wp_pte(pte, False)]


def uffd_wp_zap_finish(mm, slots):
    """The zap is done: a uffd-wp marker where a write-protected entry was."""
    phys = mm.svc.frames.phys
    for slot, marker in slots:
        if not phys.read64(slot):
            phys.write64(slot, marker)


def userfaultfd_unmap_prep(mm, vmas, start, end):
    """munmap of [start, end): an UNMAP message for each context with EVENT_UNMAP registered in it;
    the range's registration records go."""
    seen = set()
    for vma in vmas:
        if not vma.vm_flags & VM_UFFD_FLAGS:
            continue
        ctx = userfaultfd_ctx_of(mm, vma.vm_start)
        if ctx is None or id(ctx) in seen or not ctx.features & UFFD_FEATURE_EVENT_UNMAP:
            continue
        seen.add(id(ctx))
        _note(mm, ctx, struct.pack('<BBHIQQ8x', UFFD_EVENT_UNMAP, 0, 0, 0, start, end))
    if getattr(mm, 'uffd_ranges', None):
        userfaultfd_set_owner(mm, start, end, None)
