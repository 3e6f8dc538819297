"""Address-space changes (mm/mmap.c, mm/mprotect.c, mm/mremap.c): mmap, munmap, mprotect, mremap, brk.

Each returns a non-negative result or a negative errno, as the system calls do.
"""
import errno

from faultlab.kernel.arch.cpu_interface import PAGE_SIZE
from faultlab.kernel.mm.mmap_lock import note_pmd_change
from faultlab.kernel.mm.huge_memory import (change_huge_pmd, split_huge_pmd_edges, thp_pmds,
                                            vma_adjust_trans_huge)
from faultlab.kernel.mm.memory import zap_pte_range, copy_page_range_move, vma_page_prot, fold_pte_dirty
from faultlab.kernel.mm.mm_types import TASK_SIZE
from faultlab.kernel.mm import hugetlb
from faultlab.kernel.mm.gup import populate_vma_page_range
from faultlab.kernel.mm.khugepaged_scan import khugepaged_enter_vma
from faultlab.kernel.mm.hugetlb_types import (HPAGE_MASK, HPAGE_SHIFT, HPAGE_SIZE, HUGETLB_PAGE_ORDER, huge_size_ok,
                                              is_vm_hugetlb_page)
from faultlab.kernel.mm.mdwe import map_deny_write_exec
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_RW, _PAGE_NX, _PAGE_SOFT_DIRTY
from faultlab.kernel.mm.userfaultfd_events import mremap_userfaultfd_prep, userfaultfd_unmap_prep
from faultlab.kernel.mm import vm_sysctl
from faultlab.kernel.mm.vm_sysctl import OVERCOMMIT_NEVER, accountable_mapping, too_many_maps, vm_enough_memory, vma_pages
from faultlab.kernel.mm.vma import (VmArea, calc_vm_prot_bits, VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAYREAD,
                           VM_MAYWRITE, VM_MAYEXEC, VM_MAYSHARE, VM_GROWSDOWN, VM_NORESERVE, VM_LOCKED,
                           VM_ACCOUNT, VM_SOFTDIRTY, VM_LOCKONFAULT, VM_HUGETLB, VM_DONTEXPAND, VM_PFNMAP,
                           VM_IO)
from faultlab.kernel.mm.mman import (MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE, MAP_FIXED,
                                        MAP_ANONYMOUS, MAP_GROWSDOWN, MAP_DENYWRITE, MAP_EXECUTABLE, MAP_LOCKED,
                                        MAP_NORESERVE, MAP_POPULATE, MAP_NONBLOCK, MAP_STACK, MAP_HUGETLB,
                                        MAP_SYNC, MAP_FIXED_NOREPLACE, LEGACY_MAP_MASK)


MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MREMAP_DONTUNMAP = 4

_MERGE_IGNORE = VM_SOFTDIRTY


def page_align(n):
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


# ---- VMA plumbing ----------------------------------------------------------------------------
def split_vma(mm, vma, addr):
    """Split vma at addr; returns the new upper part (already in the tree)."""
    vma_adjust_trans_huge(mm, addr)        # no huge PMD may straddle the new boundary
    mm.vmas.remove(vma)
    upper = vma.copy()
    upper.vm_start = addr
    if vma.vm_file is not None:
        upper.vm_pgoff = vma.vm_pgoff + ((addr - vma.vm_start) >> 12)
        upper.vm_file.get()             # __split_vma: get_file(new->vm_file)
    vma.vm_end = addr
    vma.vm_seq += 1
    mm.vmas.insert(vma)
    mm.vmas.insert(upper)
    return upper


def _mergeable(a, b):
    """Can b (right after a) be merged into a (vma_merge's compatibility test)?"""
    if a.vm_end != b.vm_start or (a.vm_flags ^ b.vm_flags) & ~_MERGE_IGNORE or a.vm_file is not b.vm_file \
            or a.name != b.name:
        return False
    if a.vm_file is not None:
        return a.vm_pgoff + ((a.vm_end - a.vm_start) >> 12) == b.vm_pgoff
    return True


def vma_merge_around(mm, vma):
    """Merge vma with its neighbours when they are compatible; returns the surviving VMA."""
    prev = mm.vmas.prev(vma)
    if prev is not None and _mergeable(prev, vma):
        mm.vmas.remove(vma)
        if vma.vm_file is not None:
            vma.vm_file.put()           # vma_merge: the removed VMA's fput
        prev.vm_end = vma.vm_end
        prev.vm_seq += 1
        prev.anon_vma = prev.anon_vma or vma.anon_vma      # the merged VMA keeps the anon_vma
        vma = prev
    nxt = mm.vmas.next(vma)
    if nxt is not None and _mergeable(vma, nxt):
        mm.vmas.remove(nxt)
        if nxt.vm_file is not None:
            nxt.vm_file.put()
        vma.vm_end = nxt.vm_end
        vma.vm_seq += 1
        vma.anon_vma = vma.anon_vma or nxt.anon_vma
    return vma


