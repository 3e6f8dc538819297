"""The PAGEMAP_SCAN ioctl of /proc/PID/pagemap (fs/proc/task_mmu.c, Linux 6.7+): find the pages of a
range that have the wanted categories and report them as (start, end, categories) regions.

Categories come from the VMA (PAGE_IS_SOFT_DIRTY for VM_SOFTDIRTY, PAGE_IS_WPALLOWED where
userfaultfd's asynchronous write-protection is set up: registered for WP with UFFD_FEATURE_WP_ASYNC)
and from each entry: PAGE_IS_PRESENT, PAGE_IS_SWAPPED (a swap entry or a marker), PAGE_IS_FILE,
PAGE_IS_PFNZERO, PAGE_IS_HUGE (hugetlb), PAGE_IS_SOFT_DIRTY, and PAGE_IS_WRITTEN for an entry (empty,
present or swapped) without the uffd-wp state, while a range without a page table has only the
VMA's categories (fs/proc/task_mmu.c, as the host's kernel reports them). A page is interesting when
(categories ^ category_inverted) has every bit of category_mask and, if category_anyof_mask is set,
one of its bits. Output stops at max_pages pages or when vec is full (walk_end tells where).

PM_SCAN_CHECK_WPASYNC fails with EPERM at the first VMA without asynchronous write-protection;
PM_SCAN_WP_MATCHING skips such VMAs and write-protects the written pages it reports
(make_uffd_wp_pte: the uffd-wp bit, or a uffd-wp marker in an empty entry; a hole without a page
table gets markers through uffd_wp_range); without an output vector it protects every entry
(pagemap_scan_pmd_entry's fast path). A hugetlb page is protected whole or not at all: a scan that
would report part of one backs that part out and ends there.
"""
import errno
import struct

from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.mm.hugetlb_types import HPAGE_SIZE
from faultlab.kernel.mm.page_alloc import PG_anon
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_SOFT_DIRTY, PMD_SHIFT, pte_pfn
from faultlab.kernel.mm.userfaultfd import _install_wp_markers
from faultlab.kernel.mm.userfaultfd_k import (_PAGE_SWP_UFFD_WP, _PAGE_UFFD_WP, WP_MARKER, is_swap_pte,
                                              userfaultfd_wp_async)
from faultlab.kernel.mm.vma import VM_HUGETLB, VM_PFNMAP, VM_SOFTDIRTY
from faultlab.kernel.uaccess import access_ok

PAGEMAP_SCAN = 0xC0606610               # _IOWR('f', 16, struct pm_scan_arg)
PM_SCAN_ARG_SIZE = 96
PAGE_REGION_SIZE = 24
PM_SCAN_WP_MATCHING = 1 << 0
PM_SCAN_CHECK_WPASYNC = 1 << 1
PM_SCAN_FLAGS = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC

PAGE_IS_WPALLOWED = 1 << 0
PAGE_IS_WRITTEN = 1 << 1
PAGE_IS_FILE = 1 << 2
PAGE_IS_PRESENT = 1 << 3
PAGE_IS_SWAPPED = 1 << 4
PAGE_IS_PFNZERO = 1 << 5
PAGE_IS_HUGE = 1 << 6
PAGE_IS_SOFT_DIRTY = 1 << 7
PM_SCAN_CATEGORIES = (1 << 8) - 1

PAGEMAP_WALK_SIZE = 1 << PMD_SHIFT
ULONG_MAX = (1 << 64) - 1
_PAGE_SWP_SOFT_DIRTY = 1 << 1            # x86 keeps a swap entry's soft-dirty bit in bit 1
ENOSPC = errno.ENOSPC


