"""Page-table views for /proc/PID (fs/proc/task_mmu.c): pagemap, clear_refs and the smaps counters.

pagemap: one little-endian 64-bit entry per virtual page, read at offset (vaddr / 4096) * 8:
bits 0-54 the PFN (present) or swap type (bits 0-4) and offset (bits 5-54) (swapped), bit 55 soft-dirty,
bit 56 exclusively mapped, bit 61 file page or shared anonymous, bit 62 swapped, bit 63 present.
"""
import errno
import re
import struct

from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.mm.hugetlb_types import HPAGE_MASK, HPAGE_SIZE
from faultlab.kernel.mm.huge_memory import (HPAGE_PMD_NR, folio_entire_mapcount, is_huge_zero_pmd, thp_pmd_of,
                                            thp_pmds)
from faultlab.kernel.mm.ksm_types import PG_ksm
from faultlab.kernel.mm.memory import SWP_HWPOISON
from faultlab.kernel.mm.mm_types import TASK_SIZE
from faultlab.kernel.mm.page_alloc import PG_anon, PG_swapbacked, PG_dirty, PG_referenced
from faultlab.kernel.mm.pgtable import (_PAGE_PRESENT, _PAGE_RW, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_SOFT_DIRTY,
                               PMD_PFN_MASK, PMD_SHIFT, _PAGE_PSE, pte_pfn, pte_to_swp_entry)
from faultlab.kernel.mm.userfaultfd_k import _PAGE_SWP_UFFD_WP, _PAGE_UFFD_WP, WP_MARKER, is_swap_pte
from faultlab.kernel.mm.vma import VM_SOFTDIRTY, VM_PFNMAP, VM_LOCKED, VM_HUGETLB

PM_ENTRY_BYTES = 8
PM_PFRAME_BITS = 55
PM_PFRAME_MASK = (1 << PM_PFRAME_BITS) - 1
PM_SOFT_DIRTY = 1 << 55
PM_MMAP_EXCLUSIVE = 1 << 56
PM_UFFD_WP = 1 << 57
PM_FILE = 1 << 61
PM_SWAP = 1 << 62
PM_PRESENT = 1 << 63
MAX_SWAPFILES_SHIFT = 5

# the soft-dirty bit of a swap entry (x86 keeps it in bit 1, which the swap entry format leaves free)
_PAGE_SWP_SOFT_DIRTY = _PAGE_RW

PAGEMAP_READ_MAX = 1 << 26       # bytes produced by one read (8M entries, 32 GiB of address space)

CLEAR_REFS_ALL, CLEAR_REFS_ANON, CLEAR_REFS_MAPPED, CLEAR_REFS_SOFT_DIRTY, CLEAR_REFS_MM_HIWATER_RSS = 1, 2, 3, 4, 5
CLEAR_REFS_LAST = 6

PSS_SHIFT = 12
_PTRS = 1 << (PMD_SHIFT - PAGE_SHIFT)


def make_pme(frame, flags):
    """One pagemap entry from a frame number (or swap type/offset) and PM_* flags."""
    return (frame & PM_PFRAME_MASK) | flags


def vm_normal_page(mm, vma, pte):
    """The struct page a present PTE maps, or None for the zero page and PFN mappings."""
    if vma.vm_flags & VM_PFNMAP:
        return None
    pages = mm.svc.frames.pages
    pfn = pte_pfn(pte)
    if pfn >= len(pages):
        return None
    page = pages[pfn]
    return None if page is mm.svc.zero_page else page


def _swap_entry_page(mm, swp_type, offset):
    """pfn_swap_entry_to_page: the page a hwpoison entry names (ordinary swap entries name none)."""
    if swp_type != SWP_HWPOISON:
        return None
    pages = mm.svc.frames.pages
    return pages[offset] if offset < len(pages) else None


