"""tmpfs: a filesystem kept entirely in memory (also the home of memfd files)."""
from kernel.fs.dir import MemDir
from kernel.fs.regfile import PagedFile
from kernel.fs.stat import PAGE_SIZE, TMPFS_MAGIC, S_IFDIR, S_IFREG
from kernel.fs.superblock import SuperBlock
from kernel.fs.symlink import Symlink

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
            page = self._pages[index] = bytearray(PAGE_SIZE)
        return page

    def _page_free(self, index):
        """Drop the page."""
        self._pages.pop(index, None)

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

    def __init__(self, clock=None, readonly=False, dev=None, mode=0o1777, uid=0, gid=0):
        """A tmpfs whose root has the given mode (default drwxrwxrwt like /tmp)."""
        super().__init__(clock, readonly, dev)
        self.root = self.new_dir(S_IFDIR | mode, uid, gid, None)

    def dir_size(self, nentries):
        """tmpfs counts BOGO_DIRENT_SIZE per entry, plus two for '.' and '..'."""
        return (nentries + 2) * BOGO_DIRENT_SIZE

    def new_anon_file(self, mode=0o600, uid=0, gid=0):
        """An unlinked file (nlink 0) for memfd_create/O_TMPFILE; ihold() it at once."""
        inode = self.new_file(S_IFREG | mode, uid, gid)
        inode.nlink = 0
        return inode

    def statfs(self):
        """Free space as tmpfs reports it without a size= limit (half of RAM: not modelled, so 0)."""
        st = super().statfs()
        st.f_namelen = 255
        return st
