"""The cycle model: what every guest instruction and every kernel action costs.

One table of named costs, in cycles of a core running at `freq_hz`. Each figure comes with its source
(a measurement class or a published figure); a user overrides any of them with `--costs FILE`
(JSON object or `name = value` lines). Simulated time is cycles / freq_hz.
"""
import json
import os

from capstone import Cs, CS_ARCH_X86, CS_MODE_64
from capstone import x86_const as X

from faultlab.core.uarch.coster import BlockPricer
from faultlab.core.uarch.profiles import PROFILES
from faultlab.core.uarch.profiles import profile as uarch_profile

# name: (cycles, where the figure comes from)
DEFAULT_COSTS = {
    # guest instructions (a simple in-order approximation of a modern x86 core)
    'insn': (1, 'base cost of one retired instruction (IPC ~1)'),
    'insn_mem': (1, 'extra for an instruction with a memory operand (L1 hit)'),
    'insn_mul': (2, 'extra for integer multiply (latency 3)'),
    'insn_div': (24, 'extra for integer divide (Agner Fog: 26-40 for 64-bit idiv on Skylake)'),
    'insn_fp': (3, 'extra for x87/SSE floating-point arithmetic'),
    'insn_string': (8, 'extra for a rep-prefixed string instruction (per execution, not per element)'),
    'insn_serialize': (30, 'extra for cpuid/rdtsc/xgetbv/lfence/mfence'),
    # trap entry and exit
    'exception_entry': (183, '#PF delivery through the IDT to the handler, pipeline flush included. The table of the '
                        'MADV_POPULATE posting (David Hildenbrand, section V, 3 GHz) has anon Read - POPULATE_READ '
                        '(the same faults taken from user mode vs from gup without a trap) = 345 cycles per page at '
                        '2 MiB, 325 at 4 GiB: entry + exit + vma_lookup (40) = 335, entry + exit = 295, split as '
                        'Yizhou Shan measured the two directions ("x86 Ring Switch Overhead (Page Fault version)", '
                        'lastweek.io xperf, 2019: user to kernel ~440, kernel to user ~270 cycles on a Xeon E5 v3, '
                        'bare metal): 295 x 440/710'),
    'exception_exit': (112, 'return from a #PF to user mode (exit path to the iretq): 295 x 270/710, see exception_entry'),
    'syscall_entry': (70, 'syscall instruction + entry code (no KPTI)'),
    'syscall_exit': (50, 'sysretq + exit code'),
    'syscall_dispatch': (30, 'table dispatch and argument checks'),
    # memory management
    'pgtable_walk_level': (15, 'software walk: one page-table level read (cache hit)'),
    'pte_set': (160, 'map (or unmap) one page in a PTE: set_pte plus the page reference, mapcount/rmap and RSS '
                'accounting that go with it. Table of the MADV_POPULATE posting (section V, 3 GHz): MAP_PRIVATE '
                'memfd/tmpfs/file POPULATE_READ of cached pages = 0.039 ms / 512 pages = 229 cycles/page (4 GiB: '
                '224-230), one handle_mm_fault per 16 pages (fault-around maps the other 15) and gup\'s walk of each '
                'already-mapped page (4 pgtable_walk_level = 60): 229 - 60 - (fault_handle + pagecache_lookup) / 16 '
                '= 150; memfd Read (one trap per 16 pages) = 199 cycles/page gives 160'),
    'tlb_flush': (250, 'full TLB flush (CR3 write) or INVLPG + shootdown bookkeeping. Table of the MADV_POPULATE posting: anon '
                  'Read/Write - Read - Write (breaking the zero-page COW flushes the old translation) = 229 '
                  'cycles/page at 2 MiB, 308 at 4 GiB (3 GHz); 250 here'),
    'tlb_shootdown': (3000, 'flush_tlb_others: IPI to the CPUs running the mm and wait for their flush '
                      '(smp_call_function_many round trip, 1-2 us on x86 VMs)'),
    'tlb_shootdown_cpu': (300, 'per target CPU of a shootdown: IPI send and its acknowledgement'),
    'cacheline_transfer': (200, 'an atomic on a cache line another CPU wrote last (contended lock word; '
                           '~60-70 ns cross-core on a multi-socket Xeon)'),
    'rwsem_wake': (3000, 'a reader or writer that slept on an rw_semaphore: wake-up IPI and scheduling latency'),
    'ipi_wake_idle': (3000, 'extra wait of a TLB shootdown when a target CPU is halted in its idle loop (idle, or '
                      'asleep on a lock) but still in the mm\'s cpumask (lazy TLB: 4.15 sends it the IPI too): '
                      'the IPI has to wake it (C1 exit and return from idle, ~1 us) before it flushes and acks'),
    'vma_lookup': (40, 'find_vma in the VMA tree'),
    'page_alloc': (370, 'buddy allocator order-0 from the per-CPU list, memcg charge. Table of the MADV_POPULATE posting anon 4 KiB '
                   'POPULATE_WRITE - POPULATE_READ = 574 cycles/page at 2 MiB (frames in cache) = page_alloc + '
                   'page_zero (175)'),
    'page_free': (150, 'free an order-0 page to the per-CPU list'),
    'khugepaged_pte_scan': (4, 'hpage_collapse_scan_pmd / hpage_collapse_scan_file per entry of the 2 MiB range: one '
                            'load of an entry in a cached table and a few tests; the L1 data cache load-to-use latency '
                            'is 4-5 cycles (Intel 64 and IA-32 Architectures Optimization Reference Manual, Skylake '
                            'microarchitecture; 7-cpu.com: 4 cycles on Skylake and Zen 2)'),
    'page_zero': (175, 'clear_page 4 KiB of a frame in the last-level cache (~23 B/cycle). Table of the MADV_POPULATE posting hugetlbfs '
                  '2 MiB: 0.030 ms for one 2 MiB page incl. its fault = 90,000 cycles / 512 = 176 per 4 KiB'),
    'page_zero_dram': (760, 'extra for clear_page of a frame that is not in the last-level cache (kernel/mm/llc.py): '
                       'the stores go to DRAM. Table of the MADV_POPULATE posting anon 4 KiB POPULATE_WRITE at 4096 MiB - at 2 MiB = 1282 - 574 '
                       '= 708 cycles/page; hugetlbfs 4096 MiB: 355 ms per 2048 huge pages = 1016 per 4 KiB, i.e. 840 '
                       'more than in cache (~12 GB/s); 760 between the two'),
    'page_copy_dram': (470, 'extra per frame (source or destination) of a copy_page that is not in the last-level '
                       'cache. Table of the MADV_POPULATE posting memfd/tmpfs/file 4 KiB POPULATE_WRITE (gup COW of a cached page) at '
                       '4 GiB - at 2 MiB: 2305 - 1342 = 963 (memfd), 1054 (tmpfs), 1075 (file) cycles per page, for '
                       'two uncached frames'),
    'llc_miss': (190, 'a user load that misses the last-level cache (DRAM latency ~65 ns at 3 GHz), charged for '
                 'the first user touch of a mapped page that is not cached (kernel/mm/llc.py). Table of the MADV_POPULATE posting, memfd 4 KiB '
                 'Read: 392 cycles/page at 4 GiB vs 199 at 2 MiB (3 GHz)'),
    'llc_miss_mapped': (24, 'a user load or store to a page that is already mapped but not in the last-level-cache '
                        'model (kernel/mm/tlb_model.py), in a loop whose misses overlap: measured on this host (AMD EPYC '
                        'family 1Ah, 2.6 GHz, KVM guest) with userland/src/touchloop.c, one load per 4 KiB page over mapped '
                        'memory: 256 MiB and 1 GiB cost 11.5-14 ns/page in address order and 23-32 ns in random order vs '
                        '5-9.6 and 6.3 ns at 64 MiB: ~8 ns (24 cycles at 3 GHz) between the two orders'),
    'dtlb_stlb_hit': (3, 'a user access that misses the L1 dTLB and hits the L2 TLB: 7-cpu.com gives ~7 cycles of latency '
                      'for an L2 TLB hit on Zen 2; overlapped in a touch loop, this host measures +0.1..1.3 ns per page '
                      'for 1-4 MiB (256-1024 pages) over 256 KiB (64 pages, in the L1 dTLB): 1 ns, 3 cycles'),
    'dtlb_walk': (9, 'a user access that misses both data TLBs: a page walk whose upper levels hit the page-walk caches '
                  'and whose PTE line is cached. Measured on this host (touchloop, random order): 64 MiB (16384 pages, '
                  'beyond the L2 TLB) 6.3 ns/page vs 4 MiB 3.3 ns: 3 ns, 9 cycles at 3 GHz'),
    'dtlb_l1_entries': (96, 'entries of the L1 data TLB (not cycles): 96 for 4 KiB pages on this host (CPUID '
                        'Fn8000_0005 EBX[23:16]); AMD Zen 5 has a 96-entry fully associative L1 DTLB'),
    'dtlb_l2_entries': (4096, 'entries of the L2 data TLB (not cycles): 4096 on AMD Zen 5 (AMD\'s Hot Chips 2024 '
                        'presentation of Zen 5; Zen 4: 3072, Zen 2: 2048); the KVM guest\'s CPUID Fn8000_0006 does '
                        'not report the hardware\'s. Touch loops on this host slow down past 16 MiB (4096 pages)'),
    'llc_bytes': (32 << 20, 'size of the modeled last-level cache in bytes (not cycles): 32 MiB, the order of a '
                  'server LLC (Xeon Gold 6130: 22 MiB; EPYC 7302: 128 MiB in 16 MiB slices per CCX). The posting\'s 2 MiB '
                  'runs fit in it, its 4096 MiB runs do not'),
    'fallocate_block': (30, 'fallocate per block allocated as an unwritten extent (ext4_fallocate: mballoc bitmap '
                        'and extent bookkeeping, no data written): an estimate, `fallocate -l 4G` on ext4 takes on '
                        'the order of 10 ms, ~10 ns per 4 KiB block. hugetlbfs: per 2 MiB page besides its clearing'),
    'page_copy': (600, 'copy_page 4 KiB with both frames in the last-level cache. Table of the MADV_POPULATE posting MAP_PRIVATE POPULATE_WRITE '
                  '(a COW fault from gup: fault_handle + pagecache_lookup + page_alloc + page_copy + pte_set) at 2 MiB: '
                  '1342 (memfd), 1670 (tmpfs), 1699 (file) cycles/page -> page_copy 512, 840, 869; Write and '
                  'Read/Write give 526-817; 600 for all three (one model of the three file systems)'),
    'fault_handle': (200, 'handle_mm_fault bookkeeping: locks, accounting, LRU add. With pte_set: the table of the MADV_POPULATE posting '
                     'anon POPULATE_READ (one handle_mm_fault per page from gup, no trap) = 0.060 ms / 512 '
                     'pages = 352 cycles/page at 3 GHz (4 GiB: 356); 360 here'),
    'pagecache_lookup': (100, 'xarray lookup of a page-cache page and taking a reference (find_get_page: RCU '
                         'walk + atomic); see page_copy'),
    'pagecache_insert': (250, 'add a page to the page cache and the LRU'),
    'readahead_page': (80, 'per page set up for read-ahead I/O'),
    'page_mkwrite': (6800, 'ext4_page_mkwrite (block_page_mkwrite over the folio\'s buffers, delayed-allocation '
                     'reservation, file_update_time) with folio_mark_dirty\'s accounting and '
                     'balance_dirty_pages_ratelimited, per write fault on a clean page of a shared ext4 mapping. '
                     'Measured on this project\'s build host (a loaded KVM guest, Linux 6.18, ext4) with '
                     'userland/src/shared_write.c: the first write to each clean cached page of a 16 MiB MAP_SHARED '
                     'file takes 2.5x (median of 16 runs, range 1.1-5.7) the time of a COW write fault on the same '
                     'file mapped MAP_PRIVATE; with this table\'s COW fault at 3087 cycles and its write-protect '
                     'fault without page_mkwrite at 927: 2.5 x 3087 - 927 = 6800'),
    'io_submit': (3300, 'block layer + NVMe driver submit path: bio and blk-mq request set-up, nvme_queue_rq '
                  'with DMA mapping and the doorbell MMIO write, ~1.1 us of CPU at 3 GHz (the submit side of '
                  'a 4 KiB read is commonly profiled at 1-2 us of CPU per request)'),
    'io_complete': (1500, 'interrupt + completion path'),
    'context_switch': (2000, 'switch to another task'),
    'task_create': (15000, 'clone of a thread: copy_process, task_struct and kernel stack allocation, wake-up '
                    '(pthread_create measures ~10 us end to end, about half of it in the kernel)'),
    'lock_acquire': (40, 'down_read/up_read (or down_write/up_write) of mmap_lock, uncontended: two atomic '
                     'read-modify-writes on a cache line this CPU owns'),
    'spf_vma_get': (60, 'speculative fault set-up: mm_rb read_lock, get_vma/put_vma reference atomics and the '
                    'VMA sequence-count reads (SPF series, patches 5 and 14)'),
    'futex_op': (300, 'futex hash-bucket lock, key lookup and queue/dequeue of one waiter'),
    'copy_user_byte': (0.25, 'copy_to/from_user per byte (~4 B/cycle)'),
    'vma_modify': (500, 'mmap/munmap/mprotect VMA tree update'),
}

