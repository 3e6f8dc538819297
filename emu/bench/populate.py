"""`faultlab bench populate`: prefaulting a mapping by touching it vs MADV_POPULATE_(READ|WRITE) vs fallocate.

Runs userland/build/populate_bench in-process under faultlab (one fresh Machine per size) and prints
its results in the layout of the timing table of David Hildenbrand's posting "mm/madvise: introduce
MADV_POPULATE_(READ|WRITE) to prefault page tables" (v2 resend, patch 2/5 on linux-mm, section V),
next to the posting's own figures with the ratio, with a check that our rows keep the posting's
order and ratios for the MAP_PRIVATE 4 KiB blocks (ACCEPTANCE below) and, for the MAP_SHARED blocks
(measured, as in the posting, on fresh, empty backing), that they keep what the posting's text
claims of them (SHARED_CLAIMS, section V.2).

The posting measured 2 MiB and 4096 MiB mappings. 4096 MiB is replaced by 64 MiB here (by default; any
size can be asked for, 256 MiB is the largest that is compared in tests): a 4 GiB mapping would take
hours on the emulator. What changes with the size is whether the memory involved still fits in the
last-level cache (kernel/mm/llc.py, llc_bytes = 32 MiB): at 2 MiB it does, from 64 MiB on it does not,
as at 4096 MiB. The 4096 MiB figures of the posting are shown scaled to the size that was run.
"""
import itertools
import os
import sys

from faultlab.bench.report import bench_ready, figure_path, pool_map, write_rows
from faultlab.core.cycles import CostTable
from faultlab.kernel.kernel import KernelConfig
from faultlab.machine import Machine
from faultlab.plot import pyplot, save, subplots
from faultlab.srctree import userland_build

BUILD = userland_build()
PROGRAM = os.path.join(BUILD, 'populate_bench')

DEFAULT_SIZES = ('2M', '64M')
QUICK_SIZES = ('2M',)
POSTING_BIG_MIB = 4096

# (token printed by populate_bench, name in the posting's table)
BACKINGS = (('anon4k', 'Anon 4 KiB'), ('memfd4k', 'Memfd 4 KiB'), ('memfd2m', 'Memfd 2 MiB'),
            ('tmpfs', 'tmpfs'), ('file', 'file'), ('hugetlbfs', 'hugetlbfs'))
HUGETLB = ('memfd2m', 'hugetlbfs')
ACCESS_METHODS = ('Read', 'Write', 'Read/Write', 'POPULATE_READ', 'POPULATE_WRITE')
FALLOCATE_METHODS = ('FALLOCATE', 'FALLOCATE+Read', 'FALLOCATE+Write', 'FALLOCATE+Read/Write',
                     'FALLOCATE+POPULATE_READ', 'FALLOCATE+POPULATE_WRITE')
SHARINGS = (('private', 'MAP_PRIVATE'), ('shared', 'MAP_SHARED'))

# The posting's MAP_PRIVATE figures (ms), section V.3.
POSTING_MS = {
    2: {
        'anon4k': (0.119, 0.222, 0.380, 0.060, 0.158),
        'memfd4k': (0.034, 0.310, 0.362, 0.039, 0.229),
        'memfd2m': (0.030, 0.030, 0.030, 0.030, 0.030),
        'tmpfs': (0.033, 0.313, 0.406, 0.039, 0.285),
        'file': (0.033, 0.351, 0.408, 0.039, 0.290),
        'hugetlbfs': (0.030, 0.030, 0.030, 0.030, 0.030),
    },
    4096: {
        'anon4k': (237.940, 708.409, 1054.041, 124.310, 572.582),
        'memfd4k': (136.928, 963.898, 1106.561, 78.450, 805.881),
        'memfd2m': (357.116, 357.210, 357.606, 356.094, 356.937),
        'tmpfs': (137.536, 954.362, 1105.954, 80.289, 822.826),
        'file': (137.874, 987.025, 1107.439, 80.413, 857.622),
        'hugetlbfs': (355.607, 355.729, 356.127, 354.585, 355.138),
    },
}

