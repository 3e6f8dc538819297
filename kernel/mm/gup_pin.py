"""Taking references to user pages from the kernel (mm/gup.c): get_user_pages for vmsplice and
pin_user_pages (FOLL_PIN, FOLL_LONGTERM) for io_uring's fixed buffers.

A reference (FOLL_GET) adds one to the page's count; a pin adds GUP_PIN_COUNTING_BIAS, which is how
folio_maybe_dma_pinned recognizes a pinned page, and marks the mm MMF_HAS_PINNED, after which fork
copies possibly pinned exclusive pages for the child instead of sharing them. As in Linux since 5.19:
a write request breaks COW first (a write fault), and a read-only pin of an anonymous page that may
be shared (not PageAnonExclusive) unshares it (FAULT_FLAG_UNSHARE), so the pin and the page table
keep naming the same page whatever the process writes later.
"""
import errno

from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.mm.gup import mm_account_gup_fault
from faultlab.kernel.mm.hugetlb_types import vma_kernel_pagesize
from faultlab.kernel.mm.memory import handle_mm_fault
from faultlab.kernel.mm.mm_types import (FAULT_FLAG_WRITE, FAULT_FLAG_UNSHARE, VM_FAULT_ERROR, VM_FAULT_OOM,
                                VM_FAULT_HWPOISON)
from faultlab.kernel.mm.page_alloc import PG_anon, PG_anon_exclusive, PG_reserved, PG_hugetlb
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_RW, _PAGE_SOFT_DIRTY, pte_pfn
from faultlab.kernel.mm.userfaultfd_k import _PAGE_UFFD_WP, VM_UFFD_WP
from faultlab.kernel.mm.vma import (VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_SHARED,
                           VM_SOFTDIRTY, VM_HUGETLB)

# include/linux/mm_types.h (enum) and mm/internal.h (FOLL_PIN)
FOLL_WRITE = 1 << 0
FOLL_GET = 1 << 1
FOLL_FORCE = 1 << 3
FOLL_ANON = 1 << 7
FOLL_LONGTERM = 1 << 8
FOLL_PIN = 1 << 13

GUP_PIN_COUNTING_BIAS = 1024        # include/linux/mm.h
EHWPOISON = 133


def page_maybe_dma_pinned(page):
    """folio_maybe_dma_pinned for a small page: pins add GUP_PIN_COUNTING_BIAS to the refcount."""
    return page.refcount >= GUP_PIN_COUNTING_BIAS


def vma_needs_dirty_tracking(vma):
    """A shared writable file mapping whose writes the kernel must see: soft-dirty tracking is on
    (VM_SOFTDIRTY clear), or the file system writes pages back (a disk; tmpfs, memfd and hugetlbfs
    do not)."""
    if vma.vm_flags & (VM_SHARED | VM_WRITE) != VM_SHARED | VM_WRITE:
        return False
    if not vma.vm_flags & VM_SOFTDIRTY:
        return True
    if vma.vm_flags & VM_PFNMAP or vma.vm_file is None:
        return False
    return getattr(vma.vm_file.inode, 'backing', 'mem') == 'disk'


def writable_file_mapping_allowed(vma, gup_flags):
    """A long-term writable pin of a file page is refused where the file system tracks dirty pages."""
    if gup_flags & (FOLL_PIN | FOLL_LONGTERM) != FOLL_PIN | FOLL_LONGTERM:
        return True
    return not vma_needs_dirty_tracking(vma)


def vma_is_secretmem(vma):
    """A memfd_secret mapping (its inode has its own ->mmap and no read/write; see
    kernel/mm/secretmem.py, which this module cannot import: it sits above the system calls)."""
    inode = vma.vm_file.inode if vma.vm_file is not None else None
    return getattr(inode, 'no_read_write', False) and hasattr(inode, 'mmap')


def check_vma_flags(vma, gup_flags):
    """May GUP take these pages of vma at all? 0 or -errno (mm/gup.c check_vma_flags)."""
    flags = vma.vm_flags
    write = gup_flags & FOLL_WRITE
    if flags & (VM_IO | VM_PFNMAP):
        return -errno.EFAULT
    if gup_flags & FOLL_ANON and not vma.anon:
        return -errno.EFAULT
    if vma_is_secretmem(vma):
        return -errno.EFAULT
    if write:
        if not vma.anon and not writable_file_mapping_allowed(vma, gup_flags):
            return -errno.EFAULT
        if not flags & VM_WRITE:
            if not gup_flags & FOLL_FORCE or flags & VM_HUGETLB:
                return -errno.EFAULT          # hugetlb does not support FOLL_FORCE | FOLL_WRITE
            if not is_cow_mapping(flags):
                return -errno.EFAULT          # a forced write only breaks COW in a private mapping
    elif not flags & VM_READ:
        if not gup_flags & FOLL_FORCE or not flags & VM_MAYREAD:
            return -errno.EFAULT
    return 0


def is_cow_mapping(flags):
    """A private mapping that may be written (VM_MAYWRITE without VM_SHARED): writes copy its pages."""
    return flags & (VM_SHARED | VM_MAYWRITE) == VM_MAYWRITE