def _isolate(mm, start, end):
    """Split so that start and end are VMA boundaries; return the VMAs inside [start, end)."""
    if start >= end:
        return []
    for v in mm.vmas.overlapping(start, end):
        if v.vm_start < start:
            v = split_vma(mm, v, start)
        if v.vm_end > end:
            split_vma(mm, v, end)
    return mm.vmas.overlapping(start, end)


def mmap_min_addr(mm):
    """The lowest address a mapping may get without asking (mmap_min_addr)."""
    return max(PAGE_SIZE, mm.svc.sysctl.dac_mmap_min_addr)


def security_mmap_addr(mm, addr):
    """security_mmap_addr: below mmap_min_addr only with CAP_SYS_RAWIO (-EPERM); 0 if allowed."""
    return vm_sysctl.security_mmap_addr(mm.svc, addr)


def splits_needed(mm, start, end, changes=None):
    """How many VMAs isolating [start, end) would add (a VMA straddling start, one straddling end),
    counting only the VMAs changes(vma) says are really changed (unchanged ones are not split)."""
    n = 0
    for a in (start, end):
        v = mm.vmas.vma_lookup(a)
        if v is not None and v.vm_start < a and (changes is None or changes(v)):
            n += 1
    return n


def accounted_pages(mm, start, end):
    """The VM_ACCOUNT pages of [start, end) (what unmapping them gives back to the commit)."""
    return sum((min(end, v.vm_end) - max(start, v.vm_start)) >> 12
               for v in mm.vmas.overlapping(start, end) if v.vm_flags & VM_ACCOUNT)


def get_unmapped_area(mm, addr, length, fixed):
    """Pick where a new mapping goes: the hint if free, else top-down from mmap_base."""
    if fixed:
        return addr
    low = mmap_min_addr(mm)
    if addr:
        addr = page_align(addr)
        if low <= addr and addr + length <= TASK_SIZE and not mm.vmas.overlapping(addr, addr + length):
            return addr
    hi = mm.mmap_base
    for v in reversed(list(mm.vmas)):
        if v.vm_start >= hi:
            continue
        if v.vm_end <= hi - length:
            break
        hi = v.vm_start                 # below hi here: min(hi, vm_start)
    addr = hi - length
    if addr < low:
        return -errno.ENOMEM
    return addr


def thp_get_unmapped_area(mm, length):
    """__get_unmapped_area's THP alignment of a private anonymous mapping without a hint whose length is
    a multiple of the PMD size (commit efa7df3e3bb5, "mm: align larger anonymous mappings on THP
    boundaries", limited to PMD-multiple lengths in 6.12): __thp_get_unmapped_area looks for length plus a
    PMD and puts the mapping on a PMD boundary in it (the upper one when the area found is aligned, as
    top-down allocation prefers); without room for the padding, the plain search."""
    padded = get_unmapped_area(mm, 0, length + HPAGE_SIZE, False)
    if padded < 0:
        return get_unmapped_area(mm, 0, length, False)
    off_sub = -padded & (HPAGE_SIZE - 1)
    return padded + (off_sub or HPAGE_SIZE)


def do_munmap(mm, start, length, downgrade=None):
    """munmap(2): remove mappings in [start, start+len).

    The VMAs leave the tree first (detach); `downgrade`, when given, is called then, as munmap does
    with mmap_write_downgrade since Linux 4.20: zapping the pages and freeing the page tables run
    with mmap_lock held for read only.
    """
    if start & (PAGE_SIZE - 1) or start > TASK_SIZE or length > TASK_SIZE - start:
        return -errno.EINVAL
    length = page_align(length)
    if length == 0:
        return -errno.EINVAL
    end = start + length
    if hugetlb.hugetlb_split_check(mm, start, end):
        return -errno.EINVAL
    if too_many_maps(mm, splits_needed(mm, start, end)):
        return -errno.ENOMEM             # each split needs map_count < max_map_count
    t0 = mm.svc.sched.now()
    vmas = _isolate(mm, start, end)
    userfaultfd_unmap_prep(mm, vmas, start, end)
    for v in vmas:                      # detach_vmas_to_be_unmapped
        mm.vmas.remove(v)
        v.vm_seq += 1
        mm.total_vm -= (v.vm_end - v.vm_start) >> 12
    mm.svc.charge('vma_modify')
    if downgrade is not None and vmas:
        downgrade()
    for v in vmas:                      # unmap_region, remove_vma
        if v.vm_flags & VM_SHARED and v.vm_file is not None:
            fold_pte_dirty(mm, v)
        zap_pte_range(mm, v.vm_start, v.vm_end)
        hugetlb.hugetlb_vm_op_close(mm, v)
        if v.vm_file is not None:
            v.vm_file.put()
    free_pgtables(mm, start, end, t0)
    return 0


def exit_mmap(mm):
    """The last user of mm is gone: unmap everything (pages, files, page tables)."""
    if mm.users > 0:
        return
    for v in list(mm.vmas):
        do_munmap(mm, v.vm_start, v.vm_end - v.vm_start)


