"""khugepaged (kernel/mm/khugepaged_scan.py): userland/src/khugepaged_limits.c under faultlab. Three 2 MiB
ranges faulted with 4 KiB pages: full, with max_ptes_none + 1 empty PTEs, with max_ptes_none empty
PTEs; after MADV_HUGEPAGE khugepaged collapses the first and the last only (hpage_collapse_scan_pmd's
SCAN_EXCEED_NONE_PTE), keeps the data, counts its collapses and full scans, and bills its work.
(Not compared with a native run: that needs the host's khugepaged knobs, which other programs of
this host use.)"""
import os

import pytest

from conftest import run_guest
from faultlab.bench.guest import parse_values


def _run(userland, none):
    r = run_guest(os.path.join(userland, 'khugepaged_limits'), [str(none)], ram=64 << 20)
    assert r.exit_code == 0, r.stderr
    return parse_values(r.stdout.decode()), r.machine.kernel.stats


@pytest.mark.parametrize('none', [0, 64, 510])
def test_max_ptes_none_decides_the_collapse(userland, none):
    v, st = _run(userland, none)
    assert v['full_scans_done'] == 1
    assert (v['full_huge_kb'], v['over_huge_kb'], v['limit_huge_kb']) == (2048, 0, 2048)
    assert v['full_data'] == v['over_data'] == v['limit_data'] == 'ok'
    assert v['pages_collapsed'] == 2
    assert st['thp_collapse_alloc'] == 2 and st['thp_collapse_alloc_failed'] == 0
    assert st['thp_scan_exceed_none_pte'] >= 1
    # the copies: every page touched in the two collapsed ranges (the empty ones are cleared)
    assert st['khugepaged_cycles'] > 0


def test_khugepaged_is_deterministic(userland):
    a = _run(userland, 64)
    b = _run(userland, 64)
    assert a[0] == b[0]
    for name in ('khugepaged_cycles', 'thp_collapse_alloc', 'pages_copied', 'thp_scan_exceed_none_pte'):
        assert a[1][name] == b[1][name], name


@pytest.mark.parametrize('defrag', ['0', '1'])
def test_allocation_failure_sleeps_alloc_sleep_millisecs(userland, defrag):
    # 56 MiB written first on a 64 MiB machine: no free 2 MiB block for the collapse. One failure
    # (thp_collapse_alloc_failed), then khugepaged sleeps alloc_sleep_millisecs (60 s): no more tries
    # during the program's 3 s wait, nothing collapsed. With defrag 1 it reclaims first (swap-out)
    # but the freed pages are scattered (compaction is not modelled) and the allocation still fails.
    r = run_guest(os.path.join(userland, 'khugepaged_limits'), ['64', defrag, '56'], ram=64 << 20)
    assert r.exit_code == 0, r.stderr
    v, st = parse_values(r.stdout.decode()), r.machine.kernel.stats
    assert v['pages_collapsed'] == 0 and v['full_scans_done'] == 0
    assert v['full_data'] == v['over_data'] == v['limit_data'] == 'ok'
    assert st['thp_collapse_alloc'] == 0 and st['thp_collapse_alloc_failed'] == 1
    assert st['khugepaged_direct_reclaim'] == (1 if defrag == '1' else 0)
