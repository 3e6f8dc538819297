"""2 MiB huge pages (mm/hugetlb.c, fs/hugetlbfs/inode.c): the reserved pool (/proc/sys/vm/nr_hugepages),
hugetlbfs files (MAP_HUGETLB memory and memfd_create(MFD_HUGETLB)), their mappings by PMD entries with
the PSE bit, and the hugetlb fault path (hugetlb_fault -> hugetlb_no_page / hugetlb_wp). The files
themselves are in kernel/fs/hugetlbfs.py, the page geometry in hugetlb_types.py, the unmapping both
use in hugetlb_unmap.py, the pagemap and smaps views in pagemap.py, and do_mmap's hugetlb path
(hugetlb_mmap, which calls the steps below) in mmap.py.

As in Linux: pages come only from the pool, which is filled with naturally aligned order-9 blocks of
frames; mmap reserves the pages a mapping may need (ENOMEM when the pool cannot cover them, unless
MAP_NORESERVE) and a fault without a page gets SIGBUS; private mappings get anonymous huge pages
(copy-on-write from the file's pages); munmap/mprotect must not split a mapping inside a huge page
(EINVAL); huge pages are never swapped or reclaimed; RSS does not count them (smaps shows them as
Private_Hugetlb / Shared_Hugetlb with KernelPageSize 2048 kB).
"""
import errno

from faultlab.kernel.cgroup.hugetlb_cgroup import (hugetlb_cgroup_cancel_charge, hugetlb_cgroup_charge_cgroup,
                                                   hugetlb_cgroup_charge_rsvd, hugetlb_cgroup_commit_charge,
                                                   hugetlb_cgroup_uncharge_folio, hugetlb_cgroup_uncharge_rsvd)
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.hugetlbfs import HugetlbFile, HugetlbFs, hugetlb_file_setup
from faultlab.kernel.mm.hugetlb_sysfs import hugetlb_sysctl_init
from faultlab.kernel.mm.hugetlb_types import (GIGANTIC_PAGE_SHIFT, GIGANTIC_PAGE_SIZE, HPAGE_MASK, HPAGE_SHIFT,
                                              HPAGE_SIZE, HUGETLB_PAGE_ORDER, PAGES_PER_HPAGE, huge_size_ok,
                                              is_gigantic_size)
from faultlab.kernel.mm.llc import charge_page_zero, charge_page_copy
from faultlab.kernel.mm.mm_types import (TASK_SIZE, VmFault, FAULT_FLAG_WRITE, VM_FAULT_OOM, VM_FAULT_SIGBUS)
from faultlab.kernel.mm.page_alloc import PG_hugetlb, PG_head, PG_anon, PG_dirty, PG_uptodate, PG_exec
from faultlab.kernel.mm.userfaultfd_k import VM_UFFD_FLAGS, WP_MARKER, _PAGE_UFFD_WP, hugetlb_userfault
from faultlab.kernel.mm.pgtable import (_PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PSE,
                               _PAGE_NX, _PAGE_SOFT_DIRTY, PMD_PFN_MASK)
from faultlab.kernel.mm.vma import (VmArea, VM_HUGETLB, VM_DONTEXPAND, VM_SHARED, VM_MAYSHARE, VM_WRITE, VM_EXEC, VM_READ,
                           VM_NORESERVE, VM_SOFTDIRTY, calc_vm_prot_bits, VM_MAYREAD, VM_MAYWRITE,
                           VM_MAYEXEC)
from faultlab.kernel.mm.mman import MAP_HUGETLB, MAP_NORESERVE



def is_file_hugepages(f):
    """Is the open file (or None) on hugetlbfs?"""
    return f is not None and isinstance(getattr(f, 'inode', None), HugetlbFile)