def mmput(mm):
    """The address space is dropped for good (exec replaced it, or a failed exec built it): unmap
    everything, let go of the executable, then free the page-table frames left (upper levels, root)."""
    exit_mmap(mm)
    exe = getattr(mm, 'exe_file', None)
    if exe is not None:                  # set_mm_exe_file(mm, NULL)
        mm.exe_file = None
        exe.put()
    frames = mm.svc.frames
    for pfn in mm.pgtables.release_all():
        frames.put_page(frames.pages[pfn])
        mm.svc.charge('page_free')


def free_pgtables(mm, start, end, since):
    """Free the PTE tables of [start, end) whose whole 2 MiB range no VMA uses any more."""
    pmd = 1 << 21
    for va in mm.pgtables.pte_tables(start & ~(pmd - 1), end):
        if not mm.vmas.overlapping(va, va + pmd):
            pfn = mm.pgtables.free_pte_table(va)
            if pfn is not None:
                mm.svc.frames.put_page(mm.svc.frames.pages[pfn])
                mm.svc.charge('page_free')
                if mm.users > 1:
                    note_pmd_change(mm, va, since)     # the PMD was being torn down since munmap began


def check_fixed_addr(mm, addr, rlen, align):
    """A MAP_FIXED address: aligned (EINVAL), the range below TASK_SIZE (ENOMEM), not below
    mmap_min_addr without CAP_SYS_RAWIO (EPERM); 0 when it is acceptable."""
    if addr & (align - 1):
        return -errno.EINVAL
    if addr > TASK_SIZE - rlen:
        return -errno.ENOMEM
    return security_mmap_addr(mm, addr)


