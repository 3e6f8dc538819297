"""Regular files stored as pages: read/write by page, truncate, holes, fallocate, bmap.

Subclasses say where pages live by implementing the _page_* hooks; this class keeps the file
semantics (EOF, holes reading as zeros, zeroing on shrink) in one place.
"""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.inode import Inode
from faultlab.kernel.fs.stat import PAGE_SIZE, S_IFMT, S_IFREG

ZERO_PAGE = bytes(PAGE_SIZE)


class PagedFile(Inode):
    """A regular file whose content is a sparse array of PAGE_SIZE pages."""

    def __init__(self, sb, ino, mode, uid=0, gid=0):
        """A new, empty regular file."""
        super().__init__(sb, ino, (mode & ~S_IFMT) | S_IFREG, uid, gid)

    # ---- storage hooks (subclasses) ------------------------------------------------------------
    def _page_get(self, index):
        """The stored page at index (bytes-like, PAGE_SIZE long) or None for a hole."""
        raise NotImplementedError

    def _page_for_write(self, index):
        """A writable PAGE_SIZE bytearray for index, allocating it if needed (may raise ENOSPC)."""
        raise NotImplementedError

    def _page_free(self, index):
        """Deallocate the page at index (no-op for a hole)."""
        raise NotImplementedError

    def _page_indices(self):
        """Indices of allocated pages."""
        raise NotImplementedError

    def _reserve(self, npages):
        """Raise ENOSPC unless npages more pages can be allocated."""

    def reserve_page(self, index):
        """write_begin / page_mkwrite: make sure page `index` has its backing before it is dirtied in
        the page cache, so that writeback cannot fail; raises ENOSPC (default: nothing to reserve)."""

    def bmap(self, index):
        """The disk block backing page `index`, or None (hole, or a file not on a disk)."""
        return None

    # ---- file operations ------------------------------------------------------------------------
    @property
    def blocks(self):
        """st_blocks: 512-byte units of allocated pages."""
        return sum(1 for _ in self._page_indices()) * (PAGE_SIZE // 512)

    def read_page(self, index):
        """The file's bytes at [index*4096, +4096): shorter at EOF, b'' past it, zeros in holes."""
        if index < 0:
            raise ValueError(f'negative page index {index}')
        start = index * PAGE_SIZE
        if start >= self.size:
            return b''
        n = min(PAGE_SIZE, self.size - start)
        page = self._page_get(index)
        if page is None:
            return ZERO_PAGE[:n]
        return bytes(page[:n])

    def write_page(self, index, data, offset_in_page=0):
        """Store data into page `index` at offset_in_page. Does not change the size (see set_size)."""
        if index < 0 or offset_in_page < 0 or offset_in_page + len(data) > PAGE_SIZE:
            raise ValueError(f'write of {len(data)} bytes at page {index}+{offset_in_page} '
                             f'does not fit in one page')
        self.check_writable()
        if (index + 1) * PAGE_SIZE > self.sb.max_file_size:
            raise FsError(errno.EFBIG)
        if data:
            page = self._page_for_write(index)
            page[offset_in_page:offset_in_page + len(data)] = data
            self._page_dirtied(index)
        self.touch_mtime()

    def _page_dirtied(self, index):
        """Hook: page `index` was modified in place."""

    def set_size(self, new_size):
        """i_size_write after a write: grow without touching data, or shrink like truncate."""
        if new_size < self.size:
            self.truncate(new_size)
            return
        self.check_writable()
        if new_size > self.sb.max_file_size:
            raise FsError(errno.EFBIG)
        self.size = new_size

    def truncate(self, new_size):
        """ftruncate: set the size, freeing pages past it and zeroing the tail of the last page."""
        if new_size < 0:
            raise FsError(errno.EINVAL)
        self.check_writable()
        if new_size > self.sb.max_file_size:
            raise FsError(errno.EFBIG)
        old = self.size
        if new_size < old:
            self._truncate_pages(new_size)
        elif new_size > old:
            self._zero_partial(old, min(new_size, (old + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE))
        if new_size != old:
            self.touch_mtime()
        self.size = new_size

    def punch_hole(self, start, length):
        """fallocate(PUNCH_HOLE|KEEP_SIZE): zero [start, start+length), freeing whole pages."""
        if start < 0 or length <= 0:
            raise FsError(errno.EINVAL)
        self.check_writable()
        self._punch(start, start + length)
        self.touch_mtime()

    def _allocate_range(self, offset, length):
        """fallocate's checks (EINVAL, EROFS/EPERM, EFBIG): (end, first page, page after the last)."""
        if offset < 0 or length <= 0:
            raise FsError(errno.EINVAL)
        self.check_writable()
        end = offset + length
        if end > self.sb.max_file_size:
            raise FsError(errno.EFBIG)
        return end, offset // PAGE_SIZE, (end + PAGE_SIZE - 1) // PAGE_SIZE

    def allocate(self, offset, length):
        """fallocate mode 0: allocate pages for [offset, offset+length), growing the size to cover it;
        returns the number of pages allocated."""
        end, first, last = self._allocate_range(offset, length)
        have = [i for i in self._page_indices() if first <= i < last]
        need = last - first - len(have)
        self._reserve(need)                            # ENOSPC before any page is touched
        have = set(have)
        for i in range(first, last):
            if i not in have:
                self._page_for_write(i)
        if end > self.size:
            self.size = end
            self.touch_mtime()
        else:
            self.touch_ctime()
        return need

    def evict(self):
        """Free every page of an unlinked, unused file."""
        for i in list(self._page_indices()):
            self._page_free(i)

    # ---- helpers --------------------------------------------------------------------------------
    def _zero_partial(self, start, end):
        """Zero bytes [start, end) that lie inside one already-allocated page."""
        if start >= end:
            return
        index = start // PAGE_SIZE
        page = self._page_get(index)
        if page is not None:
            self._page_for_write(index)[start % PAGE_SIZE:(end - 1) % PAGE_SIZE + 1] = bytes(end - start)
            self._page_dirtied(index)

    def _punch(self, start, end):
        """Zero [start, end): free the pages wholly inside it, zero the partial pages at its edges."""
        first_full = -(-start // PAGE_SIZE)
        end_full = end // PAGE_SIZE                  # exclusive
        for i in [i for i in self._page_indices() if first_full <= i < end_full]:
            self._page_free(i)
        if first_full > end_full:                    # start and end inside one page
            self._zero_partial(start, end)
            return
        self._zero_partial(start, first_full * PAGE_SIZE)
        self._zero_partial(end_full * PAGE_SIZE, end)

    def _truncate_pages(self, new_size):
        """truncate_inode_pages_range: free pages past new_size, zero the rest of its last page."""
        first_gone = -(-new_size // PAGE_SIZE)
        for i in [i for i in self._page_indices() if i >= first_gone]:
            self._page_free(i)
        self._zero_partial(new_size, first_gone * PAGE_SIZE)
