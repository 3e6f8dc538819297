"""Kernel same-page merging (mm/ksm.c): ksmmerge under faultlab against the same program run natively
(this host has KSM; the program saves and restores the knobs), and the kernel side on its own: ksmd's
scans merge identical pages into one write-protected KSM page, a write always copies it (even when
mapped once), KSM pages are not reclaimed, kpageflags shows KPF_KSM, and the sysfs knobs keep Linux's
formats and errors."""
import errno
import os
import subprocess

import pytest

from conftest import run_guest
from test_mm_unit import Env, PROT_RW
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.kpageflags import KPF_KSM, stable_page_flags
from faultlab.kernel.mm.ksm import KsmState, ksm_enable_merge_any
from faultlab.kernel.mm.ksm_scan import Ksmd, ksm_do_scan
from faultlab.kernel.mm.ksm_sysfs import KNOBS, max_page_sharing_store, proc_pid_ksm_stat, run_store
from faultlab.kernel.mm.ksm_types import PG_ksm
from faultlab.kernel.mm.mdwe import mmf_init_flags
from faultlab.kernel.mm.mm_types import MmStruct
from faultlab.kernel.mm.madvise import MADV_MERGEABLE, MADV_PAGEOUT, MADV_UNMERGEABLE, do_madvise
from faultlab.kernel.mm.mmap import MAP_ANONYMOUS, MAP_PRIVATE, do_mmap, do_munmap
from faultlab.kernel.mm.page_alloc import PG_lru
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_RW, pte_pfn

KSM_RUN = '/sys/kernel/mm/ksm/run'


def _native_ksm():
    return os.geteuid() == 0 and os.access(KSM_RUN, os.W_OK)


def test_ksmmerge_matches_native(userland):
    """Merging, COW after a write, fork, MADV_UNMERGEABLE, run=2, PR_SET_MEMORY_MERGE, use_zero_pages and
    the errnos of bad input print the same under faultlab as natively; merges and ksmd's cycles show
    in the counters."""
    prog = os.path.join(userland, 'ksmmerge')
    r = run_guest(prog, ram=64 << 20)
    assert r.exit_code == 0, r.stderr
    # the guest is alone on its machine: the global counters are its own
    assert b'global merged: shared=2 sharing=10\n' in r.stdout
    assert b'global after write+scan: shared=2 sharing=8\n' in r.stdout
    assert b'global zero: ksm_zero_pages=16 shared=0\n' in r.stdout
    stats = r.result.stats
    assert stats['ksm_pages_merged'] >= 10 and stats['ksmd_cycles'] > 0
    if not _native_ksm():
        pytest.skip('no writable %s natively' % KSM_RUN)
    native = subprocess.run([prog], capture_output=True, timeout=120)

    def own(out):
        """The lines about this process (other processes of the host change the global counters)."""
        return [line for line in out.splitlines() if not line.startswith(b'global')]
    assert own(r.stdout) == own(native.stdout)


