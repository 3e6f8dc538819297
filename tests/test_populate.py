"""MADV_POPULATE_(READ|WRITE) seen through /proc/self/pagemap, clear_refs and smaps: the populate_test
selftest in the guest (and natively), the pagemap bits, clear_refs, smaps counters and format, and the
kernel rules switched off one at a time to show the selftest catches them."""
import errno
import os
import re
import struct

import pytest

from conftest import run_guest, run_native
from test_mm_unit import Env, PROT_R, PROT_RW
from faultlab.kernel.fs import FsError, TmpFs
from faultlab.kernel.file import O_RDONLY, O_RDWR
from faultlab.kernel.mm.madvise import do_madvise, MADV_PAGEOUT, MADV_HWPOISON
from faultlab.kernel.mm.mm_types import TASK_SIZE
from faultlab.kernel.mm.mmap import do_mmap, do_munmap, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED
from faultlab.kernel.mm.page_alloc import PG_referenced
from faultlab.kernel.mm.pagemap import (PM_PRESENT, PM_SWAP, PM_FILE, PM_MMAP_EXCLUSIVE, PM_SOFT_DIRTY, PM_PFRAME_MASK,
                               pagemap_read, clear_refs_write, smap_gather_stats, _PAGE_SWP_SOFT_DIRTY)
from faultlab.kernel.mm.pgtable import (_PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_RW, _PAGE_SOFT_DIRTY, pte_pfn,
                               pte_to_swp_entry)
from faultlab.kernel.mm.vma import VM_SOFTDIRTY, VM_PFNMAP, VM_LOCKED

ANON = MAP_PRIVATE | MAP_ANONYMOUS
NTESTS = 34


def _tap(out):
    """{number: (ok, description)} from TAP lines."""
    res = {}
    for line in out.splitlines():
        m = re.match(r'(not ok|ok) (\d+) (.*)', line)
        if m:
            res[int(m.group(2))] = (m.group(1) == 'ok', m.group(3))
    return res


def _pm(e, va, n=1):
    """n pagemap entries of e's address space from va."""
    return list(struct.unpack('<%dQ' % n, pagemap_read(e.mm, (va >> 12) * 8, n * 8)))


# ---- the selftest ------------------------------------------------------------------------------------
def test_populate_selftest_passes_under_faultlab(userland):
    r = run_guest(os.path.join(userland, 'populate_test'), ['--hwpoison'])
    out = r.stdout.decode()
    res = _tap(out)
    assert r.exit_code == 0, out
    assert '1..%d' % NTESTS in out and len(res) == NTESTS and all(ok for ok, _ in res.values()), out
    assert 'SKIP' not in out and 'not ok' not in out
    assert r.stats['pswpout'] >= 8                     # the swap case really swapped


def test_populate_selftest_natively(userland):
    """On the host's Linux the same program passes; what the host cannot show is SKIPped, never faked."""
    if not os.path.exists('/proc/self/pagemap'):
        pytest.skip('no /proc/self/pagemap on this host')
    rc, out, err = run_native(os.path.join(userland, 'populate_test'))
    out = out.decode()
    assert rc == 0, out
    assert 'not ok' not in out
    res = _tap(out)
    assert len(res) == NTESTS or '1..0 # SKIP' in out


def _flipped(userland, monkeypatch, target, name, replacement):
    monkeypatch.setattr(target, name, replacement)
    r = run_guest(os.path.join(userland, 'populate_test'))
    return r, _tap(r.stdout.decode())


def test_without_soft_dirty_in_do_wp_page_the_selftest_fails(userland, monkeypatch):
    """The write-protect fault does not re-mark the PTE soft-dirty: the soft-dirty cases report not ok."""
    import faultlab.kernel.mm.memory as memory
    orig = memory.do_wp_page

    def do_wp_page_forgetting_soft_dirty(mm, vmf):
        ret = orig(mm, vmf)
        phys = mm.svc.frames.phys
        phys.write64(vmf.slot, phys.read64(vmf.slot) & ~_PAGE_SOFT_DIRTY)
        return ret
    r, res = _flipped(userland, monkeypatch, memory, 'do_wp_page', do_wp_page_forgetting_soft_dirty)
    assert r.exit_code == 1
    for n in (22, 23, 24):
        assert not res[n][0] and res[n][1].startswith('soft-dirty'), res[n]
    assert res[19][0] and res[20][0] and res[21][0]        # the others still pass
    assert all(res[n][0] for n in range(1, 19))


