"""x86-64 4-level page tables in guest physical memory, with Linux's PTE bit layout.

The CPU (Unicorn's MMU) walks these same tables and sets Accessed/Dirty itself, so every change here is
immediately what the hardware sees; changes that remove or restrict a translation need a TLB flush,
which the caller requests through `flush_tlb_range`-style helpers in mm.
"""
from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE

_PAGE_PRESENT = 1 << 0
_PAGE_RW = 1 << 1
_PAGE_USER = 1 << 2
_PAGE_PWT = 1 << 3
_PAGE_PCD = 1 << 4
_PAGE_ACCESSED = 1 << 5
_PAGE_DIRTY = 1 << 6
_PAGE_PSE = 1 << 7
_PAGE_GLOBAL = 1 << 8
_PAGE_SOFT_DIRTY = 1 << 11
_PAGE_NX = 1 << 63
PTE_PFN_MASK = 0x000FFFFFFFFFF000

# intermediate levels are permissive; the leaf decides
_PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY

PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT = 39, 30, 21
PMD_SIZE = 1 << PMD_SHIFT
PMD_PFN_MASK = PTE_PFN_MASK & ~(PMD_SIZE - 1)
PTRS_PER_TABLE = 512
LEVEL_NAMES = ('pgd', 'pud', 'pmd', 'pte')

# swap entries (arch/x86/include/asm/pgtable_64.h): type in the top 5 bits, offset inverted
# starting at bit 9 (L1TF mitigation), present bit clear.
SWP_TYPE_BITS = 5
SWP_OFFSET_FIRST_BIT = 9
SWP_OFFSET_SHIFT = SWP_OFFSET_FIRST_BIT + SWP_TYPE_BITS
_U64 = (1 << 64) - 1


def pfn_pte(pfn, prot):
    """Build a PTE mapping `pfn` with protection bits `prot`."""
    return (pfn << PAGE_SHIFT) | prot


def pte_pfn(pte):
    return (pte & PTE_PFN_MASK) >> PAGE_SHIFT


def pte_present(pte):
    return pte & _PAGE_PRESENT


def pte_none(pte):
    return pte == 0


def pte_write(pte):
    return pte & _PAGE_RW


def pte_dirty(pte):
    return pte & _PAGE_DIRTY


def pte_young(pte):
    return pte & _PAGE_ACCESSED


def pte_wrprotect(pte):
    return pte & ~_PAGE_RW


def pte_mkclean(pte):
    return pte & ~_PAGE_DIRTY


def pte_mkold(pte):
    return pte & ~_PAGE_ACCESSED


def is_swap_pte(pte):
    return pte != 0 and not pte & _PAGE_PRESENT


def swp_entry_to_pte(swp_type, offset):
    """__swp_entry(type, offset) as a non-present PTE."""
    return ((((~offset) << SWP_OFFSET_SHIFT) & _U64) >> SWP_TYPE_BITS) | (swp_type << (64 - SWP_TYPE_BITS))


def pte_to_swp_entry(pte):
    """(type, offset) of a swap PTE."""
    swp_type = pte >> (64 - SWP_TYPE_BITS)
    offset = (((~pte) << SWP_TYPE_BITS) & _U64) >> SWP_OFFSET_SHIFT
    return swp_type, offset


def vm_get_page_prot(readable, writable, executable):
    """The leaf PTE protection bits for a VMA's access rights (user page)."""
    prot = _PAGE_PRESENT | _PAGE_USER
    if writable:
        prot |= _PAGE_RW
    if not executable:
        prot |= _PAGE_NX
    return prot


# protection_map[VM_READ|VM_WRITE|VM_EXEC] (mm/mmap.c): the same bits, looked up instead of computed;
# PROT_NONE is a kernel-only entry, so every user access faults
protection_map = tuple(vm_get_page_prot(f & 1, f & 2, f & 4) if f else vm_get_page_prot(0, 0, 0) & ~_PAGE_USER
                       for f in range(8))


