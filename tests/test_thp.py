"""Transparent huge pages for anonymous memory (kernel/mm/huge_memory.py): userland/src/thpanon.c run
natively (this host has THP in madvise mode) and under faultlab, compared line by line, plus the
event counters of the run, the "never" policy and the invariant checker."""
import contextlib
import fcntl
import glob
import os
import re

from conftest import run_guest
from conftest import run_native as _run_native

THP = '/sys/kernel/mm/transparent_hugepage/'
HOST_LOCK = '/tmp/faultlab-thp-knobs.lock'
# Linux 6.12's defaults of the knobs these programs depend on (what faultlab boots with), set on this
# host around each native run: another program's native run may have left them otherwise
THP_DEFAULTS = {'enabled': 'madvise', 'defrag': 'madvise', 'use_zero_page': '1',
                'hugepages-2048kB/enabled': 'inherit'}


def _knob(name):
    """The selected word of a '[selected]' knob, or a numeric knob's value."""
    text = open(THP + name).read()
    m = re.search(r'\[(\S+)\]', text)
    return m.group(1) if m else text.strip()


@contextlib.contextmanager
def thp_defaults():
    """This host's THP knobs at Linux's defaults for the block (as root, one user at a time; smaller
    mTHP sizes 'never'), put back afterwards; as they are when not root."""
    if os.geteuid() != 0 or not os.path.isdir(THP):
        yield
        return
    names = list(THP_DEFAULTS) + [n[len(THP):] for n in glob.glob(THP + 'hugepages-*kB/enabled')]
    with open(HOST_LOCK, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = {n: _knob(n) for n in names}
        try:
            for n in names:
                with open(THP + n, 'w') as f:
                    f.write(THP_DEFAULTS.get(n, 'never'))
            yield
        finally:
            for n, v in old.items():
                with open(THP + n, 'w') as f:
                    f.write(v)


def run_native(prog, args=()):
    """The program natively, with the host's THP knobs at Linux's defaults."""
    with thp_defaults():
        return _run_native(prog, args)

# A write to the huge zero page: Linux 6.12 (what faultlab follows) splits the PMD and copies 4 KiB
# (do_huge_pmd_wp_page's fallback); kernels from 6.16 on allocate a new THP there (do_huge_zero_wp_pmd).
# This host may run either, so that line is checked against 6.12's rule instead of the native run.
ZERO_WRITE = 'written after read'


def _ahp(lines, what):
    """The AnonHugePages kB that the report line `what` shows."""
    line = next(x for x in lines if x.startswith(what))
    return int(re.search(r'AnonHugePages +(\d+) kB', line).group(1))


def test_thp_anon_matches_native(userland):
    prog = os.path.join(userland, 'thpanon')
    code, out, _err = run_native(prog)
    assert code == 0
    native = out.decode().splitlines()
    r = run_guest(prog, ram=128 << 20)
    assert r.exit_code == 0, r.stderr
    emu = r.stdout.decode().splitlines()
    assert len(emu) == len(native)
    for n, e in zip(native, emu):
        if not n.startswith(ZERO_WRITE):
            assert e == n
    # 6.12: the huge zero page's PMD is split, nothing more is huge than before the write
    assert _ahp(emu, ZERO_WRITE) == _ahp(emu, 'read only')
    # one fault per 2 MiB, natively and here
    assert 'write touch of 8 MiB: 4 faults' in emu
    assert _ahp(emu, 'touched') == 8192
    assert _ahp(emu, 'partial munmap') < _ahp(emu, 'touched')
    assert _ahp(emu, 'child after write') == _ahp(emu, 'child before write') - 2048

    st = r.machine.kernel.stats
    # 4 huge pages touched, 2 more before the fork; the huge zero folio once
    assert st['thp_fault_alloc'] == 6
    assert st['thp_zero_page_alloc'] == 1
    assert st['thp_fault_fallback'] == 0
    # splits: the huge zero PMD written, the partial munmap, the partial mprotect, the child's COW
    assert st['thp_split_pmd'] == 4


def test_thp_never(userland):
    r = run_guest(os.path.join(userland, 'thpanon'), ['never'])
    assert r.exit_code == 0, r.stderr
    out = r.stdout.decode().splitlines()
    assert out[0] == 'never: 1024 faults'
    assert _ahp(out, 'never  ') == 0
    assert r.machine.kernel.stats['thp_fault_alloc'] == 0


def test_thp_invariants_hold(userland):
    """Every fault and system call of the run leaves the page tables, compound pages and
    counters consistent (--check: after every trap)."""
    r = run_guest(os.path.join(userland, 'thpanon'), ram=128 << 20, check=True)
    assert r.exit_code == 0, r.stderr
    assert r.machine.kernel.vm_checker.violation is None
    assert r.machine.kernel.vm_checker.checks > 10



def test_thp_swap(userland):
    """Reclaim splits huge pages (split_huge_page) and swaps their pages: 32 MiB of huge pages in 24 MiB
    of RAM read back intact, as natively; the invariants hold after each trap."""
    prog = os.path.join(userland, 'thpswap')
    code, out, _err = run_native(prog)
    assert (code, out) == (0, b'bad 0\n')
    r = run_guest(prog, ram=24 << 20, check=True)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == out
    st = r.machine.kernel.stats
    assert st['thp_fault_alloc'] > 0
    assert st['thp_split_page'] > 0
    assert r.machine.kernel.stats['pswpout'] > 0 or r.stats.get('swap_out_pages', 0) > 0


def test_thp_pagemap_kpageflags_match_native(userland):
    """pagemap entries of a huge PMD (present and exclusive for each 4 KiB, consecutive frames),
    KPF_THP with COMPOUND_HEAD/TAIL, the huge zero folio, the counts after fork, as natively."""
    prog = os.path.join(userland, 'thpkpf')
    code, out, _err = run_native(prog)
    assert code == 0
    r = run_guest(prog)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.decode().splitlines() == out.decode().splitlines()


def test_madv_collapse_matches_native(userland):
    """MADV_COLLAPSE copies 4 KiB pages into a new huge page (contents kept, AnonHugePages 2048 kB),
    EINVAL where a range has no page table or the VMA has MADV_NOHUGEPAGE, as natively."""
    prog = os.path.join(userland, 'thpcollapse')
    code, out, _err = run_native(prog)
    assert code == 0
    r = run_guest(prog, check=True)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == out
    assert b'ahp 2048' in out
    assert r.machine.kernel.stats['thp_collapse_alloc'] == 1


def test_thp_mremap_matches_native(userland):
    """mremap moves whole huge PMDs to an aligned address and splits them for an unaligned one, with
    the contents intact, as natively; every fault and system call leaves the invariants intact."""
    prog = os.path.join(userland, 'thpmremap')
    code, out, _err = run_native(prog)
    assert code == 0
    r = run_guest(prog, check='full')
    assert r.exit_code == 0, r.stderr
    assert r.stdout == out
    assert b'aligned move: ahp 8192 bad 0' in out