def test_without_write_protect_in_clear_refs_the_selftest_fails(userland, monkeypatch):
    """clear_refs 4 clears soft-dirty but leaves PTEs writable: later writes go unnoticed."""
    import faultlab.kernel.mm.pagemap as pagemap

    def clear_soft_dirty_only(mm, slot, pte):
        mm.svc.frames.phys.write64(slot, pte & ~_PAGE_SOFT_DIRTY)
    r, res = _flipped(userland, monkeypatch, pagemap, 'clear_soft_dirty', clear_soft_dirty_only)
    assert r.exit_code == 1
    assert not res[23][0] and not res[24][0]
    assert res[22][0]                                       # a fresh write fault still marks the page


def test_soft_dirty_zero_page_makes_populate_read_fail(userland, monkeypatch):
    """A read fault that maps the zero page soft-dirty (as if written) fails 'POPULATE_READ does not set it'."""
    import faultlab.kernel.mm.memory as memory
    orig = memory._map_page
    monkeypatch.setattr(memory, '_map_page', lambda mm, vmf, page, prot, soft_dirty=True:
                        orig(mm, vmf, page, prot, True))
    r = run_guest(os.path.join(userland, 'populate_test'))
    res = _tap(r.stdout.decode())
    assert r.exit_code == 1 and not res[21][0] and res[22][0]


# ---- pagemap bits --------------------------------------------------------------------------------------
def test_pagemap_anon_zero_page_and_holes():
    e = Env()
    a = do_mmap(e.mm, 0x500000, 4 * 4096, PROT_RW, ANON | MAP_FIXED, None, 0)
    e.fault(a, write=True)
    e.fault(a + 4096)                          # the zero page
    w, z, none, _, out = _pm(e, a, 5)
    pfn = pte_pfn(e.pte(a))
    assert w == PM_PRESENT | PM_SOFT_DIRTY | PM_MMAP_EXCLUSIVE | pfn
    assert z == PM_PRESENT | PM_SOFT_DIRTY | e.svc.zero_page.pfn       # soft-dirty from the new VMA only
    assert not e.pte(a + 4096) & _PAGE_SOFT_DIRTY
    assert none == PM_SOFT_DIRTY and out == 0                         # VM_SOFTDIRTY VMA / no VMA
    clear_refs_write(e.mm, b'4\n')
    w, z, none, _, out = _pm(e, a, 5)
    assert w == PM_PRESENT | PM_MMAP_EXCLUSIVE | pfn
    assert z == PM_PRESENT | e.svc.zero_page.pfn and none == 0


def test_pagemap_read_alignment_bounds_and_big_holes():
    e = Env()
    a = do_mmap(e.mm, 0x40205000, 4096, PROT_RW, ANON | MAP_FIXED, None, 0)
    e.fault(a, write=True)
    for pos, count in ((4, 8), (0, 12), (3, 5)):
        with pytest.raises(FsError) as ei:
            pagemap_read(e.mm, pos, count)
        assert ei.value.errno == errno.EINVAL
    assert pagemap_read(e.mm, 0, 0) == b''
    assert pagemap_read(e.mm, (TASK_SIZE >> 12) * 8, 64) == b''             # past the user address space
    assert len(pagemap_read(e.mm, (TASK_SIZE >> 12) * 8 - 16, 64)) == 16     # up to its end
    # a whole 1 GiB around the mapping in one read: zeros except the mapped page
    base = (a >> 30) << 30
    data = pagemap_read(e.mm, (base >> 12) * 8, (1 << 18) * 8)
    vals = struct.unpack('<%dQ' % (1 << 18), data)
    nz = [i for i, v in enumerate(vals) if v]
    assert nz == [(a - base) >> 12] and vals[nz[0]] & PM_PRESENT