# ---- the pool ------------------------------------------------------------------------------------
class HState:
    """struct hstate of the 2 MiB size: the huge page pool, its counters, and the internal hugetlbfs.

    As in mm/hugetlb.c: nr_huge_pages counts every pool page, surplus_huge_pages those allocated
    beyond the persistent pool (nr_hugepages) under nr_overcommit_hugepages, which go back to the
    page allocator when freed; resv_huge_pages free pages are promised to mappings."""

    gigantic = False                 # hstate_is_gigantic
    page_size = HPAGE_SIZE

    def __init__(self, svc, nr_hugepages=0, clock=None, dev=0):
        self.svc = svc
        self.frames = svc.frames
        self.free_list = []          # head pages, LIFO (the last freed is the most likely cached)
        self.nr_huge_pages = 0
        self.resv_huge_pages = 0
        self.surplus_huge_pages = 0
        self.nr_overcommit_huge_pages = 0
        self.max_huge_pages = 0      # the persistent pool size last asked for (/proc/sys/vm/nr_hugepages)
        self.sb = HugetlbFs(self, clock, dev)
        self.gigantic_hstate = GiganticHState(clock)     # the 1 GiB hstate, registered after this one
        self.hugetlb_hstate_alloc_pages(nr_hugepages)

    @property
    def free_huge_pages(self):
        return len(self.free_list)

    @property
    def name(self):
        """The hstate's name, as its /sys/kernel/mm/hugepages directory is called."""
        return 'hugepages-%dkB' % (HPAGE_SIZE >> 10)

    def persistent_huge_pages(self):
        """persistent_huge_pages: the pool without its surplus pages."""
        return self.nr_huge_pages - self.surplus_huge_pages

    def available(self):
        """Free huge pages not promised to a reservation."""
        return len(self.free_list) - self.resv_huge_pages

    def alloc_fresh_huge_page(self, boot=False):
        """Take an aligned order-9 block from the frame allocator for the pool; the head page or None.
        At run time (alloc_pool_huge_folio, alloc_surplus_hugetlb_folio: __GFP_RETRY_MAYFAIL |
        __GFP_NOWARN) the allocation fails rather than take the free pages below the min watermark,
        so growing the pool leaves the system its reserve; the boot-time pool (hugepages=N) comes from
        memblock before the watermarks exist."""
        if not boot and not self.svc.reclaim.zone_watermark_ok(HUGETLB_PAGE_ORDER):
            return None
        pfn = self.frames.alloc_contig_pages(HUGETLB_PAGE_ORDER)
        if pfn is None:
            return None
        pages = self.frames.pages
        for p in range(pfn, pfn + PAGES_PER_HPAGE):
            pages[p].flags = PG_hugetlb
        head = pages[pfn]
        head.flags = PG_hugetlb | PG_head
        head.refcount = 0
        self.nr_huge_pages += 1
        return head

    def update_and_free_huge_page(self, head):
        """update_and_free_hugetlb_folio: a page leaves the pool for the page allocator."""
        self.frames.free_contig_pages(head.pfn, HUGETLB_PAGE_ORDER)
        self.nr_huge_pages -= 1

    def hugetlb_hstate_alloc_pages(self, count):
        """hugetlb_hstate_alloc_pages: the pool of the hugepages= boot parameter (as far as memory has
        aligned blocks)."""
        while self.nr_huge_pages < count:
            head = self.alloc_fresh_huge_page(boot=True)
            if head is None:
                break
            self.free_list.insert(0, head)
        self.max_huge_pages = self.nr_huge_pages

    def set_max_huge_pages(self, count):
        """echo N > nr_hugepages: grow the persistent pool (surplus pages first, then as far as memory
        allows) or shrink it: free pages not needed by reservations go, and pages still in use become
        surplus, to go when they are freed."""
        count = max(0, count)
        while self.surplus_huge_pages and count > self.persistent_huge_pages():
            self.surplus_huge_pages -= 1              # adjust_pool_surplus(h, -1)
        while count > self.persistent_huge_pages():
            head = self.alloc_fresh_huge_page()
            if head is None:
                break
            self.free_list.insert(0, head)
        min_count = max(count, self.resv_huge_pages + self.nr_huge_pages - self.free_huge_pages)
        while min_count < self.persistent_huge_pages() and self.free_list:
            self.update_and_free_huge_page(self.free_list.pop(0))     # free_pool_huge_folio
        while count < self.persistent_huge_pages() and self.surplus_huge_pages < self.nr_huge_pages:
            self.surplus_huge_pages += 1              # adjust_pool_surplus(h, 1)
        self.max_huge_pages = self.persistent_huge_pages()
        return self.nr_huge_pages

    def alloc_surplus_huge_page(self):
        """alloc_surplus_hugetlb_folio: a fresh page beyond the persistent pool, while fewer than
        nr_overcommit_hugepages surplus pages exist; None otherwise or when memory has no block."""
        if self.surplus_huge_pages >= self.nr_overcommit_huge_pages:
            return None
        head = self.alloc_fresh_huge_page()
        if head is not None:
            self.surplus_huge_pages += 1
        return head

    def gather_surplus_pages(self, delta):
        """gather_surplus_pages: reserve delta more pages, first allocating the surplus pages the
        free pool lacks for them; -ENOMEM (nothing changed) when they cannot all be had."""
        needed = self.resv_huge_pages + delta - self.free_huge_pages
        got = []
        while len(got) < needed:
            head = self.alloc_surplus_huge_page()
            if head is None:
                for head in got:
                    self.surplus_huge_pages -= 1
                    self.update_and_free_huge_page(head)
                return -errno.ENOMEM
            got.append(head)
        self.free_list.extend(got)
        self.resv_huge_pages += delta
        return 0

    def return_unused_surplus_pages(self, unused):
        """return_unused_surplus_pages: drop unused reservations and free up to as many surplus pages
        as are free."""
        self.resv_huge_pages -= unused
        n = min(unused, self.surplus_huge_pages)
        while n > 0 and self.free_list:
            self.surplus_huge_pages -= 1
            self.update_and_free_huge_page(self.free_list.pop(0))
            n -= 1

    def hugetlb_acct_memory(self, delta):
        """hugetlb_acct_memory: take (delta > 0) or give back (delta < 0) pool reservations; -ENOMEM
        when the pool, grown by surplus pages as far as overcommit allows, cannot cover them."""
        if delta > 0:
            if self.gather_surplus_pages(delta):
                return -errno.ENOMEM
            if delta > self.free_huge_pages:          # allowed_mems_nr
                self.return_unused_surplus_pages(delta)
                return -errno.ENOMEM
        elif delta < 0:
            self.return_unused_surplus_pages(-delta)
        return 0

    def dequeue_huge_page(self, use_resv):
        """A free head page (refcount 1) for a fault or fallocate: from a reservation, or from the
        unreserved free pages; None when there is none."""
        if use_resv:
            if not self.free_list:
                return None
            self.resv_huge_pages -= 1
        elif self.available() <= 0:
            return None
        return self._prep_new_huge_page(self.free_list.pop())

    @staticmethod
    def _prep_new_huge_page(head):
        head.refcount = 1
        head.mapcount = 0
        head.flags = PG_hugetlb | PG_head | PG_uptodate
        head.mapping = None
        head.index = 0
        return head

    def alloc_huge_page(self, use_resv):
        """alloc_hugetlb_folio's page: dequeued from the pool, else (none unreserved) a surplus page
        when overcommit allows; None when there is neither."""
        head = self.dequeue_huge_page(use_resv)
        if head is None and not use_resv:
            head = self.alloc_surplus_huge_page()
            if head is not None:
                self._prep_new_huge_page(head)
        return head

    def clear_huge_page(self, head):
        """clear_huge_page: zero the 512 frames (charged per frame, in cache or from DRAM)."""
        a = head.pfn << 12
        self.frames.phys.mv[a:a + HPAGE_SIZE] = bytes(HPAGE_SIZE)
        charge_page_zero(self.svc, head.pfn, PAGES_PER_HPAGE)
        self.svc.stats['huge_pages_zeroed'] += 1

    def copy_huge_page(self, dst, src):
        """copy_user_huge_page: copy the 512 frames."""
        mv = self.frames.phys.mv
        d, s = dst.pfn << 12, src.pfn << 12
        mv[d:d + HPAGE_SIZE] = mv[s:s + HPAGE_SIZE]
        charge_page_copy(self.svc, dst.pfn, src.pfn, PAGES_PER_HPAGE)
        self.svc.stats['huge_pages_copied'] += 1

    def put_huge_page(self, head, restore_reserve=False):
        """Drop a reference; the last one frees the page (free_huge_folio): back to the pool, or to the
        page allocator while the pool has surplus pages; restore_reserve gives its reservation back."""
        head.refcount -= 1
        if head.refcount > 0:
            return False
        if head.refcount < 0:
            raise AssertionError("put_huge_page on a free huge page %r" % head)
        head.flags = PG_hugetlb | PG_head
        head.mapping = None
        head.mapcount = 0
        head.rmap_mm = None
        hugetlb_cgroup_uncharge_folio(self, head)
        if restore_reserve:
            self.resv_huge_pages += 1
        if self.surplus_huge_pages:
            self.surplus_huge_pages -= 1
            self.update_and_free_huge_page(head)
        else:
            self.free_list.append(head)
        self.svc.charge('page_free')
        return True

    def meminfo(self):
        """The HugePages_* lines of /proc/meminfo (hugetlb_report_meminfo)."""
        return ('HugePages_Total:   %5d\nHugePages_Free:    %5d\nHugePages_Rsvd:    %5d\nHugePages_Surp:    %5d\n'
                'Hugepagesize:   %8d kB\nHugetlb:        %8d kB\n'
                % (self.nr_huge_pages, self.free_huge_pages, self.resv_huge_pages, self.surplus_huge_pages,
                   HPAGE_SIZE >> 10, self.nr_huge_pages * (HPAGE_SIZE >> 10)))


