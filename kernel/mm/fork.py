"""fork's copy of an address space (kernel/fork.c dup_mm, mm/memory.c copy_page_range).

The child gets a copy of every VMA (except VM_DONTCOPY) and of every page-table entry: private
pages become copy-on-write (write-protected in both, one more mapping and reference), shared and file
pages are mapped in both, swap entries take one more use of their slot. An exclusive anonymous page
that may be pinned (a pin's GUP_PIN_COUNTING_BIAS in its reference count, in an mm that ever pinned)
is copied for the child at once, so the pin keeps seeing the parent's writes (copy_present_page).
VM_WIPEONFORK mappings come to the child empty. hugetlb mappings are copied as VMAs only: the child
faults its huge pages in afresh (shared ones find the same pages).
"""
from faultlab.kernel.mm.mdwe import mmf_init_flags
from faultlab.kernel.mm.mm_types import MmStruct
from faultlab.kernel.mm.gup_pin import page_maybe_dma_pinned
from faultlab.kernel.mm.llc import charge_page_copy
from faultlab.kernel.mm.huge_memory import copy_huge_pmd, thp_pmds
from faultlab.kernel.mm.hugetlb_fork import copy_hugetlb_page_range
from faultlab.kernel.mm.memory import SWP_HWPOISON, page_add_new_anon_rmap, vma_page_prot
from faultlab.kernel.mm.page_alloc import PG_anon, PG_anon_exclusive, PG_reserved
from faultlab.kernel.mm.pgtable import _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_SOFT_DIRTY, pfn_pte, \
    pte_pfn, pte_to_swp_entry
from faultlab.kernel.mm.userfaultfd_events import dup_userfaultfd, uffd_wp_kept_on_fork
from faultlab.kernel.mm.vm_sysctl import vm_enough_memory, vma_pages
from faultlab.kernel.mm.vma import VM_ACCOUNT, VM_DONTCOPY, VM_HUGETLB, VM_SHARED, VM_WIPEONFORK

_MM_FIELDS = ('start_code', 'end_code', 'start_data', 'end_data', 'start_brk', 'brk', 'start_stack',
              'mmap_base', 'stack_rlimit', 'total_vm', 'hiwater_rss')
_MM_OPTIONAL = ('arg_start', 'arg_end', 'env_start', 'env_end', 'saved_auxv', 'vdso_base', 'exe_file',
                'mmf_dumpable', 'mmf_disable_thp')


def dup_mmap_charge(oldmm):
    """dup_mmap's commit charge: each VM_ACCOUNT mapping the child gets is committed again
    (security_vm_enough_memory_mm on the parent's mm, the earlier ones already counted); False when
    __vm_enough_memory refuses one (fork fails with ENOMEM)."""
    charged = 0
    for vma in oldmm.vmas:
        if vma.vm_flags & VM_ACCOUNT and not vma.vm_flags & VM_DONTCOPY:
            if vm_enough_memory(oldmm, vma_pages(vma), uncharged=-charged):
                return False
            charged += vma_pages(vma)
    return True


def dup_mm(k, oldmm):
    """A copy-on-write copy of oldmm for a child process, or None when memory runs out."""
    svc = oldmm.svc
    if not dup_mmap_charge(oldmm):
        return None
    try:
        mm = MmStruct(svc)
    except MemoryError:
        return None
    for f in _MM_FIELDS:
        setattr(mm, f, getattr(oldmm, f))
    for f in _MM_OPTIONAL:
        if hasattr(oldmm, f):
            setattr(mm, f, getattr(oldmm, f))
    mmf_init_flags(mm, oldmm)
    if getattr(mm, 'exe_file', None) is not None:
        mm.exe_file.get()
    for vma in oldmm.vmas:
        if vma.vm_flags & VM_DONTCOPY:
            mm.total_vm -= (vma.vm_end - vma.vm_start) >> 12
            continue
        new = vma.copy()
        if new.vm_file is not None:
            new.vm_file.get()
        mm.vmas.insert(new)
        if vma.vm_flags & VM_WIPEONFORK:
            new.anon_vma = False             # the child starts with empty (zero) memory here
            continue
        if vma.vm_flags & VM_HUGETLB:
            if not copy_hugetlb_page_range(mm, oldmm, vma, uffd_wp_kept_on_fork(oldmm, vma)):
                return None
        elif not copy_page_range(mm, oldmm, vma):
            return None
    svc.flush_tlb(oldmm)             # the parent's PTEs were write-protected
    dup_userfaultfd(oldmm, mm)
    return mm


