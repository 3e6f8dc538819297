"""populate_bench under faultlab against the MADV_POPULATE posting's table (emu/bench/populate.py).

The acceptance criterion: for the MAP_PRIVATE 4 KiB blocks the simulated rows keep the
order POPULATE_READ < Read < Write < Read/Write and POPULATE_WRITE < Write, and every ratio between
two rows of a block is within 25% of the posting's ratio. Checked here on real 2 MiB runs.
"""
import re

import pytest

from faultlab.bench import populate as bp

PAGES_2M = 512


@pytest.fixture(scope='module')
def run2m(userland):
    # 3 repetitions, the shortest counts (as in the posting): the first one finds every frame uncached
    return bp.run_bench('2M', reps=3, sharing='private',
                        backings=['anon4k', 'file', 'memfd2m', 'hugetlbfs'])


def _check(run, backing, skip_pairs=(), skip_order=()):
    c = bp.check_block(run.rows, '2M', backing)
    bad_order = [(a, b) for a, b, ok in c['order'] if not ok and (a, b) not in skip_order]
    assert not bad_order, '%s: order not kept: %s' % (backing, bad_order)
    bad = [(s, f, round(rs, 3), round(rm, 3)) for s, f, rs, rm, q in c['pairs']
           if abs(q - 1) > bp.TOLERANCE and {s, f} not in [set(p) for p in skip_pairs]]
    assert not bad, '%s: ratios off by more than 25%% (slower, faster, posting, sim): %s' % (backing, bad)


def test_anon_private_2m_meets_the_posting(run2m):
    _check(run2m, 'anon4k')
    ns = {m: run2m.ns('anon4k', 'private', m) for m in bp.ACCESS_METHODS}
    # the posting's own finding: POPULATE_* is the fastest way to get the page tables populated
    assert ns['POPULATE_READ'] < ns['Read'] and ns['POPULATE_WRITE'] < min(ns['Write'], ns['Read/Write'])


def test_file_private_2m_meets_the_posting(run2m):
    # Read vs POPULATE_READ: the posting's 2 MiB block has Read < POPULATE_READ for files (fault-around maps
    # 16 pages per trap, while gup walks every page); the acceptance lists the reverse order, taken from
    # the 4096 MiB block. That pair is held to the posting's 2 MiB ratio instead of the listed order.
    _check(run2m, 'file', skip_order=[('POPULATE_READ', 'Read')])
    ns = {m: run2m.ns('file', 'private', m) for m in bp.ACCESS_METHODS}
    assert ns['Read'] < ns['POPULATE_READ']


def test_rows_that_do_not_apply_are_na(run2m):
    for m in bp.FALLOCATE_METHODS:
        assert run2m.rows[('anon4k', 'private', m)] is None
        assert run2m.rows[('file', 'private', m)] is None


def test_hugetlb_rows_2m_are_one_cleared_huge_page_each(run2m):
    """As in the posting, every method costs the same on a 2 MiB huge page (one fault, clearing 2 MiB in
    cache): within 10% of each other and of the posting's 0.030 ms."""
    for b in bp.HUGETLB:
        ns = [run2m.ns(b, 'private', m) for m in bp.ACCESS_METHODS]
        assert all(v is not None for v in ns), (b, ns)
        assert max(ns) < 1.1 * min(ns), (b, ns)
        for v in ns:
            assert abs(v / 30000 - 1) < 0.25, (b, ns)


def test_table_uses_the_postings_layout(run2m, capsys):
    bp.print_table(run2m, '2M')
    out = capsys.readouterr().out
    assert '2 MiB MAP_PRIVATE:' in out
    assert 'n/a' not in [ln for ln in out.splitlines() if ln.startswith('Memfd 2 MiB    : Read ')][0]
    assert re.search(r'hugetlbfs      : POPULATE_WRITE           : +0\.0\d\d ms   posting 2 MiB: +0\.030 ms', out)
    line = [ln for ln in out.splitlines() if ln.startswith('Anon 4 KiB     : POPULATE_READ ')][0]
    assert re.match(r'Anon 4 KiB     : POPULATE_READ            : +\d+\.\d{3} ms   posting 2 MiB: +0\.060 ms', line)


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


def test_populate_on_hugetlb_takes_one_fault_in_per_huge_page(userland):
    """POPULATE_* of a hugetlb mapping faults each 2 MiB page in once (no traps): 2 per 4 MiB more."""
    meth = ['POPULATE_READ', 'POPULATE_WRITE']
    a = bp.run_bench('2M', reps=1, sharing='private', backings=['hugetlbfs'], methods=meth)
    b = bp.run_bench('4M', reps=1, sharing='private', backings=['hugetlbfs'], methods=meth)
    assert b.stats['page_faults'] == a.stats['page_faults']
    assert b.stats['kernel_faultins'] - a.stats['kernel_faultins'] == len(meth)


