"""The 2 MiB huge page's geometry (include/linux/hugetlb.h, arch/x86 page_types.h): its shift, size,
order and mask, the MAP_HUGE_* size encoding, the hugetlbfs magic, and the questions asked of a VMA.
The hugetlb core (kernel/mm/hugetlb.py), hugetlbfs and the page-table walkers share them from here.
The 1 GiB (PUD-sized, "gigantic") page's shift and size name the second hstate, whose pool is empty."""
from faultlab.kernel.mm.vma import VM_HUGETLB

HPAGE_SHIFT = 21
HPAGE_SIZE = 1 << HPAGE_SHIFT
HPAGE_MASK = ~(HPAGE_SIZE - 1)
HUGETLB_PAGE_ORDER = HPAGE_SHIFT - 12
PAGES_PER_HPAGE = 1 << HUGETLB_PAGE_ORDER
GIGANTIC_PAGE_SHIFT = 30                  # PUD_SHIFT: x86-64 CPUs with pdpe1gb map 1 GiB pages
GIGANTIC_PAGE_SIZE = 1 << GIGANTIC_PAGE_SHIFT
MAP_HUGE_SHIFT = 26
MAP_HUGE_MASK = 0x3F
MAP_HUGE_2MB = HPAGE_SHIFT << MAP_HUGE_SHIFT
MAP_HUGE_1GB = GIGANTIC_PAGE_SHIFT << MAP_HUGE_SHIFT
HUGETLBFS_MAGIC = 0x958458F6


def is_vm_hugetlb_page(vma):
    """Is this a hugetlb mapping?"""
    return bool(vma.vm_flags & VM_HUGETLB)


def vma_kernel_pagesize(vma):
    """The page size the kernel maps vma with (KernelPageSize in smaps)."""
    return HPAGE_SIZE if vma.vm_flags & VM_HUGETLB else 4096


def huge_size_log(flags):
    """The MAP_HUGE_* / MFD_HUGE_* size in flags: log2 of the page size, 0 for the default size."""
    return (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK


def huge_size_ok(flags):
    """Is the size in flags the default or 2 MiB, the hstate whose pages faultlab maps?"""
    return huge_size_log(flags) in (0, HPAGE_SHIFT)


def is_gigantic_size(flags):
    """Does flags ask for the 1 GiB hstate (MAP_HUGE_1GB, MFD_HUGE_1GB)?"""
    return huge_size_log(flags) == GIGANTIC_PAGE_SHIFT