def pte_flags_str(pte):
    """Human-readable flags of an entry, as `monitor pte` and reports print them."""
    if not pte:
        return 'none'
    if not pte & _PAGE_PRESENT:
        t, off = pte_to_swp_entry(pte)
        return 'swap(type=%d, offset=%#x)' % (t, off)
    bits = [('P', _PAGE_PRESENT), ('RW', _PAGE_RW), ('US', _PAGE_USER), ('A', _PAGE_ACCESSED),
            ('D', _PAGE_DIRTY), ('PS', _PAGE_PSE), ('SD', _PAGE_SOFT_DIRTY), ('NX', _PAGE_NX)]
    return ' '.join(n for n, b in bits if pte & b) + ' pfn=%#x' % pte_pfn(pte)


class PageTables:
    """One address space's 4-level tables: walk, allocate levels, read and set leaf entries."""

    def __init__(self, phys, alloc_table):
        """alloc_table() returns a zeroed frame number for a new table level, or None (OOM)."""
        self.phys = phys
        self._alloc_table = alloc_table
        pfn = alloc_table()
        if pfn is None:
            raise MemoryError("no memory for a page directory")
        self.pgd = pfn << PAGE_SHIFT
        self.table_pfns = {pfn: None}     # the table frames, in allocation order (an ordered set)
        self._pt_cache = {}          # va >> PMD_SHIFT -> physical address of that leaf table
        self.ptes = phys.qwords       # RAM as 64-bit entries: ptes[slot >> 3] is the entry at slot
        self.thp = {}                 # va >> PMD_SHIFT -> deposited table pfn, for each transparent huge PMD
        self.split_hook = None        # split_hook(va): __split_huge_pmd of the THP PMD at va (kernel/mm/huge_memory.py)

    def _new_table(self, ea):
        """A missing level below the entry at ea: link a zeroed table there; returns the new entry."""
        pfn = self._alloc_table()
        if pfn is None:
            raise MemoryError("no memory for a page table")
        self.table_pfns[pfn] = None
        e = (pfn << PAGE_SHIFT) | _PAGE_TABLE
        self.phys.write64(ea, e)
        return e

    def pmd_slot(self, va, create=True):
        """Physical address of the PMD entry for va, creating the upper levels if asked (pmd_alloc)."""
        rd = self.phys.read64
        table = self.pgd
        for shift in (PGDIR_SHIFT, PUD_SHIFT):
            ea = table + ((va >> shift) & 0x1FF) * 8
            e = rd(ea)
            if not e & _PAGE_PRESENT:
                if not create:
                    return None
                e = self._new_table(ea)
            table = e & PTE_PFN_MASK
        return table + ((va >> PMD_SHIFT) & 0x1FF) * 8

    def huge_pmd(self, va):
        """The PMD entry mapping va as a 2 MiB leaf (PSE set), or 0."""
        if (va >> PMD_SHIFT) in self._pt_cache:
            return 0
        slot = self.pmd_slot(va, create=False)
        e = 0 if slot is None else self.phys.read64(slot)
        return e if e & _PAGE_PSE else 0

    def set_huge_pmd_slot(self, va):
        """The PMD slot for a 2 MiB leaf at va; an empty page table that was there is freed first.

        Returns (slot, the freed table's pfn or None); raises MemoryError without memory for the levels.
        """
        slot = self.pmd_slot(va, create=True)
        e = self.phys.read64(slot)
        freed = None
        if e & _PAGE_PRESENT and not e & _PAGE_PSE:
            table = e & PTE_PFN_MASK
            if any(self.phys.read(table, 4096)):
                raise AssertionError("huge PMD over a page table still in use at %#x" % va)
            self.phys.write64(slot, 0)
            self._pt_cache.pop(va >> PMD_SHIFT, None)
            freed = table >> PAGE_SHIFT
            del self.table_pfns[freed]
        return slot, freed

    def huge_pmds(self, start, end):
        """Yield (va, slot, entry) for the 2 MiB leaves (or non-present huge entries) fully inside [start, end)."""
        lo = (start + PMD_SIZE - 1) & ~(PMD_SIZE - 1)
        hi = end & ~(PMD_SIZE - 1)
        if hi - lo <= 8 * PMD_SIZE:          # a few huge pages (madvise, a fault's range): look each one up
            entries = []
            for va in range(lo, hi, PMD_SIZE):
                slot = self.pmd_slot(va, create=False)
                e = 0 if slot is None else self.phys.read64(slot)
                if e:
                    entries.append((va, slot, e))
        else:
            entries = self._pmd_entries(lo, hi)
        for va, slot, e in entries:
            if e & _PAGE_PSE and (va >> PMD_SHIFT) not in self._pt_cache and (va >> PMD_SHIFT) not in self.thp:
                yield va, slot, e

    def _pmd_entries(self, start, end):
        """[(va, slot, entry)] of the non-zero PMD entries covering [start, end), in address order: a
        walk of the tables (absent upper levels skip their whole range), each table read as one slice
        of the RAM's 64-bit view."""
        ptes = self.ptes
        out = []

        def walk(table, shift, base):
            lo, hi = max(start, base), min(end, base + (512 << shift))
            i0, i1 = (lo - base) >> shift, ((hi - 1 - base) >> shift) + 1
            q = table >> 3
            for i, e in [ie for ie in enumerate(ptes[q + i0:q + i1].tolist(), i0) if ie[1]]:
                va = base + (i << shift)
                if shift == PMD_SHIFT:
                    out.append((va, table + i * 8, e))
                elif e & _PAGE_PRESENT:
                    walk(e & PTE_PFN_MASK, shift - 9, va)
        if start < end:
            walk(self.pgd, PGDIR_SHIFT, 0)
        return out

    def pte_slot(self, va, create=True):
        """Physical address of the leaf PTE for va, creating missing levels if asked (pte_alloc).

        A 2 MiB leaf (huge PMD) has no PTE: None (the hugetlb code handles those mappings).
        """
        key = va >> PMD_SHIFT
        pt = self._pt_cache.get(key)
        if pt is None:
            ea = self.pmd_slot(va, create)
            if ea is None:
                return None
            e = self.phys.read64(ea)
            if e & _PAGE_PSE:
                if not create:
                    return None
                if key in self.thp and self.split_hook is not None:
                    self.split_hook(va)          # split_huge_pmd: a 4 KiB entry is wanted inside a THP
                    return self.pte_slot(va, create)
                raise AssertionError("4 KiB PTE wanted inside a huge PMD at %#x" % va)
            if not e & _PAGE_PRESENT:
                if not create:
                    return None
                e = self._new_table(ea)
            table = e & PTE_PFN_MASK
            pt = self._pt_cache[key] = table
        return pt + ((va >> PAGE_SHIFT) & 0x1FF) * 8

    def pte_tables(self, start, end):
        """The address of each 2 MiB range in [start, end) that has a PTE table: a walk of the tables
        (absent upper levels skip their whole range), not of the address range."""
        if start < end and start >> PMD_SHIFT == (end - 1) >> PMD_SHIFT:
            # one 2 MiB range: the table cache (pte_slot) knows whether it has a PTE table
            return [start & ~(PMD_SIZE - 1)] if self.pte_slot(start, create=False) is not None else []
        return [va for va, _slot, e in self._pmd_entries(start, end) if e & _PAGE_PRESENT and not e & _PAGE_PSE]

    def release_all(self):
        """pgd_free and the levels below it, for an address space nobody uses any more: the pfns of
        every table frame (the caller frees them); the tables must not be used afterwards."""
        pfns, self.table_pfns = list(self.table_pfns), {}
        self._pt_cache.clear()
        self.thp.clear()
        return pfns

    def free_pte_table(self, va):
        """free_pte_range: clear the PMD entry of va's PTE table; returns the table's pfn (or None)."""
        ea = self.pmd_slot(va, create=False)
        if ea is None:
            return None
        e = self.phys.read64(ea)
        if not e & _PAGE_PRESENT or e & _PAGE_PSE:
            return None
        self.phys.write64(ea, 0)
        self._pt_cache.pop(va >> PMD_SHIFT, None)
        pfn = (e & PTE_PFN_MASK) >> PAGE_SHIFT
        del self.table_pfns[pfn]
        return pfn

    def set_pte(self, slot, pte):
        """set_pte: write a leaf entry whose slot the caller already holds (no walk)."""
        self.ptes[slot >> 3] = pte

    def get_pte(self, va):
        """The leaf entry for va: a PTE, or the PMD of a 2 MiB leaf (0 when no table exists)."""
        slot = self.pte_slot(va, create=False)
        if slot is None:
            e = self.huge_pmd(va)
            if e and (va >> PMD_SHIFT) in self.thp:    # a THP: the 4 KiB entry its split would give
                return ((e & PMD_PFN_MASK) + (((va >> PAGE_SHIFT) & 0x1FF) << PAGE_SHIFT)) | \
                    (e & ~PTE_PFN_MASK & ~_PAGE_PSE)
            return e
        return self.phys.read64(slot)

    def walk(self, va):
        """[(level name, entry address, entry)] from the PGD down as far as entries are present."""
        out = []
        table = self.pgd
        for name, shift in zip(LEVEL_NAMES, (PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT, PAGE_SHIFT)):
            ea = table + ((va >> shift) & 0x1FF) * 8
            e = self.phys.read64(ea)
            out.append((name, ea, e))
            if not e & _PAGE_PRESENT or (name != 'pte' and e & _PAGE_PSE):
                break
            table = e & PTE_PFN_MASK
        return out

    def translate(self, va):
        """Physical address for va, or None if the leaf is not present (no faulting)."""
        pte = self.get_pte(va)
        if not pte & _PAGE_PRESENT:
            return None
        if pte & _PAGE_PSE and (va >> PMD_SHIFT) not in self._pt_cache:
            return (pte & PMD_PFN_MASK) | (va & (PMD_SIZE - 1))
        return (pte & PTE_PFN_MASK) | (va & (PAGE_SIZE - 1))

    def present_ptes(self, start, end, split=True):
        """[(va, slot, pte)] for the non-empty leaf entries in [start, end), in address order (each
        PTE table is read as one slice of the RAM's 64-bit view). Transparent huge PMDs in the range
        are split first (split_huge_pmd), unless the caller handles them itself (split=False: they are
        left out)."""
        if split and self.thp and self.split_hook is not None:
            lo, hi = start >> PMD_SHIFT, (end - 1) >> PMD_SHIFT
            for key in sorted(k for k in self.thp if lo <= k <= hi):
                self.split_hook(key << PMD_SHIFT)
        ptes = self.ptes
        if start < end and start >> PMD_SHIFT == (end - 1) >> PMD_SHIFT:
            # inside one 2 MiB range (an munmap of a few pages): its PTE table, if any, from the table
            # cache instead of a walk from the top
            slot0 = self.pte_slot(start, create=False)
            if slot0 is None:
                return []
            i0 = slot0 >> 3
            return [(start + (i << PAGE_SHIFT), slot0 + i * 8, pte)
                    for i, pte in enumerate(ptes[i0:i0 + ((end - start) >> PAGE_SHIFT)].tolist()) if pte]
        out = []
        for base in self.pte_tables(start & ~(PMD_SIZE - 1), end):
            va0 = max(start, base)
            slot0 = self.pte_slot(va0, create=False)
            n = (min(end, base + PMD_SIZE) - va0) >> PAGE_SHIFT
            i0 = slot0 >> 3
            out += [(va0 + (i << PAGE_SHIFT), slot0 + i * 8, pte)
                    for i, pte in enumerate(ptes[i0:i0 + n].tolist()) if pte]
        return out
