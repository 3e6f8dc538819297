"""Transparent huge pages for anonymous memory (mm/huge_memory.c, Linux 6.12)."""

# vm_flags of madvise(MADV_HUGEPAGE / MADV_NOHUGEPAGE) (include/linux/mm.h)
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000
