"""The cycle model: what every guest instruction and every kernel action costs.

One table of named costs, in cycles of a core running at `freq_hz`. Each figure comes with its source
(a measurement class or a published figure); a user overrides any of them with `--costs FILE`
(JSON object or `name = value` lines). Simulated time is cycles / freq_hz.
"""
import json

from capstone import Cs, CS_ARCH_X86, CS_MODE_64
from capstone import x86_const as X

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
    'exception_entry': (250, '#PF delivery through the IDT incl. pipeline flush (measured 100-300 cycles)'),
    'exception_exit': (150, 'iretq back to user (measured ~100-200 cycles)'),
    'syscall_entry': (70, 'syscall instruction + entry code (no KPTI)'),
    'syscall_exit': (50, 'sysretq + exit code'),
    'syscall_dispatch': (30, 'table dispatch and argument checks'),
    # memory management
    'pgtable_walk_level': (15, 'software walk: one page-table level read (cache hit)'),
    'pte_set': (10, 'write one PTE (and set_pte barriers)'),
    'tlb_flush': (200, 'full TLB flush (CR3 write) or INVLPG + shootdown bookkeeping'),
    'vma_lookup': (40, 'find_vma in the VMA tree'),
    'page_alloc': (300, 'buddy allocator order-0 from the per-CPU list'),
    'page_free': (150, 'free an order-0 page to the per-CPU list'),
    'page_zero': (400, 'clear_page with rep stosq, 4 KiB (~10 B/cycle)'),
    'page_copy': (700, 'copy_page 4 KiB'),
    'fault_handle': (300, 'handle_mm_fault bookkeeping: locks, accounting, rmap, LRU add'),
    'pagecache_lookup': (60, 'xarray lookup of a page-cache page'),
    'pagecache_insert': (250, 'add a page to the page cache and the LRU'),
    'readahead_page': (80, 'per page set up for read-ahead I/O'),
    'io_submit': (1500, 'block layer + NVMe driver submit path'),
    'io_complete': (1500, 'interrupt + completion path'),
    'context_switch': (2000, 'switch to another task'),
    'copy_user_byte': (0.25, 'copy_to/from_user per byte (~4 B/cycle)'),
    'vma_modify': (500, 'mmap/munmap/mprotect VMA tree update'),
}

DEFAULT_FREQ_HZ = 3_000_000_000


class CostTable:
    """Named costs (cycles) with user overrides."""

    def __init__(self, overrides=None, freq_hz=DEFAULT_FREQ_HZ):
        self.freq_hz = int(freq_hz)
        self.costs = {k: v[0] for k, v in DEFAULT_COSTS.items()}
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
    def from_file(cls, path):
        """Load overrides from a JSON object or `name = value` lines (# comments)."""
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
        return cls(data, data.get('freq_hz', DEFAULT_FREQ_HZ))

    def seconds(self, cycles):
        return cycles / self.freq_hz

    def ns(self, cycles):
        return cycles * 1e9 / self.freq_hz

    def cycles_for_ns(self, ns):
        return int(ns * self.freq_hz / 1e9)

    def describe(self):
        """Rows of (name, cycles, source) for documentation and `faultlab costs`."""
        return [(k, self.costs[k], DEFAULT_COSTS[k][1]) for k in DEFAULT_COSTS]


_MUL = {X.X86_INS_MUL, X.X86_INS_IMUL, X.X86_INS_MULX}
_DIV = {X.X86_INS_DIV, X.X86_INS_IDIV}
_SERIAL = {X.X86_INS_CPUID, X.X86_INS_RDTSC, X.X86_INS_RDTSCP, X.X86_INS_XGETBV, X.X86_INS_LFENCE,
           X.X86_INS_MFENCE}


class InsnCoster:
    """Decodes a block once (capstone) and prices each instruction with the cost table."""

    def __init__(self, costs):
        self.md = Cs(CS_ARCH_X86, CS_MODE_64)
        self.md.detail = True
        self.c = costs

    def price(self, code, addr):
        """[(insn address, cycles)] for the instructions in `code` placed at `addr`."""
        c = self.c
        out = []
        for ins in self.md.disasm(code, addr):
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
            out.append((ins.address, cost))
        return out