def pte_to_pagemap_entry(mm, vma, pte, show_pfn=True):
    """The pagemap entry for one leaf PTE of vma (0 = none)."""
    frame = flags = 0
    page = None
    if pte & _PAGE_PRESENT:
        if show_pfn:
            frame = pte_pfn(pte)
        flags |= PM_PRESENT
        page = vm_normal_page(mm, vma, pte)
        if pte & _PAGE_SOFT_DIRTY:
            flags |= PM_SOFT_DIRTY
        if pte & _PAGE_UFFD_WP:
            flags |= PM_UFFD_WP
    elif pte:
        if pte == WP_MARKER or is_swap_pte(pte) and pte & _PAGE_SWP_UFFD_WP:
            flags |= PM_UFFD_WP              # pte_marker_entry_uffd_wp, pte_swp_uffd_wp
        if pte & _PAGE_SWP_SOFT_DIRTY:
            flags |= PM_SOFT_DIRTY
        swp_type, offset = pte_to_swp_entry(pte)
        if show_pfn:
            frame = swp_type | (offset << MAX_SWAPFILES_SHIFT)
        flags |= PM_SWAP
        page = _swap_entry_page(mm, swp_type, offset)
    if page is not None:
        if not page.flags & PG_anon:
            flags |= PM_FILE
        if flags & PM_PRESENT and page.mapcount == 1:
            flags |= PM_MMAP_EXCLUSIVE
    if vma.vm_flags & VM_SOFTDIRTY:
        flags |= PM_SOFT_DIRTY
    return make_pme(frame, flags)


def pagemap_pte_hole(vma, n):
    """Entries for n pages without page tables: 0, or soft-dirty inside a VM_SOFTDIRTY VMA."""
    pme = PM_SOFT_DIRTY if vma is not None and vma.vm_flags & VM_SOFTDIRTY else 0
    return struct.pack('<Q', pme) * n


def pagemap_hugetlb_range(mm, vma, start, end, show_pfn=True):
    """pagemap entries (little-endian u64 each) for [start, end) of a hugetlb VMA."""
    out = bytearray()
    va = start
    pages = mm.svc.frames.pages
    while va < end:
        stop = min(end, (va & HPAGE_MASK) + HPAGE_SIZE)
        n = (stop - va) >> 12
        e = mm.pgtables.huge_pmd(va)
        flags = PM_SOFT_DIRTY if vma.vm_flags & VM_SOFTDIRTY else 0
        frame = 0
        if e & _PAGE_PRESENT:
            head = pages[(e & PMD_PFN_MASK) >> 12]
            if not head.flags & PG_anon:
                flags |= PM_FILE
            if head.mapcount == 1:
                flags |= PM_MMAP_EXCLUSIVE
            flags |= PM_PRESENT
            if e & _PAGE_UFFD_WP:
                flags |= PM_UFFD_WP
            if show_pfn:
                frame = head.pfn + ((va & (HPAGE_SIZE - 1)) >> 12)
        elif e and e & ~_PAGE_PSE == WP_MARKER:
            flags |= PM_UFFD_WP                  # pte_swp_uffd_wp_any: a uffd-wp marker
        if flags & PM_PRESENT and show_pfn:
            out += struct.pack('<%dQ' % n, *[make_pme(frame + i, flags) for i in range(n)])
        else:
            out += struct.pack('<Q', make_pme(frame, flags)) * n
        va = stop
    return bytes(out)


def pagemap_pte_range(mm, vma, start, end, show_pfn=True):
    """Entries for [start, end) inside vma, one page table (PMD range) at a time."""
    if vma.vm_flags & VM_HUGETLB:
        return pagemap_hugetlb_range(mm, vma, start, end, show_pfn)
    out = bytearray()
    phys = mm.svc.frames.phys
    va = start
    while va < end:
        stop = min(end, ((va >> PMD_SHIFT) + 1) << PMD_SHIFT)
        n = (stop - va) >> PAGE_SHIFT
        slot = mm.pgtables.pte_slot(va, create=False)
        hslot, e = thp_pmd_of(mm, va) if slot is None else (None, 0)
        if hslot is not None:
            out += pagemap_pmd_entries(mm, vma, va, n, e, show_pfn)
        elif slot is None or vma.vm_flags & VM_PFNMAP:
            out += pagemap_pte_hole(vma, n)
        else:
            ptes = struct.unpack('<%dQ' % n, phys.read(slot, n * 8))
            out += struct.pack('<%dQ' % n, *[pte_to_pagemap_entry(mm, vma, p, show_pfn) for p in ptes])
        va = stop
    return out


