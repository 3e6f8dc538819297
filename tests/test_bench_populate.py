"""populate_bench under faultlab against the MADV_POPULATE seed table (emu/bench_populate.py).

The acceptance of the seed's issue: for the MAP_PRIVATE 4 KiB blocks the simulated rows keep the
order POPULATE_READ < Read < Write < Read/Write and POPULATE_WRITE < Write, and every ratio between
two rows of a block is within 25% of the seed's ratio. Checked here on real 2 MiB runs.
"""
import re

import pytest

from emu import bench_populate as bp

PAGES_2M = 512


@pytest.fixture(scope='module')
def run2m(userland):
    return bp.run_bench('2M', reps=1, sharing='private',
                        backings=['anon4k', 'file', 'memfd2m', 'hugetlbfs'])


def _check(run, backing, skip_pairs=(), skip_order=()):
    c = bp.check_block(run.rows, '2M', backing)
    bad_order = [(a, b) for a, b, ok in c['order'] if not ok and (a, b) not in skip_order]
    assert not bad_order, '%s: order not kept: %s' % (backing, bad_order)
    bad = [(s, f, round(rs, 3), round(rm, 3)) for s, f, rs, rm, q in c['pairs']
           if abs(q - 1) > bp.TOLERANCE and {s, f} not in [set(p) for p in skip_pairs]]
    assert not bad, '%s: ratios off by more than 25%% (slower, faster, seed, sim): %s' % (backing, bad)


def test_anon_private_2m_meets_the_seed(run2m):
    _check(run2m, 'anon4k')
    ns = {m: run2m.ns('anon4k', 'private', m) for m in bp.ACCESS_METHODS}
    # the seed's own finding: POPULATE_* is the fastest way to get the page tables populated
    assert ns['POPULATE_READ'] < ns['Read'] and ns['POPULATE_WRITE'] < min(ns['Write'], ns['Read/Write'])


def test_file_private_2m_meets_the_seed(run2m):
    # Read vs POPULATE_READ: the seed's 2 MiB block has Read < POPULATE_READ for files (fault-around maps
    # 16 pages per trap, while gup walks every page); the acceptance lists the reverse order, taken from
    # the 4096 MiB block. That pair is held to the seed's 2 MiB ratio instead of the listed order.
    _check(run2m, 'file', skip_order=[('POPULATE_READ', 'Read')])
    ns = {m: run2m.ns('file', 'private', m) for m in bp.ACCESS_METHODS}
    assert ns['Read'] < ns['POPULATE_READ']


def test_rows_that_do_not_apply_are_na(run2m):
    for m in bp.FALLOCATE_METHODS:
        assert run2m.rows[('anon4k', 'private', m)] is None
        assert run2m.rows[('file', 'private', m)] is None
    for b in bp.HUGETLB:
        for m in bp.ACCESS_METHODS:
            assert run2m.rows[(b, 'private', m)] is None, (b, m)


def test_table_uses_the_seed_layout(run2m, capsys):
    bp.print_table(run2m, '2M')
    out = capsys.readouterr().out
    assert '2 MiB MAP_PRIVATE:' in out
    assert 'Memfd 2 MiB    : Read                     :    n/a (no hugetlb yet)' in out
    line = [ln for ln in out.splitlines() if ln.startswith('Anon 4 KiB     : POPULATE_READ ')][0]
    assert re.match(r'Anon 4 KiB     : POPULATE_READ            : +\d+\.\d{3} ms   seed 2 MiB: +0\.060 ms', line)


def test_populate_takes_no_traps(userland):
    """MADV_POPULATE_* faults pages in from the kernel: the number of page faults (traps) does not grow
    with the size of the mapping, the kernel fault-ins do, one per page; touching traps once per page."""
    meth = ['POPULATE_READ', 'POPULATE_WRITE']
    a = bp.run_bench('2M', reps=1, sharing='private', backings=['anon4k'], methods=meth)
    b = bp.run_bench('4M', reps=1, sharing='private', backings=['anon4k'], methods=meth)
    assert b.stats['page_faults'] == a.stats['page_faults']
    assert b.stats['kernel_faultins'] - a.stats['kernel_faultins'] == len(meth) * PAGES_2M
    t2 = bp.run_bench('2M', reps=1, sharing='private', backings=['anon4k'], methods=['Write'])
    t4 = bp.run_bench('4M', reps=1, sharing='private', backings=['anon4k'], methods=['Write'])
    assert t4.stats['page_faults'] - t2.stats['page_faults'] == PAGES_2M
    assert t4.stats['kernel_faultins'] == t2.stats['kernel_faultins']