def test_pagemap_swapped_entry_type_offset_and_soft_dirty():
    e = Env()
    a = do_mmap(e.mm, 0, 4 * 4096, PROT_RW, ANON, None, 0)
    for i in range(4):
        e.fault(a + i * 4096, write=True)
    assert do_madvise(e.mm, a, 2 * 4096, MADV_PAGEOUT) == 0
    e.clock.wait_until(e.clock.next_event_time(), 'io')
    ents = _pm(e, a, 4)
    for i in range(2):
        pte = e.pte(a + i * 4096)
        assert pte and not pte & _PAGE_PRESENT
        t, off = pte_to_swp_entry(pte)
        assert ents[i] & (PM_SWAP | PM_PRESENT) == PM_SWAP
        assert ents[i] & PM_PFRAME_MASK == t | off << 5 and off > 0 and t == 0
        assert not ents[i] & (PM_FILE | PM_MMAP_EXCLUSIVE)
    assert ents[2] & PM_PRESENT and not ents[2] & PM_SWAP
    # soft-dirty of a swap entry: the VMA's flag, or the swap soft-dirty bit; clear_refs clears both
    assert ents[0] & PM_SOFT_DIRTY
    clear_refs_write(e.mm, b'4')
    assert not _pm(e, a)[0] & PM_SOFT_DIRTY
    slot = e.mm.pgtables.pte_slot(a)
    entry = pte_to_swp_entry(e.pte(a))
    e.phys.write64(slot, e.phys.read64(slot) | _PAGE_SWP_SOFT_DIRTY)
    assert pte_to_swp_entry(e.pte(a)) == entry           # the bit is outside the swap entry's fields
    assert _pm(e, a)[0] & PM_SOFT_DIRTY
    clear_refs_write(e.mm, b'4')
    assert not e.pte(a) & _PAGE_SWP_SOFT_DIRTY and not _pm(e, a)[0] & PM_SOFT_DIRTY
    # swapping back in: present again
    e.fault(a)
    assert _pm(e, a)[0] & (PM_PRESENT | PM_SWAP) == PM_PRESENT


def test_pagemap_file_bit_and_exclusive():
    e = Env()
    f = e.file(b'F' * 8192, fs_cls=TmpFs, flags=O_RDWR)
    p = do_mmap(e.mm, 0, 8192, PROT_RW, MAP_PRIVATE, f, 0)
    e.fault(p)
    ent = _pm(e, p)[0]
    assert ent & (PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE) == PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE
    s = do_mmap(e.mm, 0, 8192, PROT_RW, MAP_SHARED, f, 0)
    e.fault(s)
    ps, pp = _pm(e, s)[0], _pm(e, p)[0]
    assert ps & PM_PFRAME_MASK == pp & PM_PFRAME_MASK            # the same cache page, mapped twice
    assert ps & PM_FILE and not ps & PM_MMAP_EXCLUSIVE and not pp & PM_MMAP_EXCLUSIVE
    e.fault(p, write=True)                                        # COW: an anonymous private copy
    pp = _pm(e, p)[0]
    assert pp & (PM_FILE | PM_MMAP_EXCLUSIVE) == PM_MMAP_EXCLUSIVE
    assert _pm(e, s)[0] & PM_MMAP_EXCLUSIVE                       # the cache page is mapped once now


def test_pagemap_hwpoison_and_pfnmap():
    e = Env()
    a = do_mmap(e.mm, 0, 2 * 4096, PROT_RW, ANON, None, 0)
    e.fault(a, write=True)
    pfn = pte_pfn(e.pte(a))
    assert do_madvise(e.mm, a, 4096, MADV_HWPOISON) == 0
    ent = _pm(e, a)[0]
    assert ent & (PM_SWAP | PM_PRESENT | PM_FILE) == PM_SWAP and ent & PM_PFRAME_MASK == 31 | pfn << 5
    # a PFN mapping ([vvar]) reads as a hole, like Linux's walk that skips VM_PFNMAP
    e.fault(a + 4096, write=True)
    e.mm.vmas.vma_lookup(a).vm_flags |= VM_PFNMAP
    assert _pm(e, a + 4096)[0] in (0, PM_SOFT_DIRTY)


