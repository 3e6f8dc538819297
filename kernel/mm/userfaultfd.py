"""The resolving side of userfaultfd (mm/userfaultfd.c): filling and write-protecting registered ranges.

mfill_atomic_copy/zeropage/continue map pages into a range registered with the context, one page at
a time, stopping at the first page already mapped (EEXIST) or the first error; they return the bytes
done or -errno (the ioctl reports a partial count with EAGAIN). Anonymous ranges get new anonymous
pages (the zero page for ZEROPAGE); shmem ranges get pages in the file's page cache (CONTINUE maps
the cached page a MINOR fault found). mwriteprotect_range sets or clears the uffd-wp bit of the
present PTEs. userfaultfd_register_range/unregister_range split VMAs at the range's ends and set or
clear their VM_UFFD_* flags and owner.
"""
import errno

from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.mm.hugetlb_types import HPAGE_SIZE
from faultlab.kernel.mm.memory import alloc_anon_page, page_add_new_anon_rmap, vma_page_prot
from faultlab.kernel.mm.mmap import split_vma, vma_merge_around
from faultlab.kernel.mm.mm_types import FAULT_FLAG_WRITE, TASK_SIZE, VmFault
from faultlab.kernel.mm.page_alloc import PG_anon, PG_anon_exclusive, PG_dirty
from faultlab.kernel.mm.pgtable import _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, pte_pfn
from faultlab.kernel.mm.userfaultfd_k import (POISON_MARKER, UFFD_FEATURE_WP_UNPOPULATED, WP_MARKER, _PAGE_UFFD_WP,
                                     VM_UFFD_FLAGS, VM_UFFD_WP, userfaultfd_ctx_of, userfaultfd_set_owner, uffd_wp_pte,
                                     vma_is_shmem)
from faultlab.kernel.mm.userfaultfd_hugetlb import hugetlb_uffd_writeprotect, mfill_atomic_hugetlb
from faultlab.kernel.mm.vma import VM_HUGETLB, VM_SHARED, VM_WRITE

MFILL_COPY, MFILL_ZEROPAGE, MFILL_CONTINUE, MFILL_POISON = 'copy', 'zeropage', 'continue', 'poison'


def validate_unaligned_range(start, length):
    """0, or -EINVAL for a length that is 0 or not page-aligned, or a range outside user space."""
    if length & (PAGE_SIZE - 1) or not length or start >= TASK_SIZE or length > TASK_SIZE - start:
        return -errno.EINVAL
    return 0


def validate_range(start, length):
    """validate_unaligned_range for a page-aligned start."""
    if start & (PAGE_SIZE - 1):
        return -errno.EINVAL
    return validate_unaligned_range(start, length)


def _install_pte(mm, vma, slot, page, wp, in_cache):
    """mfill_atomic_install_pte: map page writable if the VMA is (not a cached page in a private
    mapping, not with uffd-wp), dirty."""
    prot = vma_page_prot(vma) | _PAGE_DIRTY | _PAGE_ACCESSED
    writable = vma.vm_flags & VM_WRITE and not wp and not (in_cache and not vma.vm_flags & VM_SHARED)
    if not writable:
        prot &= ~_PAGE_RW
    if wp:
        prot |= _PAGE_UFFD_WP
    mm.pgtables.ptes[slot >> 3] = (page.pfn << PAGE_SHIFT) | prot
    mm.svc.charge('pte_set')