def do_mmap(mm, addr, length, prot, flags, file, pgoff, mlock_ok=None):
    """mmap(2) after fd lookup: validate, place, create the VMA (merging), populate if asked.
    mlock_ok(nbytes): the caller's mlock_future_ok (RLIMIT_MEMLOCK or CAP_IPC_LOCK) for a mapping
    locked by MAP_LOCKED or mlockall(MCL_FUTURE); None: no limit."""
    if length == 0:
        return -errno.EINVAL
    if prot & ~(1 | 2 | 4 | 8 | 0x01000000 | 0x02000000):
        return -errno.EINVAL
    map_type = flags & MAP_TYPE
    # do_mmap's switch on the map type comes after the mapping is placed: its errors wait until then
    if map_type not in (MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE):
        validate_err = -errno.EINVAL
    else:
        validate_err = -errno.EOPNOTSUPP if map_type == MAP_SHARED_VALIDATE and \
            flags & ~LEGACY_MAP_MASK & ~MAP_SYNC & ~MAP_TYPE else 0
    if too_many_maps(mm):
        return -errno.ENOMEM              # map_count > max_map_count
    # do_mmap: "mlock MCL_FUTURE?" (mlock_future_ok), also only once the mapping is placed
    mlock_err = -errno.EAGAIN if (mm.def_flags & VM_LOCKED or flags & MAP_LOCKED) and mlock_ok is not None \
        and not mlock_ok(page_align(length)) else 0
    prot_flags = calc_vm_prot_bits(prot)
    deny_wx = map_deny_write_exec(mm, prot_flags, prot_flags)     # mmap_region refuses it first
    if flags & MAP_HUGETLB or hugetlb.is_file_hugepages(file):
        hlen = (length + HPAGE_SIZE - 1) & ~(HPAGE_SIZE - 1) & ((1 << 64) - 1)
        if not hlen:
            return -errno.EINVAL          # ALIGN(len, huge page size) wrapped to 0: do_mmap's !len
        if hlen > TASK_SIZE and (not flags & MAP_HUGETLB or huge_size_ok(flags)):
            return -errno.ENOMEM          # get_unmapped_area, before the map type is looked at
        if (mlock_err or validate_err) and (not flags & MAP_HUGETLB or huge_size_ok(flags)):
            return mlock_err or validate_err   # (ksys_mmap_pgoff refuses an unknown huge page size first)
        if deny_wx:
            return -errno.EACCES
        return hugetlb_mmap(mm, addr, length, prot, flags, file, pgoff)
    rlen = page_align(length)
    if rlen == 0 or rlen > TASK_SIZE:
        return -errno.ENOMEM
    if (pgoff + (rlen >> 12)) >= (1 << 52):
        return -errno.EOVERFLOW
    fixed = bool(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
    err = check_fixed_addr(mm, addr, rlen, PAGE_SIZE) if fixed else 0
    if err:
        return err
    shared = map_type in (MAP_SHARED, MAP_SHARED_VALIDATE)
    vm_flags = calc_vm_prot_bits(prot) | mm.def_flags | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
    if file is not None:
        if shared:
            vm_flags |= VM_SHARED | VM_MAYSHARE
            if not file.writable:
                vm_flags &= ~(VM_MAYWRITE | VM_SHARED)
    else:
        if shared:
            vm_flags |= VM_SHARED | VM_MAYSHARE
        pgoff = 0
    if flags & MAP_GROWSDOWN:
        vm_flags |= VM_GROWSDOWN
    if flags & MAP_NORESERVE and mm.svc.sysctl.overcommit_memory != OVERCOMMIT_NEVER:
        vm_flags |= VM_NORESERVE          # MAP_NORESERVE is ignored under strict overcommit
    if flags & MAP_LOCKED:
        vm_flags |= VM_LOCKED
    if file is None and not shared and not fixed and not addr and not rlen & (HPAGE_SIZE - 1):
        addr = thp_get_unmapped_area(mm, rlen)
    else:
        addr = get_unmapped_area(mm, addr, rlen, fixed)
    if addr < 0:
        return addr
    if flags & MAP_FIXED_NOREPLACE and mm.vmas.overlapping(addr, addr + rlen):
        return -errno.EEXIST
    if mlock_err:
        return mlock_err
    # do_mmap checks the map type and the file after placing the mapping: the anonymous switch knows
    # only MAP_SHARED and MAP_PRIVATE, a file's MAP_SHARED_VALIDATE only the flags it supports
    if file is None and (validate_err == -errno.EINVAL or map_type == MAP_SHARED_VALIDATE):
        return -errno.EINVAL
    if file is not None:
        err = validate_err or file.check_mmap(shared, prot)
        if err:
            return err
    if deny_wx:
        return -errno.EACCES
    if accountable_mapping(vm_flags):     # mmap_region: commit the pages (less what MAP_FIXED replaces)
        if vm_enough_memory(mm, rlen >> 12, uncharged=accounted_pages(mm, addr, addr + rlen) if fixed else 0):
            return -errno.ENOMEM
        vm_flags |= VM_ACCOUNT
    if fixed and mm.vmas.overlapping(addr, addr + rlen):
        err = do_munmap(mm, addr, rlen)
        if err:
            return err
    mm.svc.charge('vma_modify')
    vma = VmArea(addr, addr + rlen, vm_flags | VM_SOFTDIRTY, pgoff, file)
    if file is not None:
        file.get()
    else:
        vma.vm_pgoff = addr >> 12
    mm.vmas.insert(vma)
    mm.total_vm += rlen >> 12
    if file is None and not shared:
        vma = vma_merge_around(mm, vma)
        vma.vm_flags |= VM_SOFTDIRTY        # a new mapping is soft-dirty, also when merged
        khugepaged_enter_vma(mm, vma)       # __mmap_region: enabled=always
    if (flags & MAP_POPULATE and not flags & MAP_NONBLOCK or vm_flags & VM_LOCKED) and \
            not vm_flags & VM_LOCKONFAULT:       # populate_vma_page_range skips VM_LOCKONFAULT
        populate_vma_page_range(mm, addr, addr + rlen, vm_flags & VM_WRITE and not shared)
    return addr


def hugetlb_check_fixed(mm, addr, rlen, flags):
    """A MAP_FIXED hugetlb address: 2 MiB-aligned and acceptable (check_fixed_addr), and for
    MAP_FIXED_NOREPLACE free (EEXIST); 0 when it is."""
    err = check_fixed_addr(mm, addr, rlen, HPAGE_SIZE)
    if err:
        return err
    if flags & MAP_FIXED_NOREPLACE and mm.vmas.overlapping(addr, addr + rlen):
        return -errno.EEXIST
    return 0


def hugetlb_get_unmapped_area(mm, addr, rlen):
    """Where a new hugetlb mapping goes (not MAP_FIXED): a 2 MiB-aligned start, from the hint
    rounded up if it is free; or -ENOMEM."""
    hint = (addr + HPAGE_SIZE - 1) & HPAGE_MASK if addr else 0
    start = get_unmapped_area(mm, hint, rlen + HPAGE_SIZE, False)
    return (start + HPAGE_SIZE - 1) & HPAGE_MASK if start >= 0 else start


def hugetlb_mmap(mm, addr, length, prot, flags, f, pgoff):
    """do_mmap (after its argument checks) for MAP_HUGETLB or a hugetlbfs file: length rounded up to 2 MiB,
    address 2 MiB-aligned, offset a multiple of 2 MiB (EINVAL), pages reserved (ENOMEM), VM_HUGETLB |
    VM_DONTEXPAND; populated for MAP_POPULATE, MAP_LOCKED or mlockall(MCL_FUTURE)."""
    rlen = hugetlb.hugetlb_mmap_check(mm, length, flags, f, pgoff)
    if rlen < 0:
        return rlen
    fixed = bool(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
    err = hugetlb_check_fixed(mm, addr, rlen, flags) if fixed else 0
    if err:
        return err
    shared = (flags & MAP_TYPE) in (MAP_SHARED, MAP_SHARED_VALIDATE)     # the type was checked by do_mmap
    new_file = f is None
    f = hugetlb.hugetlb_mmap_file(mm, f, rlen, shared, prot)
    if isinstance(f, int):
        return f
    pgoff = 0 if new_file else pgoff
    vm_flags = hugetlb.hugetlb_vm_flags(prot, flags, shared, f)
    start = addr if fixed else hugetlb_get_unmapped_area(mm, addr, rlen)
    err = start if start < 0 else 0
    if not err and fixed and mm.vmas.overlapping(start, start + rlen):
        err = do_munmap(mm, start, rlen)     # first: the old mapping's reservations go with it
    if not err:
        err = hugetlb.hugetlb_reserve_pages(mm.svc.hstate, mm, start, rlen >> HPAGE_SHIFT, f,
                                            pgoff >> HUGETLB_PAGE_ORDER, shared, bool(flags & MAP_NORESERVE))
    if err:
        f.put()
        return err
    hugetlb.hugetlbfs_file_mmap(f, rlen, pgoff, vm_flags, new_file)
    hugetlb.hugetlb_vma_link(mm, start, rlen, vm_flags, pgoff, f)
    # mmap_region never leaves VM_LOCKED on a hugetlb VMA (its pages are never reclaimed anyway),
    # but MAP_LOCKED or mlockall(MCL_FUTURE) still populates it
    if flags & MAP_POPULATE and not flags & MAP_NONBLOCK or flags & MAP_LOCKED or mm.def_flags & VM_LOCKED:
        populate_vma_page_range(mm, start, start + rlen, vm_flags & VM_WRITE and not shared)
    return start


def mm_populate_locked(mm, start, end):
    """__mm_populate for mlock and mlockall: fault in the VMAs of [start, end) except VM_LOCKONFAULT
    ones (they fill as they are touched) and VM_IO/VM_PFNMAP ones; private writable memory with
    write faults, to break copy-on-write. Stops at a PROT_NONE VMA with -ENOMEM (mlock reports it,
    mlockall ignores it)."""
    for v in mm.vmas.overlapping(start, end):
        if not v.vm_flags & (VM_LOCKONFAULT | VM_IO | VM_PFNMAP):
            if not v.vm_flags & (VM_READ | VM_WRITE | VM_EXEC):
                return -errno.ENOMEM      # no FOLL_FORCE for PROT_NONE: -EFAULT, mlock's -ENOMEM
            populate_vma_page_range(mm, max(start, v.vm_start), min(end, v.vm_end),
                                    v.vm_flags & (VM_WRITE | VM_SHARED) == VM_WRITE)
    return 0


def mlock_special(vma):
    """mlock_fixup leaves these alone: VM_SPECIAL mappings, hugetlb, the vDSO."""
    return bool(vma.vm_flags & (VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_HUGETLB)) or vma.name in ('[vdso]', '[vvar]')


def do_mprotect(mm, start, length, prot):
    """mprotect(2): change rights of [start, start+len), splitting and merging VMAs."""
    if prot & 0x03000000 == 0x03000000:     # PROT_GROWSDOWN and PROT_GROWSUP
        return -errno.EINVAL
    if start & (PAGE_SIZE - 1):
        return -errno.EINVAL
    if not length:
        return 0                            # before arch_validate_prot, as do_mprotect_pkey does
    length = page_align(length) & ((1 << 64) - 1)
    end = (start + length) & ((1 << 64) - 1)
    if end <= start:
        return -errno.ENOMEM
    if prot & ~(1 | 2 | 4 | 8 | 0x01000000 | 0x02000000):
        return -errno.EINVAL                # arch_validate_prot: READ, WRITE, EXEC and SEM
    if end > TASK_SIZE:
        return -errno.ENOMEM
    # VMA by VMA from start, as Linux does: a hole at start changes nothing (-ENOMEM); a hole or a VMA
    # that forbids the rights further on stops there, keeping the changes made before it
    v = mm.vmas.vma_lookup(start)
    if v is None:
        return -errno.ENOMEM
    if prot & 0x02000000 or prot & 0x01000000 and not v.vm_flags & VM_GROWSDOWN:
        return -errno.EINVAL                # PROT_GROWSUP (x86 has no VM_GROWSUP), PROT_GROWSDOWN off a stack
    if hugetlb.hugetlb_split_check(mm, start, end):
        return -errno.EINVAL
    mm.svc.charge('vma_modify')
    newbits = calc_vm_prot_bits(prot & 7)
    cur = start
    while cur < end:
        v = mm.vmas.vma_lookup(cur)
        if v is None:
            return -errno.ENOMEM
        if (newbits & VM_WRITE and not v.vm_flags & VM_MAYWRITE) or \
                (newbits & VM_EXEC and not v.vm_flags & VM_MAYEXEC):
            return -errno.EACCES
        if map_deny_write_exec(mm, v.vm_flags, (v.vm_flags & ~(VM_READ | VM_WRITE | VM_EXEC)) | newbits):
            return -errno.EACCES
        stop = min(end, v.vm_end)
        if (v.vm_flags & ~(VM_READ | VM_WRITE | VM_EXEC)) | newbits != v.vm_flags:
            if too_many_maps(mm, splits_needed(mm, cur, stop)):
                return -errno.ENOMEM             # split_vma: map_count >= max_map_count
            if newbits & VM_WRITE and not v.vm_flags & _NO_CHARGE_ON_WRITE and \
                    vm_enough_memory(mm, (stop - cur) >> 12):
                return -errno.ENOMEM             # private memory becoming writable is committed
        for piece in _isolate(mm, cur, stop):
            mprotect_fixup(mm, piece, newbits)
        cur = stop
    return 0


_NO_CHARGE_ON_WRITE = VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE


def mprotect_fixup(mm, v, newbits):
    """New rights for one whole VMA: VM_ACCOUNT as Linux keeps it, the PTEs, a merge with neighbours."""
    old = v.vm_flags
    new = (old & ~(VM_READ | VM_WRITE | VM_EXEC)) | newbits
    if new & VM_WRITE:
        if not old & _NO_CHARGE_ON_WRITE:
            new |= VM_ACCOUNT               # private memory becoming writable is committed
    elif old & VM_ACCOUNT and v.anon and not _has_anon_pages(mm, v):
        new &= ~VM_ACCOUNT                  # an unfaulted anonymous VMA stops being accounted (6.8+)
    v.vm_flags = new
    v.vm_seq += 1
    change_protection(mm, v, old)
    vma_merge_around(mm, v)


def _has_anon_pages(mm, v):
    """Does the VMA hold any page of its own (Linux: has an anon_vma)? A present or swapped entry."""
    if thp_pmds(mm, v.vm_start, v.vm_end):
        return True
    for _va, _slot, _pte in mm.pgtables.present_ptes(v.vm_start, v.vm_end, split=False):
        return True
    return False


def change_protection(mm, vma, old_flags):
    """Rewrite present PTEs for the VMA's new rights; write access is only ever removed here."""
    if is_vm_hugetlb_page(vma):
        return hugetlb.hugetlb_change_protection(mm, vma)
    phys = mm.svc.frames.phys
    prot = vma_page_prot(vma)
    changed = 0
    split_huge_pmd_edges(mm, vma.vm_start, vma.vm_end)
    for va, slot, e in thp_pmds(mm, vma.vm_start, vma.vm_end):
        changed += change_huge_pmd(mm, vma, slot, e, prot)       # change_pmd_range: whole huge PMDs stay
    for va, slot, pte in list(mm.pgtables.present_ptes(vma.vm_start, vma.vm_end, split=False)):
        if not pte & _PAGE_PRESENT:
            continue
        new = pte
        if not prot & _PAGE_RW:
            new &= ~_PAGE_RW
        elif vma.vm_flags & VM_SHARED and pte & 0x40 and (pte & _PAGE_SOFT_DIRTY or vma.vm_flags & VM_SOFTDIRTY):
            new |= _PAGE_RW                                  # shared, dirty and soft-dirty: keep writable
        new = (new & ~_PAGE_NX) | (prot & _PAGE_NX)
        if not vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC):
            new &= ~4                                        # PROT_NONE: supervisor-only => user faults
        elif not new & 4:
            new |= 4
        if new != pte:
            phys.write64(slot, new)
            changed += 1
    if changed:
        mm.svc.charge('pte_set', changed)
        mm.svc.flush_tlb(mm)


def do_mremap(mm, old_addr, old_len, new_len, flags, new_addr):
    """mremap(2): shrink, grow in place, or move."""
    if flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP):
        return -errno.EINVAL
    if flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE:
        return -errno.EINVAL
    if flags & MREMAP_DONTUNMAP and (not flags & MREMAP_MAYMOVE or
                                     page_align(old_len) % (1 << 64) != page_align(new_len) % (1 << 64)):
        return -errno.EINVAL                # no resizing: the page-aligned lengths must match
    if old_addr & (PAGE_SIZE - 1):
        return -errno.EINVAL
    old_len = page_align(old_len) & ((1 << 64) - 1)     # PAGE_ALIGN of an unsigned long may wrap to 0
    new_len = page_align(new_len) & ((1 << 64) - 1)
    if not new_len:
        return -errno.EINVAL
    if new_len > TASK_SIZE:
        return -errno.EINVAL
    if flags & MREMAP_FIXED:                 # check_mremap_params: the target's own checks first
        if new_addr & (PAGE_SIZE - 1):
            return -errno.EINVAL
        if new_addr < old_addr + old_len and old_addr < new_addr + new_len:
            return -errno.EINVAL
        if new_addr + new_len > TASK_SIZE:
            return -errno.EINVAL
    vma = mm.vmas.vma_lookup(old_addr)
    if vma is None:
        return -errno.EFAULT
    if old_addr + old_len > TASK_SIZE:
        return -errno.EINVAL          # the old range's tail cannot be unmapped (do_vmi_munmap)
    if is_vm_hugetlb_page(vma):
        lens = hugetlb.hugetlb_mremap_check(old_addr, old_len, new_len, new_addr)
        if isinstance(lens, int):
            return lens
        old_len, new_len = lens
    if flags & MREMAP_DONTUNMAP and vma.vm_flags & (VM_DONTEXPAND | VM_PFNMAP):
        return -errno.EINVAL          # special mappings stay (Linux >= 5.13 moves any other kind)
    if old_len == 0:
        if not vma.vm_flags & VM_MAYSHARE:
            return -errno.EINVAL
    if flags & MREMAP_DONTUNMAP and not flags & MREMAP_FIXED:
        # mremap_to without MAP_FIXED: the pages move to a new place (new_addr is a hint), the old
        # range stays mapped and empty
        if old_addr + old_len > vma.vm_end:
            return -errno.EFAULT
        dest = get_unmapped_area(mm, new_addr, new_len, False)
        if dest < 0:
            return dest
        return _move_vma(mm, vma, old_addr, old_len, new_len, dest, flags)
    if not flags & MREMAP_FIXED and new_len <= old_len:
        if new_len < old_len:                # shrink: the tail is unmapped, wherever it lies
            do_munmap(mm, old_addr + new_len, old_len - new_len)
        return old_addr
    if flags & MREMAP_FIXED and old_len == new_len and old_addr + old_len > vma.vm_end:
        return _move_vmas(mm, old_addr, old_len, new_addr, flags)
    # resize_is_valid: what is kept of the old range must lie in this one VMA
    if old_len and old_addr + (min(old_len, new_len) if flags & MREMAP_FIXED else old_len) > vma.vm_end:
        return -errno.EFAULT
    if flags & MREMAP_FIXED:                 # mremap_to: clear the target, trim the source, move
        do_munmap(mm, new_addr, new_len)
        if old_len > new_len:
            do_munmap(mm, old_addr + new_len, old_len - new_len)
            old_len = new_len
        vma = mm.vmas.vma_lookup(old_addr)
        return _move_vma(mm, vma, old_addr, old_len, new_len, new_addr, flags)
    # grow: in place if the VMA ends here and the space after it is free
    if old_addr + old_len == vma.vm_end:
        nxt = mm.vmas.next(vma)
        limit = nxt.vm_start if nxt is not None else TASK_SIZE
        if old_addr + new_len <= limit:
            if vma.vm_flags & VM_ACCOUNT and vm_enough_memory(mm, (new_len - old_len) >> 12):
                return -errno.ENOMEM
            vma.vm_end = old_addr + new_len
            vma.vm_seq += 1
            mm.total_vm += (new_len - old_len) >> 12
            mm.svc.charge('vma_modify')
            vma_merge_around(mm, vma)        # vma_merge_extend: it may now touch a compatible next VMA
            return old_addr
    if not flags & MREMAP_MAYMOVE:
        return -errno.ENOMEM
    dest = get_unmapped_area(mm, 0, new_len, False)
    if dest < 0:
        return dest
    return _move_vma(mm, vma, old_addr, old_len, new_len, dest, flags)


