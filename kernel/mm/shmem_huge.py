"""Transparent huge pages for shmem and tmpfs (mm/shmem.c, Linux 6.12): which faults get a 2 MiB folio
and the folio's life in the page cache.

The policy (shmem_huge_global_enabled, shmem_allowable_huge_orders): a tmpfs mount's huge= option
(never, always, within_size, advise) decides for its files; the internal mount behind MAP_SHARED
anonymous memory, memfd and SysV shm (shm_mnt) takes /sys/kernel/mm/transparent_hugepage/shmem_enabled,
whose 'deny' and 'force' override every mount (testing). Shared anonymous memory also follows the
per-size hugepages-2048kB/shmem_enabled ('inherit' takes the global decision). MADV_NOHUGEPAGE or
PR_SET_THP_DISABLE turn it off for the VMA; 'advise' needs MADV_HUGEPAGE; 'within_size' a file whose
i_size covers the whole 2 MiB range.

A fault on a hole whose naturally aligned 2 MiB range of the file is empty (nothing cached, nothing in
swap) and that the VMA covers at the matching alignment gets one compound page of 512 frames, cleared
once (clear_highpage of each subpage, as do_huge_pmd_anonymous_page costs it) and added to the page
cache as one folio (thp_file_alloc; thp_file_fallback when no 2 MiB block is free, and the fault takes
a 4 KiB page). Its pages carry the large-folio flags /proc/kpageflags reports (THP, COMPOUND_HEAD and
COMPOUND_TAIL) and /proc/meminfo counts it in ShmemHugePages. Truncating or punching part of it, or
swapping a page of it out, splits it into 512 order-0 pages first (split_huge_page, thp_split_page).

finish_fault maps such a folio with one PMD (do_set_pmd: the CPU's PSE bit, thp_file_mapped) when the
VMA covers the aligned 2 MiB at the file's alignment and the PMD is empty (here: its PTE table holds
nothing, and becomes the table deposited with the PMD, as for anonymous THP); otherwise the faulting
page is mapped by a PTE and fault-around maps the folio's other pages. A PMD mapping holds a mapping
and a reference on each of the 512 pages (so truncation and reclaim see them mapped) and counts in
the folio's entire mapcount (ThpState.file_pmd: ShmemPmdMapped, smaps' ShmemPmdMapped); splitting the
PMD (partial munmap or mprotect, a 4 KiB walker) turns it into 512 PTEs to the same pages; zapping it
drops the mappings; fork leaves shared file PMDs to be faulted again in the child (vma_needs_copy).
"""
from faultlab.kernel.mm.huge_memory import (HPAGE_PMD_MASK, HPAGE_PMD_NR, HPAGE_PMD_ORDER, PG_large_head,
                                             PG_large_tail, VM_HUGEPAGE, __split_huge_pmd, count_mthp_stat,
                                             mk_huge_pmd, set_huge_pmd, thp_size_dir, thp_state, vma_thp_disabled)
from faultlab.kernel.mm.llc import charge_page_zero
from faultlab.kernel.mm.page_alloc import PG_dirty, PG_exec, PG_uptodate
from faultlab.kernel.mm.mm_types import FAULT_FLAG_WRITE
from faultlab.kernel.mm.pgtable import _PAGE_RW, PMD_PFN_MASK, PMD_SHIFT, PMD_SIZE
from faultlab.kernel.mm.userfaultfd_k import VM_UFFD_WP
from faultlab.kernel.mm.vma import VM_EXEC

HUGE_MASK = HPAGE_PMD_NR - 1
MOUNT_CHOICES = ('never', 'always', 'within_size', 'advise')     # huge= (shmem_parse_huge)
ANON_SHMEM_PATH = '/dev/zero (deleted)'                          # shmem_zero_setup's file


def _knob(svc, name, default='never'):
    st = thp_state(svc)
    return st.values.get(name, default) if st is not None else default


def sb_huge(svc, sb):
    """SHMEM_SB(sb)->huge: a mounted tmpfs's huge= option; shm_mnt's is set by writes of shmem_enabled
    other than deny and force."""
    if getattr(sb, 'internal', False):
        return _knob(svc, 'shm_mnt_huge')
    return getattr(sb, 'huge', 'never')


