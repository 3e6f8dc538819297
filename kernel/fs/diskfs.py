"""The guest's on-disk filesystem: file pages stored in blocks of a simulated disk image.

Block numbers come from a bitmap allocator; the image keeps written blocks in the disk's host file
(kernel/block/store.py BlockRegion, block -> bytes; an allocated block never written reads as zeros).
Holes have no block.
Directories and inodes are kept in memory (metadata I/O is not timed).
"""
import errno

from faultlab.kernel.block.store import DiskStore
from faultlab.kernel.fs.balloc import BlockAllocator
from faultlab.kernel.fs.dir import MemDir
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.regfile import ZERO_PAGE, PagedFile
from faultlab.kernel.fs.stat import EXT4_SUPER_MAGIC, PAGE_SIZE, S_IFDIR, makedev
from faultlab.kernel.fs.superblock import SuperBlock
from faultlab.kernel.fs.symlink import Symlink

EXT4_ROOT_INO = 2
EXT4_FIRST_INO = 11
EXT4_MAX_FILE_SIZE = 16 << 40          # 16 TiB with 4 KiB blocks


class DiskFile(PagedFile):
    """A regular file of DiskFs: page index -> disk block."""
    backing = 'disk'

    def __init__(self, sb, ino, mode, uid=0, gid=0):
        """An empty file (no blocks)."""
        super().__init__(sb, ino, mode, uid, gid)
        self._map = {}
        self._unwritten = set()     # pages whose block fallocate allocated and nobody wrote yet
        self._wbuf = None           # (index, block, buffer) handed out by _page_for_write until dirtied

    def bmap(self, index):
        """The disk block holding page index, or None for a hole or an unwritten extent (fallocated,
        never written: it reads as zeros without disk I/O, like ext4's unwritten extents)."""
        if index in self._unwritten:
            return None
        return self._map.get(index)

    def allocate(self, offset, length):
        """fallocate mode 0: allocate blocks as unwritten extents (no data written, none read back);
        returns the number of blocks allocated."""
        end, first, last = self._allocate_range(offset, length)
        have = sum(1 for i in self._map if first <= i < last)
        self._reserve(last - first - have)          # ENOSPC before a block is taken (counted, not listed)
        need = [i for i in range(first, last) if i not in self._map]
        prev = None
        for i in need:
            prev = self._map.get(i - 1, prev)
            block = self._map[i] = self.sb.allocator.alloc(None if prev is None else prev + 1)
            self._unwritten.add(i)
            prev = block
        if end > self.size:
            self.size = end
            self.touch_mtime()
        else:
            self.touch_ctime()
        return len(need)

    def reserve_page(self, index):
        """Allocate the page's block at write_begin / page_mkwrite (ext4 without delalloc) as an unwritten
        extent until writeback fills it: ENOSPC now, never at writeback."""
        if index not in self._map:
            prev = self._map.get(index - 1)
            self._map[index] = self.sb.allocator.alloc(None if prev is None else prev + 1)
            self._unwritten.add(index)

    def _page_get(self, index):
        """The block's data (zeros if allocated but never written), or None for a hole."""
        block = self._map.get(index)
        if block is None:
            return None
        data = self.sb.image.get(block)
        return ZERO_PAGE if data is None else data

    def _page_for_write(self, index):
        """The block's buffer, allocating a block next to the previous page's if possible."""
        self._unwritten.discard(index)
        block = self._map.get(index)
        if block is None:
            prev = self._map.get(index - 1)
            block = self.sb.allocator.alloc(None if prev is None else prev + 1)
            self._map[index] = block
        data = bytearray(PAGE_SIZE)
        self.sb.image.read_into(block, data)
        self._wbuf = (index, block, data)
        return data

    def _page_dirtied(self, index):
        """Write the buffer _page_for_write gave out for the page to its block."""
        wb = self._wbuf
        if wb is not None and wb[0] == index:
            self._wbuf = None
            self.sb.image[wb[1]] = wb[2]

    def _page_free(self, index):
        """Free the page's block."""
        self._unwritten.discard(index)
        block = self._map.pop(index, None)
        if block is not None:
            self.sb.image.pop(block, None)
            self.sb.allocator.free(block)

    def _page_indices(self):
        """Mapped page indices."""
        return self._map.keys()

    def _reserve(self, npages):
        """ENOSPC unless enough blocks are free for npages."""
        if npages > self.sb.allocator.nfree:
            raise FsError(errno.ENOSPC)


class DiskDir(MemDir):
    """A DiskFs directory (its entries are kept in memory; it takes one block like ext4's first one)."""
    dir_block = None

    def evict(self):
        """Give the directory's block back."""
        if self.dir_block is not None:
            self.sb.allocator.free(self.dir_block)
            self.dir_block = None

    @property
    def blocks(self):
        """One 4 KiB block."""
        return PAGE_SIZE // 512


class DiskFs(SuperBlock):
    """An ext4-like filesystem on a simulated disk of nblocks blocks of 4 KiB."""
    fstype = 'ext4'
    magic = EXT4_SUPER_MAGIC
    max_file_size = EXT4_MAX_FILE_SIZE
    first_ino = EXT4_FIRST_INO + 1
    file_class = DiskFile
    dir_class = DiskDir
    symlink_class = Symlink

    def __init__(self, clock=None, nblocks=1 << 20, readonly=False, dev=makedev(259, 1),
                 block_size=PAGE_SIZE, ninodes=None, image=None):
        """A fresh, empty filesystem; block 0 and the bitmap blocks are reserved for metadata.
        image: where the blocks' data lives (a BlockRegion of the disk's host file; None: a temporary
        file of its own)."""
        if block_size != PAGE_SIZE:
            raise ValueError(f'DiskFs block size must be {PAGE_SIZE}, got {block_size}')
        super().__init__(clock, readonly, dev)
        bitmap_blocks = -(-nblocks // (8 * PAGE_SIZE))
        self.allocator = BlockAllocator(nblocks, 1 + bitmap_blocks)
        self.image = image if image is not None else DiskStore(block_size=PAGE_SIZE).region(0, nblocks)
        self.max_inodes = ninodes if ninodes is not None else max(16, nblocks // 4)
        self.root = DiskDir(self, EXT4_ROOT_INO, S_IFDIR | 0o755, 0, 0, None)
        self.ninodes = 1

    def alloc_ino(self):
        """A fresh inode number; ENOSPC when the inode table is full."""
        if self.ninodes >= self.max_inodes:
            raise FsError(errno.ENOSPC)
        return super().alloc_ino()

    def new_dir(self, mode, uid=0, gid=0, parent=None):
        """A directory with its first block (ext4_mkdir -> ext4_init_new_dir): ENOSPC on a full disk."""
        block = self.allocator.alloc()
        try:
            inode = super().new_dir(mode, uid, gid, parent)
        except FsError:
            self.allocator.free(block)
            raise
        inode.dir_block = block
        return inode

    def dir_size(self, nentries):
        """ext4 directories are (at least) one block."""
        return PAGE_SIZE

    def statfs(self):
        """Block and inode counts from the allocator."""
        st = super().statfs()
        a = self.allocator
        st.f_blocks = a.nblocks
        st.f_bfree = st.f_bavail = a.nfree
        st.f_files = self.max_inodes
        st.f_ffree = self.max_inodes - self.ninodes
        return st
