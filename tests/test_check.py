"""--check: the invariant checker passes on healthy runs and catches each kind of planted corruption."""
import os

import pytest

from conftest import run_guest
from faultlab.core.cycles import CostTable
from faultlab.machine import Machine
from faultlab.kernel.debug.check import TrapChecker
from faultlab.kernel.kernel import KernelConfig
from faultlab.kernel.mm.page_alloc import PG_lru, PG_active
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, _PAGE_RW, pte_pfn


def _machine_after(userland, prog, args=(), check='full', max_insns=None):
    out = []
    m = Machine(ram=32 << 20, costs=CostTable(),
                config=KernelConfig(stdout=out.append, stderr=out.append, warn=out.append, swap_bytes=8 << 20,
                                    check=check))
    res = m.run(os.path.join(userland, prog), [prog] + list(args), ['PATH=/bin'], max_insns=max_insns)
    return m, res


def _anon_page(m):
    """(mm, va, slot, pte, page) of some writable anonymous page the guest mapped."""
    k = m.kernel
    mm = next(iter(k.tasks.values())).mm
    for vma in mm.vmas:
        if not vma.anon:
            continue
        for va, slot, pte in mm.pgtables.present_ptes(vma.vm_start, vma.vm_end):
            page = k.frames.pages[pte_pfn(pte)]
            if pte & _PAGE_PRESENT and pte & _PAGE_RW and page is not k.mmsvc.zero_page:
                return mm, va, slot, pte, page
    raise AssertionError('no anonymous page mapped')


def test_full_check_passes_on_a_real_program_and_checks_every_trap(userland):
    m, res = _machine_after(userland, 'mmtest')
    chk = m.kernel.vm_checker
    assert res.exit_code == 0, res.report
    assert chk.violation is None
    assert chk.skipped == 0 and chk.checks == chk.events > 50
    assert chk.final_check() is None


@pytest.mark.parametrize('corrupt, words', [
    ('refcount', 'refcount'),
    ('mapcount', 'mapcount'),
    ('lru_flag', 'LRU'),
    ('vma_overlap', 'overlap'),
    ('pte_outside', 'outside any VMA'),
    ('leak_frame', 'nothing holds it'),
    ('free_in_use', 'on the free list but has'),
    ('rss', 'RSS'),
    ('wrprotect_vma', 'writable PTE'),
    ('rmap', 'reverse map'),
])
def test_each_planted_corruption_is_reported(userland, corrupt, words):
    m, res = _machine_after(userland, 'hello', check=False)
    k = m.kernel
    chk = TrapChecker(k, 'full')
    assert chk.check(('end',)) is None
    mm, va, slot, pte, page = _anon_page(m)
    if corrupt == 'refcount':
        page.refcount += 1
    elif corrupt == 'mapcount':
        page.mapcount += 1
    elif corrupt == 'lru_flag':
        page.flags &= ~(PG_lru | PG_active)
    elif corrupt == 'vma_overlap':
        vmas = mm.vmas._vmas
        vmas[0].vm_end = vmas[1].vm_start + 4096
    elif corrupt == 'pte_outside':
        mm.vmas.remove(mm.vmas.vma_lookup(va))
    elif corrupt == 'leak_frame':
        k.frames.alloc_page()
    elif corrupt == 'free_in_use':
        k.frames._free.append(page.pfn)
    elif corrupt == 'rss':
        mm.rss_anon += 1
    elif corrupt == 'wrprotect_vma':
        mm.vmas.vma_lookup(va).vm_flags &= ~2
    elif corrupt == 'rmap':
        page.index += 1
    report = chk.check(('syscall', 11, (0x1000, 0x2000, 0, 0, 0, 0), 0x401000))
    assert report is not None and words in report, report
    assert 'syscall munmap(0x1000, 0x2000' in report


def test_a_kernel_bug_ends_the_run_with_a_report_naming_the_event(userland, monkeypatch):
    """Make munmap forget to zap the page tables: the run ends right after the first munmap (exit 70),
    whose PTEs are left behind with no VMA."""
    import faultlab.kernel.mm.mmap as mmap
    monkeypatch.setattr(mmap, 'zap_pte_range', lambda mm, start, end: 0)
    m, res = _machine_after(userland, 'mmtest')
    assert res.exit_code == 70
    assert 'kernel invariant violated after syscall munmap(' in res.report, res.report
    assert 'outside any VMA' in res.report


def test_budgeted_check_reports_the_last_consistent_event(userland, monkeypatch):
    """In budget mode, unchecked events are named as a range ending at the first inconsistent check."""
    import faultlab.kernel.mm.memory as memory
    real = memory.page_add_new_anon_rmap
    calls = []

    def leaky(mm, page, address):
        real(mm, page, address)
        calls.append(address)
        if len(calls) == 40:
            page.refcount += 1            # one leaked reference on the 40th anonymous page
    monkeypatch.setattr(memory, 'page_add_new_anon_rmap', leaky)
    m, res = _machine_after(userland, 'mmtest', check=True)
    assert res.exit_code == 70 and 'refcount' in res.report, res.report


def test_suite_runs_are_checked_when_asked(userland):
    """run_guest honours FAULTLAB_CHECK (this test is meaningful in the --check run of the suite)."""
    import conftest
    r = run_guest(os.path.join(userland, 'hello'))
    chk = r.machine.kernel.vm_checker
    assert (chk is not None) == bool(conftest.CHECK)


def test_a_violation_in_a_child_process_ends_the_whole_run(userland, monkeypatch):
    """A violation found after a trap of a forked child ends every process; the run reports it
    with status 70 (before, only the child was marked dead and the CPU kept faulting)."""
    orig = TrapChecker.check

    def check(self, event):
        cur = self.k.current
        if cur is not None and cur.tgid != 1 and event[0] == 'syscall':
            return 'planted violation in pid %d' % cur.tgid
        return orig(self, event)
    monkeypatch.setattr(TrapChecker, 'check', check)
    m, res = _machine_after(userland, 'forktest')
    assert res.exit_code == 70
    assert 'planted violation in pid' in res.report