DEFAULT_FREQ_HZ = 3_000_000_000

# Platforms: the default table is a bare-metal x86 server; a platform replaces the figures that differ
# on it. name: {cost: (cycles, where the figure comes from)}
PLATFORMS = {
    'bare-metal': {},
    'vm': {
        'rwsem_wake': (45_000, 'KVM guest (the SPF series measured ebizzy in a 16-vCPU x86 VM): a sleeper\'s '
                       'vCPU has halted (HLT exits to the host), so its wake-up is an IPI from the waker (a VM '
                       'exit to send it), the host waking and scheduling the vCPU thread, a VM entry, then the '
                       'guest\'s own schedule: ~15 us, an estimate (a few us with host halt-polling, tens of us '
                       'on a loaded host); `faultlab bench spf` shows the results across 1-30 us'),
        'ipi_wake_idle': (45_000, 'KVM guest: a shootdown IPI to a halted vCPU waits for the same vCPU '
                          'wake-up as rwsem_wake before the flush is acknowledged'),
        'tlb_shootdown_cpu': (7_000, 'KVM guest: per target vCPU of a shootdown, the IPI send exits to the host '
                              '(an x2APIC ICR write without posted interrupts or IPI virtualisation: one VM exit '
                              'per destination in physical mode, Wanpeng Li\'s PV IPI posting, kvm list 2018): '
                              '~7k cycles per IPI sent from a KVM guest against ~2k without the exit (Deng Qiao, '
                              '"paravirtualize the IPI sending process", kvm list 2020)'),
        'exception_entry': (250, 'KVM guest: a user #PF into the guest kernel costs ~600 cycles in a VM against ~440 on '
                            'bare metal (Yizhou Shan\'s xperf, see exception_entry): 183 x 600/440'),
        'exception_exit': (153, 'KVM guest: back from a #PF to user mode, ~370 cycles in a VM against ~270 on bare metal '
                           '(Yizhou Shan\'s xperf): 112 x 370/270'),
    },
}


