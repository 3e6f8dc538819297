"""Open files (struct file), the descriptor table, and reads/writes of regular files via the page cache."""
import errno
import os
import stat as pystat

from faultlab.kernel.arch.cpu_interface import PAGE_SIZE, PAGE_SHIFT
from faultlab.kernel.mm.filemap import FileRaState

O_ACCMODE = 3
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_CLOEXEC = 0o2000000
O_PATH = 0o10000000
O_TMPFILE = 0o20000000 | O_DIRECTORY

NR_OPEN = 1024


class OpenFile:
    """struct file: an inode opened with flags, a position and read-ahead state."""

    def __init__(self, inode, flags, path, pagecache=None):
        self.inode = inode
        self.flags = flags
        self.path = path
        self.pos = 0
        self.refs = 1
        self.ra = FileRaState()
        self.mapping = pagecache.mapping_of(inode) if pagecache is not None and _is_reg(inode) else None
        self._pagecache = pagecache
        self.dir_cursor = 0

    @property
    def readable(self):
        return (self.flags & O_ACCMODE) in (O_RDONLY, O_RDWR) and not self.flags & O_PATH

    @property
    def writable(self):
        return (self.flags & O_ACCMODE) in (O_WRONLY, O_RDWR) and not self.flags & O_PATH

    def get(self):
        self.refs += 1

    def put(self):
        """fput: the last user (descriptor or mapping) releases the inode, so an unlinked file's
        storage (memfd, shared anonymous memory, huge pages) is freed when its last mapping goes."""
        self.refs -= 1
        if self.refs == 0 and getattr(self.inode, 'i_flctx', None) is not None:
            self.inode.i_flctx.remove_owner(self)      # locks_remove_file: its OFD locks
        if self.refs == 0 and hasattr(self.inode, 'iput'):
            self.inode.iput()
            if self.mapping is not None and getattr(self.inode, 'evicted', False):
                self._pagecache.truncate_inode_pages_final(self.mapping)

    def check_mmap(self, shared, prot):
        """Why this file cannot be mapped so, as -errno (0 if it can), in do_mmap's order: a shared
        writable mapping needs FMODE_WRITE, any mapping FMODE_READ, then the file needs ->mmap."""
        if self.flags & O_PATH:
            return -errno.EBADF
        if shared and prot & 2 and not self.writable:
            return -errno.EACCES
        if not self.readable:
            return -errno.EACCES
        if prot & 4 and getattr(getattr(self.inode, 'sb', None), 'fstype', None) in ('proc', 'sysfs'):
            return -errno.EPERM               # path_noexec: proc and sysfs are SB_I_NOEXEC
        if not _is_reg(self.inode) or getattr(getattr(self.inode, 'sb', None), 'fstype', None) == 'proc':
            return -errno.ENODEV              # no ->mmap (proc's seq files)
        return 0


def _is_reg(inode):
    return pystat.S_ISREG(inode.mode)


class HostStream:
    """A host file descriptor seen by the guest as stdin/stdout/stderr (a character device or pipe)."""

    def __init__(self, host_fd, mode_type, writer=None):
        self.host_fd = host_fd
        self.mode = mode_type | 0o620
        self.is_tty = os.isatty(host_fd) if host_fd >= 0 else False
        self.writer = writer

    def write(self, data):
        if self.writer is not None:
            self.writer(data)
            return len(data)
        try:
            return os.write(self.host_fd, data)
        except OSError as e:
            return -e.errno

    def read(self, n):
        try:
            return os.read(self.host_fd, n)
        except OSError as e:
            return -e.errno


class FdTable:
    """struct files_struct: descriptor -> OpenFile (or HostStream), with close-on-exec bits."""

    def __init__(self):
        self.fds = {}
        self.cloexec = set()
        self.users = 1               # tasks sharing the table (CLONE_FILES)
        self.nofile = NR_OPEN        # RLIMIT_NOFILE's soft limit: no descriptor at or above it (EMFILE)

    def close_all(self):
        """exit_files: the last task using the table is gone; every descriptor is closed."""
        for fd in sorted(self.fds):
            self.close(fd)

    def install(self, f, cloexec=False, minfd=0):
        fd = minfd
        while fd in self.fds:
            fd += 1
        if fd >= self.nofile:
            return -errno.EMFILE
        self.fds[fd] = f
        if cloexec:
            self.cloexec.add(fd)
        return fd

    def get(self, fd):
        return self.fds.get(fd) if 0 <= fd < NR_OPEN else None

    def dup_table(self):
        """dup_fd: a copy for a new process (each open file gains a reference)."""
        new = FdTable()
        for fd, f in self.fds.items():
            if isinstance(f, OpenFile):
                f.get()
            new.fds[fd] = f
        new.cloexec = set(self.cloexec)
        new.nofile = self.nofile
        return new

    def close(self, fd):
        f = self.fds.pop(fd, None)
        self.cloexec.discard(fd)
        if f is None:
            return -errno.EBADF
        ctx = getattr(getattr(f, 'inode', f), 'i_flctx', None)
        if ctx is not None:
            ctx.remove_owner(self)             # filp_close: locks_remove_posix for this table
        if isinstance(f, OpenFile):
            f.put()
        return 0


def generic_file_read(pagecache, f, count, pos):
    """Read up to count bytes at pos through the page cache (filemap_read); bytes."""
    inode = f.inode
    size = inode.size
    if pos >= size or count <= 0:
        return b''
    read_iter = getattr(inode, 'read_iter', None)        # a file system that reads without the page cache
    if read_iter is not None:
        return read_iter(pos, count)
    end = min(size, pos + count)
    out = bytearray()
    phys = pagecache.frames.phys
    req = ((end - 1) >> PAGE_SHIFT) - (pos >> PAGE_SHIFT) + 1
    while pos < end:
        index = pos >> PAGE_SHIFT
        page = pagecache.read_cache_page(f.mapping, index, f.ra, req)
        if page is None:
            break
        off = pos & (PAGE_SIZE - 1)
        n = min(PAGE_SIZE - off, end - pos)
        a = (page.pfn << PAGE_SHIFT) + off
        out += phys.mv[a:a + n]
        pos += n
        req -= 1
    return bytes(out)


def generic_perform_write(pagecache, f, data, pos):
    """Write data at pos through the page cache, extending the file; bytes written or -errno."""
    inode = f.inode
    if getattr(inode, 'no_write_iter', False):            # hugetlbfs has no write(2)
        return -errno.EINVAL
    phys = pagecache.frames.phys
    done = 0
    n_total = len(data)
    while done < n_total:
        p = pos + done
        index = p >> PAGE_SHIFT
        off = p & (PAGE_SIZE - 1)
        n = min(PAGE_SIZE - off, n_total - done)
        err = pagecache.reserve_backing(f.mapping, index)          # ENOSPC here, not at writeback
        if err:
            return done if done else err
        page = pagecache.grab_cache_page_write_begin(f.mapping, index, whole_page=(off == 0 and n == PAGE_SIZE))
        if page is None:
            return done if done else -errno.ENOMEM
        a = (page.pfn << PAGE_SHIFT) + off
        phys.mv[a:a + n] = data[done:done + n]
        pagecache.frames.note_kernel_write(page)
        pagecache.set_page_dirty(page)
        done += n
        if p + n > inode.size:
            inode.set_size(p + n)
    return done
