"""io_uring (io_uring/io_uring.c, rsrc.c, rw.c): submission and completion rings shared with the
process, fixed buffers pinned long-term, and read/write requests completed inline.

The rings live in pages of an internal tmpfs file that the process maps with mmap(2) at the offsets
IORING_OFF_SQ_RING / IORING_OFF_CQ_RING (one mapping: IORING_FEAT_SINGLE_MMAP) and IORING_OFF_SQES;
the kernel reads and writes them through that file's page cache, as Linux does through its own
mapping of the pages. io_uring_enter consumes the submission queue and completes every request at
once (there is no io-wq: a request that would block, on a pipe or socket, completes with -EAGAIN),
so a wait for completions never sleeps. IORING_REGISTER_BUFFERS pins the buffers' pages with
FOLL_WRITE | FOLL_LONGTERM (kernel/mm/gup_pin.py): READ_FIXED and WRITE_FIXED then move data to and
from those pinned pages, not through the page tables, which is what makes copy-on-write bugs visible.
Setups the emulator cannot honour (SQPOLL's kernel thread, IOPOLL, NO_MMAP, attaching to another
ring's workers, R_DISABLED) are refused with EINVAL.
"""
import errno
import struct

from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.file import O_RDWR, OpenFile, generic_file_read, generic_perform_write
from faultlab.kernel.fs.stat import Timespec, makedev
from faultlab.kernel.mm.gup_pin import FOLL_LONGTERM, FOLL_WRITE, pin_user_pages, put_user_page, FOLL_PIN
from faultlab.kernel.mm.mmap import do_mmap

IORING_OFF_SQ_RING = 0
IORING_OFF_CQ_RING = 0x8000000
IORING_OFF_SQES = 0x10000000

IORING_SETUP_IOPOLL = 1 << 0
IORING_SETUP_SQPOLL = 1 << 1
IORING_SETUP_SQ_AFF = 1 << 2
IORING_SETUP_CQSIZE = 1 << 3
IORING_SETUP_CLAMP = 1 << 4
IORING_SETUP_ATTACH_WQ = 1 << 5
IORING_SETUP_R_DISABLED = 1 << 6
IORING_SETUP_SUBMIT_ALL = 1 << 7
IORING_SETUP_COOP_TASKRUN = 1 << 8
IORING_SETUP_TASKRUN_FLAG = 1 << 9
IORING_SETUP_SQE128 = 1 << 10
IORING_SETUP_CQE32 = 1 << 11
IORING_SETUP_SINGLE_ISSUER = 1 << 12
IORING_SETUP_DEFER_TASKRUN = 1 << 13
IORING_SETUP_NO_MMAP = 1 << 14
IORING_SETUP_REGISTERED_FD_ONLY = 1 << 15
IORING_SETUP_NO_SQARRAY = 1 << 16
SETUP_ALL = (1 << 17) - 1
SETUP_UNSUPPORTED = (IORING_SETUP_IOPOLL | IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF | IORING_SETUP_ATTACH_WQ |
                     IORING_SETUP_R_DISABLED | IORING_SETUP_NO_MMAP | IORING_SETUP_REGISTERED_FD_ONLY)

IORING_FEAT_SINGLE_MMAP = 1 << 0
IORING_FEAT_NODROP = 1 << 1
IORING_FEAT_SUBMIT_STABLE = 1 << 2
IORING_FEAT_RW_CUR_POS = 1 << 3
IORING_FEAT_CUR_PERSONALITY = 1 << 4
FEATURES = (IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_SUBMIT_STABLE | IORING_FEAT_RW_CUR_POS |
            IORING_FEAT_CUR_PERSONALITY)

IORING_MAX_ENTRIES = 32768
IORING_MAX_CQ_ENTRIES = 2 * IORING_MAX_ENTRIES
IORING_MAX_REG_BUFFERS = 1 << 14
SZ_1G = 1 << 30

IORING_OP_NOP, IORING_OP_READV, IORING_OP_WRITEV = 0, 1, 2
IORING_OP_READ_FIXED, IORING_OP_WRITE_FIXED = 4, 5
IORING_OP_READ, IORING_OP_WRITE = 22, 23

IORING_SQ_CQ_OVERFLOW = 1 << 1

# struct io_rings as this kernel lays it out (the process learns the offsets from io_uring_params)
SQ_HEAD, SQ_TAIL, CQ_HEAD, CQ_TAIL = 0, 64, 128, 192
SQ_RING_MASK, CQ_RING_MASK, SQ_RING_ENTRIES, CQ_RING_ENTRIES = 256, 260, 264, 268
SQ_DROPPED, SQ_FLAGS, CQ_FLAGS, CQ_OVERFLOW = 272, 276, 280, 284
CQES = 320