def _mfill_pte(mm, ctx, vma, dst, src, mode, wp, umem):
    """Fill one page at dst: 0 or -errno."""
    svc = mm.svc
    slot = mm.pgtables.pte_slot(dst, create=True)
    cur = mm.pgtables.ptes[slot >> 3]
    if cur and (cur != WP_MARKER or mode == MFILL_POISON):     # pte_none_mostly; POISON refuses markers
        return -errno.EEXIST
    if mode == MFILL_POISON:                 # mfill_atomic_pte_poison
        mm.pgtables.ptes[slot >> 3] = POISON_MARKER
        svc.charge('pte_set')
        return 0
    vmf = VmFault(vma, dst, FAULT_FLAG_WRITE)
    vmf.slot = slot
    if vma.anon:
        if mode == MFILL_ZEROPAGE:
            mm.pgtables.ptes[slot >> 3] = (svc.zero_page.pfn << PAGE_SHIFT) | (vma_page_prot(vma) & ~_PAGE_RW)
            svc.charge('pte_set')
            return 0
        data = umem.read(src, PAGE_SIZE)
        if data is None:
            return -errno.EFAULT
        page = alloc_anon_page(mm, vmf, zero=False)
        if page is None:
            return -errno.ENOMEM
        svc.frames.phys.mv[page.pfn << PAGE_SHIFT:(page.pfn + 1) << PAGE_SHIFT] = data
        svc.charge('page_copy')
        svc.stats['uffd_pages_copied'] += 1
        vma.anon_vma = True
        page_add_new_anon_rmap(mm, page, dst)
        _install_pte(mm, vma, slot, page, wp, False)
        return 0
    # shmem: the page goes into (or, for CONTINUE, already is in) the file's page cache
    pc = svc.pagecache
    f = vma.vm_file
    index = vmf.pgoff
    if index >= pc.last_index(f.mapping):
        return -errno.EFAULT
    page = pc.find_get_page(f.mapping, index)
    if mode == MFILL_CONTINUE:
        if page is None:
            return -errno.EFAULT
    else:
        if page is not None:
            return -errno.EEXIST
        data = bytes(PAGE_SIZE) if mode == MFILL_ZEROPAGE else umem.read(src, PAGE_SIZE)
        if data is None:
            return -errno.EFAULT
        if pc.reserve_backing(f.mapping, index):
            return -errno.ENOMEM
        page = pc.grab_cache_page_write_begin(f.mapping, index, whole_page=True)
        if page is None:
            return -errno.ENOMEM
        svc.frames.phys.mv[page.pfn << PAGE_SHIFT:(page.pfn + 1) << PAGE_SHIFT] = data
        svc.charge('page_copy')
        page.flags |= PG_dirty
        svc.stats['uffd_pages_copied'] += 1
    page.refcount += 1
    page.mapcount += 1
    mm.rss_add(file=1)
    _install_pte(mm, vma, slot, page, wp, True)
    return 0


def mfill_atomic(mm, ctx, dst, src, length, mode, wp, umem):
    """Fill [dst, dst + length) page by page: the bytes filled, or -errno if none was."""
    vma = mm.vmas.vma_lookup(dst)
    if vma is None or dst + length > vma.vm_end or not vma.vm_flags & VM_UFFD_FLAGS or \
            userfaultfd_ctx_of(mm, dst) is not ctx:
        return -errno.ENOENT
    if wp and not vma.vm_flags & VM_UFFD_WP:
        return -errno.EINVAL
    if vma.vm_flags & VM_HUGETLB:
        return mfill_atomic_hugetlb(mm, vma, dst, src, length, mode, wp, umem)
    if not vma.anon and not vma_is_shmem(vma):
        return -errno.EINVAL
    if vma.anon and mode == MFILL_CONTINUE:
        return -errno.EINVAL
    if not vma.vm_flags & VM_SHARED:
        vma.anon_vma = True                   # anon_vma_prepare, for every mode
    done = 0
    err = 0
    while done < length:
        err = _mfill_pte(mm, ctx, vma, dst + done, src + done, mode, wp, umem)
        if err:
            break
        done += PAGE_SIZE
    return done if done else err


