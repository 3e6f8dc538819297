"""SuperBlock: one mounted filesystem instance (device number, inode numbers, clock, read-only flag)."""
from faultlab.kernel.fs.stat import PAGE_SIZE, S_IFREG, ST_RDONLY, ST_VALID, StatFs, Timespec, timespec_from_ns

MAX_LFS_FILESIZE = 0x7fffffffffffffff


def clock_to_timespec(clock):
    """Read clock(): an int is nanoseconds, a float is seconds; None means time 0."""
    if clock is None:
        return Timespec(0, 0)
    t = clock()
    if isinstance(t, float):
        return timespec_from_ns(round(t * 1_000_000_000))
    return timespec_from_ns(t)


class SuperBlock:
    """struct super_block: shared state of one filesystem instance.

    Subclasses set fstype/magic and the inode classes they create (file_class, dir_class).
    `dev` is the st_dev of every inode; Vfs.mount assigns an anonymous 0:N if it is None.
    """
    fstype = 'none'
    magic = 0
    max_file_size = MAX_LFS_FILESIZE
    first_ino = 1
    file_class = None
    dir_class = None
    symlink_class = None

    def __init__(self, clock=None, readonly=False, dev=None):
        """clock() returns the wall time (int ns or float s) used for timestamps."""
        self.clock = clock
        self.readonly = readonly
        self.dev = dev
        self._next_ino = self.first_ino
        self.root = None
        self.ninodes = 0

    def now(self):
        """current_time(): the clock as a Timespec."""
        return clock_to_timespec(self.clock)

    def alloc_ino(self):
        """get_next_ino: a fresh inode number."""
        ino = self._next_ino
        self._next_ino += 1
        self.ninodes += 1
        return ino

    def evict_inode(self, inode):
        """An inode was freed (no links, no users)."""
        self.ninodes -= 1

    def write_inode(self, inode):
        """Hook called after attribute changes (setattr)."""

    def dir_size(self, nentries):
        """st_size of a directory with nentries entries (besides . and ..)."""
        return 0

    def new_file(self, mode, uid=0, gid=0):
        """A new regular-file inode (not yet linked anywhere)."""
        return self.file_class(self, self.alloc_ino(), mode, uid, gid)

    def new_anon_file(self, mode=0o600, uid=0, gid=0):
        """An unlinked file (nlink 0) for memfd_create, O_TMPFILE and hugetlb_file_setup; ihold() it."""
        inode = self.new_file(S_IFREG | mode, uid, gid)
        inode.nlink = 0
        return inode

    def new_dir(self, mode, uid=0, gid=0, parent=None):
        """A new directory inode whose '..' is parent (itself when None)."""
        return self.dir_class(self, self.alloc_ino(), mode, uid, gid, parent)

    def new_symlink(self, target, uid=0, gid=0):
        """A new symlink inode pointing at target."""
        return self.symlink_class(self, self.alloc_ino(), target, uid, gid)

    def statfs(self):
        """statfs(2) numbers for this filesystem."""
        return StatFs(f_type=self.magic, f_bsize=PAGE_SIZE, f_frsize=PAGE_SIZE,
                      f_fsid=((self.dev or 0) & 0xffffffff, (self.dev or 0) >> 32),
                      f_flags=ST_VALID | (ST_RDONLY if self.readonly else 0))