# The posting's MAP_SHARED figures (ms), section V.3, rows in ACCESS_METHODS + FALLOCATE_METHODS order
# (None: a row the posting has not, FALLOCATE of anonymous memory). Our hugetlbfs backing is anonymous
# MAP_HUGETLB memory, the posting's "Anon 2 MiB" of this table; its FALLOCATE rows (a hugetlbfs file)
# have no counterpart here.
_NF = (None,) * 6
POSTING_SHARED_MS = {
    2: {
        'anon4k': (0.394, 0.348, 0.400, 0.326, 0.273) + _NF,
        'memfd4k': (0.412, 0.372, 0.419, 0.343, 0.288, 0.137, 0.446, 0.330, 0.454, 0.379, 0.268),
        'memfd2m': (0.030, 0.030, 0.030, 0.030, 0.030, 0.030, 0.031, 0.031, 0.031, 0.030, 0.030),
        'tmpfs': (0.416, 0.369, 0.425, 0.346, 0.295, 0.139, 0.447, 0.333, 0.454, 0.380, 0.272),
        'file': (0.191, 0.511, 0.524, 0.196, 0.434, 0.004, 0.197, 0.554, 0.480, 0.201, 0.381),
        'hugetlbfs': (0.030, 0.030, 0.030, 0.030, 0.030) + _NF,
    },
    4096: {
        'anon4k': (1053.090, 913.642, 1060.350, 893.691, 782.885) + _NF,
        'memfd4k': (1078.144, 942.036, 1100.391, 925.829, 804.394, 304.632, 1163.359, 933.186, 1187.304,
                    1013.660, 794.560),
        'memfd2m': (358.131, 358.099, 358.250, 357.563, 357.334, 356.735, 358.152, 358.331, 358.018, 357.286,
                    357.523),
        'tmpfs': (1087.265, 950.840, 1107.567, 922.605, 810.094, 306.320, 1169.796, 933.730, 1191.610, 1020.474,
                  798.945),
        'file': (654.101, 1259.142, 1289.509, 661.642, 1106.816, 1.864, 656.328, 1153.300, 1180.613, 668.347,
                 996.143),
        'hugetlbfs': (358.553, 358.419, 357.992, 357.533, 357.808) + _NF,
    },
}

# What section V.2 of the posting says of its MAP_SHARED table, as (backings, faster row, slower rows, the
# sentence). Only the 4 KiB backings: with 2 MiB pages every row is one fault clearing one huge page.
_FD4K = ('memfd4k', 'tmpfs', 'file')
_ALL4K = ('anon4k',) + _FD4K
SHARED_CLAIMS = (
    (_ALL4K, 'POPULATE_WRITE', ('Write', 'Read/Write'),
     'POPULATE_WRITE is faster than simple writes and read/writes.'),
    (_ALL4K, 'POPULATE_READ', ('Read',), 'POPULATE_READ is faster than simple reads.'),
    (_FD4K, 'FALLOCATE', ('Read', 'Write', 'Read/Write', 'POPULATE_READ', 'POPULATE_WRITE') + FALLOCATE_METHODS[1:],
     'fallocate() is fastest, however, doesn\'t prefault page tables.'),
    (('anon4k',), 'POPULATE_WRITE', ('Read', 'Write', 'Read/Write', 'POPULATE_READ'),
     'Without a fd, the fastest way to allocate backend storage and prefault page tables is POPULATE_WRITE.'),
    (('memfd4k', 'tmpfs'), 'FALLOCATE+POPULATE_WRITE',
     ('Write', 'Read/Write', 'POPULATE_WRITE', 'FALLOCATE+Write', 'FALLOCATE+Read/Write'),
     'The fastest way to allocate backend storage [and] prefault page tables is FALLOCATE+POPULATE_WRITE'),
    (('file',), 'FALLOCATE+POPULATE_READ',
     ('Write', 'Read/Write', 'POPULATE_WRITE', 'FALLOCATE+Write', 'FALLOCATE+Read/Write', 'FALLOCATE+POPULATE_WRITE'),
     '-- except when dealing with actual files; then, FALLOCATE+POPULATE_READ is fastest'),
)

