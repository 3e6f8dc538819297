"""/proc/kpageflags and /proc/kpagecount (fs/proc/page.c): one little-endian u64 per page frame,
read at offset pfn * 8, from the frames' descriptors (the PFNs /proc/self/pagemap shows)."""
import errno
import struct

from faultlab.kernel.fs import FsError
from faultlab.kernel.mm.huge_memory import PG_large_head, PG_large_tail
from faultlab.kernel.mm.ksm_types import PG_ksm
from faultlab.kernel.mm.page_alloc import (PG_locked, PG_referenced, PG_uptodate, PG_dirty, PG_lru, PG_active,
                                  PG_reserved, PG_writeback, PG_swapbacked, PG_anon, PG_hwpoison, PG_pgtable,
                                  PG_swapcache, PG_mlocked, PG_hugetlb, PG_head, PG_tail)

# include/uapi/linux/kernel-page-flags.h and include/linux/kernel-page-flags.h
KPF_LOCKED, KPF_REFERENCED, KPF_UPTODATE, KPF_DIRTY, KPF_LRU, KPF_ACTIVE = 0, 2, 3, 4, 5, 6
KPF_SLAB, KPF_WRITEBACK, KPF_RECLAIM, KPF_BUDDY, KPF_MMAP, KPF_ANON = 7, 8, 9, 10, 11, 12
KPF_SWAPCACHE, KPF_SWAPBACKED, KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_HUGE = 13, 14, 15, 16, 17
KPF_UNEVICTABLE, KPF_HWPOISON, KPF_NOPAGE, KPF_KSM, KPF_THP, KPF_OFFLINE = 18, 19, 20, 21, 22, 23
KPF_ZERO_PAGE, KPF_IDLE, KPF_PGTABLE = 24, 25, 26
KPF_RESERVED, KPF_MLOCKED = 32, 33
KPMSIZE = 8

# descriptor flag -> KPF bit, copied as kpf_copy_bit does
_COPIED = ((PG_locked, KPF_LOCKED), (PG_dirty, KPF_DIRTY), (PG_uptodate, KPF_UPTODATE),
           (PG_writeback, KPF_WRITEBACK), (PG_lru, KPF_LRU), (PG_referenced, KPF_REFERENCED),
           (PG_active, KPF_ACTIVE), (PG_swapbacked, KPF_SWAPBACKED), (PG_mlocked, KPF_MLOCKED),
           (PG_reserved, KPF_RESERVED), (PG_hwpoison, KPF_HWPOISON))


def folio_of(frames, pfn):
    """The descriptor that holds the flags of pfn's folio: the head of a huge page, else itself."""
    pages = frames.pages
    page = pages[pfn]
    if page.flags & (PG_hugetlb | PG_tail) and not page.flags & PG_head:
        head = pfn & ~((1 << 9) - 1)         # hugetlb blocks and THPs are naturally aligned order-9 blocks
        if pages[head].flags & PG_head:
            return pages[head]
    return page


def _is_thp(folio):
    """A transparent huge page (or the huge zero folio): a compound page the hugetlb pool does not own."""
    return folio.flags & PG_head and not folio.flags & PG_hugetlb


def stable_page_flags(frames, pfn, zero_pfn):
    """The KPF_* bits of one frame (stable_page_flags)."""
    page = frames.pages[pfn]
    folio = folio_of(frames, pfn)
    k = folio.flags
    u = 0
    if (folio.mapcount > 0 or page.mapcount > 0 or _thp_mapped(frames, folio)) and pfn != zero_pfn \
            and not (k & PG_reserved and _is_thp(folio)):   # the (huge) zero page is never in the reverse map
        u |= 1 << KPF_MMAP
    if k & PG_anon:
        u |= 1 << KPF_ANON
    if k & PG_ksm:
        u |= 1 << KPF_KSM
    if folio is not page:
        u |= 1 << KPF_COMPOUND_TAIL
    elif k & PG_head:
        u |= 1 << KPF_COMPOUND_HEAD
    if k & PG_hugetlb:
        u |= 1 << KPF_HUGE
    elif k & (PG_large_head | PG_large_tail):
        # a large folio mapped by PTEs (multi-size THP): folio_test_large_rmappable
        u |= 1 << KPF_THP | 1 << (KPF_COMPOUND_HEAD if k & PG_large_head else KPF_COMPOUND_TAIL)
    elif _is_thp(folio):
        u |= 1 << KPF_THP                     # folio_test_large_rmappable, or the huge zero folio
        if k & PG_reserved:
            u |= 1 << KPF_ZERO_PAGE
    elif pfn == zero_pfn:
        u |= 1 << KPF_ZERO_PAGE
    elif page.refcount == 0 and not k & (PG_reserved | PG_pgtable):
        u |= 1 << KPF_BUDDY                   # on the free list (or never handed out)
    if k & PG_pgtable:
        u |= 1 << KPF_PGTABLE
    for flag, bit in _COPIED:
        if k & flag:
            u |= 1 << bit
    if k & PG_swapcache and k & (PG_swapbacked | PG_anon):
        u |= 1 << KPF_SWAPCACHE
    return u


def _thp_mapped(frames, folio):
    """How many PMDs map a live THP (folio_entire_mapcount), 0 for anything else."""
    if not _is_thp(folio) or folio.flags & PG_reserved:
        return 0
    st = getattr(frames, 'thp_state', None)
    return st.folios.get(folio.pfn, 0) if st is not None else 0


def get_kpage_count(frames, pfn, zero_pfn):
    """The frame's map count (a huge page's count for each of its frames; a THP frame's PMD and PTE
    mappings, folio_precise_page_mapcount; 0 for the zero pages)."""
    folio = folio_of(frames, pfn)
    if pfn == zero_pfn or (folio.flags & PG_reserved and _is_thp(folio)):
        return 0
    if _is_thp(folio):
        return _thp_mapped(frames, folio) + frames.pages[pfn].mapcount
    return max(0, folio.mapcount)


def kpage_read(frames, pos, count, info):
    """kpage_read: EINVAL unless pos and count are multiples of 8; empty past the last frame."""
    if pos % KPMSIZE or count % KPMSIZE:
        raise FsError(errno.EINVAL)
    first = pos // KPMSIZE
    last = min(frames.phys.nr_frames, first + count // KPMSIZE)
    if first >= last:
        return b''
    return struct.pack('<%dQ' % (last - first), *[info(pfn) for pfn in range(first, last)])


def register_kpageflags(k):
    """/proc/kpageflags and /proc/kpagecount, mode 0400 (root only), read at the file position."""
    frames = k.frames
    zero_pfn = k.mmsvc.zero_page.pfn
    reg = k.vfs.register_synth
    reg('/proc/kpageflags', None, None, 0o400).read_at = \
        lambda pos, count: kpage_read(frames, pos, count, lambda pfn: stable_page_flags(frames, pfn, zero_pfn))
    reg('/proc/kpagecount', None, None, 0o400).read_at = \
        lambda pos, count: kpage_read(frames, pos, count, lambda pfn: get_kpage_count(frames, pfn, zero_pfn))