def pagemap_pmd_entries(mm, vma, va, n, e, show_pfn):
    """pagemap_pmd_range for a transparent huge PMD: n present entries from va, one per 4 KiB frame;
    exclusive when one PMD maps the folio (not the huge zero folio)."""
    flags = PM_PRESENT
    if e & _PAGE_SOFT_DIRTY or vma.vm_flags & VM_SOFTDIRTY:
        flags |= PM_SOFT_DIRTY
    if e & _PAGE_UFFD_WP:
        flags |= PM_UFFD_WP
    head = (e & PMD_PFN_MASK) >> PAGE_SHIFT
    if not is_huge_zero_pmd(mm.svc, e) and folio_entire_mapcount(mm.svc, head) == 1:
        flags |= PM_MMAP_EXCLUSIVE
    first = head + ((va >> PAGE_SHIFT) & (HPAGE_PMD_NR - 1))
    if show_pfn:
        return struct.pack('<%dQ' % n, *[make_pme(first + i, flags) for i in range(n)])
    return struct.pack('<Q', make_pme(0, flags)) * n


def pagemap_read(mm, pos, count, show_pfn=True):
    """read(2) of /proc/PID/pagemap at file offset pos: bytes; FsError(EINVAL) when unaligned."""
    if pos % PM_ENTRY_BYTES or count % PM_ENTRY_BYTES:
        raise FsError(errno.EINVAL)
    count = min(count, PAGEMAP_READ_MAX)
    end_vaddr = TASK_SIZE
    start = (pos // PM_ENTRY_BYTES) << PAGE_SHIFT
    if start >= end_vaddr or not count:
        return b''
    end = min(end_vaddr, start + (count // PM_ENTRY_BYTES) * PAGE_SIZE)
    out = bytearray()
    addr = start
    while addr < end:
        vma = mm.vmas.find_vma(addr)
        hole_end = end if vma is None else min(end, vma.vm_start)
        if addr < hole_end:
            out += pagemap_pte_hole(None, (hole_end - addr) >> PAGE_SHIFT)
            addr = hole_end
        if vma is None or addr >= end:
            break
        stop = min(end, vma.vm_end)
        out += pagemap_pte_range(mm, vma, addr, stop, show_pfn)
        addr = stop
    return bytes(out)


# ---- clear_refs ---------------------------------------------------------------------------------
def clear_soft_dirty(mm, slot, pte):
    """Clear a PTE's soft-dirty bit; a present one is also write-protected so the next write faults."""
    if pte & _PAGE_PRESENT:
        new = pte & ~(_PAGE_RW | _PAGE_SOFT_DIRTY)
    else:
        new = pte & ~_PAGE_SWP_SOFT_DIRTY
    if new != pte:
        mm.svc.frames.phys.write64(slot, new)
        mm.svc.charge('pte_set')


def clear_soft_dirty_tables(mm, start, end):
    """clear_soft_dirty over [start, end), one PTE table at a time: each table is read as one slice of
    the RAM's 64-bit view and only the entries that would change are visited."""
    pgt = mm.pgtables
    ptes = pgt.ptes
    present_bits = _PAGE_RW | _PAGE_SOFT_DIRTY
    for base in pgt.pte_tables(start & ~((1 << PMD_SHIFT) - 1), end):
        lo, hi = max(start, base), min(end, base + (1 << PMD_SHIFT))
        slot0 = pgt.pte_slot(lo, create=False)
        q = slot0 >> 3
        for i, e in [(i, e) for i, e in enumerate(ptes[q:q + ((hi - lo) >> PAGE_SHIFT)].tolist())
                     if e & (present_bits if e & _PAGE_PRESENT else _PAGE_SWP_SOFT_DIRTY)]:
            clear_soft_dirty(mm, slot0 + i * 8, e)


def clear_refs_test_walk(vma, cr_type):
    """Whether clear_refs of this type visits vma (1 anon only, 3 file only; PFN maps never)."""
    if vma.vm_flags & VM_PFNMAP:
        return False
    if cr_type == CLEAR_REFS_ANON and vma.vm_file is not None:
        return False
    if cr_type == CLEAR_REFS_MAPPED and vma.vm_file is None:
        return False
    return True


def clear_refs_pte_range(mm, vma, cr_type, start=None, end=None):
    """Soft-dirty: clear and write-protect every entry; otherwise clear Accessed and PG_referenced.
    [start, end) may cover several VMAs for soft-dirty (the entries do not depend on the VMA)."""
    phys = mm.svc.frames.phys
    if start is None:
        start, end = vma.vm_start, vma.vm_end
    for va, slot, e in thp_pmds(mm, start, end):
        if cr_type == CLEAR_REFS_SOFT_DIRTY:
            clear_soft_dirty(mm, slot, e)          # clear_soft_dirty_pmd: the huge PMD stays
        elif e & _PAGE_ACCESSED:
            phys.write64(slot, e & ~_PAGE_ACCESSED)
    if cr_type == CLEAR_REFS_SOFT_DIRTY:
        clear_soft_dirty_tables(mm, start, end)
        return
    for va, slot, pte in list(mm.pgtables.present_ptes(start, end, split=False)):
        if not pte & _PAGE_PRESENT:
            continue
        page = vm_normal_page(mm, vma, pte)
        if page is None:
            continue
        if pte & _PAGE_ACCESSED:
            phys.write64(slot, pte & ~_PAGE_ACCESSED)
        page.flags &= ~PG_referenced


def reset_mm_hiwater_rss(mm):
    """Peak RSS := current RSS."""
    mm.hiwater_rss = mm.rss_anon + mm.rss_file


def clear_refs_write(mm, data):
    """write(2) to /proc/PID/clear_refs: "1".."5" as Linux parses them; FsError(EINVAL) otherwise."""
    text = bytes(data[:12]).split(b'\0', 1)[0].strip()       # kstrtoint(strstrip(buffer), 10)
    if not re.fullmatch(rb'[+-]?[0-9]+', text):
        raise FsError(errno.EINVAL)
    cr_type = int(text)
    if not -(1 << 31) <= cr_type < (1 << 31):
        raise FsError(errno.ERANGE)
    if not CLEAR_REFS_ALL <= cr_type < CLEAR_REFS_LAST:
        raise FsError(errno.EINVAL)
    if cr_type == CLEAR_REFS_MM_HIWATER_RSS:
        reset_mm_hiwater_rss(mm)
        return
    vmas = list(mm.vmas)
    if cr_type == CLEAR_REFS_SOFT_DIRTY:
        for vma in vmas:
            vma.vm_flags &= ~VM_SOFTDIRTY
    walked = [vma for vma in vmas if clear_refs_test_walk(vma, cr_type)]
    if cr_type == CLEAR_REFS_SOFT_DIRTY and walked:
        # no entry lies outside a VMA: one walk of the page tables for all, but for the VMAs not walked
        cur = vmas[0].vm_start
        for v in vmas:                   # the runs of walked VMAs, each in one walk
            if not clear_refs_test_walk(v, cr_type):
                if cur < v.vm_start:
                    clear_refs_pte_range(mm, None, cr_type, cur, v.vm_start)
                cur = v.vm_end
        if cur < vmas[-1].vm_end:
            clear_refs_pte_range(mm, None, cr_type, cur, vmas[-1].vm_end)
    else:
        for vma in walked:
            clear_refs_pte_range(mm, vma, cr_type)
    mm.svc.flush_tlb()


# ---- smaps ----------------------------------------------------------------------------------------
class MemSizeStats:
    """struct mem_size_stats: what smaps sums over a VMA (bytes; the pss fields are << PSS_SHIFT)."""
    FIELDS = ('resident', 'shared_clean', 'shared_dirty', 'private_clean', 'private_dirty', 'referenced',
              'anonymous', 'lazyfree', 'anonymous_thp', 'shmem_thp', 'file_thp', 'swap', 'shared_hugetlb',
              'private_hugetlb', 'ksm', 'pss', 'pss_dirty', 'pss_locked', 'pss_anon', 'pss_file', 'pss_shmem',
              'swap_pss')
    __slots__ = FIELDS

    def __init__(self):
        for f in self.FIELDS:
            setattr(self, f, 0)

    def add(self, other):
        """Accumulate another VMA's counters (smaps_rollup)."""
        for f in self.FIELDS:
            setattr(self, f, getattr(self, f) + getattr(other, f))


def smaps_page_accumulate(mss, page, size, pss, dirty, locked, private):
    """Add one page's share to the Pss and clean/dirty, private/shared counters."""
    mss.pss += pss
    dirty = dirty or bool(page.flags & PG_dirty)
    if dirty:
        mss.pss_dirty += pss
    if page.flags & PG_anon:
        mss.pss_anon += pss
    elif page.flags & PG_swapbacked:
        mss.pss_shmem += pss
    else:
        mss.pss_file += pss
    if locked:
        mss.pss_locked += pss
    if dirty:
        if private:
            mss.private_dirty += size
        else:
            mss.shared_dirty += size
    elif private:
        mss.private_clean += size
    else:
        mss.shared_clean += size


def smaps_account(mss, page, young, dirty, locked):
    """Account one mapped page: Rss, Anonymous, LazyFree, Referenced, then its Pss share."""
    size = PAGE_SIZE
    if page.flags & PG_anon:
        mss.anonymous += size
        if not page.flags & PG_swapbacked and not dirty and not page.flags & PG_dirty:
            mss.lazyfree += size
    if page.flags & PG_ksm:
        mss.ksm += size                  # folio_test_ksm
    mss.resident += size
    if young or page.flags & PG_referenced:
        mss.referenced += size
    mapcount = page.mapcount
    pss = size << PSS_SHIFT
    if mapcount >= 2:
        pss //= mapcount
    smaps_page_accumulate(mss, page, size, pss, dirty, locked, mapcount < 2)


def smaps_pmd_account(mss, mm, e, locked):
    """smaps_account of a PMD-mapped compound page: 2 MiB of Rss, Anonymous and AnonHugePages, its
    Pss shared among the PMDs that map it."""
    head_pfn = (e & PMD_PFN_MASK) >> PAGE_SHIFT
    head = mm.svc.frames.pages[head_pfn]
    size = HPAGE_SIZE
    if head.flags & PG_anon:
        mss.anonymous_thp += size
        mss.anonymous += size
    else:
        mss.shmem_thp += size                        # a shmem folio (kernel/mm/shmem_huge.py)
    mss.resident += size
    if e & _PAGE_ACCESSED or head.flags & PG_referenced:
        mss.referenced += size
    mapcount = max(1, folio_entire_mapcount(mm.svc, head_pfn))
    pss = (size << PSS_SHIFT) // mapcount
    smaps_page_accumulate(mss, head, size, pss, bool(e & _PAGE_DIRTY), locked, mapcount < 2)


def swp_swapcount(mm, offset):
    """How many page-table entries hold the swap slot (its use count without the swap cache's)."""
    sc = mm.svc.swapcache
    if sc is None or offset >= sc.area.nr_slots:
        return 0
    n = sc.area.swap_map[offset]
    return n - 1 if offset in sc.pages else n


def smaps_hugetlb_range(mm, vma, mss):
    """smaps of a hugetlb VMA: Shared_Hugetlb / Private_Hugetlb by the page's map count (not Rss)."""
    pages = mm.svc.frames.pages
    for va, slot, e in mm.pgtables.huge_pmds(vma.vm_start, vma.vm_end):
        if e & _PAGE_PRESENT:
            head = pages[(e & PMD_PFN_MASK) >> 12]
            if head.mapcount >= 2:
                mss.shared_hugetlb += HPAGE_SIZE
            else:
                mss.private_hugetlb += HPAGE_SIZE
    return mss


def smap_gather_stats(mm, vma, mss=None):
    """Walk vma's page table entries and sum them into a MemSizeStats (smaps_pte_range)."""
    mss = mss or MemSizeStats()
    if vma.vm_flags & VM_PFNMAP:
        return mss
    if vma.vm_flags & VM_HUGETLB:
        return smaps_hugetlb_range(mm, vma, mss)
    locked = bool(vma.vm_flags & VM_LOCKED)
    for va, slot, e in thp_pmds(mm, vma.vm_start, vma.vm_end):
        if not is_huge_zero_pmd(mm.svc, e):          # smaps_pmd_entry (the huge zero folio counts nothing)
            smaps_pmd_account(mss, mm, e, locked)
    for va, slot, pte in mm.pgtables.present_ptes(vma.vm_start, vma.vm_end, split=False):
        if pte & _PAGE_PRESENT:
            page = vm_normal_page(mm, vma, pte)
            if page is not None:
                smaps_account(mss, page, bool(pte & _PAGE_ACCESSED), bool(pte & _PAGE_DIRTY), locked)
            continue
        swp_type, offset = pte_to_swp_entry(pte)
        if swp_type == SWP_HWPOISON:
            page = _swap_entry_page(mm, swp_type, offset)
            if page is not None:
                smaps_account(mss, page, False, False, locked)
            continue
        mss.swap += PAGE_SIZE
        n = swp_swapcount(mm, offset)
        mss.swap_pss += (PAGE_SIZE << PSS_SHIFT) // n if n >= 2 else PAGE_SIZE << PSS_SHIFT
    return mss
