"""Emulated physical memory: one host mapping that the CPU sees at guest-physical address 0."""
import ctypes
import mmap
import struct

PAGE_SIZE = 4096
PAGE_SHIFT = 12
ZERO_PAGE_BYTES = bytes(PAGE_SIZE)
# frames the emulator keeps for itself (boot page tables, the CPL-3 trampoline)
EMU_RESERVED_FRAMES = 16

_u64 = struct.Struct('<Q')
MADV_POPULATE_WRITE = 23

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _madvise = _libc.madvise
    _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
except (OSError, AttributeError):
    _madvise = None


class PhysMem:
    """Guest RAM: byte access by physical address, and page-sized helpers."""

    def __init__(self, size):
        if size < (EMU_RESERVED_FRAMES + 64) * PAGE_SIZE or size % PAGE_SIZE:
            raise ValueError("RAM size must be a multiple of 4 KiB and at least %d KiB"
                             % ((EMU_RESERVED_FRAMES + 64) * 4))
        if size > (1 << 32):
            # page tables must stay below 4 GiB: Unicorn passes only CR3's low 32 bits
            raise ValueError("RAM size is limited to 4 GiB")
        self.size = size
        self.nr_frames = size // PAGE_SIZE
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self.mv = memoryview(self._map)
        # the same RAM as 64-bit words, for page-table entries: qwords[pa >> 3] (pa 8-aligned). Native byte
        # order is the guest's little-endian one: the host is x86-64 (the native block hook needs it too).
        # Indexing a memoryview is a C-level operation, cheaper than a struct call on the fault path.
        self.qwords = self.mv.cast('Q')
        self.host_ptr = ctypes.addressof(ctypes.c_char.from_buffer(self._map))

    def populate(self, pa, n):
        """Fault in host memory for [pa, pa+n) in one call (far cheaper than page-by-page first touch);
        True if the host did.

        Only an optimisation: on a host without MADV_POPULATE_WRITE nothing happens.
        """
        return _madvise is not None and _madvise(self.host_ptr + pa, n, MADV_POPULATE_WRITE) == 0

    def read64(self, pa):
        return _u64.unpack_from(self._map, pa)[0]

    def write64(self, pa, value):
        _u64.pack_into(self._map, pa, value)

    def read(self, pa, n):
        return bytes(self.mv[pa:pa + n])

    def write(self, pa, data):
        self.mv[pa:pa + len(data)] = data

    def zero_frame(self, pfn):
        a = pfn << PAGE_SHIFT
        self.mv[a:a + PAGE_SIZE] = ZERO_PAGE_BYTES

    def copy_frame(self, dst_pfn, src_pfn):
        d, s = dst_pfn << PAGE_SHIFT, src_pfn << PAGE_SHIFT
        self.mv[d:d + PAGE_SIZE] = self.mv[s:s + PAGE_SIZE]

    def frame(self, pfn):
        """A writable memoryview of one frame."""
        a = pfn << PAGE_SHIFT
        return self.mv[a:a + PAGE_SIZE]