def can_follow_write_pte(vma, pte, page, gup_flags):
    """May a FOLL_WRITE access use this read-only PTE as it is? Only FOLL_FORCE in a read-only private
    mapping whose page is already an exclusive anonymous copy (COW broken before), soft-dirty tracking
    and userfaultfd write protection not asking for a fault (mm/gup.c can_follow_write_pte)."""
    flags = vma.vm_flags
    if not gup_flags & FOLL_FORCE or flags & (VM_MAYSHARE | VM_SHARED) or not flags & VM_MAYWRITE:
        return False
    if flags & VM_WRITE or page is None or not page.flags & PG_anon or not page.flags & PG_anon_exclusive:
        return False
    if not flags & VM_SOFTDIRTY and not pte & _PAGE_SOFT_DIRTY:
        return False                      # vma_soft_dirty_enabled and the PTE not soft-dirty yet
    return not (flags & VM_UFFD_WP and pte & _PAGE_UFFD_WP)


def gup_must_unshare(mm, vma, gup_flags, page):
    """A read-only pin of an anonymous page that may be shared must unshare it first."""
    if gup_flags & (FOLL_WRITE | FOLL_PIN) != FOLL_PIN:
        return False
    if page is mm.svc.zero_page or not page.flags & PG_anon:
        return False
    return not page.flags & PG_anon_exclusive


def _fault_errno(ret):
    if ret & VM_FAULT_OOM:
        return -errno.ENOMEM
    if ret & VM_FAULT_HWPOISON:
        return -EHWPOISON
    return -errno.EFAULT


def follow_page(mm, vma, address, gup_flags):
    """The (page to reference, pfn) mapped at address as the request needs it (present, writable
    when FOLL_WRITE, exclusive for a read-only pin), faulting it in as needed; or -errno."""
    svc = mm.svc
    pages = svc.frames.pages
    for _try in range(3):
        pte = mm.pgtables.get_pte(address)
        fault = 0
        if not pte & _PAGE_PRESENT:
            fault = FAULT_FLAG_WRITE if gup_flags & FOLL_WRITE else 0
        elif gup_flags & FOLL_WRITE and not pte & _PAGE_RW and \
                not can_follow_write_pte(vma, pte, pages[pte_pfn(pte)], gup_flags):
            fault = FAULT_FLAG_WRITE
        else:
            pfn = pte_pfn(pte)
            if vma_kernel_pagesize(vma) > PAGE_SIZE:       # a huge PMD: the 4 KiB frame inside it
                pfn = (pfn & ~0x1FF) + ((address >> PAGE_SHIFT) & 0x1FF)
            page = pages[pfn]
            if not pte & _PAGE_RW and gup_must_unshare(mm, vma, gup_flags, page):
                fault = FAULT_FLAG_UNSHARE
            else:
                ref = pages[pte_pfn(pte)] if vma_kernel_pagesize(vma) > PAGE_SIZE else page
                return ref, pfn
        ret, _vmf = handle_mm_fault(mm, vma, address, fault)
        svc.stats['kernel_faultins'] += 1
        mm_account_gup_fault(mm, ret)
        if ret & VM_FAULT_ERROR:
            return _fault_errno(ret)
    return -errno.EFAULT


def grab_page(mm, page, gup_flags):
    """try_grab_folio: one reference, or a pin (GUP_PIN_COUNTING_BIAS) for FOLL_PIN."""
    if page.flags & PG_reserved:
        return                            # the zero page and reserved frames are never freed
    n = GUP_PIN_COUNTING_BIAS if gup_flags & FOLL_PIN else 1
    page.refcount += n
    _note_ref(mm, page, n)


def _note_ref(mm, page, n):
    """Keep svc.gup_refs (the references held outside page tables and caches) up to date."""
    refs = mm.svc.gup_refs
    left = refs.get(page.pfn, 0) + n
    if left:
        refs[page.pfn] = left
    else:
        refs.pop(page.pfn, None)


def get_user_pages(mm, start, nr_pages, gup_flags):
    """__get_user_pages: [(page, pfn)] for nr_pages pages from start, each referenced (FOLL_GET) or
    pinned (FOLL_PIN); the pages taken before an error, or -errno when the first one fails."""
    if gup_flags & FOLL_PIN:
        mm.has_pinned = True              # MMF_HAS_PINNED
    out = []
    addr = start & ~(PAGE_SIZE - 1)
    for _i in range(nr_pages):
        vma = mm.vmas.vma_lookup(addr)
        err = -errno.EFAULT if vma is None else check_vma_flags(vma, gup_flags)
        if not err:
            got = follow_page(mm, vma, addr, gup_flags)
            if isinstance(got, int):
                err = got
        if err:
            return out if out else err
        grab_page(mm, got[0], gup_flags)
        out.append(got)
        addr += PAGE_SIZE
    return out


def put_user_page(mm, page, gup_flags):
    """Drop what grab_page took (put_page, or unpin_user_page for FOLL_PIN)."""
    if page.flags & PG_reserved:
        return
    _note_ref(mm, page, -(GUP_PIN_COUNTING_BIAS if gup_flags & FOLL_PIN else 1))
    if gup_flags & FOLL_PIN:
        page.refcount -= GUP_PIN_COUNTING_BIAS - 1
    if page.flags & PG_hugetlb:
        page.refcount -= 1                # the hugetlb pool, not the frame allocator, frees huge pages
        return
    mm.svc.frames.put_page(page)


def pin_user_pages(mm, start, nr_pages, gup_flags):
    """pin_user_pages(_fast): get_user_pages with FOLL_PIN; all of them or -errno (a partial pin is
    undone and reported as -EFAULT, as io_uring's io_pin_pages does)."""
    got = get_user_pages(mm, start, nr_pages, gup_flags | FOLL_PIN)
    if isinstance(got, int):
        return got
    if len(got) != nr_pages:
        for page, _pfn in got:
            put_user_page(mm, page, FOLL_PIN)
        return -errno.EFAULT
    return got
