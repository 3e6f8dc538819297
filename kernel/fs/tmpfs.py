"""tmpfs: a filesystem kept entirely in memory (also the home of memfd files)."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.dir import MemDir
from faultlab.kernel.fs.regfile import PagedFile
from faultlab.kernel.fs.stat import PAGE_SIZE, TMPFS_MAGIC, S_IFDIR
from faultlab.kernel.fs.superblock import SuperBlock
from faultlab.kernel.fs.symlink import Symlink

BOGO_DIRENT_SIZE = 20     # mm/shmem.c: what each entry adds to a tmpfs directory's st_size


class MemFile(PagedFile):
    """A shmem file: pages in a dict index -> bytearray; no disk behind it."""
    backing = 'mem'

    def __init__(self, sb, ino, mode, uid=0, gid=0):
        """An empty memory file."""
        super().__init__(sb, ino, mode, uid, gid)
        self._pages = {}

    def _page_get(self, index):
        """The page or None."""
        return self._pages.get(index)

    def _page_for_write(self, index):
        """The page, allocated zeroed if missing."""
        page = self._pages.get(index)
        if page is None:
            self._reserve(1)
            page = self._pages[index] = bytearray(PAGE_SIZE)
            self.sb.used_pages += 1
        return page

    def has_page(self, index):
        """True if the file holds a page at index (written, or accounted by a fault or fallocate), False
        for a hole."""
        return index in self._pages

    def reserve_page(self, index):
        """shmem_get_folio's shmem_inode_acct_blocks: the page counts against the size limit as soon as
        it is cached (ENOSPC at the limit)."""
        self._page_for_write(index)

    def _page_free(self, index):
        """Drop the page."""
        if self._pages.pop(index, None) is not None:
            self.sb.used_pages -= 1

    def _reserve(self, npages):
        """ENOSPC when the tmpfs would grow past its size limit (shmem_inode_acct_blocks)."""
        sb = self.sb
        if sb.max_pages is not None and sb.used_pages + npages > sb.max_pages:
            raise FsError(errno.ENOSPC)

    def _page_indices(self):
        """Allocated page indices."""
        return self._pages.keys()


class TmpFs(SuperBlock):
    """A tmpfs instance."""
    fstype = 'tmpfs'
    magic = TMPFS_MAGIC
    file_class = MemFile
    dir_class = MemDir
    symlink_class = Symlink

    def __init__(self, clock=None, readonly=False, dev=None, mode=0o1777, uid=0, gid=0, max_pages=None,
                 max_inodes=None, internal=False):
        """A tmpfs whose root has the given mode (default drwxrwxrwt like /tmp), holding at most
        max_pages pages (size=; Linux's default is half of RAM; None: no limit) and max_inodes inodes
        (nr_inodes=; None: no limit). The limits given here are the defaults show_options leaves out.
        internal: the kernel's own mount behind memfd and shared memory (shm_mnt)."""
        super().__init__(clock, readonly, dev)
        self.max_pages = self.default_pages = max_pages
        self.max_inodes = self.default_inodes = max_inodes
        self.used_pages = 0
        self.huge = 'never'          # huge= (never, always, within_size, advise): THP for its files
        self.internal = internal     # shm_mnt (memfd, shared anonymous, SysV shm): shmem_enabled decides
        self.mode, self.uid, self.gid = mode, uid, gid
        self.root = self.new_dir(S_IFDIR | mode, uid, gid, None)

    def alloc_ino(self):
        """shmem_reserve_inode: ENOSPC once nr_inodes inodes exist."""
        if self.max_inodes is not None and self.ninodes >= self.max_inodes:
            raise FsError(errno.ENOSPC)
        return super().alloc_ino()

    def show_options(self):
        """shmem_show_options: the mount options that differ from the defaults."""
        out = ''
        if self.max_pages != self.default_pages:
            out += ',size=%dk' % ((self.max_pages or 0) * (PAGE_SIZE >> 10))
        if self.max_inodes != self.default_inodes:
            out += ',nr_inodes=%d' % (self.max_inodes or 0)
        if self.mode != 0o1777:
            out += ',mode=%03o' % self.mode
        if self.uid:
            out += ',uid=%d' % self.uid
        if self.gid:
            out += ',gid=%d' % self.gid
        if self.huge != 'never':            # shown unmasked by shmem_enabled, as Linux does
            out += ',huge=%s' % self.huge
        return out

    def dir_size(self, nentries):
        """tmpfs counts BOGO_DIRENT_SIZE per entry, plus two for '.' and '..'."""
        return (nentries + 2) * BOGO_DIRENT_SIZE

    def statfs(self):
        """Free space as tmpfs reports it: its size limit in pages, used and free."""
        st = super().statfs()
        st.f_namelen = 255
        if self.max_pages is not None:
            st.f_blocks = self.max_pages
            st.f_bfree = st.f_bavail = max(0, self.max_pages - self.used_pages)
        if self.max_inodes is not None:
            st.f_files = self.max_inodes
            st.f_ffree = max(0, self.max_inodes - self.ninodes)
        return st
