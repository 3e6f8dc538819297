"""Which guest pages the user touched since the last look: read from Unicorn's own software TLB.

Unicorn (QEMU's softmmu) translates every guest load, store and fetch through a direct-mapped software
TLB per MMU mode; an entry is filled by a real walk of the guest page tables at the first access to a
page after a flush, and every flush empties it. So between two flushes its valid entries are the pages
the guest touched (a page whose entry another page's replaced is lost; with QEMU's table at least twice
as large as the pages in use, which its dynamic resizing keeps, few are). Reading it costs nothing while
the guest runs: no memory hook, no change to the page tables (the kernel's Accessed bits stay the CPU's).

A page whose entry another page took is not lost from the count: the evicted entry goes to QEMU's
victim TLB and `vindex`, reset at every flush, counts those evictions; the report gives their number.

Layout (Unicorn 2.1.4, QEMU 5.0): before `env` in X86CPU lies CPUNegativeOffsetState, whose CPUTLB is
CPUTLBCommon, `CPUTLBDesc d[NB_MMU_MODES]` (696 bytes each: large_page_addr, large_page_mask,
window_begin_ns, window_max_entries, n_used_entries, vindex, the victim TLB ...) and `CPUTLBDescFast
f[NB_MMU_MODES]` = 3 pairs (mask, table) followed by icount_decr: `mask` is (entries - 1) << 6 and each
CPUTLBEntry is 64 bytes: addr_read, addr_write, addr_code, the guest-physical address of the page
(Unicorn's addition), addend, padding; an unused entry reads all ones. `calibrate()` checks this on a
scratch Unicorn at start-up (pages that collide in the table: the count of valid entries and of
evictions); if it disagrees, the CPU reports nothing and the kernel falls back to Accessed bits.
"""
import ctypes

from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_64, UC_PROT_ALL

from faultlab.core import internals
from faultlab.core.paging import PTE_P, PTE_RW, build_identity_tables, enable_long_mode_paging

NB_MMU_MODES = 3
FAST_OFF = -0x40            # offsetof(f[0]) - offsetof(env)
DESC_BYTES = 0x2B8          # sizeof(CPUTLBDesc)
VINDEX_OFF = -0x2D8 - (NB_MMU_MODES - 1) * DESC_BYTES      # offsetof(d[0].vindex) - offsetof(env)
ENTRY_BYTES = 64
ENTRY_QWORDS = ENTRY_BYTES // 8
_EMPTY = (1 << 64) - 1
_PAGE_MASK = ~0xFFF & _EMPTY
_MAX_ENTRIES = 1 << 22      # CPU_TLB_DYN_MAX_BITS

_calibrated = None


class SoftTlb:
    """The valid entries of the CPU's software TLB (every MMU mode)."""

    def __init__(self, env_addr, host_base):
        self._host_base = host_base     # host address of guest-physical 0 (guest RAM is one block)
        self._desc = [(env_addr + FAST_OFF + 16 * i, env_addr + VINDEX_OFF + DESC_BYTES * i)
                      for i in range(NB_MMU_MODES)]
        self.capacity = 0           # entries of the busiest table at the last pages() (QEMU resizes them at flushes)
        self.evicted = 0            # entries of the busiest table replaced by another page since the flush

    def _tables(self):
        for fast, vindex in self._desc:
            mask = ctypes.c_uint64.from_address(fast).value
            table = ctypes.c_uint64.from_address(fast + 8).value
            n = (mask >> 6) + 1
            if not table or mask & 0x3F or n & (n - 1) or n > _MAX_ENTRIES:
                continue
            if not ctypes.c_uint64.from_address(vindex - 8).value:          # n_used_entries
                continue
            yield n, table, ctypes.c_uint64.from_address(vindex).value

    def pages(self):
        """{virtual page address: guest-physical page address} of the valid entries (the virtual
        address may carry QEMU's flag bits below the page: TLB_INVALID_MASK and the like)."""
        out = {}
        self.capacity = self.evicted = 0
        busiest = -1
        for n, table, evicted in self._tables():
            q = memoryview(ctypes.string_at(table, n * ENTRY_BYTES)).cast('Q')
            # every present x86 page is readable: addr_read is set in every entry a walk filled;
            # the host address of the page is addr_read + addend, minus the host base: guest-physical
            reads = q[0::ENTRY_QWORDS].tolist()
            base = self._host_base
            found = {va: (va + add - base) & _PAGE_MASK
                     for va, add in zip(reads, q[4::ENTRY_QWORDS].tolist()) if va != _EMPTY}
            out.update(found)
            if len(found) > busiest:
                busiest = len(found)
                self.capacity = n
                self.evicted = evicted
        return out


def calibrate():
    """Touch known pages on a scratch CPU and check they show in the table with their physical
    addresses; True when the layout is the one described above."""
    global _calibrated
    if _calibrated is not None:
        return _calibrated
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    ram = 0x200000
    host = ctypes.create_string_buffer(ram + 0x1000)
    base = (ctypes.addressof(host) + 0xFFF) & ~0xFFF
    uc.mem_map_ptr(0, ram, UC_PROT_ALL, base)
    buf = bytearray(ram)
    code_va = 0x8000
    # five pairs of pages 1 MiB apart: the same entry of a 256-entry table (QEMU's initial size)
    data = [(va + off, PTE_P | PTE_RW) for va in range(0x20000, 0x25000, 0x1000) for off in (0, 0x100000)]
    cr3 = build_identity_tables(buf, 0x1000, [(code_va, PTE_P | PTE_RW)] + data)
    code = b''.join(bytes([0x48, 0x8B, 0x04, 0x25]) + (va + 8).to_bytes(4, 'little') for va, _ in data)
    buf[code_va:code_va + len(code)] = code
    uc.mem_write(0, bytes(buf))
    enable_long_mode_paging(uc, cr3)
    env = internals.EnvView(uc)
    try:
        uc.emu_start(code_va, code_va + len(code))
        soft = SoftTlb(env.addr, base)
        seen = soft.pages()
    except (UcError, ValueError, OSError):
        return False
    later = [va for va, _ in data if va >= 0x100000]
    _calibrated = (soft.capacity == 256 and soft.evicted == 5 and len(seen) == 6
                   and all(seen.get(va) == va for va in later) and seen.get(code_va, 0) & _PAGE_MASK == code_va)
    return _calibrated