class GiganticHState:
    """struct hstate of the 1 GiB size, with an empty pool: x86-64 registers it when the CPU has
    pdpe1gb (hugetlbpage.c arch_hugetlb_valid_size), and its pool stays empty unless the boot line
    asks for pages (hugepagesz=1G hugepages=N). Growing it at run time needs a free, naturally aligned
    1 GiB range (alloc_gigantic_folio); faultlab maps no PUD-sized page, so none is ever found and
    echo N > nr_hugepages leaves 0, as on a Linux machine whose memory has no such range. A gigantic
    hstate has no surplus pages (alloc_surplus_hugetlb_folio), so every reservation fails (ENOMEM)."""

    gigantic = True
    order = GIGANTIC_PAGE_SHIFT - 12
    page_size = GIGANTIC_PAGE_SIZE
    nr_huge_pages = free_huge_pages = resv_huge_pages = surplus_huge_pages = 0
    nr_overcommit_huge_pages = max_huge_pages = 0

    def __init__(self, clock=None):
        self.clock = clock
        self.demote_size = HPAGE_SIZE    # demote_order: the 2 MiB hstate, the only smaller one
        self._sb = None

    def internal_sb(self, alloc_dev):
        """The hstate's internal hugetlbfs (memfd_create(MFD_HUGETLB | MFD_HUGE_1GB)), made at first
        use with a device number from alloc_dev()."""
        if self._sb is None:
            self._sb = HugetlbFs(self, self.clock, alloc_dev())
        return self._sb

    @property
    def name(self):
        """The hstate's name, as its /sys/kernel/mm/hugepages directory is called."""
        return 'hugepages-%dkB' % (GIGANTIC_PAGE_SIZE >> 10)

    def set_max_huge_pages(self, count):
        """set_max_huge_pages: no gigantic page can be allocated, the pool stays empty."""
        return self.nr_huge_pages

    def alloc_huge_page(self, use_resv):
        """alloc_hugetlb_folio: the pool is empty and no surplus page can be had (fallocate: ENOSPC)."""
        return None

    def hugetlb_acct_memory(self, delta):
        """hugetlb_acct_memory: no page can be reserved (-ENOMEM), giving back is nothing."""
        return -errno.ENOMEM if delta > 0 else 0

    def demote(self, count):
        """demote_store: split free pages into 2 MiB ones; the pool has none, nothing is demoted."""
        return 0

    def set_demote_size(self, size):
        """demote_size_store: the size must be an hstate's smaller than this one (2 MiB); EINVAL else."""
        if size != HPAGE_SIZE:
            raise FsError(errno.EINVAL)
        self.demote_size = size


