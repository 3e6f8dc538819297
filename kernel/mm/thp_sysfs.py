"""/sys/kernel/mm/transparent_hugepage (mm/huge_memory.c hugepage_init_sysfs, khugepaged_attr_group):
the knobs programs read and write, with Linux's formats. "enabled" starts at "madvise", as distribution
kernels build it (CONFIG_TRANSPARENT_HUGEPAGE_MADVISE), and decides with use_zero_page what an
anonymous fault maps (kernel/mm/huge_memory.py); defrag is kept (so a program that saves and restores
it sees its value); the khugepaged knobs are read by khugepaged (kernel/mm/khugepaged_scan.py), which
publishes its counters (pages_collapsed, full_scans) and the stores that wake it. hpage_pmd_size is the size of a PMD-mapped page, which programs
read to learn the huge page size (the mm selftests' read_pmd_pagesize). hugepages-<size>kB/ holds each
size's knobs (multi-size THP, Documentation/admin-guide/mm/transhuge.rst): 'enabled' for 16 kB .. 2048 kB,
read by the fault path (alloc_anon_folio, do_huge_pmd_anonymous_page), 'shmem_enabled' for 8 kB .. 2048 kB
(2048 kB read by shared anonymous memory's faults, the smaller sizes kept only), and stats/. The top-level
shmem_enabled decides for memfd and shared memory and overrides tmpfs mounts' huge= with deny and
force (kernel/mm/shmem_huge.py)."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.mm.huge_memory import (HPAGE_PMD_ORDER, THP_ORDERS_ALL_ANON, THP_ORDERS_ALL_FILE, ThpState,
                                             thp_size_dir)
from faultlab.kernel.mm.hugetlb_types import HPAGE_SIZE

THP = '/sys/kernel/mm/transparent_hugepage/'

# knob -> (choices, default) for the "[selected]" files (enabled_store, defrag_store, shmem_enabled_store)
CHOICES = {
    'enabled': (('always', 'madvise', 'never'), 'madvise'),
    'defrag': (('always', 'defer', 'defer+madvise', 'madvise', 'never'), 'madvise'),
    'shmem_enabled': (('always', 'within_size', 'advise', 'never', 'deny', 'force'), 'never'),
}
# knob -> (default, minimum, maximum) for the numeric files (use_zero_page_store, khugepaged's *_store)
NUMBERS = {
    'use_zero_page': (1, 0, 1),
    'khugepaged/defrag': (1, 0, 1),
    'khugepaged/scan_sleep_millisecs': (10000, 0, 0xFFFFFFFF),
    'khugepaged/alloc_sleep_millisecs': (60000, 0, 0xFFFFFFFF),
    'khugepaged/pages_to_scan': (4096, 1, 0xFFFFFFFF),
    'khugepaged/max_ptes_none': (511, 0, 511),
    'khugepaged/max_ptes_swap': (64, 0, 511),
    'khugepaged/max_ptes_shared': (256, 0, 511),
}


def _show_choice(name, values):
    """'always [madvise] never': every choice, the selected one in brackets."""
    return ' '.join('[%s]' % c if c == values[name] else c for c in CHOICES[name][0]) + '\n'


def _store_choice(name, values, data):
    """A write of one of the choices selects it; anything else is EINVAL (sysfs_streq)."""
    word = bytes(data).decode('ascii', 'replace').strip()
    if word not in CHOICES[name][0]:
        raise FsError(errno.EINVAL)
    values[name] = word
    if name == 'shmem_enabled' and word not in ('deny', 'force'):
        values['shm_mnt_huge'] = word             # shmem_enabled_store: shm_mnt follows, but for deny/force


def _store_number(name, values, data):
    """kstrtoul of the write, within the knob's range, else EINVAL."""
    text = bytes(data).decode('ascii', 'replace').strip()
    _default, lo, hi = NUMBERS[name]
    try:
        n = int(text, 0) if text.lower().startswith('0x') else int(text, 10)
    except ValueError:
        raise FsError(errno.EINVAL) from None
    if not lo <= n <= hi:
        raise FsError(errno.EINVAL)
    values[name] = n