def platform_names():
    """The names --platform takes (besides a profile FILE)."""
    return list(PLATFORMS) + list(PROFILES)


def platform_profile(platform):
    """The core profile (emu/core/uarch) a platform names or a profile file holds; None for the flat
    per-instruction-class prices of 'bare-metal' and 'vm'. ValueError for an unknown name or a bad file."""
    if platform in PLATFORMS:
        return None
    if platform in PROFILES or os.path.isfile(str(platform)):
        return uarch_profile(platform)
    raise ValueError("unknown platform %r (known: %s, or a profile FILE from faultlab calibrate)"
                     % (platform, ', '.join(platform_names())))


class CostTable:
    """Named costs (cycles) with user overrides."""

    def __init__(self, overrides=None, freq_hz=DEFAULT_FREQ_HZ, platform='bare-metal'):
        self.uarch = platform_profile(platform)
        base = self.uarch.get('platform', 'bare-metal') if self.uarch else platform
        if base not in PLATFORMS:
            raise ValueError("unknown platform %r (known: %s)" % (base, ', '.join(PLATFORMS)))
        if self.uarch and freq_hz == DEFAULT_FREQ_HZ:
            freq_hz = self.uarch['freq_hz']
        self.freq_hz = int(freq_hz)
        self.platform = platform
        self.base_platform = base
        self.costs = {k: v[0] for k, v in DEFAULT_COSTS.items()}
        self.costs.update({k: v[0] for k, v in PLATFORMS[base].items()})
        for k, v in (overrides or {}).items():
            if k == 'freq_hz':
                self.freq_hz = int(v)
                continue
            if k not in self.costs:
                raise ValueError("unknown cost %r (known: %s)" % (k, ', '.join(sorted(self.costs))))
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError("cost %r must be a non-negative number, got %r" % (k, v))
            self.costs[k] = v
        for k, v in self.costs.items():
            setattr(self, k, v)

    @classmethod
    def from_file(cls, path, platform='bare-metal'):
        """Load overrides (on top of a platform's table) from a JSON object or `name = value` lines."""
        with open(path) as f:
            text = f.read()
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
            for n, line in enumerate(text.splitlines(), 1):
                line = line.split('#', 1)[0].strip()
                if not line:
                    continue
                if '=' not in line:
                    raise ValueError("%s:%d: expected `name = value`" % (path, n))
                k, v = (s.strip() for s in line.split('=', 1))
                try:
                    data[k] = float(v) if '.' in v else int(v)
                except ValueError:
                    raise ValueError("%s:%d: %r is not a number" % (path, n, v))
        if not isinstance(data, dict):
            raise ValueError("%s: expected a JSON object of name: cycles" % path)
        return cls(data, data.get('freq_hz', DEFAULT_FREQ_HZ), platform)

    def seconds(self, cycles):
        return cycles / self.freq_hz

    def ns(self, cycles):
        return cycles * 1e9 / self.freq_hz

    def cycles_for_ns(self, ns):
        return int(ns * self.freq_hz / 1e9)

    def describe(self):
        """Rows of (name, cycles, source) for documentation and `faultlab costs`."""
        plat = PLATFORMS[self.base_platform]
        return [(k, self.costs[k], plat[k][1] if k in plat else DEFAULT_COSTS[k][1]) for k in DEFAULT_COSTS]


