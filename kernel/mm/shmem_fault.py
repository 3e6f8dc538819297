"""shmem_fault (mm/shmem.c): a page fault on a tmpfs, memfd, SysV shm or shared anonymous page.

Linux gives shmem its own ->fault, not filemap_fault: shmem_get_folio_gfp(SGP_CACHE) looks the index
up in the page cache; a page found there is mapped; a swap entry comes back by shmem_swapin_folio (a
major fault when it needs a read); a hole gets one new page, cleared (clear_highpage), added to the
page cache and marked uptodate. There is no read-ahead and no read-around, and no shared zero page
(that is only for private anonymous reads), so a first read of empty shared memory allocates and
clears one page per fault, as a write does. Fault-around (filemap_map_pages, shmem's ->map_pages)
maps only pages already cached and uptodate, so a second mapping of populated shmem gets it.

A shared writable shmem VMA needs no write notification (no ->page_mkwrite, no dirty accounting:
vma_wants_writenotify is false), so vm_page_prot is writable and a read fault maps the page writable
too: a later write costs no fault, the CPU sets the PTE's dirty bit. Soft-dirty tracking (after
clear_refs) and uffd-wp still want the write fault.
"""
from faultlab.kernel.mm.llc import charge_page_zero
from faultlab.kernel.mm.mm_types import (FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_RETRY_NOWAIT, FAULT_FLAG_WRITE,
                                         VM_FAULT_HWPOISON, VM_FAULT_MAJOR, VM_FAULT_NOPAGE, VM_FAULT_OOM,
                                         VM_FAULT_RETRY, VM_FAULT_SIGBUS)
from faultlab.kernel.mm.page_alloc import PG_hwpoison, PG_locked, PG_uptodate
from faultlab.kernel.mm.shmem import is_shmem_mapping
from faultlab.kernel.mm.pgtable import PMD_SIZE
from faultlab.kernel.mm.shmem_huge import do_set_pmd, shmem_allowable_huge, shmem_alloc_huge_folio, shmem_vma_suitable
from faultlab.kernel.mm.userfaultfd_k import VM_UFFD_WP
from faultlab.kernel.mm.vma import VM_SHARED, VM_SOFTDIRTY, VM_WRITE


def vma_maps_writable_on_read(vma):
    """A read fault may map the page writable: a shared writable shmem VMA for which
    vma_wants_writenotify (mm/mmap.c) is false (no soft-dirty tracking, no uffd-wp)."""
    f = vma.vm_flags
    return f & (VM_WRITE | VM_SHARED) == VM_WRITE | VM_SHARED and f & VM_SOFTDIRTY and not f & VM_UFFD_WP \
        and vma.vm_file is not None and is_shmem_mapping(vma.vm_file.mapping)


def _give_up(vmf, ret):
    """A NOWAIT fault that would sleep or reclaim gives up at once (VM_FAULT_RETRY); others get ret."""
    if vmf.flags & FAULT_FLAG_RETRY_NOWAIT and vmf.flags & FAULT_FLAG_ALLOW_RETRY:
        return VM_FAULT_RETRY
    return ret


def shmem_alloc_and_add_folio(svc, mapping, index):
    """A new page for a hole at index: allocated (reclaiming if need be), cleared, in the page cache
    and on the LRU, uptodate; None when memory is exhausted."""
    pc = svc.pagecache
    page = pc._alloc_cache_page()          # charges page_alloc
    if page is None:
        return None
    svc.frames.phys.zero_frame(page.pfn)   # shmem_get_folio_gfp: clear_highpage of a !uptodate folio
    charge_page_zero(svc, page.pfn)
    svc.stats['pages_zeroed'] += 1
    pc.add_to_page_cache_lru(page, mapping, index)
    page.refcount -= 1                     # only the cache holds it now
    page.flags |= PG_uptodate
    page.io_done_at = svc.sched.now()
    return page