def roundup_pow_of_two(n):
    return 1 << (n - 1).bit_length()


def page_align(n):
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class MappedBuffer:
    """struct io_mapped_ubuf: a registered buffer and the pages pinned for it."""

    def __init__(self, ubuf, length, pages):
        self.ubuf = ubuf
        self.len = length
        self.pages = pages          # [(page, pfn)] from ubuf's page onwards

    def spans(self, addr, length):
        """io_import_fixed's bounds check."""
        end = addr + length
        return end < (1 << 64) and self.ubuf <= addr and end <= self.ubuf + self.len

    def pieces(self, addr, length):
        """(physical address, bytes) runs of [addr, addr + length)."""
        first = self.ubuf >> PAGE_SHIFT
        while length:
            off = addr & (PAGE_SIZE - 1)
            n = min(length, PAGE_SIZE - off)
            yield (self.pages[(addr >> PAGE_SHIFT) - first][1] << PAGE_SHIFT) + off, n
            addr += n
            length -= n


class IoRingCtx:
    """struct io_ring_ctx, as the inode of an io_uring file (anon_inode:[io_uring])."""
    fop_read = fop_write = None       # io_uring_fops: no read/write (EINVAL), no llseek (ESPIPE)
    no_pread = True
    no_setattr = True                 # an anonymous inode: chmod/chown are EOPNOTSUPP

    def __init__(self, k, mm, ino, sq_entries, cq_entries, flags):
        self.k = k
        self.mm = mm
        self.ino = ino
        self.mode = 0o600               # an anonymous inode: no file type bits
        self.nlink = 1
        self.uid = self.gid = 0
        self.size = 0
        self.blksize = 4096
        self.blocks = 0
        self.dev = makedev(0, 15)
        self.rdev = 0
        self.atime = self.mtime = self.ctime = Timespec(0, 0)
        self.flags = flags
        self.sq_entries = sq_entries
        self.cq_entries = cq_entries
        self.sqe_size = 128 if flags & IORING_SETUP_SQE128 else 64
        self.cqe_size = 32 if flags & IORING_SETUP_CQE32 else 16
        self.array_off = 0 if flags & IORING_SETUP_NO_SQARRAY else \
            (CQES + cq_entries * self.cqe_size + 63) & ~63
        self.rings_size = page_align((self.array_off + 4 * sq_entries) if self.array_off else
                                     CQES + cq_entries * self.cqe_size)
        self.sqes_size = page_align(sq_entries * self.sqe_size)
        inode = k.vfs.memfd_create(0o600)
        inode.ihold()
        self.mem = OpenFile(inode, O_RDWR, 'anon_inode:[io_uring]', k.pagecache)
        self.mem.inode.set_size(self.rings_size + self.sqes_size)
        self.buffers = None            # [MappedBuffer or None] once registered
        self.overflow = []             # CQEs that did not fit (IORING_FEAT_NODROP)
        self.cached_sq_head = 0
        for off, val in ((SQ_RING_MASK, sq_entries - 1), (CQ_RING_MASK, cq_entries - 1),
                         (SQ_RING_ENTRIES, sq_entries), (CQ_RING_ENTRIES, cq_entries)):
            self.put32(off, val)

    # -- the shared memory ------------------------------------------------------------------------
    def read(self, off, n):
        data = generic_file_read(self.k.pagecache, self.mem, n, off)
        return data + bytes(n - len(data))

    def write(self, off, data):
        generic_perform_write(self.k.pagecache, self.mem, data, off)

    def get32(self, off):
        return struct.unpack('<I', self.read(off, 4))[0]

    def put32(self, off, val):
        self.write(off, struct.pack('<I', val & 0xFFFFFFFF))

    def params_offsets(self):
        """io_sqring_offsets and io_cqring_offsets as io_uring_setup reports them (80 bytes)."""
        sq = struct.pack('<8IQ', SQ_HEAD, SQ_TAIL, SQ_RING_MASK, SQ_RING_ENTRIES, SQ_FLAGS, SQ_DROPPED,
                         self.array_off, 0, 0)
        cq = struct.pack('<8IQ', CQ_HEAD, CQ_TAIL, CQ_RING_MASK, CQ_RING_ENTRIES, CQ_OVERFLOW, CQES, CQ_FLAGS,
                         0, 0)
        return sq + cq

    # -- the file ---------------------------------------------------------------------------------
    def mmap(self, t, addr, length, prot, flags, file, pgoff):
        """io_uring_mmap: the rings (either ring offset) or the SQE array; -EINVAL past them."""
        off = pgoff << PAGE_SHIFT
        if off in (IORING_OFF_SQ_RING, IORING_OFF_CQ_RING):
            base, size = 0, self.rings_size
        elif off == IORING_OFF_SQES:
            base, size = self.rings_size, self.sqes_size
        else:
            return -errno.EINVAL
        if page_align(length) > size:
            return -errno.EINVAL
        return do_mmap(t.mm, addr, length, prot, flags, self.mem, base >> PAGE_SHIFT)

    def iput(self):
        """io_ring_ctx_free: the last reference to the ring is gone."""
        self.unregister_buffers()
        self.mem.put()

    # -- registered buffers -----------------------------------------------------------------------
    def register_buffers(self, t, vecs):
        """io_sqe_buffers_register: pin every buffer or none; 0 or -errno."""
        if self.buffers is not None:
            return -errno.EBUSY
        bufs = []
        for base, ln in vecs:
            if not base and not ln:
                bufs.append(None)               # a sparse slot
                continue
            if not ln or ln > SZ_1G or base + ln >= 1 << 64:
                err = -errno.EFAULT
            else:
                first, last = base >> PAGE_SHIFT, (base + ln - 1) >> PAGE_SHIFT
                got = pin_user_pages(t.mm, base, last - first + 1, FOLL_WRITE | FOLL_LONGTERM)
                err = got if isinstance(got, int) else 0
            if err:
                self._unpin(bufs)
                return err
            bufs.append(MappedBuffer(base, ln, got))
        self.buffers = bufs
        return 0

    def _unpin(self, bufs):
        for b in bufs:
            if b is not None:
                for page, _pfn in b.pages:
                    put_user_page(self.mm, page, FOLL_PIN)

    def unregister_buffers(self):
        """io_sqe_buffers_unregister: unpin; -ENXIO when none are registered."""
        if self.buffers is None:
            return -errno.ENXIO
        self._unpin(self.buffers)
        self.buffers = None
        return 0

    # -- submission and completion ----------------------------------------------------------------
    def post_cqe(self, user_data, res, flags=0):
        """io_fill_cqe: into the CQ ring, or the overflow list when it is full."""
        head, tail = self.get32(CQ_HEAD), self.get32(CQ_TAIL)
        if (tail - head) & 0xFFFFFFFF >= self.cq_entries or self.overflow:
            self.overflow.append((user_data, res, flags))
            self.put32(SQ_FLAGS, self.get32(SQ_FLAGS) | IORING_SQ_CQ_OVERFLOW)
            return
        self._write_cqe(tail, user_data, res, flags)

    def _write_cqe(self, tail, user_data, res, flags):
        cqe = struct.pack('<QiI', user_data, res, flags) + bytes(self.cqe_size - 16)
        self.write(CQES + (tail & (self.cq_entries - 1)) * self.cqe_size, cqe)
        self.put32(CQ_TAIL, tail + 1)

    def flush_overflow(self):
        """__io_cqring_overflow_flush: move what now fits into the ring."""
        while self.overflow:
            head, tail = self.get32(CQ_HEAD), self.get32(CQ_TAIL)
            if (tail - head) & 0xFFFFFFFF >= self.cq_entries:
                return
            self._write_cqe(tail, *self.overflow.pop(0))
        self.put32(SQ_FLAGS, self.get32(SQ_FLAGS) & ~IORING_SQ_CQ_OVERFLOW)

    def submit_sqes(self, t, to_submit, ops):
        """io_submit_sqes: take up to to_submit entries from the SQ ring and complete each; the number
        taken. ops(ctx, t, sqe) runs one request and returns its result."""
        head = self.cached_sq_head
        tail = self.get32(SQ_TAIL)
        avail = (tail - head) & 0xFFFFFFFF
        n = min(to_submit, avail, self.sq_entries)
        done = 0
        for _i in range(n):
            slot = head & (self.sq_entries - 1)
            idx = self.get32(self.array_off + 4 * slot) if self.array_off else slot
            head = (head + 1) & 0xFFFFFFFF
            if idx >= self.sq_entries:
                self.put32(SQ_DROPPED, self.get32(SQ_DROPPED) + 1)
                continue
            sqe = self.read(self.rings_size + idx * self.sqe_size, self.sqe_size)
            user_data = struct.unpack_from('<Q', sqe, 32)[0]
            self.post_cqe(user_data, ops(self, t, sqe))
            done += 1
        self.cached_sq_head = head
        self.put32(SQ_HEAD, head)
        return done