_MUL = {X.X86_INS_MUL, X.X86_INS_IMUL, X.X86_INS_MULX}
_DIV = {X.X86_INS_DIV, X.X86_INS_IDIV}
_SERIAL = {X.X86_INS_CPUID, X.X86_INS_RDTSC, X.X86_INS_RDTSCP, X.X86_INS_XGETBV, X.X86_INS_LFENCE,
           X.X86_INS_MFENCE}


_MUL_NAMES = {'mul', 'imul', 'mulx'}
_DIV_NAMES = {'div', 'idiv'}
_SERIAL_NAMES = {'cpuid', 'rdtsc', 'rdtscp', 'xgetbv', 'lfence', 'mfence'}
_LEGACY_PREFIXES = frozenset((0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0x66, 0x67))


def _rep_prefixed(enc):
    """True if a one-byte-opcode instruction has a REP/REPNE (F3/F2) prefix (for SSE's 0F opcodes
    F2/F3 select the instruction instead: movsd xmm is not a string instruction)."""
    rep = False
    for b in enc:
        if b in (0xF2, 0xF3):
            rep = True
        elif b not in _LEGACY_PREFIXES and not 0x40 <= b <= 0x4F:
            return rep and b != 0x0F
    return False


class InsnCoster:
    """Decodes a block once (capstone) and prices each instruction with the cost table.

    A block is split into instructions with capstone's light decoder (no operand details); an
    instruction's price depends only on its bytes, so it is computed with the full decoder once per
    distinct instruction encoding and then looked up. A whole block's pricing is remembered by its
    address and bytes too: every program a run executes decodes the same dynamic loader and libc
    blocks at the same addresses, and only the first decodes them.
    """

    CACHE_LIMIT = 1 << 17           # distinct encodings remembered (about 20 MB at most)
    BLOCK_CACHE_LIMIT = 1 << 16     # distinct (address, bytes) blocks remembered

    def __init__(self, costs):
        self.md = Cs(CS_ARCH_X86, CS_MODE_64)
        self.md.detail = True
        self.lite = Cs(CS_ARCH_X86, CS_MODE_64)
        self.c = costs
        self._by_bytes = {}
        self._by_block = {}
        uarch = getattr(costs, 'uarch', None)
        # with a core profile, a block is priced as a whole by the out-of-order model (emu/core/uarch)
        self.model = BlockPricer(uarch) if uarch else None

    def price(self, code, addr):
        """[(insn address, cycles)] for the instructions in `code` placed at `addr` (a shared list:
        callers only read it)."""
        key = (addr, bytes(code))
        out = self._by_block.get(key)
        if out is None:
            if len(self._by_block) >= self.BLOCK_CACHE_LIMIT:
                self._by_block.clear()
            out = self._by_block[key] = self._price_block(code, addr)
        return out

    def _price_block(self, code, addr):
        """price() without the block cache."""
        if self.model is not None:
            return self.model.price(code, addr)
        out = []
        known = self._by_bytes
        for a, size, _mnemonic, _ops in self.lite.disasm_lite(code, addr):
            enc = code[a - addr:a - addr + size]
            cost = known.get(enc)
            if cost is None:
                if len(known) >= self.CACHE_LIMIT:
                    known.clear()
                if _mnemonic.startswith(('f', 'wait')):      # x87: capstone's FPU group needs the full decode
                    cost = self._price_detailed(enc, a)
                else:
                    cost = self._price_lite(enc, _mnemonic, _ops)
                known[enc] = cost
            out.append((a, cost))
        return out

    def _price_lite(self, enc, mnemonic, ops):
        """The same rules as _price_detailed, from the mnemonic and operand text (not for x87)."""
        c = self.c
        cost = c.insn
        if '[' in ops and mnemonic != 'lea':
            cost += c.insn_mem
        if mnemonic in _MUL_NAMES:
            cost += c.insn_mul
        elif mnemonic in _DIV_NAMES:
            cost += c.insn_div
        elif mnemonic in _SERIAL_NAMES:
            cost += c.insn_serialize
        elif mnemonic.endswith(('ss', 'sd', 'ps', 'pd')) and mnemonic.startswith(('add', 'sub', 'mul', 'div', 'sqrt')):
            cost += c.insn_fp
        if mnemonic.startswith(('rep', 'movs', 'stos', 'cmps', 'scas', 'lods')) and _rep_prefixed(enc):
            cost += c.insn_string
        return cost

    def _price_detailed(self, code, addr):
        """The cycles of the one instruction encoded in `code` (full decode: operands and groups)."""
        c = self.c
        cost = c.insn
        for ins in self.md.disasm(code, addr, 1):
            cost = c.insn
            if any(op.type == X.X86_OP_MEM for op in ins.operands) and ins.id != X.X86_INS_LEA:
                cost += c.insn_mem
            i = ins.id
            if i in _MUL:
                cost += c.insn_mul
            elif i in _DIV:
                cost += c.insn_div
            elif i in _SERIAL:
                cost += c.insn_serialize
            elif X.X86_GRP_FPU in ins.groups or (ins.mnemonic.endswith(('ss', 'sd', 'ps', 'pd'))
                                                 and ins.mnemonic.startswith(('add', 'sub', 'mul', 'div', 'sqrt'))):
                cost += c.insn_fp
            if ins.prefix[0] in (0xF3, 0xF2) and ins.mnemonic.startswith(('rep', 'movs', 'stos', 'cmps', 'scas', 'lods')):
                cost += c.insn_string
        return cost