def _within_size(inode, index):
    """i_size covers the whole 2 MiB range index lies in (round_up(index + 1, HPAGE_PMD_NR))."""
    end = (index + HPAGE_PMD_NR) & ~HUGE_MASK
    return (inode.size + 4095) >> 12 >= end


def shmem_huge_global_enabled(svc, inode, index, vm_flags, force=False):
    """The global and per-mount decision for a PMD-sized folio at index of inode."""
    shmem_huge = _knob(svc, 'shmem_enabled')
    if shmem_huge == 'deny':
        return False
    if force or shmem_huge == 'force':
        return True
    huge = sb_huge(svc, inode.sb)
    if huge == 'always':
        return True
    if huge == 'within_size' and _within_size(inode, index):
        return True
    if huge in ('within_size', 'advise'):
        return bool(vm_flags & VM_HUGEPAGE)
    return False


def vma_is_anon_shmem(vma):
    """A MAP_SHARED|MAP_ANONYMOUS mapping (shmem_zero_setup's file)."""
    return vma.vm_file is not None and getattr(vma.vm_file, 'path', None) == ANON_SHMEM_PATH


def shmem_allowable_huge(mm, vma, inode, index, force=False):
    """shmem_allowable_huge_orders for the PMD order: True if a 2 MiB folio may back index."""
    svc = mm.svc
    if vma is not None and vma_thp_disabled(mm, vma):
        return False
    vm_flags = vma.vm_flags if vma is not None else 0
    global_huge = shmem_huge_global_enabled(svc, inode, index, vm_flags, force)
    if vma is None or not vma_is_anon_shmem(vma):
        return global_huge                 # tmpfs and memfd: the PMD size only, as the mount says
    shmem_huge = _knob(svc, 'shmem_enabled')
    if shmem_huge == 'deny':
        return False
    per_size = _knob(svc, thp_size_dir(HPAGE_PMD_ORDER) + '/shmem_enabled', 'inherit')
    if shmem_huge == 'force':
        return per_size == 'inherit'
    return per_size == 'always' or (per_size == 'within_size' and _within_size(inode, index)) or \
        (per_size == 'advise' and bool(vm_flags & VM_HUGEPAGE)) or (per_size == 'inherit' and global_huge)


def shmem_vma_suitable(vma, address):
    """thp_vma_suitable_order: the aligned 2 MiB around address is inside the VMA and the file offset
    has the same alignment as the address."""
    haddr = address & ~(PMD_SIZE - 1)
    if haddr < vma.vm_start or haddr + PMD_SIZE > vma.vm_end:
        return False
    return ((vma.vm_start >> 12) - vma.vm_pgoff) & HUGE_MASK == 0


def _range_empty(pc, mapping, hindex):
    """shmem_suitable_orders' xa_find: nothing cached, in swap or stored in [hindex, hindex + 512)."""
    pages = mapping.pages
    inode = mapping.inode
    swap = pc.shmem_swap
    for i in range(hindex, hindex + HPAGE_PMD_NR):
        if i in pages or inode.has_page(i) or (swap is not None and swap.has_entry(inode, i)):
            return False
    return True