def mwriteprotect_range(mm, ctx, start, length, enable):
    """UFFDIO_WRITEPROTECT: set (or clear) the uffd-wp bit of every present PTE in the range; -ENOENT
    unless the whole range is VMAs registered for WP with this context."""
    end = start + length
    cur = start
    vmas = mm.vmas.overlapping(start, end)
    for vma in vmas:
        if vma.vm_start > cur or not vma.vm_flags & VM_UFFD_WP or userfaultfd_ctx_of(mm, cur) is not ctx:
            return -errno.ENOENT
        cur = vma.vm_end
    if cur < end:
        return -errno.ENOENT
    for vma in vmas:
        if vma.vm_flags & VM_HUGETLB and (start | length) & (HPAGE_SIZE - 1):
            return -errno.EINVAL             # a hugetlb range is protected in whole huge pages
    svc = mm.svc
    ptes = mm.pgtables.ptes
    pages = svc.frames.pages
    changed = 0
    for vma in vmas:
        if vma.vm_flags & VM_HUGETLB:
            changed += hugetlb_uffd_writeprotect(mm, vma, max(start, vma.vm_start), min(end, vma.vm_end), enable)
            continue
        lo, hi = max(start, vma.vm_start), min(end, vma.vm_end)
        if enable and (not vma.anon or ctx.features & UFFD_FEATURE_WP_UNPOPULATED):
            changed += _install_wp_markers(mm, lo, hi)      # userfaultfd_wp_use_markers: file-backed
        for _va, slot, pte in list(mm.pgtables.present_ptes(lo, hi)):
            if not pte & _PAGE_PRESENT:
                new = uffd_wp_pte(pte, enable)      # a marker goes, a swap entry keeps the state
                if new != pte:
                    ptes[slot >> 3] = new
                    changed += 1
                continue
            if enable:
                new = (pte | _PAGE_UFFD_WP) & ~_PAGE_RW
            else:
                new = pte & ~_PAGE_UFFD_WP
                page = pages[pte_pfn(pte)]
                if vma.vm_flags & VM_WRITE and page is not svc.zero_page and \
                        (vma.vm_flags & VM_SHARED or (page.flags & PG_anon and page.flags & PG_anon_exclusive)):
                    new |= _PAGE_RW          # can_change_pte_writable: exclusive anon or shared
            if new != pte:
                ptes[slot >> 3] = new
                changed += 1
    if changed:
        svc.charge('pte_set', changed)
        svc.flush_tlb(mm)
    return 0


def _install_wp_markers(mm, start, end):
    """change_pte_range with uffd-wp: a uffd-wp marker in every empty PTE of [start, end); the count."""
    ptes = mm.pgtables.ptes
    n = 0
    for va in range(start, end, PAGE_SIZE):
        slot = mm.pgtables.pte_slot(va, create=True)
        if not ptes[slot >> 3]:
            ptes[slot >> 3] = WP_MARKER
            n += 1
    return n


def _split_to(mm, start, end):
    """The VMAs covering [start, end), split so that none extends past either end."""
    out = []
    for vma in mm.vmas.overlapping(start, end):
        if vma.vm_start < start:
            vma = split_vma(mm, vma, start)
        if vma.vm_end > end:
            split_vma(mm, vma, end)
        out.append(vma)
    return out


def userfaultfd_register_range(mm, ctx, start, end, vm_flags):
    """Give every VMA part in [start, end) the VM_UFFD_* flags vm_flags and the owner ctx."""
    for vma in _split_to(mm, start, end):
        vma.vm_flags = (vma.vm_flags & ~VM_UFFD_FLAGS) | vm_flags
    userfaultfd_set_owner(mm, start, end, ctx)


def userfaultfd_unregister_range(mm, start, end):
    """Clear the VM_UFFD_* flags and the owner of [start, end) (clearing the uffd-wp bits left in
    the PTEs, as userfaultfd_clear_vma does), merging VMAs that become alike."""
    for vma in _split_to(mm, start, end):
        if vma.vm_flags & VM_UFFD_WP and vma.vm_flags & VM_HUGETLB:
            hugetlb_uffd_writeprotect(mm, vma, vma.vm_start, vma.vm_end, False)
        elif vma.vm_flags & VM_UFFD_WP:
            ptes = mm.pgtables.ptes
            for _va, slot, pte in list(mm.pgtables.present_ptes(vma.vm_start, vma.vm_end)):
                ptes[slot >> 3] = uffd_wp_pte(pte, False)
        vma.vm_flags &= ~VM_UFFD_FLAGS
        vma_merge_around(mm, vma)
    userfaultfd_set_owner(mm, start, end, None)


def userfaultfd_release_all(mm, ctx):
    """The context's last close: every range it registered becomes ordinary again."""
    for s, e, c in list(getattr(mm, 'uffd_ranges', [])):
        if c is ctx:
            userfaultfd_unregister_range(mm, s, e)