# ---- reservations ------------------------------------------------------------------------------
def _private_resv(mm):
    """The reserve map of mm's private hugetlb mappings (the resv_map of their owner VMAs): huge
    virtual page number -> True while its reservation is unused, False once a fault consumed it. A
    forked child's mappings have none (hugetlb_dup_vma_private)."""
    r = getattr(mm, 'hugetlb_resv', None)
    if r is None:
        r = mm.hugetlb_resv = {}
    return r


def hugetlb_reserve_pages(h, mm, vma_start, nr, f, idx0, shared, noreserve):
    """Reserve the pool pages a new mapping may need; -ENOMEM when the pool cannot cover them."""
    if noreserve:
        return 0
    inode = f.inode
    if shared:
        need = [i for i in range(idx0, idx0 + nr) if i not in inode.hpages and i not in inode.resv]
    else:
        need = list(range(nr))
    hcg = hugetlb_cgroup_charge_rsvd(h, len(need))
    if hcg is None:
        return -errno.ENOMEM                  # over the cgroup's hugetlb rsvd.max
    if h.hugetlb_acct_memory(len(need)):
        hugetlb_cgroup_uncharge_rsvd(h, hcg, len(need))
        return -errno.ENOMEM
    if shared:
        inode.resv.update(need)
        if hcg:
            inode.resv_cg.update((i, hcg) for i in need)
    else:
        _private_resv(mm).update(((vma_start >> HPAGE_SHIFT) + i, True) for i in need)
        if hcg:
            _private_resv_cg(mm).update(((vma_start >> HPAGE_SHIFT) + i, hcg) for i in need)
    return 0