def shmem_alloc_huge_folio(mm, vmf, mapping, index):
    """shmem_alloc_and_add_folio at the PMD order for a fault at index: the folio's head page, or None
    (not allowed here, the range not empty, no space or no 2 MiB block: the caller takes a 4 KiB page)."""
    svc = mm.svc
    vma = vmf.vma
    inode = mapping.inode
    if not shmem_vma_suitable(vma, vmf.address) or not shmem_allowable_huge(mm, vma, inode, index):
        return None
    pc = svc.pagecache
    hindex = index & ~HUGE_MASK
    if not _range_empty(pc, mapping, hindex):
        return None
    sb = inode.sb
    if sb.max_pages is not None and sb.used_pages + HPAGE_PMD_NR > sb.max_pages:
        return None                         # shmem_inode_acct_blocks: ENOSPC for 512 blocks: 4 KiB
    rec = svc.reclaim
    pfn = None
    if rec is None or svc.frames.nr_free - HPAGE_PMD_NR >= rec.wmark_low:
        pfn = svc.frames.alloc_contig_pages(HPAGE_PMD_ORDER)
    st = thp_state(svc)
    if pfn is None:
        svc.stats['thp_file_fallback'] += 1
        count_mthp_stat(st, HPAGE_PMD_ORDER, 'shmem_fallback')
        return None
    svc.charge('page_alloc')
    svc.frames.phys.mv[pfn << 12:(pfn << 12) + PMD_SIZE] = bytes(PMD_SIZE)
    charge_page_zero(svc, pfn, HPAGE_PMD_NR)
    svc.stats['pages_zeroed'] += HPAGE_PMD_NR
    for i in range(hindex, hindex + HPAGE_PMD_NR):
        inode.reserve_page(i)
    svc.charge('pagecache_insert')          # one multi-index entry for the folio
    pages = svc.frames.pages
    now = svc.sched.now()
    lru = pc.lru
    for i in range(HPAGE_PMD_NR):
        page = pages[pfn + i]
        page.mapping = mapping
        page.index = hindex + i
        page.flags |= PG_uptodate | (PG_large_tail if i else PG_large_head)
        page.io_done_at = now
        mapping.pages[hindex + i] = page   # the cache's reference is the allocation's
        lru.add(page)
    svc.stats['thp_file_alloc'] += 1
    count_mthp_stat(st, HPAGE_PMD_ORDER, 'shmem_alloc')
    return mapping.pages[index]


def do_set_pmd(mm, vmf, page, writable):
    """finish_fault's do_set_pmd for a page of a shmem huge folio: map the whole folio with one PMD
    (writable if the fault writes or vm_page_prot is writable). True if it did, False to map the page
    with a PTE (not a PMD-sized folio, the VMA range unaligned, the PMD not empty)."""
    svc = mm.svc
    vma = vmf.vma
    head = folio_head_of(svc.frames, page)
    if head is None or vma.vm_flags & VM_UFFD_WP or vma_thp_disabled(mm, vma) or \
            not shmem_vma_suitable(vma, vmf.address):
        return False
    haddr = vmf.address & HPAGE_PMD_MASK
    if vma.linear_page_index(haddr) != head.index:
        return False
    pgt = mm.pgtables
    key = haddr >> PMD_SHIFT
    if key in pgt.thp or any(True for _ in pgt.present_ptes(haddr, haddr + PMD_SIZE, split=False)):
        return False                       # pmd_none fails: PTEs are there already
    slot = pgt.pmd_slot(haddr, create=False)
    table = pgt.free_pte_table(haddr)      # the empty table the fault allocated: the deposit
    if table is None or slot is None:
        return False
    pgt.table_pfns[table] = None
    write = bool(vmf.flags & FAULT_FLAG_WRITE)
    e = mk_huge_pmd(vma, head.pfn, write)
    if writable:
        e |= _PAGE_RW
    set_huge_pmd(mm, slot, key, e, table)
    exe = PG_exec if vma.vm_flags & VM_EXEC else 0
    for p in svc.frames.pages[head.pfn:head.pfn + HPAGE_PMD_NR]:     # folio_add_file_rmap_pmd
        p.mapcount += 1
        p.refcount += 1
        p.flags |= exe | (PG_dirty if write else 0)
    st = thp_state(svc)
    st.file_pmd[head.pfn] = st.file_pmd.get(head.pfn, 0) + 1
    mm.rss_add(file=HPAGE_PMD_NR)
    svc.stats['thp_file_mapped'] += 1
    return True


def filemap_map_pmd(mm, vmf, mapping, writable):
    """filemap_map_pages' filemap_map_pmd: a read fault whose page is cached in a PMD-sized folio maps
    the folio with a PMD before mapping PTEs around; True if it did (vmf.page is the faulting page)."""
    page = mapping.pages.get(vmf.pgoff)
    if page is None or not page.flags & (PG_large_head | PG_large_tail) or not page.flags & PG_uptodate:
        return False
    if not do_set_pmd(mm, vmf, page, writable):
        return False
    vmf.page = page
    return True