ACCEPTANCE = """\
Acceptance (MAP_PRIVATE 4 KiB blocks: Anon 4 KiB, Memfd 4 KiB, tmpfs, file):
  order  POPULATE_READ < Read < Write < Read/Write and POPULATE_WRITE < Write
  ratio  for every pair of rows of a block, (slower / faster as the posting orders them) simulated over
         the posting's must lie within 1 +- 0.25; the 2 MiB run is compared with the posting's 2 MiB block,
         any larger run with its 4096 MiB block.
MAP_SHARED (fresh, empty backing for every repetition): the claims of the posting's section V.2 for the
  4 KiB blocks (POPULATE_WRITE < Write, Read/Write; POPULATE_READ < Read; FALLOCATE fastest of a file's
  rows; POPULATE_WRITE fastest without a fd; FALLOCATE+POPULATE_WRITE, for a disk file
  FALLOCATE+POPULATE_READ, the fastest way to allocate and prefault); the ratios to the posting's figures
  are printed, not judged."""

ORDER = (('POPULATE_READ', 'Read'), ('Read', 'Write'), ('Write', 'Read/Write'), ('POPULATE_WRITE', 'Write'))
CHECKED_BACKINGS = ('anon4k', 'memfd4k', 'tmpfs', 'file')
HUGE_BACKINGS = ('memfd2m', 'hugetlbfs')
TOLERANCE = 0.25


def parse_size(text):
    """Bytes for '2M', '64M', '1G', '4096K' or a plain number."""
    text = str(text).strip()
    mult = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}.get(text[-1:].upper(), 1)
    num = text[:-1] if mult > 1 else text
    return int(num, 0) * mult


def size_mib(size):
    return parse_size(size) / (1 << 20)


class PopulateRun:
    """One run of populate_bench: rows {(backing, sharing, method): ns or None}, why n/a, counters."""

    def __init__(self, rows, why, stats, stdout, stderr, exit_code):
        self.rows = rows
        self.why = why
        self.stats = stats
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code

    def ns(self, backing, sharing, method):
        return self.rows.get((backing, sharing, method))


def parse_rows(text):
    """({(backing, sharing, method): ns or None}, {key: reason}) from `row ...` lines."""
    rows, why = {}, {}
    for line in text.splitlines():
        p = line.split()
        if len(p) < 5 or p[0] != 'row':
            continue
        key = (p[1], p[2], p[3])
        if p[4] == 'n/a':
            rows[key] = None
            why[key] = ' '.join(p[5:])
        else:
            rows[key] = int(p[4])
    return rows, why


def default_ram(size):
    """Guest RAM for a mapping size: room for the page cache, the COW copies, the huge page pool and the
    rest (>= 256 MiB, <= 4 GiB)."""
    return min(4 << 30, max(256 << 20, 8 * parse_size(size)))


def default_hugepages(size):
    """The hugetlb pool for a mapping size: a private and a file copy of the mapping, plus a few."""
    return 2 * ((parse_size(size) + (2 << 20) - 1) >> 21) + 4


def run_bench(size, reps=3, sharing='both', backings=None, methods=None, ram=None, costs=None, check=True):
    """Run populate_bench under faultlab in this process; a PopulateRun."""
    if not os.path.exists(PROGRAM):
        raise FileNotFoundError('%s: build the userland programs first (make -C userland)' % PROGRAM)
    out, err, warnings = [], [], []
    config = KernelConfig(stdout=out.append, stderr=err.append, warn=warnings.append,
                          nr_hugepages=default_hugepages(size))
    m = Machine(ram=ram or default_ram(size), costs=costs or CostTable(), config=config)
    args = ['-r', str(reps), '-s', sharing]
    if backings:
        args += ['-b', ','.join(backings)]
    if methods:
        args += ['-m', ','.join(methods)]
    args.append(str(size))
    res = m.run(PROGRAM, ['populate_bench'] + args, ['PATH=/bin', 'LANG=C'])
    stdout, stderr = b''.join(out).decode(), b''.join(err).decode()
    rows, why = parse_rows(stdout)
    run = PopulateRun(rows, why, res.stats, stdout, stderr, res.exit_code)
    if check and (res.exit_code != 0 or res.killed_by or 'done 1' not in stdout):
        raise RuntimeError('populate_bench %s failed (status %s): %s%s' % (' '.join(args), res.exit_code,
                                                                         stderr, res.report or ''))
    return run


