"""/sys/kernel/mm/transparent_hugepage: Linux's formats ("[selected]" choices, numbers with ranges)
and the values programs write kept (the mm selftests save, change and restore them)."""
import os

from conftest import run_guest


def test_thp_knobs_read_write_as_linux(userland):
    r = run_guest(os.path.join(userland, 'thpknobs'))
    assert r.exit_code == 0
    out = r.stdout.decode().splitlines()
    T = '/sys/kernel/mm/transparent_hugepage/'
    assert out == [
        T + 'enabled: always [madvise] never',                   # a distribution kernel's default
        'write %senabled always -> 6 0' % T,
        T + 'enabled: [always] madvise never',                   # the value written is kept
        'write %senabled bogus -> -1 22' % T,                    # not one of the choices: EINVAL
        'write %skhugepaged/max_ptes_none 600 -> -1 22' % T,     # beyond HPAGE_PMD_NR - 1: EINVAL
        'write %skhugepaged/max_ptes_none 100 -> 3 0' % T,
        T + 'khugepaged/max_ptes_none: 100',
        T + 'defrag: always defer defer+madvise [madvise] never',
        T + 'hpage_pmd_size: 2097152',
    ]
