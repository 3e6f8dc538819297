"""The 2 MiB huge page's geometry (include/linux/hugetlb.h, arch/x86 page_types.h): its shift, size,
order and mask, the MAP_HUGE_* size encoding, the hugetlbfs magic, and the questions asked of a VMA.
The hugetlb core (kernel/mm/hugetlb.py), hugetlbfs and the page-table walkers share them from here."""
from faultlab.kernel.mm.vma import VM_HUGETLB

HPAGE_SHIFT = 21
HPAGE_SIZE = 1 << HPAGE_SHIFT
HPAGE_MASK = ~(HPAGE_SIZE - 1)
HUGETLB_PAGE_ORDER = HPAGE_SHIFT - 12
PAGES_PER_HPAGE = 1 << HUGETLB_PAGE_ORDER
MAP_HUGE_SHIFT = 26
MAP_HUGE_MASK = 0x3F
HUGETLBFS_MAGIC = 0x958458F6


def is_vm_hugetlb_page(vma):
    """Is this a hugetlb mapping?"""
    return bool(vma.vm_flags & VM_HUGETLB)


def vma_kernel_pagesize(vma):
    """The page size the kernel maps vma with (KernelPageSize in smaps)."""
    return HPAGE_SIZE if vma.vm_flags & VM_HUGETLB else 4096


def huge_size_ok(flags):
    """The MAP_HUGE_* / MFD_HUGE_* size in flags: 0 (default) or 21 (2 MiB) are the sizes we have."""
    return ((flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK) in (0, HPAGE_SHIFT)