def posting_block(size):
    """(posting's size in MiB, scale factor to the run's size) for the posting block a run is compared with."""
    mib = size_mib(size)
    if mib == 2:
        return 2, 1.0
    return POSTING_BIG_MIB, mib / POSTING_BIG_MIB


def posting_ms(size, backing, method, sharing='private'):
    """The posting's figure for this row, scaled to the run's size; None where it has none."""
    mib, scale = posting_block(size)
    if sharing == 'shared':
        vals = POSTING_SHARED_MS[mib].get(backing)
        names = ACCESS_METHODS + FALLOCATE_METHODS
    else:
        vals = POSTING_MS[mib].get(backing)
        names = ACCESS_METHODS
    if vals is None or method not in names or vals[names.index(method)] is None:
        return None
    return vals[names.index(method)] * scale


def check_shared_claims(rows, size='2M'):
    """The claims of the posting's section V.2 on the MAP_SHARED rows: [(backing, faster, slower rows,
    sentence, the slower rows ours are not slower than, those the posting's own block of that size has not
    slower either)] for every claim whose rows were all measured."""
    out = []
    for backings, fast, slows, sentence in SHARED_CLAIMS:
        for b in backings:
            f = rows.get((b, 'shared', fast))
            s = [rows.get((b, 'shared', m)) for m in slows]
            if f is None or any(v is None for v in s):
                continue
            bad = [m for m, v in zip(slows, s) if not f < v]
            pf = posting_ms(size, b, fast, 'shared')
            posting_bad = [m for m in slows if pf is not None and not pf < posting_ms(size, b, m, 'shared')]
            out.append((b, fast, slows, sentence, bad, posting_bad))
    return out


def shared_claim_failures(claims):
    """What of check_shared_claims fails the bench's exit status: a row ours is not slower than, unless the
    posting's own block does not have it slower either (its 2 MiB file block has Read < POPULATE_READ)."""
    return ['%s: %s < %s' % (b, fast, ', '.join(m for m in bad if m not in pbad))
            for b, fast, _s, _t, bad, pbad in claims if set(bad) - set(pbad)]


def check_block(rows, size, backing):
    """The acceptance check of one private block: dict(order=[(a, b, ok)], pairs=[(slow, fast, posting, sim, q)],
    posting_order=[(a, b, holds in the posting)]). Needs every access method's row."""
    mib, _ = posting_block(size)
    posting = dict(zip(ACCESS_METHODS, POSTING_MS[mib][backing]))
    sim = {m: rows[(backing, 'private', m)] for m in ACCESS_METHODS}
    order = [(a, b, sim[a] < sim[b]) for a, b in ORDER]
    posting_order = [(a, b, posting[a] < posting[b]) for a, b in ORDER]
    pairs = []
    for x, y in itertools.combinations(ACCESS_METHODS, 2):
        slow, fast = (x, y) if posting[x] >= posting[y] else (y, x)
        rs, rm = posting[slow] / posting[fast], sim[slow] / sim[fast]
        pairs.append((slow, fast, rs, rm, rm / rs))
    return dict(order=order, posting_order=posting_order, pairs=pairs)


def block_failures(check):
    """Human-readable list of what a check_block result fails."""
    out = ['order %s < %s not kept' % (a, b) for a, b, ok in check['order'] if not ok]
    out += ['%s/%s = %.2f vs posting %.2f (x%.2f)' % (s, f, rm, rs, q) for s, f, rs, rm, q in check['pairs']
            if abs(q - 1) > TOLERANCE]
    return out


def status_failures(check):
    """What of a check_block result fails the bench's exit status: block_failures but an order the posting's
    own block does not keep either (its 2 MiB file rows have Read < POPULATE_READ)."""
    posting_holds = {(a, b): ok for a, b, ok in check['posting_order']}
    out = ['order %s < %s not kept' % (a, b) for a, b, ok in check['order'] if not ok and posting_holds[(a, b)]]
    return out + [f for f in block_failures(check) if not f.startswith('order ')]


def _row_names(sharing, backing):
    """The rows of a block, as the posting lists them: FALLOCATE rows only for shared mappings of a file."""
    if sharing == 'shared' and backing != 'anon4k':
        return ACCESS_METHODS + FALLOCATE_METHODS
    return ACCESS_METHODS


def _ms(ns):
    return '%9.3f ms' % (ns / 1e6)