# ---- clear_refs -------------------------------------------------------------------------------------
def test_clear_refs_soft_dirty_write_protects_and_the_write_fault_remarks():
    e = Env()
    a = do_mmap(e.mm, 0, 2 * 4096, PROT_RW, ANON, None, 0)
    f = e.file(b'S' * 4096, fs_cls=TmpFs, flags=O_RDWR)
    s = do_mmap(e.mm, 0, 4096, PROT_RW, MAP_SHARED, f, 0)
    e.fault(a, write=True)
    e.fault(s, write=True)
    flushes = e.flushes
    clear_refs_write(e.mm, b'4')
    assert e.flushes > flushes
    assert all(not v.vm_flags & VM_SOFTDIRTY for v in e.mm.vmas)
    for va in (a, s):
        assert not e.pte(va) & (_PAGE_RW | _PAGE_SOFT_DIRTY) and e.pte(va) & _PAGE_PRESENT
    pfn = pte_pfn(e.pte(a))
    ret, vmf = e.fault(a, write=True)
    assert vmf.handler == 'do_wp_page(reuse)' and pte_pfn(e.pte(a)) == pfn
    assert e.pte(a) & _PAGE_RW and e.pte(a) & _PAGE_SOFT_DIRTY
    ret, vmf = e.fault(s, write=True)
    assert vmf.handler == 'do_wp_page(shared)' and e.pte(s) & (_PAGE_RW | _PAGE_SOFT_DIRTY) == \
        _PAGE_RW | _PAGE_SOFT_DIRTY
    # POPULATE_READ after the clear maps the zero page, not soft-dirty; a new write fault is
    from faultlab.kernel.mm.madvise import MADV_POPULATE_READ, MADV_POPULATE_WRITE
    b = a + 4096
    assert do_madvise(e.mm, b, 4096, MADV_POPULATE_READ) == 0
    assert not _pm(e, b)[0] & PM_SOFT_DIRTY
    assert do_madvise(e.mm, b, 4096, MADV_POPULATE_WRITE) == 0
    assert _pm(e, b)[0] & PM_SOFT_DIRTY


def test_clear_refs_accessed_all_anon_file_and_hiwater():
    e = Env()
    a = do_mmap(e.mm, 0, 2 * 4096, PROT_RW, ANON, None, 0)
    f = e.file(b'R' * 4096)
    m = do_mmap(e.mm, 0, 4096, PROT_R, MAP_PRIVATE, f, 0)
    e.fault(a, write=True)
    e.fault(m)

    def young(va):
        return bool(e.pte(va) & _PAGE_ACCESSED)

    def touch(va):
        slot = e.mm.pgtables.pte_slot(va)
        e.phys.write64(slot, e.phys.read64(slot) | _PAGE_ACCESSED)
    touch(m)
    assert young(a) and young(m)
    anon_page = e.frames.pages[pte_pfn(e.pte(a))]
    anon_page.flags |= PG_referenced
    clear_refs_write(e.mm, b'3')                 # file-backed VMAs only
    assert young(a) and not young(m) and anon_page.flags & PG_referenced
    touch(m)
    clear_refs_write(e.mm, b'2')                 # anonymous VMAs only
    assert not young(a) and young(m) and not anon_page.flags & PG_referenced
    touch(a)
    clear_refs_write(e.mm, b'1')
    assert not young(a) and not young(m)
    assert e.pte(a) & _PAGE_RW                  # only 4 write-protects
    # 5: peak RSS back to the current RSS
    for i in range(1, 2):
        e.fault(a + i * 4096, write=True)
    do_munmap(e.mm, a, 2 * 4096)
    assert e.mm.hiwater_rss > e.mm.rss_anon + e.mm.rss_file
    clear_refs_write(e.mm, b' 5\n')
    assert e.mm.hiwater_rss == e.mm.rss_anon + e.mm.rss_file
    for bad, err in ((b'0', errno.EINVAL), (b'6', errno.EINVAL), (b'4x', errno.EINVAL), (b'', errno.EINVAL),
                     (b'0_4', errno.EINVAL), (b'99999999999', errno.ERANGE)):
        with pytest.raises(FsError) as ei:
            clear_refs_write(e.mm, bad)
        assert ei.value.errno == err, bad


# ---- smaps ----------------------------------------------------------------------------------------
class _Task:
    def __init__(self, mm):
        self.mm = mm


def _smaps_fields(text):
    return dict((m.group(1), int(m.group(2))) for m in re.finditer(r'^(\w+):\s+(\d+) kB$', text, re.M))