def _move_vmas(mm, old_addr, length, new_addr, flags):
    """A move without resizing may span several VMAs and the gaps between them (Linux 6.17+): each
    VMA piece moves to the same offset in the target; only the pieces' destinations are cleared
    (what lies opposite a gap stays)."""
    for v in _isolate(mm, old_addr, old_addr + length):
        off = v.vm_start - old_addr
        n = v.vm_end - v.vm_start
        do_munmap(mm, new_addr + off, n)
        _move_vma(mm, v, v.vm_start, n, n, new_addr + off, flags)
    return new_addr


def _move_vma(mm, vma, old_addr, old_len, new_len, new_addr, flags):
    """move_vma: create the new VMA, move the page-table entries, unmap the old range (with
    MREMAP_DONTUNMAP the old range stays, empty, unlocked and still committed)."""
    if too_many_maps(mm, 4):
        return -errno.ENOMEM              # move_vma stays 4 maps below max_map_count
    if vma.vm_flags & VM_ACCOUNT:
        grow = new_len if flags & MREMAP_DONTUNMAP else max(0, new_len - old_len)
        if vm_enough_memory(mm, grow >> 12):
            return -errno.ENOMEM
    mm.svc.charge('vma_modify')
    if old_len == 0:
        moved_len = 0
        src = vma
    else:
        src = _isolate(mm, old_addr, old_addr + old_len)[0]
        moved_len = old_len
    new = src.copy()
    new.vm_start = new_addr
    new.vm_end = new_addr + new_len
    if src.vm_file is not None:
        new.vm_pgoff = src.vm_pgoff + ((old_addr - src.vm_start) >> 12)
        src.vm_file.get()
    else:
        new.vm_pgoff = new_addr >> 12
    mm.vmas.insert(new)
    mremap_userfaultfd_prep(mm, old_addr, new_addr, new_len)
    mm.total_vm += new_len >> 12
    if flags & MREMAP_DONTUNMAP and moved_len:
        src.vm_flags &= ~(VM_LOCKED | VM_LOCKONFAULT)     # the old range stays, never locked
        src.vm_seq += 1
    if moved_len:
        if is_vm_hugetlb_page(src):
            hugetlb.move_hugetlb_page_tables(mm, old_addr, new_addr, min(old_len, new_len))
        else:
            copy_page_range_move(mm, old_addr, new_addr, min(old_len, new_len))
        if not flags & MREMAP_DONTUNMAP:
            do_munmap(mm, old_addr, old_len)
    if new.anon:
        vma_merge_around(mm, new)
    return new_addr


