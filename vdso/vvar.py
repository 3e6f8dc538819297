"""Layout of the vvar page: the data the kernel keeps current for the vDSO.

The vvar page is mapped read-only one page *before* the vDSO image, at
``vdso_base + VVAR_OFFSET`` (``VVAR_OFFSET == -4096``); the vDSO code reaches it
with RIP-relative addressing.  All fields are little-endian::

    offset  size  field
    0       u64   seq          sequence count: even = stable, odd = update in progress
    8       u32   cpu          CPU number reported by getcpu()
    12      u32   node         NUMA node reported by getcpu()
    16      u64   clock_ns[8]  value of clock id i in nanoseconds at TSC 0 (or now, if tsc_mult is 0)
    80      u64   tsc_mult     0, or: clock id i reads clock_ns[i] + ((rdtsc * tsc_mult) >> 32)
    88            (end; rest of the page is zero)

faultlab's kernel makes rdtsc return the simulated cycle clock and publishes tsc_mult once, so the
vDSO clocks advance exactly with simulated time and the page never needs rewriting.

``clock_ns`` is indexed directly by the clock id.  Only the ids whose bit is set in
``VVAR_CLOCK_MASK`` are served from the page (CLOCK_REALTIME 0, CLOCK_MONOTONIC 1,
CLOCK_MONOTONIC_RAW 4, CLOCK_REALTIME_COARSE 5, CLOCK_MONOTONIC_COARSE 6,
CLOCK_BOOTTIME 7); slots 2 and 3 (the CPU-time clocks) stay zero and those clocks,
like any other id, go to the real clock_gettime system call.

Readers follow the seqcount protocol: read ``seq``; if it is odd, retry; read the
fields; re-read ``seq`` and retry if it changed.  A writer that can run concurrently
with guest code makes ``seq`` odd, writes the fields, then makes it even again
(:func:`begin_update` / :func:`end_update` give the values).  A kernel that only
rewrites the page while the guest is stopped can simply write :func:`pack_vvar`'s
bytes with an even ``seq``.

The offsets here are the single source of truth: the image builder passes them to the
assembly source as ``.set`` constants (see :func:`asm_constants`).
"""

import struct

PAGE_SIZE = 4096

#: Where the vvar page lives relative to the start of the vDSO image.
VVAR_OFFSET = -PAGE_SIZE

VVAR_SEQ = 0
VVAR_CPU = 8
VVAR_NODE = 12
VVAR_CLOCK_NS = 16
VVAR_NR_CLOCKS = 8
VVAR_TSC_MULT = VVAR_CLOCK_NS + 8 * VVAR_NR_CLOCKS
VVAR_DATA_SIZE = VVAR_TSC_MULT + 8

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME_ID = 2
CLOCK_THREAD_CPUTIME_ID = 3
CLOCK_MONOTONIC_RAW = 4
CLOCK_REALTIME_COARSE = 5
CLOCK_MONOTONIC_COARSE = 6
CLOCK_BOOTTIME = 7

#: Clock ids answered from the vvar page (everything else falls back to the syscall).
VVAR_CLOCKS = (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW,
               CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME)
VVAR_CLOCK_MASK = sum(1 << c for c in VVAR_CLOCKS)

_HEADER = struct.Struct('<QII')
_CLOCKS = struct.Struct('<%dQ' % VVAR_NR_CLOCKS)
_U64 = (1 << 64) - 1


def clock_values(realtime_ns_base, monotonic_ns):
    """The ``clock_ns`` table: realtime = realtime_ns_base + monotonic_ns, the others = monotonic_ns."""
    mono = monotonic_ns & _U64
    real = (realtime_ns_base + monotonic_ns) & _U64
    table = [0] * VVAR_NR_CLOCKS
    for clk in VVAR_CLOCKS:
        table[clk] = real if clk in (CLOCK_REALTIME, CLOCK_REALTIME_COARSE) else mono
    return table


def tsc_mult_for(freq_hz):
    """The multiplier that turns TSC cycles into ns: ns = (tsc * mult) >> 32."""
    return (10**9 << 32) // freq_hz


def tsc_to_ns(tsc, mult):
    """What the vDSO computes from rdtsc (the kernel uses the same formula, so they agree)."""
    return (tsc * mult) >> 32


def pack_vvar(realtime_ns_base, monotonic_ns, cpu=0, node=0, seq=0, tsc_mult=0):
    """The vvar data (``VVAR_DATA_SIZE`` bytes) for the given time and CPU.

    ``realtime_ns_base`` is the wall-clock time at boot in ns since the epoch (the
    kernel's ``boot_epoch_ns``), ``monotonic_ns`` the time since boot; they give the
    same values as the clock_gettime system call.  Write the result at offset 0 of the
    vvar page (the rest of the page stays zero).
    """
    return (_HEADER.pack(seq & _U64, cpu, node)
            + _CLOCKS.pack(*clock_values(realtime_ns_base, monotonic_ns))
            + struct.pack('<Q', tsc_mult))


def vvar_page(realtime_ns_base, monotonic_ns, cpu=0, node=0, seq=0, tsc_mult=0):
    """A whole page (``PAGE_SIZE`` bytes) holding :func:`pack_vvar`'s data."""
    return pack_vvar(realtime_ns_base, monotonic_ns, cpu, node, seq, tsc_mult).ljust(PAGE_SIZE, b'\0')


def unpack_vvar(data):
    """Decode vvar bytes into a dict (seq, cpu, node, clock_ns list)."""
    seq, cpu, node = _HEADER.unpack_from(data, VVAR_SEQ)
    return {'seq': seq, 'cpu': cpu, 'node': node,
            'clock_ns': list(_CLOCKS.unpack_from(data, VVAR_CLOCK_NS))}


def begin_update(seq):
    """The (odd) sequence value a concurrent writer stores before changing the fields."""
    return (seq | 1) & _U64


def end_update(seq):
    """The (even, advanced) sequence value a writer stores after changing the fields."""
    return ((seq | 1) + 1) & _U64


def asm_constants():
    """Name -> value of the layout constants given to the assembly source."""
    return {
        'VVAR_SEQ': VVAR_SEQ,
        'VVAR_CPU': VVAR_CPU,
        'VVAR_NODE': VVAR_NODE,
        'VVAR_CLOCK_NS': VVAR_CLOCK_NS,
        'VVAR_NR_CLOCKS': VVAR_NR_CLOCKS,
        'VVAR_CLOCK_MASK': VVAR_CLOCK_MASK,
        'VVAR_TSC_MULT': VVAR_TSC_MULT,
    }