def test_smaps_counts_what_was_touched_and_swapped():
    from faultlab.kernel.procfs import show_smap
    e = Env()
    a = do_mmap(e.mm, 0, 16 * 4096, PROT_RW, ANON, None, 0)
    for i in range(6):
        e.fault(a + i * 4096, write=True)
    for i in range(6, 9):
        e.fault(a + i * 4096)                  # zero page: not in Rss (no struct page of its own)
    vma = e.mm.vmas.vma_lookup(a)
    mss = smap_gather_stats(e.mm, vma)
    assert mss.resident == mss.anonymous == mss.private_dirty == 6 * 4096
    assert mss.pss >> 12 == 6 * 4096 and mss.swap == 0
    assert do_madvise(e.mm, a, 2 * 4096, MADV_PAGEOUT) == 0
    e.clock.wait_until(e.clock.next_event_time(), 'io')
    text = show_smap(None, _Task(e.mm), vma)
    v = _smaps_fields(text)
    assert v['Size'] == 64 and v['Rss'] == 16 and v['Anonymous'] == 16 and v['Swap'] == 8 and v['SwapPss'] == 8
    assert v['Pss'] == 16 and v['Private_Dirty'] == 16 and v['Shared_Clean'] == v['Shared_Dirty'] == 0
    assert v['Locked'] == 0
    vma.vm_flags |= VM_LOCKED
    assert _smaps_fields(show_smap(None, _Task(e.mm), vma))['Locked'] == 16
    assert 'VmFlags: rd wr mr mw me lo ac sd \n' in show_smap(None, _Task(e.mm), vma)


def test_smaps_file_pages_shared_between_two_mappings():
    from faultlab.kernel.procfs import show_smap
    e = Env(fault_around=4096)
    f = e.file(b'Z' * (4 * 4096))
    p = do_mmap(e.mm, 0, 4 * 4096, PROT_R, MAP_PRIVATE, f, 0)
    q = do_mmap(e.mm, 0, 4 * 4096, PROT_R, MAP_PRIVATE, f, 0)
    for i in range(4):
        e.fault(p + i * 4096)
    for i in range(2):
        e.fault(q + i * 4096)
    v = _smaps_fields(show_smap(None, _Task(e.mm), e.mm.vmas.vma_lookup(p)))
    assert v['Rss'] == 16 and v['Anonymous'] == 0
    assert v['Shared_Clean'] == 8 and v['Private_Clean'] == 8 and v['Pss'] == 8 + 4     # 2 pages halved
    assert v['Private_Dirty'] == v['Shared_Dirty'] == 0


def test_smaps_format_is_linuxs():
    from faultlab.kernel.procfs import show_smap
    e = Env()
    a = do_mmap(e.mm, 0, 4096, PROT_RW, ANON, None, 0)
    e.fault(a, write=True)
    lines = show_smap(None, _Task(e.mm), e.mm.vmas.vma_lookup(a)).splitlines()
    assert re.match(r'^[0-9a-f]{8,}-[0-9a-f]{8,} rw-p 00000000 00:00 0$', lines[0])
    names = [l.split(':')[0] for l in lines[1:]]
    assert names == ['Size', 'KernelPageSize', 'MMUPageSize', 'Rss', 'Pss', 'Pss_Dirty', 'Shared_Clean',
                     'Shared_Dirty', 'Private_Clean', 'Private_Dirty', 'Referenced', 'Anonymous', 'KSM',
                     'LazyFree', 'AnonHugePages', 'ShmemPmdMapped', 'FilePmdMapped', 'Shared_Hugetlb',
                     'Private_Hugetlb', 'Swap', 'SwapPss', 'Locked', 'THPeligible', 'VmFlags']
    for l in lines[1:-2]:
        assert len(l) == 27 and l.endswith(' kB') and l[16:24].strip().isdigit(), l     # %-16s%8lu kB
    assert lines[1] == 'Size:                  4 kB' and lines[4] == 'Rss:                   4 kB'
    assert lines[-2] == 'THPeligible:           0'
    assert lines[-1] == 'VmFlags: rd wr mr mw me ac sd '


