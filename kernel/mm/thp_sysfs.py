"""/sys/kernel/mm/transparent_hugepage (mm/huge_memory.c hugepage_init_sysfs): hpage_pmd_size, the
size of a PMD-mapped page, which programs read to learn the huge page size (the mm selftests'
read_pmd_pagesize). faultlab never maps anonymous memory with huge pages, as Linux with THP
"never": MADV_HUGEPAGE is accepted and changes nothing."""
from kernel.mm.hugetlb import HPAGE_SIZE


def thp_sysfs_init(k):
    """Publish hpage_pmd_size (r--r--r--)."""
    k.vfs.register_synth('/sys/kernel/mm/transparent_hugepage/hpage_pmd_size', lambda: '%d\n' % HPAGE_SIZE,
                         None, 0o444)