def test_fallocate_then_read_of_a_disk_file_does_no_io(userland):
    """FALLOCATE+Read on a file of the simulated disk: fallocated blocks are unwritten extents, read as
    zeros without a disk request; fallocate itself costs cycles per block."""
    base = bp.run_bench('2M', reps=1, sharing='shared', backings=['file'], methods=['FALLOCATE'])
    run = bp.run_bench('2M', reps=1, sharing='shared', backings=['file'], methods=['FALLOCATE', 'FALLOCATE+Read'])
    assert run.stats['disk_reads'] == base.stats['disk_reads']     # (those are the program's own pages)
    fa, fr = run.ns('file', 'shared', 'FALLOCATE'), run.ns('file', 'shared', 'FALLOCATE+Read')
    assert fa >= 512 * 30 * 1e9 / 3e9                   # fallocate_block per 4 KiB block
    assert 0 < fa < fr < 1_000_000          # well under a millisecond: no 80 us disk reads


def test_cli_bench_populate_size_2m(userland, capsys):
    """`faultlab bench populate --size 2M --quick` prints the whole table, huge pages included."""
    from faultlab.cli import main
    assert main(['bench', 'populate', '--size', '2M', '--quick']) == 0
    out = capsys.readouterr().out
    assert '2 MiB MAP_PRIVATE:' in out and '2 MiB MAP_SHARED:' in out
    huge = [ln for ln in out.splitlines() if ln.startswith(('Memfd 2 MiB', 'hugetlbfs'))]
    assert len(huge) == 2 * 5 + 2 * 11 and not any('n/a' in ln for ln in huge if 'FALLOCATE' not in ln)
    assert 'acceptance, 2 MiB run' in out


def test_shared_rows_have_the_postings_figures():
    """The MAP_SHARED block of the posting (section V.3) is beside ours: 2 MiB as it is, a larger run against
    the 4096 MiB block scaled to its size; rows the posting has not (anonymous FALLOCATE) have none."""
    assert bp.posting_ms('2M', 'file', 'Write', 'shared') == 0.511
    assert bp.posting_ms('2M', 'memfd4k', 'FALLOCATE+POPULATE_WRITE', 'shared') == 0.268
    assert abs(bp.posting_ms('64M', 'tmpfs', 'POPULATE_WRITE', 'shared') - 810.094 * 64 / 4096) < 1e-9
    assert bp.posting_ms('2M', 'anon4k', 'FALLOCATE', 'shared') is None
    assert bp.posting_ms('2M', 'file', 'Write') == 0.351            # the private block stays the default


def test_shared_claims_are_judged_on_the_rows():
    """check_shared_claims says which of the posting's section V.2 claims a block breaks: a faster Write than
    POPULATE_WRITE breaks "POPULATE_WRITE is faster than simple writes", rows not measured are not judged."""
    names = bp.ACCESS_METHODS + bp.FALLOCATE_METHODS
    posting = bp.POSTING_SHARED_MS[2]['file']
    rows = {('file', 'shared', m): v * 1e6 for m, v in zip(names, posting)}
    claims = bp.check_shared_claims(rows, '2M')
    assert bp.shared_claim_failures(claims) == []
    # the posting's own 2 MiB file block has Read (0.191) < POPULATE_READ (0.196): seen, not counted
    assert [(fast, bad, pbad) for _b, fast, _s, _t, bad, pbad in claims if bad] == \
        [('POPULATE_READ', ['Read'], ['Read'])]
    rows[('file', 'shared', 'Write')] = 0.4e6
    assert bp.shared_claim_failures(bp.check_shared_claims(rows, '2M')) == ['file: POPULATE_WRITE < Write']
    assert bp.check_shared_claims({}) == []


@pytest.fixture(scope='module')
def shared2m(userland):
    return bp.run_bench('2M', reps=2, sharing='shared', backings=['anon4k', 'file'])


def test_shared_2m_keeps_what_the_posting_claims(shared2m):
    """On fresh, empty backing, MAP_SHARED: POPULATE_WRITE is faster than writing and read/writing,
    POPULATE_READ faster than reading, fallocate the fastest row of a file, FALLOCATE+POPULATE_READ the
    fastest way to allocate a file's blocks and prefault them (section V.2)."""
    claims = bp.check_shared_claims(shared2m.rows, '2M')
    judged = {(b, fast) for b, fast, *_x in claims}
    assert {('anon4k', 'POPULATE_WRITE'), ('anon4k', 'POPULATE_READ'), ('file', 'POPULATE_WRITE'),
            ('file', 'POPULATE_READ'), ('file', 'FALLOCATE'), ('file', 'FALLOCATE+POPULATE_READ')} <= judged
    # "Without a fd, the fastest way ... is POPULATE_WRITE": not against POPULATE_READ, which allocates and
    # clears each page of shared anonymous memory just as it (shmem_fault); the rest must hold
    bad = [f for f in bp.shared_claim_failures(claims) if f != 'anon4k: POPULATE_WRITE < POPULATE_READ']
    assert not bad, bad


def test_shared_file_writes_call_page_mkwrite(shared2m):
    """A write fault on an empty shared file mapping goes through ->page_mkwrite (ext4_page_mkwrite) and
    dirties the page: writing costs more than reading by at least page_mkwrite per page."""
    from faultlab.core.cycles import CostTable
    mkwrite_ns = CostTable().costs['page_mkwrite'] * 1e9 / 3e9
    read, write = shared2m.ns('file', 'shared', 'Read'), shared2m.ns('file', 'shared', 'Write')
    assert write - read >= PAGES_2M * mkwrite_ns