def copy_page_range(dst, src, vma):
    """Copy the PTEs of vma from src to dst (copy_pte_range); False on OOM."""
    svc = src.svc
    frames = svc.frames
    phys = frames.phys
    cow = not vma.vm_flags & VM_SHARED
    sc = svc.swapcache
    n = 0
    for va, slot, e in thp_pmds(src, vma.vm_start, vma.vm_end):
        if not copy_huge_pmd(dst, src, vma, va, slot, e):      # copy_pmd_range's huge PMDs
            return False
    for va, slot, pte in list(src.pgtables.present_ptes(vma.vm_start, vma.vm_end, split=False)):
        try:
            dslot = dst.pgtables.pte_slot(va, create=True)
        except MemoryError:
            return False
        n += 1
        if not pte & _PAGE_PRESENT:
            swp_type, offset = pte_to_swp_entry(pte)
            if swp_type == SWP_HWPOISON:         # a hwpoison entry or poison marker: copied as it is
                if vma.anon_vma:                 # (vma_needs_copy: Linux copies no PTE of a VMA without)
                    phys.write64(dslot, pte)
                continue
            if sc is not None:
                sc.area.swap_duplicate(offset)
                dst.swap_ents = getattr(dst, 'swap_ents', 0) + 1
            phys.write64(dslot, pte)
            continue
        page = frames.pages[pte_pfn(pte)]
        if page.flags & PG_anon and page.flags & PG_anon_exclusive:
            if cow and page_needs_cow_for_dma(src, page):
                if not copy_present_page(dst, vma, va, dslot, pte, page):
                    return False
                continue
            page.flags &= ~PG_anon_exclusive     # folio_try_dup_anon_rmap: now shared with the child
        if cow and pte & _PAGE_RW:
            pte &= ~_PAGE_RW                     # copy-on-write in both
            phys.write64(slot, pte)
        phys.write64(dslot, pte)
        if page is svc.zero_page or page.flags & PG_reserved:
            continue
        page.mapcount += 1
        page.refcount += 1
        if page.flags & PG_anon:
            dst.rss_add(anon=1)
        else:
            dst.rss_add(file=1)
    if n:
        svc.charge('pte_set', n)
    return True


def page_needs_cow_for_dma(src, page):
    """folio_needs_cow_for_dma: the mm has pinned pages (MMF_HAS_PINNED) and this one may be pinned."""
    return getattr(src, 'has_pinned', False) and page_maybe_dma_pinned(page)


def copy_present_page(dst, vma, va, dslot, pte, page):
    """The child gets its own copy of a possibly pinned exclusive page, mapped writable when the VMA
    is; the parent's entry stays as it is. False when no page can be allocated."""
    svc = dst.svc
    frames = svc.frames
    new = frames.alloc_page(zero=False)
    if new is None:
        return False
    svc.charge('page_alloc')
    frames.phys.copy_frame(new.pfn, page.pfn)
    charge_page_copy(svc, new.pfn, page.pfn)
    svc.stats['pages_copied'] += 1
    page_add_new_anon_rmap(dst, new, va)
    frames.phys.write64(dslot, pfn_pte(new.pfn, vma_page_prot(vma)) | _PAGE_DIRTY | _PAGE_ACCESSED
                        | (pte & _PAGE_SOFT_DIRTY))
    return True