def _private_resv_cg(mm):
    """The hugetlb cgroup each private reservation of mm is charged to (the resv_map's
    reservation_counter), by huge virtual page number, until the VMA goes."""
    r = getattr(mm, 'hugetlb_resv_cg', None)
    if r is None:
        r = mm.hugetlb_resv_cg = {}
    return r


def hugetlb_vm_op_close(mm, vma):
    """A hugetlb mapping goes away: the private reservations it did not use go back to the pool."""
    r = getattr(mm, 'hugetlb_resv', None)
    if not r or vma.vm_flags & VM_MAYSHARE:
        return
    rcg = getattr(mm, 'hugetlb_resv_cg', None)
    if rcg:                                   # hugetlb_cgroup_uncharge_counter over the whole range
        for vpn in range(vma.vm_start >> HPAGE_SHIFT, vma.vm_end >> HPAGE_SHIFT):
            hugetlb_cgroup_uncharge_rsvd(mm.svc.hstate, rcg.pop(vpn, None))
    unused = 0
    for vpn in range(vma.vm_start >> HPAGE_SHIFT, vma.vm_end >> HPAGE_SHIFT):
        if r.pop(vpn, False):
            unused += 1
    mm.svc.hstate.hugetlb_acct_memory(-unused)


def hugetlb_mremap_check(old_addr, old_len, new_len, new_addr):
    """mremap's rules for a hugetlb mapping: huge-aligned addresses (lengths are rounded up to huge
    pages) and no growth, since the reservations cannot be split: (old_len, new_len) or -EINVAL."""
    old_len = (old_len + HPAGE_SIZE - 1) & HPAGE_MASK
    new_len = (new_len + HPAGE_SIZE - 1) & HPAGE_MASK
    if old_addr & (HPAGE_SIZE - 1) or new_addr & (HPAGE_SIZE - 1) or new_len > old_len:
        return -errno.EINVAL
    return old_len, new_len


def move_hugetlb_page_tables(mm, old_start, new_start, length):
    """move_hugetlb_page_tables: move the huge PMDs of [old_start, old_start + length) to new_start,
    with the private reservations of those huge pages; the number moved."""
    phys = mm.svc.frames.phys
    pages = mm.svc.frames.pages
    r = getattr(mm, 'hugetlb_resv', None)
    for r in (r, getattr(mm, 'hugetlb_resv_cg', None)):
        for vpn in range(old_start >> HPAGE_SHIFT, (old_start + length) >> HPAGE_SHIFT) if r else ():
            if vpn in r:
                r[vpn + ((new_start - old_start) >> HPAGE_SHIFT)] = r.pop(vpn)
    moved = 0
    for va, slot, e in list(mm.pgtables.huge_pmds(old_start, old_start + length)):
        new_slot, freed = mm.pgtables.set_huge_pmd_slot(new_start + (va - old_start))
        if freed is not None:
            mm.svc.frames.put_page(pages[freed])
        phys.write64(new_slot, e)
        phys.write64(slot, 0)
        head = pages[(e & PMD_PFN_MASK) >> 12] if e & _PAGE_PRESENT else None
        if head is not None and head.flags & PG_anon:
            head.index = (new_start + (va - old_start)) >> 12
        moved += 1
    if moved:
        mm.svc.charge('pte_set', 2 * moved)
        mm.svc.flush_tlb(mm)
    return moved


