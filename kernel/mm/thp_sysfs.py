"""/sys/kernel/mm/transparent_hugepage (mm/huge_memory.c hugepage_init_sysfs, khugepaged_attr_group):
the knobs programs read and write, with Linux's formats. "enabled" starts at "madvise", as distribution
kernels build it (CONFIG_TRANSPARENT_HUGEPAGE_MADVISE), and decides with use_zero_page what an
anonymous fault maps (kernel/mm/huge_memory.py); defrag and the khugepaged knobs are kept (so a program
that saves and restores them sees its values) without changing anything. hpage_pmd_size is the size of a PMD-mapped page, which programs
read to learn the huge page size (the mm selftests' read_pmd_pagesize)."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.mm.huge_memory import ThpState
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
COUNTERS = ('khugepaged/pages_collapsed', 'khugepaged/full_scans')


def _show_choice(name, values):
    """'always [madvise] never': every choice, the selected one in brackets."""
    return ' '.join('[%s]' % c if c == values[name] else c for c in CHOICES[name][0]) + '\n'


def _store_choice(name, values, data):
    """A write of one of the choices selects it; anything else is EINVAL (sysfs_streq)."""
    word = bytes(data).decode('ascii', 'replace').strip()
    if word not in CHOICES[name][0]:
        raise FsError(errno.EINVAL)
    values[name] = word


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


def thp_sysfs_init(k):
    """Publish hpage_pmd_size (r--r--r--), the policy knobs and khugepaged's (rw-r--r--)."""
    values = {name: default for name, (_c, default) in CHOICES.items()}
    values.update({name: spec[0] for name, spec in NUMBERS.items()})
    k.mmsvc.thp = k.frames.thp_state = ThpState(values)     # what the fault path (and kpageflags) reads
    reg = k.vfs.register_synth
    reg(THP + 'hpage_pmd_size', lambda: '%d\n' % HPAGE_SIZE, None, 0o444)
    for name in CHOICES:
        reg(THP + name, lambda n=name: _show_choice(n, values),
            lambda d, n=name: _store_choice(n, values, d), 0o644)
    for name in NUMBERS:
        reg(THP + name, lambda n=name: '%d\n' % values[n],
            lambda d, n=name: _store_number(n, values, d), 0o644)
    for name in COUNTERS:
        reg(THP + name, lambda: '0\n', None, 0o444)