def do_brk(mm, brk):
    """brk(2): move the program break; returns the (possibly unchanged) break."""
    if brk < mm.start_brk:
        return mm.brk
    newbrk = page_align(brk)
    oldbrk = page_align(mm.brk)
    if newbrk == oldbrk:
        mm.brk = brk
        return brk
    if brk <= mm.brk:
        if do_munmap(mm, newbrk, oldbrk - newbrk) == 0:
            mm.brk = brk
        return mm.brk
    nxt = mm.vmas.find_vma(oldbrk)
    if nxt is not None and newbrk + PAGE_SIZE > nxt.vm_start:
        return mm.brk
    if too_many_maps(mm) or vm_enough_memory(mm, (newbrk - oldbrk) >> 12):
        return mm.brk                    # do_brk_flags: map_count, then the commit
    mm.svc.charge('vma_modify')
    vma = VmArea(oldbrk, newbrk, VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_ACCOUNT
                 | VM_SOFTDIRTY | mm.def_flags, oldbrk >> 12, None, '[heap]')
    prev = mm.vmas.vma_lookup(oldbrk - 1) if oldbrk > mm.start_brk else None
    if prev is not None and prev.name == '[heap]' and prev.vm_end == oldbrk and \
            not (prev.vm_flags ^ vma.vm_flags) & ~VM_SOFTDIRTY:
        prev.vm_end = newbrk
        prev.vm_flags |= VM_SOFTDIRTY
        prev.vm_seq += 1
    else:
        mm.vmas.insert(vma)
    mm.total_vm += (newbrk - oldbrk) >> 12
    mm.brk = brk
    if mm.def_flags & VM_LOCKED:        # sys_brk populates the new heap under mlockall(MCL_FUTURE)
        mm_populate_locked(mm, oldbrk, newbrk)
    return brk