class PmScan:
    """struct pagemap_scan_private: the arguments and the output state of one scan."""

    def __init__(self, arg):
        (self.size, self.flags, self.start, self.end, self.walk_end, self.vec, self.vec_len, self.max_pages,
         self.inverted, self.mask, self.anyof, self.return_mask) = arg
        self.masks_of_interest = self.mask | self.anyof | self.return_mask
        self.written_only = (not self.anyof and not self.inverted and self.mask == PAGE_IS_WRITTEN and
                             self.return_mask == PAGE_IS_WRITTEN)
        self.found_pages = 0
        self.buf = []                   # the bounce buffer: [start, end, categories] lists
        self.buf_len = min(PAGEMAP_WALK_SIZE >> PAGE_SHIFT, self.vec_len)
        self.vec_out = self.vec
        self.has_buf = self.vec_len > 0          # Linux allocates no bounce buffer for vec_len 0
        self.cur_vma_category = 0

    def interesting(self, categories):
        """pagemap_scan_is_interesting_page."""
        categories ^= self.inverted
        if categories & self.mask != self.mask:
            return False
        return not self.anyof or bool(categories & self.anyof)

    def push_range(self, categories, start, end):
        """Extend the last region or open a new one; False when the bounce buffer is full."""
        if self.buf:
            cur = self.buf[-1]
            if cur[1] == start and cur[2] == categories:
                cur[1] = end
                return True
            if len(self.buf) >= self.buf_len:
                return False
        self.buf.append([start, end, categories])
        return True

    def output(self, categories, addr, end):
        """pagemap_scan_output: report [addr, end); returns (ret, end reported up to)."""
        if not self.has_buf:
            return 0, end
        categories &= self.return_mask
        n_pages = (end - addr) >> PAGE_SHIFT
        ret = 0
        total = self.found_pages + n_pages
        if total > self.max_pages:
            too_much = total - self.max_pages
            end -= too_much * PAGE_SIZE
            n_pages -= too_much
            ret = -ENOSPC
        if end > addr and not self.push_range(categories, addr, end):
            end = addr
            n_pages = 0
            ret = -ENOSPC
        self.found_pages += n_pages
        if ret:
            self.walk_end = end
        return ret, end

    def backout(self, addr, end):
        """pagemap_scan_backout_range: take [addr, end) back out of the last region."""
        if self.has_buf and self.buf:
            cur = self.buf[-1]
            if cur[0] != addr:
                cur[1] = addr
            else:
                self.buf.pop()
        self.found_pages -= (end - addr) >> PAGE_SHIFT

    def flush(self, umem):
        """pagemap_scan_flush_buffer: copy the regions out; their number or -EFAULT."""
        n = len(self.buf)
        if not self.has_buf or not n:
            return 0
        data = b''.join(struct.pack('<QQQ', *r) for r in self.buf)
        if not umem.write(self.vec_out, data):
            return -errno.EFAULT
        self.vec_len -= n
        self.vec_out += n * PAGE_REGION_SIZE
        self.buf = []
        self.buf_len = min(self.buf_len, self.vec_len)
        return n


