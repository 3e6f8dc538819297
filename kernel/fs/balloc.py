"""Block allocator of the disk filesystem: a byte-per-block bitmap with goal-directed search."""
import errno

from faultlab.kernel.fs.errors import FsError


class BlockAllocator:
    """ext4_new_meta_blocks-like allocation of block numbers in [first_data_block, nblocks)."""

    def __init__(self, nblocks, first_data_block=0):
        """A bitmap of nblocks blocks; blocks before first_data_block are reserved (metadata)."""
        if nblocks <= first_data_block:
            raise ValueError(f'disk of {nblocks} blocks has no room after {first_data_block} reserved')
        self.nblocks = nblocks
        self.first_data_block = first_data_block
        self._bitmap = bytearray(nblocks)
        self._bitmap[:first_data_block] = b'\x01' * first_data_block
        self.nfree = nblocks - first_data_block
        self._hint = first_data_block

    def alloc(self, goal=None):
        """Allocate one block, preferring `goal` (to keep files contiguous); raise ENOSPC when full."""
        if self.nfree == 0:
            raise FsError(errno.ENOSPC)
        start = goal if goal is not None and self.first_data_block <= goal < self.nblocks else self._hint
        b = self._bitmap.find(0, start)
        if b < 0:
            b = self._bitmap.find(0, self.first_data_block)
        self._bitmap[b] = 1
        self.nfree -= 1
        self._hint = b + 1 if b + 1 < self.nblocks else self.first_data_block
        return b

    def free(self, block):
        """Return a block to the free pool."""
        if not self.first_data_block <= block < self.nblocks or not self._bitmap[block]:
            raise ValueError(f'freeing block {block} that is not allocated')
        self._bitmap[block] = 0
        self.nfree += 1

    def is_allocated(self, block):
        """True if the block is in use."""
        return bool(self._bitmap[block])

    @property
    def nused(self):
        """Number of allocated data blocks."""
        return self.nblocks - self.first_data_block - self.nfree