def mlock_fixup_range(mm, start, end, on, onfault=False):
    """mlock/munlock: set or clear VM_LOCKED on [start, end) (splitting VMAs); -ENOMEM on holes."""
    if end < start or end > TASK_SIZE:
        return -errno.ENOMEM if end > TASK_SIZE else -errno.EINVAL
    cur = start
    for v in mm.vmas.overlapping(start, end):
        if v.vm_start > cur:
            return -errno.ENOMEM
        cur = v.vm_end
    if cur < end:
        return -errno.ENOMEM
    want = VM_LOCKED | (VM_LOCKONFAULT if onfault else 0) if on else 0

    def changes(v):
        return v.vm_flags & (VM_LOCKED | VM_LOCKONFAULT) != want and not mlock_special(v)
    if too_many_maps(mm, splits_needed(mm, start, end, changes)):
        return -errno.ENOMEM             # mlock_fixup's split_vma: map_count >= max_map_count
    cur = start
    while cur < end:                     # by address: a merge may swallow the VMAs that follow
        v = mm.vmas.vma_lookup(cur)
        stop = min(end, v.vm_end)
        if changes(v):
            v = _isolate(mm, cur, stop)[0]
            v.vm_flags = (v.vm_flags & ~(VM_LOCKED | VM_LOCKONFAULT)) | want
            v.vm_seq += 1
            vma_merge_around(mm, v)
        cur = stop
    return 0


def expand_stack(mm, vma, address):
    """Grow a VM_GROWSDOWN VMA down to cover address, within the stack rlimit; 0 or -errno."""
    new_start = address & ~(PAGE_SIZE - 1)
    if vma.vm_end - new_start > mm.stack_rlimit:
        return -errno.ENOMEM
    prev = mm.vmas.prev(vma)
    if prev is not None and prev.vm_end > new_start - PAGE_SIZE * 256:   # stack_guard_gap (1 MiB)
        return -errno.ENOMEM
    mm.vmas.remove(vma)
    mm.total_vm += (vma.vm_start - new_start) >> 12
    vma.vm_start = new_start
    vma.vm_pgoff = new_start >> 12
    vma.vm_seq += 1
    mm.vmas.insert(vma)
    return 0


__all__ = ['do_mmap', 'do_munmap', 'do_mprotect', 'do_mremap', 'do_brk', 'expand_stack', 'split_vma',
           'VM_LOCKED', 'VM_NORESERVE']