# ---- through the system-call layer, after a real guest run ----------------------------------------------
def test_proc_files_through_the_syscall_layer(userland):
    from faultlab.kernel.file import OpenFile
    from faultlab.kernel.syscalls.fs import _read_file, sys_lseek, SEEK_SET, SEEK_CUR, SEEK_END
    r = run_guest(os.path.join(userland, 'hello'))
    k = r.machine.kernel
    t = k.current
    mm = t.mm
    inode = k.vfs.lookup('/proc/self/pagemap')
    assert inode.mode & 0o777 == 0o400
    f = OpenFile(inode, O_RDONLY, '/proc/self/pagemap', k.pagecache)
    fd = t.files.install(f)
    stack = [v for v in mm.vmas if v.name == '[stack]'][0]
    top = stack.vm_end - 4096                          # argv/env live there: present
    pos = (top >> 12) * 8
    assert sys_lseek(k, t, fd, pos, SEEK_SET) == pos
    data = _read_file(k, t, f, 16, None)               # read() at the file position: lazy, no snapshot
    assert len(data) == 16 and f.pos == pos + 16
    ent, after = struct.unpack('<QQ', data)
    assert ent & PM_PRESENT and ent & PM_PFRAME_MASK == pte_pfn(mm.pgtables.get_pte(top))
    assert after == 0                                  # above the stack: no VMA
    assert sys_lseek(k, t, fd, (1 << 64) - 16, SEEK_CUR) == pos
    assert sys_lseek(k, t, fd, 0, SEEK_END) == -errno.EINVAL
    assert _read_file(k, t, f, 8, pos + 4) == -errno.EINVAL
    assert _read_file(k, t, f, 8, (TASK_SIZE >> 12) * 8) == b''
    # smaps and smaps_rollup agree with the address space
    smaps = k.vfs.lookup('/proc/self/smaps').read_content().decode()
    blocks = re.split(r'\n(?=[0-9a-f]+-[0-9a-f]+ )', smaps.strip('\n'))
    assert len(blocks) == len(list(mm.vmas))
    heap = [b for b in blocks if b.splitlines()[0].endswith('[heap]')]
    assert heap
    rollup = _smaps_fields(k.vfs.lookup('/proc/self/smaps_rollup').read_content().decode())
    per = [_smaps_fields(b) for b in blocks]
    assert rollup['Rss'] == sum(p['Rss'] for p in per) and rollup['Anonymous'] == mm.rss_anon * 4
    assert rollup['Rss'] >= (mm.rss_anon + mm.rss_file) * 4
    # clear_refs is write-only: reading it fails, writing it works
    cr = k.vfs.lookup('/proc/self/clear_refs')
    assert cr.mode & 0o777 == 0o200
    assert cr.write_content(b'4\n') == 2
    assert all(not v.vm_flags & VM_SOFTDIRTY for v in mm.vmas)


# ---- soft-dirty across swap, read faults and VMA merges ---------------------------------------------
def test_soft_dirty_survives_swap_out():
    e = Env()
    a = do_mmap(e.mm, 0, 4096, PROT_RW, ANON, None, 0)
    e.fault(a, write=True)
    clear_refs_write(e.mm, b'4')
    e.fault(a, write=True)                       # written after the clear: soft-dirty
    assert _pm(e, a)[0] & PM_SOFT_DIRTY
    assert do_madvise(e.mm, a, 4096, MADV_PAGEOUT) == 0
    assert _pm(e, a)[0] & PM_SWAP
    assert _pm(e, a)[0] & PM_SOFT_DIRTY


def test_file_read_fault_after_clear_refs_is_not_soft_dirty():
    e = Env(fault_around=4096)
    f = e.file(b'r' * 4096)
    m = do_mmap(e.mm, 0, 4096, PROT_R, MAP_PRIVATE, f, 0)
    clear_refs_write(e.mm, b'4')
    e.fault(m)
    assert not _pm(e, m)[0] & PM_SOFT_DIRTY


def test_new_mapping_merged_into_cleared_vma_is_soft_dirty():
    e = Env()
    a = do_mmap(e.mm, 0x500000, 4096, PROT_RW, ANON | MAP_FIXED, None, 0)
    clear_refs_write(e.mm, b'4')
    b = do_mmap(e.mm, a + 4096, 4096, PROT_RW, ANON | MAP_FIXED, None, 0)
    assert len(e.mm.vmas) == 1
    assert _pm(e, b)[0] & PM_SOFT_DIRTY