def split_folio_pmds(frames, head, mms):
    """Split every PMD that maps the shmem folio head (before its pages go one by one)."""
    st = getattr(frames, 'thp_state', None)
    if st is None or not st.file_pmd.get(head.pfn):
        return
    for mm in mms():
        pgt = mm.pgtables
        if not pgt.thp:
            continue
        for key in [k for k in pgt.thp]:
            slot = pgt.pmd_slot(key << PMD_SHIFT, create=False)
            if slot is not None and (frames.phys.read64(slot) & PMD_PFN_MASK) >> 12 == head.pfn:
                __split_huge_pmd(mm, key << PMD_SHIFT)
        if not st.file_pmd.get(head.pfn):
            return


def split_shmem_folio_for_swap(frames, stats, page, mms):
    """shmem_writepage of a page in a huge folio: the PMDs mapping the folio are split and the folio
    becomes 512 order-0 pages, which go to swap one by one."""
    head = folio_head_of(frames, page)
    if head is not None:
        split_folio_pmds(frames, head, mms)
        split_shmem_folio(frames, stats, head)


def folio_head_of(frames, page):
    """The head page of the shmem huge folio page belongs to, or None for an order-0 page."""
    if not page.flags & (PG_large_head | PG_large_tail) or page.mapping is None:
        return None
    head = frames.pages[page.pfn - (page.index & HUGE_MASK)]
    return head if head.flags & PG_large_head else None


def split_shmem_folio(frames, stats, head, stat=True):
    """split_huge_page of a shmem folio: its pages become order-0 pages (those no longer cached were
    freed already)."""
    for p in frames.pages[head.pfn:head.pfn + HPAGE_PMD_NR]:
        p.flags &= ~(PG_large_head | PG_large_tail)
    if stat:
        stats['thp_split_page'] += 1


def shmem_huge_folios(svc, pagecache):
    """The head pages of the shmem huge folios in the page cache; a folio missing some of its pages (a
    truncation cut it) is split on the way."""
    from_mappings = []
    pages = svc.frames.pages
    for m in pagecache.mappings.values():
        for idx, page in m.pages.items():
            if page.flags & PG_large_head and idx & HUGE_MASK == 0:
                whole = all(m.pages.get(idx + i) is pages[page.pfn + i] for i in range(1, HPAGE_PMD_NR))
                if whole:
                    from_mappings.append(page)
                else:
                    split_shmem_folio(svc.frames, svc.stats, page)
    return from_mappings


def shmem_pmd_mapped_folios(svc):
    """NR_SHMEM_PMDMAPPED in huge pages: shmem folios some PMD maps."""
    st = thp_state(svc)
    return sum(1 for n in st.file_pmd.values() if n) if st is not None else 0


def shmem_thp_meminfo(svc, pagecache):
    """/proc/meminfo's ShmemHugePages, ShmemPmdMapped, FileHugePages and FilePmdMapped lines."""
    kb = HPAGE_PMD_NR * 4
    return ('ShmemHugePages: %8d kB\nShmemPmdMapped: %8d kB\nFileHugePages:  %8d kB\nFilePmdMapped:  %8d kB\n'
            % (len(shmem_huge_folios(svc, pagecache)) * kb, shmem_pmd_mapped_folios(svc) * kb, 0, 0))


def shmem_thp_vmstat(svc, pagecache):
    """/proc/vmstat's shmem THP lines (nr_* in huge pages, as vmstat_item_print_in_thp prints them)."""
    s = svc.stats
    return {'nr_shmem_hugepages': len(shmem_huge_folios(svc, pagecache)),
            'nr_shmem_pmdmapped': shmem_pmd_mapped_folios(svc), 'nr_file_hugepages': 0,
            'nr_file_pmdmapped': 0, 'thp_file_alloc': s['thp_file_alloc'],
            'thp_file_fallback': s['thp_file_fallback'], 'thp_file_fallback_charge': 0,
            'thp_file_mapped': s['thp_file_mapped']}

