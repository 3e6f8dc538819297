"""hugetlbfs (fs/hugetlbfs/inode.c): files whose pages are 2 MiB pages of the hugetlb pool, behind
MAP_HUGETLB memory (an unlinked file per mapping) and memfd_create(MFD_HUGETLB). No write(2); read(2)
straight from the huge pages; fallocate takes (and clears) pool pages; sizes are multiples of 2 MiB."""
import errno

from kernel.fs.errors import FsError
from kernel.fs.regfile import PagedFile
from kernel.fs.superblock import SuperBlock
from kernel.mm.hugetlb import HPAGE_SHIFT, HPAGE_SIZE, HUGETLB_PAGE_ORDER, PAGES_PER_HPAGE, HUGETLBFS_MAGIC


class HugetlbFile(PagedFile):
    """A hugetlbfs file: its pages are 2 MiB pool pages (hpages: huge index -> head page); `resv` holds
    the huge indices reserved by shared mappings and not yet allocated."""
    backing = 'mem'
    blksize = HPAGE_SIZE

    def __init__(self, sb, ino, mode, uid=0, gid=0):
        super().__init__(sb, ino, mode, uid, gid)
        self.hpages = {}
        self.resv = set()

    @property
    def h(self):
        return self.sb.hstate

    @property
    def blocks(self):
        return len(self.hpages) * (HPAGE_SIZE // 512)

    # content, 4 KiB at a time (read(2) goes through the page cache in 4 KiB pages)
    def _page_get(self, index):
        head = self.hpages.get(index >> HUGETLB_PAGE_ORDER)
        if head is None:
            return None
        return self.sb.hstate.frames.phys.frame(head.pfn + (index & (PAGES_PER_HPAGE - 1)))

    def _page_for_write(self, index):
        raise FsError(errno.EINVAL)        # hugetlbfs has no write(2)

    def _page_free(self, index):
        pass

    def _page_indices(self):
        return [i << HUGETLB_PAGE_ORDER | j for i in self.hpages for j in range(PAGES_PER_HPAGE)]

    def write_page(self, index, data, offset_in_page=0):
        raise FsError(errno.EINVAL)

    no_write_iter = True

    def read_iter(self, pos, count):
        """hugetlbfs_read_iter: read(2) straight from the huge pages (holes read as zeros)."""
        end = min(self.size, pos + count)
        out = bytearray()
        mv = self.sb.hstate.frames.phys.mv
        while pos < end:
            n = min(end - pos, HPAGE_SIZE - (pos & (HPAGE_SIZE - 1)))
            head = self.hpages.get(pos >> HPAGE_SHIFT)
            if head is None:
                out += bytes(n)
            else:
                a = (head.pfn << 12) + (pos & (HPAGE_SIZE - 1))
                out += mv[a:a + n]
            pos += n
        return bytes(out)

    def alloc_file_page(self, idx):
        """The pool page for huge index idx, newly allocated (from this file's reservation if it has
        one) and cleared, added to the file; None when the pool has none."""
        h = self.h
        use_resv = idx in self.resv
        head = h.dequeue_huge_page(use_resv)
        if head is None:
            return None
        self.resv.discard(idx)
        h.clear_huge_page(head)
        head.mapping = self
        head.index = idx
        self.hpages[idx] = head
        return head

    def remove_huge_page(self, idx):
        """Drop the file's reference to its page at idx (mappings keep theirs)."""
        head = self.hpages.pop(idx, None)
        if head is not None:
            head.mapping = None
            self.h.put_huge_page(head)

    def _release_resv(self, first):
        drop = [i for i in self.resv if i >= first]
        for i in drop:
            self.resv.discard(i)
        self.h.resv_huge_pages -= len(drop)

    def allocate(self, offset, length):
        """fallocate mode 0 / KEEP_SIZE: a cleared pool page for every huge page in the range (ENOSPC
        when the pool runs out); the size grows to offset + length. Returns the huge pages allocated."""
        if offset < 0 or length <= 0:
            raise FsError(errno.EINVAL)
        end = offset + length
        n = 0
        for idx in range(offset >> HPAGE_SHIFT, (end + HPAGE_SIZE - 1) >> HPAGE_SHIFT):
            if idx not in self.hpages:
                if self.alloc_file_page(idx) is None:
                    raise FsError(errno.ENOSPC)
                n += 1
        if end > self.size:
            self.size = end
        self.touch_mtime()
        return n

    def punch_hole(self, start, length):
        """FALLOC_FL_PUNCH_HOLE: free the whole huge pages inside the range, zero partial ones."""
        if start < 0 or length <= 0:
            raise FsError(errno.EINVAL)
        end = min(start + length, self.size)
        first, last = (start + HPAGE_SIZE - 1) >> HPAGE_SHIFT, end >> HPAGE_SHIFT
        for idx in [i for i in self.hpages if first <= i < last]:
            self.remove_huge_page(idx)
        for a, b in ((start, min(end, first << HPAGE_SHIFT)), (max(start, last << HPAGE_SHIFT), end)):
            head = self.hpages.get(a >> HPAGE_SHIFT)
            if a < b and head is not None:
                p = (head.pfn << 12) + (a & (HPAGE_SIZE - 1))
                self.h.frames.phys.mv[p:p + (b - a)] = bytes(b - a)
        self.touch_mtime()

    def set_size(self, new_size):
        self.truncate(new_size)

    def truncate(self, new_size):
        """hugetlbfs setattr: the size must be a multiple of the huge page size; pages past it go."""
        if new_size < 0 or new_size & (HPAGE_SIZE - 1):
            raise FsError(errno.EINVAL)
        if new_size < self.size:
            first = new_size >> HPAGE_SHIFT
            for idx in [i for i in self.hpages if i >= first]:
                self.remove_huge_page(idx)
            self._release_resv(first)
        if new_size != self.size:
            self.touch_mtime()
        self.size = new_size

    def evict(self):
        for idx in list(self.hpages):
            self.remove_huge_page(idx)
        self._release_resv(0)


class HugetlbFs(SuperBlock):
    """The internal hugetlbfs mount (hugetlbfs_vfsmount) behind MAP_HUGETLB and MFD_HUGETLB."""
    fstype = 'hugetlbfs'
    magic = HUGETLBFS_MAGIC
    file_class = HugetlbFile

    def __init__(self, hstate, clock=None, dev=0):
        super().__init__(clock, dev=dev)
        self.hstate = hstate

    def statfs(self):
        st = super().statfs()
        st.f_bsize = st.f_frsize = HPAGE_SIZE
        st.f_namelen = 255
        return st


def hugetlb_file_setup(hstate, pagecache, size, path='/anon_hugepage (deleted)'):
    """The unlinked hugetlbfs file behind an anonymous MAP_HUGETLB mapping, as an open file."""
    from kernel.file import OpenFile
    inode = hstate.sb.new_anon_file()
    inode.ihold()
    inode.size = size
    return OpenFile(inode, 2, path, pagecache)
