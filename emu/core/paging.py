"""x86-64 CPU mode set-up: long mode with 4-level paging, and small boot-time page tables.

These are the hardware's rules only; the kernel's page-table code (kernel/mm/pgtable.py) owns the
real tables of processes.
"""
import struct

from unicorn.x86_const import UC_X86_REG_CR0, UC_X86_REG_CR3, UC_X86_REG_CR4

PTE_P, PTE_RW, PTE_US = 1, 2, 4
PTE_NX = 1 << 63
PAGE = 4096

MSR_EFER = 0xC0000080
MSR_STAR = 0xC0000081
EFER_SCE, EFER_LME, EFER_LMA, EFER_NXE = 1, 1 << 8, 1 << 10, 1 << 11
CR0_PE, CR0_MP, CR0_NE, CR0_WP, CR0_PG = 1, 2, 1 << 5, 1 << 16, 1 << 31
CR4_PAE, CR4_OSFXSR, CR4_OSXMMEXCPT = 1 << 5, 1 << 9, 1 << 10


def build_identity_tables(buf, base, pages):
    """Write a PML4/PDPT/PD/PT chain at `base` (4 frames) in `buf` mapping each (va, flags) 1:1.

    Only for pages inside the first 2 MiB of the address space. Returns the CR3 value.
    """
    pml4, pdpt, pd, pt = base, base + PAGE, base + 2 * PAGE, base + 3 * PAGE
    buf[base:base + 4 * PAGE] = bytes(4 * PAGE)
    struct.pack_into('<Q', buf, pml4, pdpt | PTE_P | PTE_RW | PTE_US)
    struct.pack_into('<Q', buf, pdpt, pd | PTE_P | PTE_RW | PTE_US)
    struct.pack_into('<Q', buf, pd, pt | PTE_P | PTE_RW | PTE_US)
    for va, flags in pages:
        assert va < (1 << 21), "boot tables cover the first 2 MiB only"
        struct.pack_into('<Q', buf, pt + (va >> 12) * 8, (va & ~0xFFF) | flags)
    return pml4


def enable_long_mode_paging(uc, cr3):
    """Turn on PAE paging in long mode with NX and SYSCALL enabled, CR0.WP set."""
    uc.reg_write(UC_X86_REG_CR4, uc.reg_read(UC_X86_REG_CR4) | CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT)
    uc.msr_write(MSR_EFER, EFER_LME | EFER_LMA | EFER_SCE | EFER_NXE)
    uc.reg_write(UC_X86_REG_CR3, cr3)
    uc.reg_write(UC_X86_REG_CR0, CR0_PE | CR0_MP | CR0_NE | CR0_WP | CR0_PG)