# the per-size directories (mm/huge_memory.c thpsize_create, Linux 6.12): anon orders get 'enabled'
# (anon_enabled_store), file orders 'shmem_enabled' (thpsize_shmem_enabled_store), each its stats/
SIZE_CHOICES = {
    'enabled': ('always', 'inherit', 'madvise', 'never'),
    'shmem_enabled': ('always', 'inherit', 'within_size', 'advise', 'never'),
}
ANON_STATS = ('anon_fault_alloc', 'anon_fault_fallback', 'anon_fault_fallback_charge', 'zswpout', 'swpin',
              'swpout', 'swpout_fallback', 'nr_anon', 'nr_anon_partially_mapped')
FILE_STATS = ('shmem_alloc', 'shmem_fallback', 'shmem_fallback_charge')
SPLIT_STATS = ('split', 'split_failed', 'split_deferred')


def _show_size_choice(values, key, choices):
    return ' '.join('[%s]' % c if c == values[key] else c for c in choices) + '\n'


def _store_size_choice(values, key, choices, data):
    word = bytes(data).decode('ascii', 'replace').strip()
    if word not in choices:
        raise FsError(errno.EINVAL)
    values[key] = word


def _mthp_stat(k, order, name):
    """A size's stats/ file (sum_mthp_stat); the PMD size's fault counters are the THP ones."""
    st = k.mmsvc.thp
    if order == HPAGE_PMD_ORDER and name in ('anon_fault_alloc', 'anon_fault_fallback'):
        return k.stats['thp_fault_alloc' if name == 'anon_fault_alloc' else 'thp_fault_fallback']
    return st.mthp_stats.get((order, name), 0)


def thp_sizes_init(k, values):
    """hugepages-<size>kB/{enabled,shmem_enabled,stats/*} for orders 1 .. PMD_ORDER, with Linux's
    defaults ('never', the PMD size 'inherit')."""
    reg = k.vfs.register_synth
    for order in THP_ORDERS_ALL_FILE:
        d = THP + thp_size_dir(order) + '/'
        stats = FILE_STATS + SPLIT_STATS
        kinds = ['shmem_enabled']
        if order in THP_ORDERS_ALL_ANON:
            kinds.insert(0, 'enabled')
            stats = ANON_STATS + stats
        for kind in kinds:
            key = thp_size_dir(order) + '/' + kind
            values[key] = 'inherit' if order == HPAGE_PMD_ORDER else 'never'
            ch = SIZE_CHOICES[kind]
            reg(d + kind, lambda key=key, ch=ch: _show_size_choice(values, key, ch),
                lambda data, key=key, ch=ch: _store_size_choice(values, key, ch, data), 0o644)
        for name in sorted(stats):
            reg(d + 'stats/' + name, lambda o=order, n=name: '%d\n' % _mthp_stat(k, o, n), None, 0o444)


def thp_sysfs_init(k):
    """Publish hpage_pmd_size (r--r--r--), the policy knobs and khugepaged's (rw-r--r--)."""
    values = {name: default for name, (_c, default) in CHOICES.items()}
    values.update({name: spec[0] for name, spec in NUMBERS.items()})
    k.mmsvc.thp = k.frames.thp_state = ThpState(values)     # what the fault path (and kpageflags) reads
    reg = k.vfs.register_synth
    reg(THP + 'hpage_pmd_size', lambda: '%d\n' % HPAGE_SIZE, None, 0o444)
    values['shm_mnt_huge'] = 'never'          # SHMEM_SB(shm_mnt)->huge: shmem_huge at boot
    for name in CHOICES:
        reg(THP + name, lambda n=name: _show_choice(n, values),
            lambda d, n=name: _store_choice(n, values, d), 0o644)
    for name in NUMBERS:
        reg(THP + name, lambda n=name: '%d\n' % values[n],
            lambda d, n=name: _store_number(n, values, d), 0o644)
    thp_sizes_init(k, values)