def hugetlb_split_check(mm, start, end):
    """-EINVAL if changing [start, end) would split a hugetlb mapping inside a huge page
    (hugetlb_vm_op_split), else 0."""
    for v in mm.vmas.overlapping(start, end):
        if v.vm_flags & VM_HUGETLB:
            for a in (start, end):
                if v.vm_start < a < v.vm_end and a & (HPAGE_SIZE - 1):
                    return -errno.EINVAL
    return 0


# ---- mmap (do_mmap's hugetlb path, kernel/mm/mmap.py hugetlb_mmap, calls these in this order) -------------
def hugetlb_mmap_check(mm, length, flags, f, pgoff):
    """The checks before anything is set up: the length rounded up to 2 MiB, or -ENOMEM (no pool, a
    length past TASK_SIZE), -EINVAL (an unknown MAP_HUGE_* size, a file not on hugetlbfs, an offset
    that is not a multiple of 2 MiB)."""
    if getattr(mm.svc, 'hstate', None) is None:
        return -errno.ENOMEM
    gigantic = flags & MAP_HUGETLB and is_gigantic_size(flags)
    if flags & MAP_HUGETLB and not huge_size_ok(flags) and not gigantic:
        return -errno.EINVAL                  # hstate_sizelog: no hstate of that size
    if f is not None and not is_file_hugepages(f):
        return -errno.EINVAL                  # MAP_HUGETLB with a file that is not on hugetlbfs
    rlen = (length + HPAGE_SIZE - 1) & HPAGE_MASK
    if rlen == 0 or rlen > TASK_SIZE:
        return -errno.ENOMEM
    if pgoff & (PAGES_PER_HPAGE - 1):
        return -errno.EINVAL
    if gigantic or f is not None and f.inode.sb.hstate.gigantic:
        return -errno.ENOMEM                  # 1 GiB: hugetlb_reserve_pages finds the pool empty
    return rlen


def hugetlb_mmap_file(mm, f, rlen, shared, prot):
    """The file the mapping maps, with a reference for it: for MAP_HUGETLB a new unlinked hugetlbfs
    file of rlen bytes (ksys_mmap_pgoff's hugetlb_file_setup), else f if it may be mapped so; or -errno."""
    if f is None:
        return hugetlb_file_setup(mm.svc.hstate, mm.svc.pagecache, rlen)
    err = f.check_mmap(shared, prot)
    if err:
        return err
    f.get()
    return f


def hugetlb_vm_flags(prot, flags, shared, f):
    """The VMA flags of a hugetlb mapping: VM_HUGETLB | VM_DONTEXPAND, shared only if the file is
    writable, VM_NORESERVE for MAP_NORESERVE."""
    vm_flags = calc_vm_prot_bits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_HUGETLB | VM_DONTEXPAND
    if shared:
        vm_flags |= VM_SHARED | VM_MAYSHARE
        if not f.writable:
            vm_flags &= ~(VM_MAYWRITE | VM_SHARED)
    if flags & MAP_NORESERVE:
        vm_flags |= VM_NORESERVE
    return vm_flags


def hugetlbfs_file_mmap(f, rlen, pgoff, vm_flags, new_file):
    """hugetlbfs_file_mmap's size update: a MAP_HUGETLB file is the mapping's length, a writable
    mapping extends the file it maps to its end."""
    if new_file:
        f.inode.size = rlen
    elif vm_flags & VM_WRITE and f.inode.size < rlen + (pgoff << 12):
        f.inode.size = rlen + (pgoff << 12)


def hugetlb_vma_link(mm, start, rlen, vm_flags, pgoff, f):
    """vma_link: the new hugetlb VMA joins the address space (never merged with a neighbour)."""
    mm.svc.charge('vma_modify')
    mm.vmas.insert(VmArea(start, start + rlen, vm_flags | VM_SOFTDIRTY, pgoff, f))
    mm.total_vm += rlen >> 12


