"""Synthetic (procfs-style) files whose content is produced by callbacks."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.inode import Inode
from faultlab.kernel.fs.stat import PAGE_SIZE, S_IFLNK, S_IFREG


class SynthFile(Inode):
    """A regular file generated when read: read_fn() -> bytes; writes go to write_fn(bytes).

    Like a /proc file it reports st_size 0. As seq_read does, the file layer calls read_content()
    at each read from offset 0 (and at the first read, whatever its offset), and serves reads at
    other offsets from that text; the open generates nothing. A file too large to snapshot
    (/proc/self/pagemap) sets read_at(offset, count) -> bytes instead: the file layer then reads
    it lazily at the file position, and read_content() is empty. A file written at a position
    (/proc/self/mem) sets write_at(offset, data) -> bytes written: the file layer calls it instead of
    write_content and moves the file position by the count.
    """

    owner = None             # a /proc/PID file: () -> (uid, gid) of the task it shows (task_dump_owner)

    @property
    def uid(self):
        """st_uid: the shown task's owner for a /proc/PID file, else the fixed one."""
        return self.owner()[0] if self.owner is not None else self._uid

    @uid.setter
    def uid(self, value):
        self._uid = value

    @property
    def gid(self):
        """st_gid, as uid."""
        return self.owner()[1] if self.owner is not None else self._gid

    @gid.setter
    def gid(self, value):
        self._gid = value

    def __init__(self, sb, ino, read_fn, write_fn=None, mode=None, uid=0, gid=0, read_at=None):
        """mode defaults to 0444, or 0644 when write_fn is given."""
        if mode is None:
            mode = 0o644 if write_fn is not None else 0o444
        super().__init__(sb, ino, S_IFREG | (mode & 0o7777), uid, gid)
        self.read_fn = read_fn
        self.write_fn = write_fn
        self.read_at = read_at
        self.write_at = None

    def read_lazy(self, offset, count):
        """Bytes at offset through read_at (a seq_file-less ->read, like pagemap_read); FsError on error."""
        data = self.read_at(offset, count)
        if isinstance(data, str):
            data = data.encode()
        return bytes(data)

    @property
    def writable(self):
        """True if writes are accepted."""
        return self.write_fn is not None

    def read_content(self):
        """Generate the content now (seq_file show); empty for a lazily read file."""
        if self.read_fn is None and self.read_at is not None:
            return b''
        if self.read_fn is None:
            raise FsError(errno.EINVAL)
        data = self.read_fn()
        if isinstance(data, str):
            data = data.encode()
        return bytes(data)

    def write_content(self, data):
        """Pass written bytes to write_fn; EACCES if the file is read-only. Returns len(data)."""
        if self.write_fn is None:
            raise FsError(errno.EACCES)
        self.write_fn(bytes(data))
        self.touch_mtime()
        return len(data)

    def read_page(self, index):
        """Page `index` of freshly generated content."""
        data = self.read_content()
        return data[index * PAGE_SIZE:(index + 1) * PAGE_SIZE]

    def bmap(self, index):
        """Not on a disk."""
        return None


class SynthSymlink(Inode):
    """A symlink whose target is computed on each readlink (like /proc/self, /proc/self/exe)."""

    def __init__(self, sb, ino, target_fn, uid=0, gid=0):
        """target_fn() -> str path."""
        super().__init__(sb, ino, S_IFLNK | 0o777, uid, gid)
        self.target_fn = target_fn

    def readlink(self):
        """The current target."""
        return self.target_fn()
