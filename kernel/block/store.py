"""The simulated disk's contents: a sparse host file, read and written through the host's page cache.

The file is laid out as the disk is: block b of the disk is at byte b * block_size of the file (the root
filesystem's blocks from 0, the swap area from its first block on). Only blocks that were written take
host disk space, and none of them sits in the emulator's heap: a host with little memory runs a guest
with a large disk or swap area.

DiskStore is the file (a temporary, already deleted one by default; a named one to keep); BlockRegion
is a dict-like view of a run of its blocks (block -> bytes) that also remembers which blocks hold data
(a block never written reads as absent, as an unwritten extent reads as zeros).

A named file is a disk image: block 0 (the filesystem's reserved metadata block) then holds a header,
and a record of the root filesystem's tree (kernel/fs/diskimage.py) follows the last block in use.
"""
import errno
import fcntl
import json
import os
import stat
import tempfile

HEADER_MAGIC = b'faultlab disk image 1\n'


class DiskImageError(ValueError):
    """A --disk-image path that cannot be used (one line, naming the path and the reason)."""


class DiskStore:
    """The host file behind one simulated disk."""

    def __init__(self, path=None, block_size=4096, tmpdir=None):
        """path None: an anonymous temporary file in tmpdir (or the default temporary directory),
        gone when closed or at exit; else the named file, created if missing (DiskImageError when it
        cannot be opened for reading and writing or is not a disk image)."""
        self.block_size = block_size
        self.path = path
        if path is None:
            self._file = tempfile.TemporaryFile(prefix='faultlab-disk-', dir=tmpdir)
            self.fd = self._file.fileno()
            self.saved = None
            return
        self._file = None
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise DiskImageError('%s: %s' % (path, e.strerror)) from None
        try:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise DiskImageError('%s: in use by another faultlab run' % path) from None
            self.saved = self._read_header()
        except DiskImageError:
            os.close(self.fd)
            self.fd = -1
            raise

    def _read_header(self):
        """The saved record of a disk image (dict), None for an empty file; DiskImageError otherwise."""
        try:
            st = os.fstat(self.fd)
        except OSError as e:
            raise DiskImageError('%s: %s' % (self.path, e.strerror)) from None
        if not stat.S_ISREG(st.st_mode):
            raise DiskImageError('%s: not a regular file' % self.path)
        if st.st_size == 0:
            return None
        head = os.pread(self.fd, self.block_size, 0)
        if not head.startswith(HEADER_MAGIC):
            raise DiskImageError('%s: not a faultlab disk image (refusing to overwrite it)' % self.path)
        try:
            where = json.loads(head[len(HEADER_MAGIC):].rstrip(b'\0').decode())
            blob = os.pread(self.fd, where['length'], where['offset'])
            if len(blob) != where['length']:
                raise ValueError('short record')
            return json.loads(blob.decode())
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, OSError) as e:
            raise DiskImageError('%s: damaged faultlab disk image (%s)' % (self.path, e)) from None

    def save(self, record, end_block):
        """Write record (JSON-able) after block end_block and point block 0's header at it."""
        blob = json.dumps(record, separators=(',', ':')).encode()
        offset = end_block * self.block_size
        self.pwrite(blob, offset)
        os.ftruncate(self.fd, offset + len(blob))
        head = HEADER_MAGIC + json.dumps({'offset': offset, 'length': len(blob)}).encode()
        self.pwrite(head + bytes(self.block_size - len(head)), 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)     # consistent on disk: the next run may take it

    def pread_into(self, buf, offset):
        """Fill buf (a writable buffer) from the file at offset; bytes past the end read as zeros."""
        n = os.preadv(self.fd, [buf], offset)
        if n < len(buf):
            memoryview(buf)[n:] = bytes(len(buf) - n)

    def pread(self, n, offset):
        """n bytes at offset (zeros past the end of the file)."""
        data = os.pread(self.fd, n, offset)
        return data if len(data) == n else data + bytes(n - len(data))

    def pwrite(self, data, offset):
        """Write data (any buffer) at offset; ENOSPC and EIO of the host end the run with one line."""
        try:
            n = os.pwrite(self.fd, data, offset)
        except OSError as e:
            raise DiskImageError('%s: %s' % (self.path or 'the temporary disk file', e.strerror)) from None
        if n != len(data):
            raise DiskImageError('%s: %s' % (self.path or 'the temporary disk file', os.strerror(errno.ENOSPC)))

    def pwritev(self, bufs, offset):
        """Write the buffers one after the other from offset (as pwrite)."""
        want = sum(len(b) for b in bufs)
        try:
            n = os.pwritev(self.fd, bufs, offset)
        except OSError as e:
            raise DiskImageError('%s: %s' % (self.path or 'the temporary disk file', e.strerror)) from None
        if n != want:             # a short write: the rest one buffer at a time (ENOSPC then raises)
            done = 0
            for b in bufs:
                if done + len(b) > n:
                    self.pwrite(bytes(b)[max(0, n - done):], offset + max(n, done))
                done += len(b)

    def region(self, first_block, nblocks):
        """A BlockRegion of nblocks blocks starting at first_block."""
        return BlockRegion(self, first_block, nblocks)

    def close(self):
        """Close the file (a temporary one is gone then)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def __del__(self):
        if getattr(self, 'fd', -1) >= 0 and self._file is None:
            try:
                os.close(self.fd)
            except OSError:
                pass


class BlockRegion:
    """Blocks [first, first + nblocks) of a DiskStore as a dict block -> bytes of the blocks written.

    `region[b] = data` writes the block, `get(b)` reads it (None if never written since it was freed),
    `pop(b)` forgets it (the bytes stay in the file until overwritten; nothing reads them). Which blocks
    hold data is a bitmap of one byte per block, not the data.
    """

    BATCH = 64                          # deferred writes gathered into one pwritev at most

    def __init__(self, store, first, nblocks):
        self.store = store
        self.first = first
        self.nblocks = nblocks
        self.bs = store.block_size
        self.written = bytearray(nblocks)
        self.pending = {}               # block -> buffer of a deferred write (see defer)

    def _offset(self, block):
        if not 0 <= block < self.nblocks:
            raise KeyError(block)
        return (self.first + block) * self.bs

    def __contains__(self, block):
        return 0 <= block < self.nblocks and self.written[block] == 1

    def __len__(self):
        return self.written.count(1)

    def __iter__(self):
        w = self.written
        b = w.find(1)
        while b >= 0:
            yield b
            b = w.find(1, b + 1)

    def get(self, block, default=None):
        """The block's bytes, or default when it holds no data."""
        if not (0 <= block < self.nblocks and self.written[block]):
            return default
        if block in self.pending:
            self.flush()
        return self.store.pread(self.bs, (self.first + block) * self.bs)

    def __getitem__(self, block):
        data = self.get(block)
        if data is None:
            raise KeyError(block)
        return data

    def read_into(self, block, buf):
        """Copy the block into buf (a writable buffer of one block); False if it holds no data."""
        if not (0 <= block < self.nblocks and self.written[block]):
            return False
        if block in self.pending:
            self.flush()
        self.store.pread_into(buf, (self.first + block) * self.bs)
        return True

    def __setitem__(self, block, data):
        if len(data) != self.bs:
            raise ValueError('a block is %d bytes, got %d' % (self.bs, len(data)))
        self.pending.pop(block, None)
        self.store.pwrite(data, self._offset(block))
        self.written[block] = 1

    def defer(self, block, buf):
        """Write buf to the block later, with its neighbours in one system call: the caller keeps buf
        unchanged until flush() (the swap cache flushes before a page under writeback can change:
        its completion, a lookup that may map it again, its removal from the cache)."""
        self._offset(block)
        self.pending[block] = buf
        self.written[block] = 1
        if len(self.pending) >= self.BATCH:
            self.flush()

    def flush(self):
        """Write every deferred block: one pwritev per run of consecutive blocks."""
        pending = self.pending
        if not pending:
            return
        self.pending = {}
        blocks = sorted(pending)
        store, bs, first = self.store, self.bs, self.first
        i, n = 0, len(blocks)
        while i < n:
            j = i + 1
            while j < n and blocks[j] == blocks[j - 1] + 1:
                j += 1
            store.pwritev([pending[b] for b in blocks[i:j]], (first + blocks[i]) * bs)
            i = j

    def pop(self, block, default=None):
        """Forget the block's data (it reads as absent again); returns nothing useful (default)."""
        if 0 <= block < self.nblocks:
            self.written[block] = 0
            self.pending.pop(block, None)
        return default

    def mark_written(self, block):
        """The block holds data already (a disk image's block restored with its file)."""
        self.written[block] = 1
