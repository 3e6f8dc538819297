"""kernel/mm without a CPU: VMAs, mmap family, fault handlers, page cache (Unicorn not involved)."""
import collections
import errno

import pytest

from faultlab.core.cycles import CostTable
from faultlab.core.physmem import PhysMem
from faultlab.kernel.block.device import BlockDevice
from faultlab.kernel.block.params import DiskParams
from faultlab.kernel.events import EventQueue
from faultlab.kernel.file import OpenFile, O_RDONLY, O_RDWR
from faultlab.kernel.fs import TmpFs, DiskFs
from faultlab.kernel.mm.filemap import PageCache
from faultlab.kernel.mm.memory import handle_mm_fault
from faultlab.kernel.mm.mm_types import MmServices, MmStruct, FAULT_FLAG_WRITE, VM_FAULT_MAJOR, VM_FAULT_SIGBUS
from faultlab.kernel.mm.mmap import (do_mmap, do_munmap, do_mprotect, do_mremap, do_brk, MAP_PRIVATE, MAP_SHARED,
                            MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MREMAP_MAYMOVE)
from faultlab.kernel.mm.madvise import do_madvise, MADV_DONTNEED
from faultlab.kernel.mm.page_alloc import FrameAllocator, PG_dirty
from faultlab.kernel.mm.swap import SwapArea, SwapCache
from faultlab.kernel.mm.vmscan import LruLists, Reclaim
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_RW, _PAGE_NX, pte_pfn, swp_entry_to_pte, pte_to_swp_entry

PROT_R, PROT_RW, PROT_RX = 1, 3, 5


class Clock:
    """A scheduler stand-in: time only moves when someone waits."""

    def __init__(self, events):
        self.t = 0
        self.events = events
        self.waited = 0

    def now(self):
        return self.t

    def wait_until(self, when, why):
        if when > self.t:
            self.waited += when - self.t
            self.t = when
        self.events.run_due(self.t)

    def next_event_time(self):
        t = self.events.next_time()
        return self.t if t is None else t

    def current_task(self):
        return None               # no task: kernel-internal work

    def mounted_superblocks(self):
        return []