def shmem_get_folio_gfp(mm, vmf, mapping, index):
    """SGP_CACHE lookup: (VM_FAULT bits, the uptodate page at index, or None with an error)."""
    svc = mm.svc
    pc = svc.pagecache
    page = pc.find_get_page(mapping, index)
    if page is not None:
        svc.stats['pagecache_hits'] += 1
        if page.flags & PG_locked:         # its swap read is still in flight
            if vmf.flags & FAULT_FLAG_RETRY_NOWAIT and vmf.flags & FAULT_FLAG_ALLOW_RETRY:
                return VM_FAULT_RETRY, None
            pc.wait_on_page_locked(page)
        return 0, page
    svc.stats['pagecache_misses'] += 1
    inode = mapping.inode
    swap = pc.shmem_swap
    if swap is not None and swap.has_entry(inode, index) or inode.has_page(index):
        # shmem_swapin_folio (or the file's bytes, kept while the page was out of the cache): one page,
        # read from swap unless it is still in the swap cache
        if not pc.page_cache_ra_unbounded(mapping, index, 1, nowait=bool(vmf.flags & FAULT_FLAG_RETRY_NOWAIT)):
            return _give_up(vmf, VM_FAULT_OOM), None
        page = mapping.pages[index]
        ret = 0
        if page.flags & PG_locked:
            ret = VM_FAULT_MAJOR           # count_vm_event(PGMAJFAULT): the page had to be read
            pc.wait_on_page_locked(page)
        return ret, page
    page = shmem_alloc_huge_folio(mm, vmf, mapping, index)
    if page is not None:
        return 0, page                     # a 2 MiB folio (kernel/mm/shmem_huge.py)
    if pc.reserve_backing(mapping, index):
        return VM_FAULT_SIGBUS, None       # shmem_inode_acct_blocks: ENOSPC before allocating
    page = shmem_alloc_and_add_folio(svc, mapping, index)
    if page is None:
        return _give_up(vmf, VM_FAULT_OOM), None
    return 0, page


def shmem_fault(mm, vmf, mapping):
    """->fault of shmem VMAs: (VM_FAULT bits, page) as filemap_fault returns them; SIGBUS past EOF."""
    index = vmf.pgoff
    if index >= mm.svc.pagecache.last_index(mapping):
        return VM_FAULT_SIGBUS, None
    kh = getattr(mm.svc, 'khugepaged', None)
    if kh is not None and mm not in kh.slots:
        kh.enter_vma(mm, vmf.vma)          # khugepaged_enter_vma (Linux: at mmap) for a VMA allowing THP
    ret, page = shmem_get_folio_gfp(mm, vmf, mapping, index)
    if page is not None and page.flags & PG_hwpoison:
        return VM_FAULT_HWPOISON, None
    vma = vmf.vma
    write = vmf.flags & FAULT_FLAG_WRITE
    if page is not None and not (write and not vma.vm_flags & VM_SHARED) and \
            do_set_pmd(mm, vmf, page, bool(write) or vma_maps_writable_on_read(vma)):
        vmf.handler = 'shmem_fault(pmd)'   # finish_fault -> do_set_pmd: the whole folio, one fault
        return ret | VM_FAULT_NOPAGE, None
    return ret, page


def shmem_thp_eligible(mm, vma):
    """smaps' THPeligible for a shmem VMA (__thp_vma_allowable_orders, TVA_SMAPS | TVA_ENFORCE_SYSFS):
    the aligned 2 MiB ending at the VMA's end fits it at the file's alignment and
    shmem_allowable_huge_orders allows the PMD size at vm_pgoff."""
    f = vma.vm_file
    if f is None or getattr(f, 'mapping', None) is None or not is_shmem_mapping(f.mapping):
        return False
    if not shmem_vma_suitable(vma, vma.vm_end - PMD_SIZE):
        return False
    return shmem_allowable_huge(mm, vma, f.inode, vma.vm_pgoff)