def pagemap_scan_get_args(raw):
    """Validate struct pm_scan_arg; the PmScan or -errno."""
    arg = list(struct.unpack('<12Q', raw))
    p = PmScan(arg)
    if p.size != PM_SCAN_ARG_SIZE:
        return -errno.EINVAL
    if p.flags & ~PM_SCAN_FLAGS:
        return -errno.EINVAL
    if (p.inverted | p.mask | p.anyof | p.return_mask) & ~PM_SCAN_CATEGORIES:
        return -errno.EINVAL
    if p.start & (PAGE_SIZE - 1):
        return -errno.EINVAL
    if not access_ok(p.start, (p.end - p.start) & ULONG_MAX):
        return -errno.EFAULT
    if not p.vec and p.vec_len:
        return -errno.EINVAL
    if p.vec and not access_ok(p.vec, min(ULONG_MAX, p.vec_len * PAGE_REGION_SIZE)):
        return -errno.EFAULT
    p.end = (p.end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    p.walk_end = 0
    if not p.max_pages:
        p.max_pages = ULONG_MAX
    return p


def pte_swp_uffd_wp_any(pte):
    """A non-present entry with the uffd-wp state: a swap entry's bit or the uffd-wp marker."""
    return pte == WP_MARKER or (is_swap_pte(pte) and bool(pte & _PAGE_SWP_UFFD_WP))


def pte_is_uffd_wp(pte):
    """The entry is write-protected for userfaultfd (present with the bit, or swapped/marker)."""
    if pte & _PAGE_PRESENT:
        return bool(pte & _PAGE_UFFD_WP)
    return pte_swp_uffd_wp_any(pte)


def pagemap_page_category(mm, p, pte):
    """The categories of one page-table entry: an empty one (a table exists) counts as written, like
    a present or swapped entry without the uffd-wp state; a marker is swapped, not written."""
    if not pte:
        return PAGE_IS_WRITTEN
    if pte & _PAGE_PRESENT:
        cat = PAGE_IS_PRESENT
        if not pte & _PAGE_UFFD_WP:
            cat |= PAGE_IS_WRITTEN
        pfn = pte_pfn(pte)
        pages = mm.svc.frames.pages
        if pfn < len(pages) and pages[pfn] is mm.svc.zero_page:
            cat |= PAGE_IS_PFNZERO
        elif p.masks_of_interest & PAGE_IS_FILE and pfn < len(pages) and not pages[pfn].flags & PG_anon:
            cat |= PAGE_IS_FILE
        if pte & _PAGE_SOFT_DIRTY:
            cat |= PAGE_IS_SOFT_DIRTY
        return cat
    cat = PAGE_IS_SWAPPED
    if not pte_swp_uffd_wp_any(pte):
        cat |= PAGE_IS_WRITTEN
    if pte & _PAGE_SWP_SOFT_DIRTY:
        cat |= PAGE_IS_SOFT_DIRTY
    return cat


def pagemap_hugetlb_category(mm, e):
    """The categories of a hugetlb PMD (always PAGE_IS_HUGE; a marker is swapped, not written)."""
    cat = PAGE_IS_HUGE
    if not e:
        return cat
    if not e & _PAGE_PRESENT:
        cat |= PAGE_IS_SWAPPED
        if e & ~_PAGE_PSE != WP_MARKER:
            cat |= PAGE_IS_WRITTEN
        return cat
    cat |= PAGE_IS_PRESENT
    if not e & _PAGE_UFFD_WP:
        cat |= PAGE_IS_WRITTEN
    head = mm.svc.frames.pages[pte_pfn(e) & ~0x1FF]
    if not head.flags & PG_anon:
        cat |= PAGE_IS_FILE
    if e & _PAGE_SOFT_DIRTY:
        cat |= PAGE_IS_SOFT_DIRTY
    return cat


def pagemap_scan_test_walk(mm, p, vma):
    """Walk this VMA? 1 to skip it, 0 to walk, -EPERM for PM_SCAN_CHECK_WPASYNC where the VMA has no
    asynchronous write-protection (userfaultfd_wp_async and userfaultfd_wp_use_markers)."""
    wp_allowed = userfaultfd_wp_async(mm, vma)
    if not wp_allowed:
        if p.flags & PM_SCAN_CHECK_WPASYNC:
            return -errno.EPERM
        if p.flags & PM_SCAN_WP_MATCHING:
            return 1
    if vma.vm_flags & VM_PFNMAP:
        return 1
    cat = PAGE_IS_WPALLOWED if wp_allowed else 0
    if vma.vm_flags & VM_SOFTDIRTY:
        cat |= PAGE_IS_SOFT_DIRTY
    required = p.mask & PAGE_IS_WPALLOWED
    if (cat ^ p.inverted) & required != required:
        return 1
    p.cur_vma_category = cat
    return 0


def make_uffd_wp_pte(mm, slot, pte):
    """Write-protect one entry for userfaultfd: the uffd-wp bit of a present entry (write access
    goes) or of a swap entry, a uffd-wp marker in an empty one. True if it changed."""
    if pte & _PAGE_PRESENT:
        new = (pte | _PAGE_UFFD_WP) & ~_PAGE_RW
    elif is_swap_pte(pte):
        new = pte | _PAGE_SWP_UFFD_WP
    elif not pte:
        new = WP_MARKER
    else:
        return False                     # a poison or hwpoison entry stays as it is
    mm.pgtables.ptes[slot >> 3] = new
    return True


def make_uffd_wp_huge_pte(mm, slot, e):
    """make_uffd_wp_huge_pte: the uffd-wp bit of a present huge PMD, a marker in an empty one."""
    phys = mm.svc.frames.phys
    if e & _PAGE_PRESENT:
        phys.write64(slot, (e | _PAGE_UFFD_WP) & ~_PAGE_RW)
    elif not e:
        phys.write64(slot, WP_MARKER | _PAGE_PSE)
    else:
        return False                     # a marker or a poisoned page stays as it is
    return True


def _walk_hugetlb(mm, p, va, stop):
    """pagemap_scan_hugetlb_entry for the part [va, stop) of one huge page: (ret, changed)."""
    e = mm.pgtables.huge_pmd(va)
    cat = p.cur_vma_category | pagemap_hugetlb_category(mm, e)
    if not p.interesting(cat):
        return 0, 0
    ret, end = p.output(cat, va, stop)
    if not p.flags & PM_SCAN_WP_MATCHING or end == va or not cat & PAGE_IS_WRITTEN:
        return ret, 0
    if end - va != HPAGE_SIZE:
        p.backout(va, end)               # partial hugetlb write-protection is not possible
        p.walk_end = va
        return 0, 0
    haddr = va & ~(HPAGE_SIZE - 1)
    try:
        slot, freed = mm.pgtables.set_huge_pmd_slot(haddr)
    except MemoryError:
        return -errno.ENOMEM, 0
    if freed is not None:
        mm.svc.frames.put_page(mm.svc.frames.pages[freed])
    return ret, int(make_uffd_wp_huge_pte(mm, slot, mm.svc.frames.phys.read64(slot)))


def _walk_written(mm, p, va, slot, ptes, wp):
    """pagemap_scan_pmd_entry's fast path when only PAGE_IS_WRITTEN is asked for and returned: every
    entry without the uffd-wp state is reported (and, with WP_MATCHING, protected); (ret, changed)."""
    cat = p.cur_vma_category | PAGE_IS_WRITTEN
    ret = 0
    changed = 0
    for i, pte in enumerate(ptes):
        if pte & _PAGE_PRESENT:
            if pte & _PAGE_UFFD_WP:
                continue
        elif pte and pte_swp_uffd_wp_any(pte):
            continue
        addr = va + (i << PAGE_SHIFT)
        ret, nxt = p.output(cat, addr, addr + PAGE_SIZE)
        if nxt == addr:
            break
        if wp:
            changed += make_uffd_wp_pte(mm, slot + i * 8, pte)
    return ret, changed


def walk_vma(mm, p, vma, start, end):
    """pagemap_scan_pmd_entry / hugetlb_entry / pte_hole over [start, end) of one VMA; 0 or -ENOSPC
    (walk_end set) when the output is full."""
    va = start
    wp = p.flags & PM_SCAN_WP_MATCHING
    changed = 0
    ret = 0
    while va < end:
        stop = min(end, ((va >> PMD_SHIFT) + 1) << PMD_SHIFT)
        ret = 0
        thp = (va >> PMD_SHIFT) in mm.pgtables.thp      # a transparent huge PMD: split to write-protect
        slot = None if vma.vm_flags & VM_HUGETLB else mm.pgtables.pte_slot(va, create=bool(thp and wp))
        if vma.vm_flags & VM_HUGETLB:
            ret, n = _walk_hugetlb(mm, p, va, stop)
            changed += n
        elif slot is None and thp:                            # pagemap_scan_thp_entry: one category
            cat = p.cur_vma_category | pagemap_page_category(mm, p, mm.pgtables.get_pte(va)) | PAGE_IS_HUGE
            if p.interesting(cat):
                ret, _end = p.output(cat, va, stop)
        elif slot is None:                                    # pagemap_scan_pte_hole
            if p.interesting(p.cur_vma_category):
                ret, hole_end = p.output(p.cur_vma_category, va, stop)
                if wp and hole_end != va:
                    changed += _install_wp_markers(mm, va, hole_end)     # uffd_wp_range
        else:
            n = (stop - va) >> PAGE_SHIFT
            ptes = struct.unpack('<%dQ' % n, mm.svc.frames.phys.read(slot, n * 8))
            fast_wp = wp and not p.has_buf                    # protect every entry, report nothing
            if not fast_wp and p.written_only:                # the PAGE_IS_WRITTEN fast path
                ret, n = _walk_written(mm, p, va, slot, ptes, wp)
                changed += n
                if ret:
                    break
                va = stop
                continue
            for i, pte in enumerate(ptes):
                addr = va + (i << PAGE_SHIFT)
                if fast_wp:
                    if not pte_is_uffd_wp(pte):
                        changed += make_uffd_wp_pte(mm, slot + i * 8, pte)
                    continue
                cat = p.cur_vma_category | pagemap_page_category(mm, p, pte)
                if not p.interesting(cat):
                    continue
                ret, nxt = p.output(cat, addr, addr + PAGE_SIZE)
                if nxt == addr:
                    break
                if wp and cat & PAGE_IS_WRITTEN:
                    changed += make_uffd_wp_pte(mm, slot + i * 8, pte)
        if ret:
            break
        va = stop
    if changed:
        mm.svc.charge('pte_set', changed)
        mm.svc.flush_tlb(mm)
    return ret


def walk_page_range(mm, p, start, end):
    """Every VMA overlapping [start, end), in order; 0, -ENOSPC or -EPERM."""
    for vma in mm.vmas.overlapping(start, end):
        skip = pagemap_scan_test_walk(mm, p, vma)
        if skip < 0:
            return skip
        if skip:
            continue
        ret = walk_vma(mm, p, vma, max(start, vma.vm_start), min(end, vma.vm_end))
        if ret:
            return ret
    return 0


def do_pagemap_scan(mm, umem, uarg):
    """PAGEMAP_SCAN: the number of regions written to vec, or -errno; walk_end is written back."""
    raw = umem.read(uarg, PM_SCAN_ARG_SIZE)
    if raw is None:
        return -errno.EFAULT
    p = pagemap_scan_get_args(raw)
    if isinstance(p, int):
        return p
    n_out = 0
    ret = 0
    walk_start = p.start
    while walk_start < p.end:
        ret = walk_page_range(mm, p, walk_start, p.end)
        n = p.flush(umem)
        if n < 0:
            ret = n
        else:
            n_out += n
        if ret != -ENOSPC or not p.vec_len or p.found_pages == p.max_pages:
            break
        walk_start = p.walk_end
    if not ret or ret == -ENOSPC:
        ret = n_out
    if not p.walk_end:
        p.walk_end = p.end
    if not umem.write(uarg + 32, struct.pack('<Q', p.walk_end)):
        ret = -errno.EFAULT
    return ret


def pagemap_ioctl(mm, umem, cmd, arg):
    """do_pagemap_cmd: PAGEMAP_SCAN, anything else -EINVAL."""
    if cmd == PAGEMAP_SCAN:
        return do_pagemap_scan(mm, umem, arg)
    return -errno.EINVAL