def make_huge_pte(vma, head, writable, dirty):
    """A PMD leaf for head with the VMA's rights."""
    e = (head.pfn << 12) | _PAGE_PRESENT | _PAGE_USER | _PAGE_PSE | _PAGE_ACCESSED
    if writable:
        e |= _PAGE_RW
    if dirty:
        e |= _PAGE_DIRTY | _PAGE_SOFT_DIRTY
    if not vma.vm_flags & VM_EXEC:
        e |= _PAGE_NX
    if not vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC):
        e &= ~_PAGE_USER
    return e


def vma_hugecache_offset(vma, haddr):
    """The huge page index in the file that haddr maps."""
    return ((haddr - vma.vm_start) >> HPAGE_SHIFT) + (vma.vm_pgoff >> HUGETLB_PAGE_ORDER)


def alloc_hugetlb_folio(mm, vma, haddr):
    """A pool page for a private mapping's fault at haddr: from its reservation, else unreserved."""
    h = mm.svc.hstate
    r = _private_resv(mm)
    vpn = haddr >> HPAGE_SHIFT
    use = r.get(vpn, False)
    charge = hugetlb_cgroup_charge_cgroup(h, not use)
    if charge is None:
        return None                           # over the cgroup's hugetlb max: SIGBUS
    head = h.alloc_huge_page(use)
    if head is None:
        hugetlb_cgroup_cancel_charge(h, charge)
        return None
    hugetlb_cgroup_commit_charge(h, head, charge)
    if use:
        r[vpn] = False
    return head


def _set_huge_pmd(mm, vmf, entry):
    if vmf.orig_pte == WP_MARKER | _PAGE_PSE:       # hugetlb_no_page: the page keeps the marker's uffd-wp
        entry = (entry | _PAGE_UFFD_WP) & ~_PAGE_RW
    mm.svc.frames.phys.write64(vmf.slot, entry)
    mm.svc.charge('pte_set')


def hugetlb_fault(mm, vma, address, flags):
    """handle_mm_fault for a hugetlb VMA: (VM_FAULT bits, the VmFault record)."""
    svc = mm.svc
    vmf = VmFault(vma, address, flags)
    vmf.address = address & HPAGE_MASK
    svc.charge('fault_handle')
    try:
        slot, freed = mm.pgtables.set_huge_pmd_slot(vmf.address)
    except MemoryError:
        return VM_FAULT_OOM, vmf
    if freed is not None:
        svc.frames.put_page(svc.frames.pages[freed])
    vmf.slot = slot
    entry = vmf.orig_pte = svc.frames.phys.read64(slot)
    if vma.vm_flags & VM_UFFD_FLAGS:           # registered with a userfaultfd: its handler may take it
        ret = hugetlb_userfault(mm, vmf, entry)
        if ret is not None:
            return ret, vmf
    if entry == 0 or entry == WP_MARKER | _PAGE_PSE:     # a uffd-wp marker is none to hugetlb_no_page
        return hugetlb_no_page(mm, vmf), vmf
    if not entry & _PAGE_PRESENT:
        vmf.handler = 'hugetlb(hwpoison)'
        return VM_FAULT_SIGBUS, vmf
    if flags & FAULT_FLAG_WRITE and not entry & _PAGE_RW:
        return hugetlb_wp(mm, vmf), vmf
    vmf.handler = 'hugetlb(spurious)'
    return 0, vmf