class Scanner:
    """An Env with KSM: one mm, ksmd driven by hand."""

    def __init__(self, pages, contents):
        self.e = Env(ram=16 << 20)
        self.ksm = KsmState(self.e.svc, lambda: [self.e.mm])
        self.e.svc.ksm = self.ksm
        self.ksmd = Ksmd(self.ksm, lambda when, cb: None, lambda: 0, self.e.costs.freq_hz, lambda: True)
        self.ksm.run = 1
        self.base = do_mmap(self.e.mm, 0, pages * 4096, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
        for i, c in enumerate(contents):
            self.e.fault(self.va(i), write=True)
            self.e.phys.write(self.e.mm.pgtables.translate(self.va(i)), bytes([c]) * 4096)

    def va(self, i):
        return self.base + i * 4096

    def pfn(self, i):
        return pte_pfn(self.e.pte(self.va(i)))

    def full_scans(self, n):
        target = self.ksm.seqnr + n
        while self.ksm.seqnr < target:
            ksm_do_scan(self.ksmd, 100)


def test_identical_pages_merge_write_protected_and_a_write_copies_even_a_page_mapped_once():
    s = Scanner(4, b'AABC')
    assert do_madvise(s.e.mm, s.base, 4 * 4096, MADV_MERGEABLE) == 0
    s.full_scans(1)
    assert s.ksm.pages_shared == 0            # one scan only takes the checksums (calc_checksum)
    s.full_scans(1)
    assert (s.ksm.pages_shared, s.ksm.pages_sharing, s.ksm.pages_unshared) == (1, 1, 2)
    assert s.pfn(0) == s.pfn(1) != s.pfn(2)
    kpage = s.e.frames.pages[s.pfn(0)]
    assert kpage.flags & PG_ksm and kpage.mapcount == 2 and not kpage.flags & PG_lru
    assert not s.e.pte(s.va(0)) & _PAGE_RW and not s.e.pte(s.va(1)) & _PAGE_RW
    assert s.e.mm.rss_anon == 4
    assert stable_page_flags(s.e.frames, kpage.pfn, s.e.svc.zero_page.pfn) >> KPF_KSM & 1
    do_munmap(s.e.mm, s.va(1), 4096)          # the KSM page is mapped once now: still copied on write
    assert kpage.mapcount == 1 and kpage.refcount == 1
    copied = s.e.stats['pages_copied']
    s.e.fault(s.va(0), write=True)
    assert s.pfn(0) != kpage.pfn and s.e.stats['pages_copied'] == copied + 1
    assert s.e.read_phys(s.va(0), 4096) == b'A' * 4096
    s.full_scans(1)                           # the next scan drops what no longer maps the KSM page
    assert (s.ksm.pages_shared, s.ksm.pages_sharing) == (0, 0)


def test_ksm_pages_stay_through_pageout_and_unmerge_gives_private_copies():
    s = Scanner(3, b'ZZZ')
    do_madvise(s.e.mm, s.base, 3 * 4096, MADV_MERGEABLE)
    s.full_scans(2)
    assert s.pfn(0) == s.pfn(1) == s.pfn(2) and s.ksm.pages_sharing == 2
    assert do_madvise(s.e.mm, s.base, 3 * 4096, MADV_PAGEOUT) == 0
    assert all(s.e.pte(s.va(i)) & _PAGE_PRESENT for i in range(3))
    assert do_madvise(s.e.mm, s.base, 3 * 4096, MADV_UNMERGEABLE) == 0
    assert len({s.pfn(i) for i in range(3)}) == 3
    assert all(s.e.read_phys(s.va(i), 4096) == b'Z' * 4096 for i in range(3))
    assert not s.e.mm.vmas.vma_lookup(s.base).vm_flags & 0x80000000


def test_max_page_sharing_makes_a_chain_of_dups():
    s = Scanner(5, b'QQQQQ')
    max_page_sharing_store(s.ksm, b'2\n')
    ksm_enable_merge_any(s.e.mm)
    s.full_scans(3)
    pfns = [s.pfn(i) for i in range(5)]
    assert max(pfns.count(p) for p in pfns) == 2
    assert s.ksm.stable_node_chains() == 1 and s.ksm.stable_node_dups() == s.ksm.pages_shared >= 2
    with pytest.raises(FsError) as exc:
        max_page_sharing_store(s.ksm, b'256')         # KSM pages exist: the tree would change under them
    assert exc.value.errno == errno.EBUSY
    run_store(s.ksm, b'2')
    assert s.ksm.pages_shared == 0 and s.ksm.seqnr == 0 and len(set(s.pfn(i) for i in range(5))) == 5
    # only exiting mms leave ksm_mm_head: this one stays registered, MMF_VM_MERGE_ANY kept, and merges again
    assert s.e.mm.mmf_vm_merge_any and s.e.mm in s.ksm.slots and s.ksm.rmap_items == 0
    run_store(s.ksm, b'1')
    s.full_scans(2)
    assert s.ksm.pages_shared >= 2


def test_sysfs_knob_errors():
    s = Scanner(1, b'x')
    for name, data in (('run', b'3'), ('run', b'-1'), ('sleep_millisecs', b'x'), ('pages_to_scan', b''),
                       ('max_page_sharing', b'1'), ('use_zero_pages', b'maybe'), ('merge_across_nodes', b'2'),
                       ('advisor_target_scan_time', b'0')):
        with pytest.raises(FsError) as exc:
            KNOBS[name][1](s.ksm, data)
        assert exc.value.errno == errno.EINVAL, name
    KNOBS['use_zero_pages'][1](s.ksm, b'on')
    KNOBS['pages_to_scan'][1](s.ksm, b'+42\n')
    assert (s.ksm.use_zero_pages, s.ksm.pages_to_scan) == (1, 42)


def test_merge_any_is_inherited_by_fork_and_execve_and_ksm_stat_has_four_lines():
    """mmf_init_flags (fork and execve) keeps MMF_VM_MERGE_ANY; /proc/PID/ksm_stat of Linux 6.12."""
    s = Scanner(2, b'MM')
    ksm_enable_merge_any(s.e.mm)
    s.full_scans(2)
    new = MmStruct(s.e.svc)
    mmf_init_flags(new, s.e.mm)
    assert new.mmf_vm_merge_any and new.mmf_vm_mergeable
    assert proc_pid_ksm_stat(s.ksm, s.e.mm) == ('ksm_rmap_items 2\nksm_zero_pages 0\nksm_merging_pages 2\n'
                                                'ksm_process_profit %d\n' % (2 * 4096 - 2 * 64))
    assert proc_pid_ksm_stat(s.ksm, new).startswith('ksm_rmap_items 0\n')