def print_table(run, size):
    mib = size_mib(size)
    posting_mib, scale = posting_block(size)
    posting_label = 'posting %g MiB' % posting_mib + (' x %g/%d' % (mib, posting_mib) if scale != 1 else '')
    for sharing, title in SHARINGS:
        if not any(k[1] == sharing for k in run.rows):
            continue
        print('=' * 50)
        print('%g MiB %s:' % (mib, title))
        print('*' * 50)
        for backing, name in BACKINGS:
            for method in _row_names(sharing, backing):
                key = (backing, sharing, method)
                if key not in run.rows:
                    continue
                ns = run.rows[key]
                if ns is None:
                    text = '   n/a (%s)' % run.why.get(key, '')
                    print('%-15s: %-25s: %s' % (name, method, text))
                    continue
                line = '%-15s: %-25s: %s' % (name, method, _ms(ns))
                s = posting_ms(size, backing, method, sharing)
                if s is not None:
                    line += '   %s: %s   sim/posting %6.2f' % (posting_label, _ms(s * 1e6), ns / (s * 1e6))
                print(line)
        print('*' * 50)


def print_checks(run, size):
    posting_mib, _ = posting_block(size)
    print('acceptance, %g MiB run vs the posting\'s %d MiB block:' % (size_mib(size), posting_mib))
    results = {}
    for backing in CHECKED_BACKINGS:
        if any(run.rows.get((backing, 'private', m)) is None for m in ACCESS_METHODS):
            continue
        c = check_block(run.rows, size, backing)
        results[backing] = c
        fails = status_failures(c)
        posting_diff = ['%s < %s' % (a, b) for a, b, ok in c['posting_order'] if not ok]
        worst = max(abs(q - 1) for *_x, q in c['pairs'])
        print('  %-12s %s (largest ratio deviation %.0f%%)%s' % (
            dict(BACKINGS)[backing], 'meets it' if not fails else 'fails: ' + '; '.join(fails), 100 * worst,
            ('; in the posting itself %s does not hold (not counted)' % ', '.join(posting_diff)) if posting_diff
            else ''))
    return results


def print_shared_claims(run, size):
    """The posting's section V.2 claims on our MAP_SHARED rows; the list of those that fail."""
    claims = check_shared_claims(run.rows, size)
    if not claims:
        return []
    print('MAP_SHARED, what the posting\'s text (section V.2) claims, against its %d MiB block:'
          % posting_block(size)[0])
    for b, fast, slows, sentence, bad, pbad in claims:
        verdict = 'holds' if not bad else 'does NOT hold (not faster than %s)' % ', '.join(bad)
        if pbad:
            verdict += '; in the posting itself not faster than %s either (not counted)' % ', '.join(pbad)
        print('  %-12s %s < %s: %s' % (dict(BACKINGS)[b], fast, ', '.join(slows), verdict))
    for sentence in dict.fromkeys(c[3] for c in SHARED_CLAIMS):
        print('  "%s"' % sentence)
    return shared_claim_failures(claims)


def _size_job(job):
    """run_bench of one (size, reps), for pool_map."""
    size, reps = job
    return run_bench(size, reps=reps)


def records(size, run):
    """One record per row of a run: size, backing, sharing, method, the simulated time (None: n/a, with why)
    and the posting's figure scaled to the size where it has one."""
    out = []
    for (backing, sharing, method), ns in run.rows.items():
        posting = posting_ms(size, backing, method, sharing)
        out.append(dict(size=size, size_mib=size_mib(size), backing=backing, sharing=sharing, method=method,
                        ns=ns, ms=None if ns is None else ns / 1e6, posting_ms=posting,
                        why=run.why.get((backing, sharing, method))))
    return out