def hugetlb_no_page(mm, vmf):
    """No PMD yet: map the file's page (shared; allocated and cleared if missing), or for a private
    mapping the file's page read-only / a new cleared anonymous page."""
    vma = vmf.vma
    inode = vma.vm_file.inode
    idx = vma_hugecache_offset(vma, vmf.address)
    if idx >= (inode.size + HPAGE_SIZE - 1) >> HPAGE_SHIFT:
        vmf.handler = 'hugetlb_no_page(beyond EOF)'
        return VM_FAULT_SIGBUS
    write = vmf.flags & FAULT_FLAG_WRITE
    head = inode.hpages.get(idx)
    if vma.vm_flags & VM_MAYSHARE:
        vmf.handler = 'hugetlb_no_page(shared)'
        if head is None:
            head = inode.alloc_file_page(idx)
            if head is None:
                return VM_FAULT_SIGBUS
        head.refcount += 1
        head.mapcount += 1
        writable = bool(vma.vm_flags & VM_WRITE and vma.vm_flags & VM_SHARED)
        if writable and write:
            head.flags |= PG_dirty
        _set_huge_pmd(mm, vmf, make_huge_pte(vma, head, writable and write, writable and write))
    elif head is not None:
        vmf.handler = 'hugetlb_no_page(private file)'
        head.refcount += 1
        head.mapcount += 1
        _set_huge_pmd(mm, vmf, make_huge_pte(vma, head, False, False))
        if write:
            vmf.orig_pte = mm.svc.frames.phys.read64(vmf.slot)
            return hugetlb_wp(mm, vmf)
    else:
        vmf.handler = 'hugetlb_no_page(anon)'
        head = alloc_hugetlb_folio(mm, vma, vmf.address)
        if head is None:
            return VM_FAULT_SIGBUS
        mm.svc.hstate.clear_huge_page(head)
        head.flags |= PG_anon | PG_dirty
        head.mapcount = 1
        head.rmap_mm = mm
        head.index = vmf.address >> 12
        _set_huge_pmd(mm, vmf, make_huge_pte(vma, head, bool(write), bool(write)))
    if vma.vm_flags & VM_EXEC:
        head.flags |= PG_exec
    vmf.page = head
    return 0


def hugetlb_wp(mm, vmf):
    """Write to a read-only huge PMD: make it writable (shared, or our own anonymous page) or copy."""
    svc = mm.svc
    h = svc.hstate
    vma = vmf.vma
    entry = vmf.orig_pte
    old = svc.frames.pages[(entry & PMD_PFN_MASK) >> 12]
    if vma.vm_flags & VM_MAYSHARE or (old.flags & PG_anon and old.mapcount == 1 and old.refcount == 1):
        vmf.handler = 'hugetlb_wp(reuse)'
        old.flags |= PG_dirty
        _set_huge_pmd(mm, vmf, entry | _PAGE_RW | _PAGE_DIRTY | _PAGE_SOFT_DIRTY | _PAGE_ACCESSED)
        svc.flush_tlb()
        return 0
    new = alloc_hugetlb_folio(mm, vma, vmf.address)
    if new is None:
        return VM_FAULT_SIGBUS
    vmf.handler = 'hugetlb_wp(copy)'
    h.copy_huge_page(new, old)
    new.flags |= PG_anon | PG_dirty
    new.mapcount = 1
    new.rmap_mm = mm
    new.index = vmf.address >> 12
    _set_huge_pmd(mm, vmf, make_huge_pte(vma, new, True, True))
    svc.flush_tlb()
    old.mapcount -= 1
    h.put_huge_page(old)
    vmf.page = new
    return 0


# ---- protection ---------------------------------------------------------------------------------
def hugetlb_change_protection(mm, vma):
    """mprotect of a hugetlb VMA: rewrite its huge PMDs (write access is only ever removed)."""
    phys = mm.svc.frames.phys
    changed = 0
    for va, slot, e in list(mm.pgtables.huge_pmds(vma.vm_start, vma.vm_end)):
        if not e & _PAGE_PRESENT:
            continue
        new = e
        if not vma.vm_flags & VM_WRITE:
            new &= ~_PAGE_RW
        new = (new & ~_PAGE_NX) | (0 if vma.vm_flags & VM_EXEC else _PAGE_NX)
        new = new & ~_PAGE_USER if not vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC) else new | _PAGE_USER
        if new != e:
            phys.write64(slot, new)
            changed += 1
    if changed:
        mm.svc.charge('pte_set', changed)
        mm.svc.flush_tlb()


# ---- /proc ---------------------------------------------------------------------------------------
def register_hugetlb_procfs(k):
    """/proc/sys/vm/nr_hugepages and the other hugetlb sysctls (kernel/mm/hugetlb_sysfs.py)."""
    hugetlb_sysctl_init(k)