class Env:
    def __init__(self, ram=16 << 20, fault_around=65536, swap_pages=4096):
        self.phys = PhysMem(ram)
        self.lru = LruLists()
        self.frames = FrameAllocator(self.phys, self.lru)
        self.events = EventQueue()
        self.clock = Clock(self.events)
        self.costs = CostTable()
        self.kcycles = 0
        self.stats = collections.Counter()
        self.flushes = 0
        self.disk = BlockDevice(DiskParams(), self.costs.freq_hz, self.events)
        self.pc = PageCache(self.frames, self.lru, self.disk, self.clock, self.charge, self.stats)
        self.area = SwapArea(swap_pages)
        self.swapcache = SwapCache(self.frames, self.area, self.disk, self.clock, self.charge, self.stats)
        self.reclaim = Reclaim(self.frames, self.pc, self.swapcache, self.lru, lambda: [self.mm], self.charge,
                               self.flush, self.stats, self.clock)
        self.pc.set_reclaim(self.reclaim)
        self.svc = MmServices(self.frames, self.pc, self.charge, self.flush, self.stats, self.clock, fault_around,
                              costs=self.costs.costs, charge_cycles=self.charge_cycles, lru=self.lru,
                              swapcache=self.swapcache, reclaim=self.reclaim)
        self.mm = MmStruct(self.svc)

    def charge(self, name, n=1):
        self.kcycles += self.costs.costs[name] * n

    def charge_cycles(self, n):
        self.kcycles += n

    def flush(self, mm=None):
        self.flushes += 1

    def pte(self, va):
        return self.mm.pgtables.get_pte(va)

    def fault(self, va, write=False):
        vma = self.mm.vmas.vma_lookup(va)
        assert vma is not None
        return handle_mm_fault(self.mm, vma, va, FAULT_FLAG_WRITE if write else 0)

    def read_phys(self, va, n):
        pa = self.mm.pgtables.translate(va)
        return self.phys.read(pa, n)

    def file(self, data, fs_cls=DiskFs, flags=O_RDONLY):
        fs = fs_cls()
        inode = fs.root.create('f', 0o644) if hasattr(fs.root, 'create') else None
        for i in range(0, len(data), 4096):
            inode.write_page(i // 4096, data[i:i + 4096])
        inode.set_size(len(data))
        return OpenFile(inode, flags, '/f', self.pc)


def test_swap_pte_round_trip():
    for t, off in ((0, 1), (3, 0x12345), (31, (1 << 40) - 1)):
        pte = swp_entry_to_pte(t, off)
        assert not pte & _PAGE_PRESENT
        assert pte_to_swp_entry(pte) == (t, off)


def test_mmap_places_top_down_and_merges_anon():
    e = Env()
    a = do_mmap(e.mm, 0, 8192, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    b = do_mmap(e.mm, 0, 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    assert b == a - 4096
    assert len(e.mm.vmas) == 1                 # adjacent, same flags: merged
    c = do_mmap(e.mm, 0, 4096, PROT_R, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    assert c == b - 4096 and len(e.mm.vmas) == 2
    e.mm.vmas.check()


def test_mmap_errors():
    e = Env()
    anon = MAP_PRIVATE | MAP_ANONYMOUS
    assert do_mmap(e.mm, 0, 0, PROT_RW, anon, None, 0) == -errno.EINVAL
    assert do_mmap(e.mm, 0, 4096, PROT_RW, MAP_ANONYMOUS, None, 0) == -errno.EINVAL      # no type
    assert do_mmap(e.mm, 0x400001, 4096, PROT_RW, anon | MAP_FIXED, None, 0) == -errno.EINVAL
    assert do_mmap(e.mm, 0x1000, 4096, PROT_RW, anon | MAP_FIXED, None, 0) == 0x1000   # root: CAP_SYS_RAWIO
    a = do_mmap(e.mm, 0x400000, 4096, PROT_RW, anon | MAP_FIXED, None, 0)
    assert a == 0x400000
    assert do_mmap(e.mm, 0x400000, 4096, PROT_RW, anon | MAP_FIXED_NOREPLACE, None, 0) == -errno.EEXIST
    f = e.file(b'x' * 100)
    assert do_mmap(e.mm, 0, 4096, PROT_RW, MAP_SHARED, f, 0) == -errno.EACCES   # read-only file


def test_munmap_splits_and_zaps():
    e = Env()
    a = do_mmap(e.mm, 0, 4 * 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    for i in range(4):
        e.fault(a + i * 4096, write=True)
    used = e.frames.nr_allocated
    assert do_munmap(e.mm, a + 4096, 2 * 4096) == 0
    assert [(v.vm_start, v.vm_end) for v in e.mm.vmas] == [(a, a + 4096), (a + 3 * 4096, a + 4 * 4096)]
    assert e.pte(a + 4096) == 0 and e.pte(a) & _PAGE_PRESENT
    assert e.frames.nr_allocated == used - 2
    assert e.flushes >= 1
    assert do_munmap(e.mm, a + 1, 4096) == -errno.EINVAL
    assert do_munmap(e.mm, a, 0) == -errno.EINVAL


def test_anonymous_read_maps_zero_page_then_write_copies():
    e = Env()
    a = do_mmap(e.mm, 0, 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    ret, vmf = e.fault(a)
    pte = e.pte(a)
    assert pte_pfn(pte) == e.svc.zero_page.pfn and not pte & _PAGE_RW and pte & _PAGE_NX
    ret, vmf = e.fault(a, write=True)
    assert vmf.handler == 'do_wp_page(copy)'
    pte = e.pte(a)
    assert pte & _PAGE_RW and pte_pfn(pte) != e.svc.zero_page.pfn
    assert e.read_phys(a, 16) == bytes(16)


def test_mprotect_downgrades_ptes_and_splits():
    e = Env()
    a = do_mmap(e.mm, 0, 3 * 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    for i in range(3):
        e.fault(a + i * 4096, write=True)
    flushes = e.flushes
    assert do_mprotect(e.mm, a + 4096, 4096, PROT_R) == 0
    assert len(e.mm.vmas) == 3
    assert not e.pte(a + 4096) & _PAGE_RW and e.pte(a) & _PAGE_RW
    assert e.flushes > flushes
    assert do_mprotect(e.mm, a + 4096, 4096, PROT_RW) == 0
    assert len(e.mm.vmas) == 1                 # merged back
    assert do_mprotect(e.mm, a + 3 * 4096, 4096, PROT_R) == -errno.ENOMEM     # unmapped


def test_mremap_grow_move_keeps_contents():
    e = Env()
    a = do_mmap(e.mm, 0, 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    do_mmap(e.mm, a + 4096, 4096, PROT_R, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0)   # blocks growth
    e.fault(a, write=True)
    e.phys.write(e.mm.pgtables.translate(a), b'hello')
    assert do_mremap(e.mm, a, 4096, 8192, 0, 0) == -errno.ENOMEM
    b = do_mremap(e.mm, a, 4096, 8192, MREMAP_MAYMOVE, 0)
    assert b > 0 and b != a
    assert e.read_phys(b, 5) == b'hello'
    assert e.mm.vmas.vma_lookup(a) is None


def test_brk_grows_and_shrinks():
    e = Env()
    e.mm.start_brk = e.mm.brk = 0x600000
    assert do_brk(e.mm, 0x600000 + 10000) == 0x600000 + 10000
    v = e.mm.vmas.vma_lookup(0x600000)
    assert v.name == '[heap]' and v.vm_end == 0x603000
    assert do_brk(e.mm, 0x601000) == 0x601000
    assert v.vm_end == 0x601000
    assert do_brk(e.mm, 0x100) == 0x601000         # below start: unchanged


def test_madvise_dontneed_zeroes_private_anon():
    e = Env()
    a = do_mmap(e.mm, 0, 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    e.fault(a, write=True)
    e.phys.write(e.mm.pgtables.translate(a), b'data')
    assert do_madvise(e.mm, a, 4096, MADV_DONTNEED) == 0
    assert e.pte(a) == 0
    e.fault(a)
    assert e.read_phys(a, 4) == bytes(4)
    assert do_madvise(e.mm, a, 8192, MADV_DONTNEED) == -errno.ENOMEM
    assert do_madvise(e.mm, a + 1, 4096, MADV_DONTNEED) == -errno.EINVAL
    assert do_madvise(e.mm, a, 4096, 12345) == -errno.EINVAL


def test_file_read_fault_is_major_then_cached():
    e = Env(fault_around=4096)
    data = bytes(range(256)) * 16 * 40        # 40 pages
    f = e.file(data)
    a = do_mmap(e.mm, 0, len(data), PROT_R, MAP_PRIVATE, f, 0)
    ret, vmf = e.fault(a + 5 * 4096)
    assert ret & VM_FAULT_MAJOR and vmf.handler == 'do_read_fault'
    assert e.read_phys(a + 5 * 4096, 256) == data[5 * 4096:5 * 4096 + 256]
    assert e.disk.stats.reads == 1 and e.clock.waited > 0
    # read-around brought the neighbours in: the next fault is minor
    ret, vmf = e.fault(a + 6 * 4096)
    assert not ret & VM_FAULT_MAJOR
    assert e.disk.stats.reads == 1


def test_fault_around_maps_cached_neighbours_without_io():
    e = Env(fault_around=65536)
    f = e.file(b'z' * (20 * 4096))
    a = do_mmap(e.mm, 0, 20 * 4096, PROT_R, MAP_PRIVATE, f, 0)
    e.fault(a)                                  # major: reads the window in
    reads = e.disk.stats.reads
    ret, vmf = e.fault(a + 4096)
    assert vmf.handler == 'do_read_fault(fault-around)'
    # the 16-page window from the VMA start: page 0 is mapped, page 1 is the fault, page 12 carries the
    # read-ahead marker (left for the async read-ahead): 13 more pages mapped
    assert vmf.around == 13
    assert e.pte(a + 12 * 4096) == 0
    assert e.disk.stats.reads == reads
    assert all(e.pte(a + i * 4096) & _PAGE_PRESENT for i in range(16) if i != 12)


def test_private_file_write_copies_shared_write_dirties():
    e = Env()
    f = e.file(b'A' * 8192, fs_cls=TmpFs, flags=O_RDWR)
    p = do_mmap(e.mm, 0, 8192, PROT_RW, MAP_PRIVATE, f, 0)
    s = do_mmap(e.mm, 0, 8192, PROT_RW, MAP_SHARED, f, 0)
    ret, vmf = e.fault(p, write=True)
    assert vmf.handler == 'do_cow_fault'
    e.phys.write(e.mm.pgtables.translate(p), b'B')
    ret, vmf = e.fault(s, write=True)
    assert vmf.handler == 'do_shared_fault'
    page = e.frames.pages[pte_pfn(e.pte(s))]
    assert page.flags & PG_dirty
    assert e.read_phys(s, 1) == b'A'            # the private copy did not touch the file page
    e.phys.write(e.mm.pgtables.translate(s), b'C')
    e.pc.filemap_write_and_wait(f.mapping)
    assert f.inode.read_page(0)[:1] == b'C'


def test_fault_beyond_eof_is_sigbus():
    e = Env()
    f = e.file(b'q' * 100)
    a = do_mmap(e.mm, 0, 3 * 4096, PROT_R, MAP_PRIVATE, f, 0)
    ret, vmf = e.fault(a + 2 * 4096)
    assert ret & VM_FAULT_SIGBUS


def test_drop_caches_makes_the_cache_cold():
    e = Env(fault_around=4096)
    f = e.file(b'k' * (8 * 4096))
    a = do_mmap(e.mm, 0, 8 * 4096, PROT_R, MAP_PRIVATE, f, 0)
    e.fault(a)
    assert f.mapping.nrpages == 8
    assert e.pc.drop_caches() == 7              # the mapped page stays
    do_munmap(e.mm, a, 8 * 4096)
    assert e.pc.drop_caches() == 1 and f.mapping.nrpages == 0


def test_oom_returns_vm_fault_oom():
    from faultlab.kernel.mm.mm_types import VM_FAULT_OOM
    e = Env(ram=1 << 20, swap_pages=1)           # no swap space: nothing to reclaim anonymous pages to
    a = do_mmap(e.mm, 0, 1 << 20, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    results = [e.fault(a + i * 4096, write=True)[0] for i in range(256)]
    assert VM_FAULT_OOM in results


def test_reclaim_swaps_out_cold_anonymous_pages_and_swaps_them_back_in():
    e = Env(ram=4 << 20)
    n = 256
    a = do_mmap(e.mm, 0, n * 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    for i in range(n):
        e.fault(a + i * 4096, write=True)
        e.phys.write(e.mm.pgtables.translate(a + i * 4096), bytes([i & 0xFF]) * 8)
    # the hardware would have set Accessed; nothing touched them since the faults cleared nothing:
    # age everything once, then reclaim
    freed = e.reclaim.try_to_free_pages(64)
    assert freed >= 64
    e.clock.wait_until(e.clock.next_event_time(), 'io')      # let the swap writes complete
    swapped = [i for i in range(n) if e.pte(a + i * 4096) and not e.pte(a + i * 4096) & _PAGE_PRESENT]
    assert len(swapped) >= 64 and e.stats['pswpout'] >= 64
    i = swapped[0]
    ret, vmf = e.fault(a + i * 4096)
    assert vmf.handler == 'do_swap_page' and ret & VM_FAULT_MAJOR
    assert e.read_phys(a + i * 4096, 8) == bytes([i & 0xFF]) * 8
    assert e.stats['pswpin'] >= 1
    # every swapped page comes back with its contents
    for j in swapped[1:]:
        e.fault(a + j * 4096)
        assert e.read_phys(a + j * 4096, 8) == bytes([j & 0xFF]) * 8
    assert e.area.inuse == 0


def test_referenced_pages_get_a_second_chance():
    e = Env(ram=4 << 20)
    a = do_mmap(e.mm, 0, 64 * 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    for i in range(64):
        e.fault(a + i * 4096, write=True)        # PTEs are installed with the Accessed bit set
    e.reclaim.shrink_active_list(64)             # clears Accessed, moves to inactive
    hot = a + 5 * 4096
    slot = e.mm.pgtables.pte_slot(hot)
    e.phys.write64(slot, e.phys.read64(slot) | 0x20)       # the CPU touched this one again
    e.reclaim.try_to_free_pages(20)
    assert e.pte(hot) & _PAGE_PRESENT
    assert sum(1 for i in range(64) if not e.pte(a + i * 4096) & _PAGE_PRESENT) >= 20
    assert e.stats['pgactivate'] >= 1


def test_munmap_of_swapped_range_frees_the_slots():
    e = Env(ram=4 << 20)
    a = do_mmap(e.mm, 0, 32 * 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    for i in range(32):
        e.fault(a + i * 4096, write=True)
    e.reclaim.shrink_active_list(32)
    e.reclaim.try_to_free_pages(32)
    e.clock.wait_until(e.clock.next_event_time(), 'io')
    assert e.area.inuse > 0
    do_munmap(e.mm, a, 32 * 4096)
    assert e.area.inuse == 0


def test_madv_populate_rules():
    from faultlab.kernel.mm.madvise import MADV_POPULATE_READ as PR, MADV_POPULATE_WRITE as PW, MADV_HWPOISON
    e = Env()
    anon = MAP_PRIVATE | MAP_ANONYMOUS
    a = do_mmap(e.mm, 0, 4 * 4096, PROT_RW, anon, None, 0)
    # READ: the shared zero page, read-only; WRITE then breaks COW: private writable pages
    assert do_madvise(e.mm, a, 4 * 4096, PR) == 0
    assert all(pte_pfn(e.pte(a + i * 4096)) == e.svc.zero_page.pfn for i in range(4))
    assert do_madvise(e.mm, a, 4 * 4096, PW) == 0
    assert all(e.pte(a + i * 4096) & _PAGE_RW and pte_pfn(e.pte(a + i * 4096)) != e.svc.zero_page.pfn
               for i in range(4))
    # errors
    assert do_madvise(e.mm, a + 1, 4096, PR) == -errno.EINVAL
    assert do_madvise(e.mm, a, 4096, 99) == -errno.EINVAL
    none = do_mmap(e.mm, 0, 4096, 0, anon, None, 0)
    assert do_madvise(e.mm, none, 4096, PR) == -errno.EINVAL
    ro = do_mmap(e.mm, 0, 4096, PROT_R, anon, None, 0)
    assert do_madvise(e.mm, ro, 4096, PW) == -errno.EINVAL
    # a hole: ENOMEM, and the pages before it stay populated
    b = do_mmap(e.mm, 0x500000, 4 * 4096, PROT_RW, anon | MAP_FIXED, None, 0)
    do_munmap(e.mm, b + 2 * 4096, 4096)
    assert do_madvise(e.mm, b, 4 * 4096, PW) == -errno.ENOMEM
    assert e.pte(b) & _PAGE_RW and e.pte(b + 4096) & _PAGE_RW and e.pte(b + 3 * 4096) == 0
    # beyond the end of a file: EFAULT (SIGBUS)
    f = e.file(b'x' * 100)
    m = do_mmap(e.mm, 0, 2 * 4096, PROT_R, MAP_PRIVATE, f, 0)
    assert do_madvise(e.mm, m, 2 * 4096, PR) == -errno.EFAULT
    # a poisoned page: EHWPOISON, and the data of the other pages is intact
    e.phys.write(e.mm.pgtables.translate(a), b'keep')
    assert do_madvise(e.mm, a + 4096, 4096, MADV_HWPOISON) == 0
    assert do_madvise(e.mm, a, 4 * 4096, PR) == -133            # EHWPOISON
    assert e.read_phys(a, 4) == b'keep'
    # huge lengths overflow: ENOMEM/EINVAL as Linux
    assert do_madvise(e.mm, a, (1 << 64) - 4096, PR) in (-errno.EINVAL, -errno.ENOMEM)


def test_nowait_fault_under_pressure_fails_fast_without_reclaim():
    from faultlab.kernel.mm.mm_types import FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_RETRY_NOWAIT, VM_FAULT_RETRY
    e = Env(ram=2 << 20)
    n = e.frames.nr_free - e.reclaim.wmark_min + 1
    a = do_mmap(e.mm, 0, (n + 8) * 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    held = [e.frames.alloc_page() for _ in range(n)]           # memory pressure: below min watermark
    assert e.frames.nr_free < e.reclaim.wmark_min and all(held)
    vma = e.mm.vmas.vma_lookup(a)
    ret, vmf = handle_mm_fault(e.mm, vma, a, FAULT_FLAG_WRITE | FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_RETRY_NOWAIT)
    assert ret & VM_FAULT_RETRY and e.pte(a) == 0
    assert e.stats['pgscan'] == 0                                 # no reclaim was attempted
    ret, vmf = e.fault(a, write=True)                             # a normal fault may dip into the reserve
    assert ret == 0 and e.pte(a) & _PAGE_PRESENT


def test_fault_around_on_a_cached_64mib_file_takes_one_sixteenth_of_the_faults():
    def faults(window):
        e = Env(ram=160 << 20, fault_around=window)
        n = 16384                                   # 64 MiB
        f = e.file(bytes(4096) * 0)                 # an empty file, then size it sparse
        f.inode.set_size(n * 4096)
        for i in range(n):                          # warm the page cache (holes: no disk I/O)
            e.pc.read_cache_page(f.mapping, i)
        reads = e.disk.stats.reads
        a = do_mmap(e.mm, 0x40000000, n * 4096, PROT_R, MAP_PRIVATE | MAP_FIXED, f, 0)
        count = 0
        for i in range(n):
            if not e.pte(a + i * 4096) & _PAGE_PRESENT:
                e.fault(a + i * 4096)
                count += 1
        assert e.disk.stats.reads == reads          # fault-around never starts I/O
        return count
    assert faults(4096) == 16384
    assert faults(65536) == 16384 // 16


def test_do_wp_page_reuses_a_page_only_when_it_is_exclusive():
    """do_wp_page after fork: a write to a copy-on-write page copies it while anything else maps or holds
    it (mapcount or refcount above one), and reuses it in place once the writer is its only user."""
    from faultlab.kernel.mm.fork import dup_mm
    e = Env()
    a = do_mmap(e.mm, 0, 3 * 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    for i in range(3):
        e.fault(a + i * 4096, write=True)
        e.phys.write(e.mm.pgtables.translate(a + i * 4096), b'page%d' % i)
    pfns = [pte_pfn(e.pte(a + i * 4096)) for i in range(3)]
    pages = [e.frames.pages[p] for p in pfns]
    child = dup_mm(None, e.mm)
    cvma = child.vmas.vma_lookup(a)
    for i in range(3):
        assert not e.pte(a + i * 4096) & _PAGE_RW and not child.pgtables.get_pte(a + i * 4096) & _PAGE_RW
        assert (pages[i].mapcount, pages[i].refcount) == (2, 2)
    # page 0: mapped by both: the parent's write copies it; the child, now alone on it, reuses it
    _, vmf = e.fault(a, write=True)
    assert vmf.handler == 'do_wp_page(copy)' and pte_pfn(e.pte(a)) != pfns[0]
    assert e.read_phys(a, 5) == b'page0' and (pages[0].mapcount, pages[0].refcount) == (1, 1)
    _, vmf = handle_mm_fault(child, cvma, a, FAULT_FLAG_WRITE)
    assert vmf.handler == 'do_wp_page(reuse)' and pte_pfn(child.pgtables.get_pte(a)) == pfns[0]
    assert child.pgtables.get_pte(a) & _PAGE_RW
    # page 1: the child unmapped it: the parent's write reuses it without a copy
    assert do_munmap(child, a + 4096, 4096) == 0
    copied = e.stats['pages_copied']
    _, vmf = e.fault(a + 4096, write=True)
    assert vmf.handler == 'do_wp_page(reuse)' and pte_pfn(e.pte(a + 4096)) == pfns[1]
    assert e.stats['pages_copied'] == copied
    # page 2: mapped once but held by someone else too (a pin, the swap cache): copy, never reuse
    assert do_munmap(child, a + 8192, 4096) == 0
    e.frames.get_page(pages[2])
    assert (pages[2].mapcount, pages[2].refcount) == (1, 2)
    _, vmf = e.fault(a + 8192, write=True)
    assert vmf.handler == 'do_wp_page(copy)' and pte_pfn(e.pte(a + 8192)) != pfns[2]
    assert e.read_phys(a + 8192, 5) == b'page2' and (pages[2].mapcount, pages[2].refcount) == (0, 1)
    e.frames.put_page(pages[2])