def plot_figure(rows, folder):
    """DIR/populate.png: one panel per size and sharing, a group of bars per backing, one bar per method
    (simulated ms; n/a rows are left out)."""
    path = figure_path(folder, 'populate')
    panels = sorted({(r['size_mib'], r['sharing']) for r in rows}, key=lambda p: (p[0], p[1] != 'private'))
    fig, axes = subplots(len(panels), width=9.0, height=4.5)
    for ax, (mib, sharing) in zip(axes, panels):
        mine = [r for r in rows if (r['size_mib'], r['sharing']) == (mib, sharing)]
        backings = [b for b, _name in BACKINGS if any(r['backing'] == b for r in mine)]
        methods = [m for m in ACCESS_METHODS + FALLOCATE_METHODS
                   if any(r['method'] == m and r['ms'] is not None for r in mine)]
        width = 0.8 / max(1, len(methods))
        colours = pyplot().get_cmap('tab20').colors
        for i, m in enumerate(methods):
            ms = {r['backing']: r['ms'] for r in mine if r['method'] == m}
            pos = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(backings))]
            ax.bar(pos, [ms.get(b) or 0 for b in backings], width, label=m, color=colours[i % len(colours)])
        ax.set_xticks(range(len(backings)), [dict(BACKINGS)[b] for b in backings])
        ax.set_ylabel('simulated time (ms)')
        ax.set_title('%g MiB %s' % (mib, dict(SHARINGS)[sharing]))
        ax.grid(True, axis='y', alpha=0.3)
        ax.legend(fontsize='x-small', ncol=4, loc='upper center', bbox_to_anchor=(0.5, -0.1))
    fig.suptitle('faultlab bench populate: touching vs MADV_POPULATE_(READ|WRITE) vs fallocate',
                 fontsize='medium')
    save(fig, path)
    return path


def main(size=None, quick=False, csv=None, json=None, plot=None, jobs=1):
    """Run and print the table for each size ('2M', '64M', or several: '2M,64M'; default 2M and 64M); the sizes
    run on `jobs` processes. 1 when a block fails the acceptance check (status_failures; not judged with
    --quick), 2 when the programs are not built or an output cannot be written."""
    status = bench_ready('populate', (PROGRAM,), csv, json, plot)
    if status is not None:
        return status
    sizes = tuple(s for s in str(size).split(',') if s) if size else (QUICK_SIZES if quick else DEFAULT_SIZES)
    print('faultlab bench populate: populate_bench SIZE under faultlab (sizes %s; simulated time, '
          'CLOCK_MONOTONIC, shortest of REPS runs)' % ', '.join(sizes))
    print('The posting measured 2 MiB and 4096 MiB; 4096 MiB is replaced by 64 MiB (or 256 MiB) for speed. Costs')
    print('that depend on the size come from a modeled 32 MiB last-level cache: clearing, copying and first')
    print('touches of memory not in it cost DRAM time. The posting\'s 4096 MiB figures are shown scaled to the')
    print('size run. Files: tmpfs is /tmp, file is /home (simulated disk). MAP_PRIVATE: their page cache is warm')
    print('for the non-FALLOCATE rows (as after the posting\'s first repetition), and FALLOCATE rows start from a')
    print('punched (empty) file. MAP_SHARED: every repetition starts from fresh, empty backing (the file punched')
    print('out, anonymous memory mapped anew), as the posting measured. Huge pages: a pool of 2 x size + 4 pages')
    print('of 2 MiB (nr_hugepages).')
    print(ACCEPTANCE)
    reps_of = {sz: 1 if quick else (3 if size_mib(sz) <= 8 else 2) for sz in sizes}
    rows, failed = [], False
    for sz, run in zip(sizes, pool_map(_size_job, [(sz, reps_of[sz]) for sz in sizes], jobs)):
        reps = reps_of[sz]
        print()
        print('populate_bench -r %d %s (guest RAM %d MiB): %d page faults, %d kernel fault-ins'
              % (reps, sz, default_ram(sz) >> 20, run.stats['page_faults'], run.stats.get('kernel_faultins', 0)))
        print_table(run, sz)
        checks = print_checks(run, sz)
        failed |= not quick and any(status_failures(c) for c in checks.values())
        failed |= not quick and bool(print_shared_claims(run, sz))
        rows += records(sz, run)
    write_rows(rows, csv, json)
    if plot:
        print('figure: %s' % plot_figure(rows, plot))
    if quick:
        print('acceptance: not judged with --quick (one repetition: its first touches find every frame cold)')
    elif failed:
        print('acceptance: NOT MET (see the blocks above; an order the posting itself does not keep is not counted)')
    return 1 if failed else 0


if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    sys.exit(main(size=args[0] if args else None, quick='--quick' in sys.argv[1:]))
