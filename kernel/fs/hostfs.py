"""HostFs: a host directory (or single file) exposed to the guest, read lazily from the host.

Containment: the host is only ever asked about one name inside a directory we already hold, via
*at() calls on directory descriptors opened with O_NOFOLLOW from the mount's root, and every
opened descriptor is checked to be the same host inode that was looked up. Host symlinks are never
followed by the host: they are returned as symlink inodes and resolved by the Vfs inside the
guest namespace. '..' of the mount root is handled by the Vfs (the guest parent of the mount
point). A read-only HostFs refuses every modification with EROFS.
"""
import errno
import os
import stat as st_
from collections import OrderedDict
from contextlib import contextmanager

from faultlab.kernel.fs.dir import Directory
from faultlab.kernel.fs.errors import FsError, from_oserror
from faultlab.kernel.fs.inode import Inode
from faultlab.kernel.fs.stat import PAGE_SIZE, S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, V9FS_MAGIC, \
    timespec_from_ns
from faultlab.kernel.fs.superblock import SuperBlock

O_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
O_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
SYNTH_BLOCK_BASE = 1 << 24       # synthetic block numbers of host files start here
SYNTH_BLOCK_ALIGN = 256          # each file's range starts on a multiple of this (1 MiB)


def _check_name(name):
    """A single path component the host may see: no '/', NUL, '.', '..' or empty name."""
    if not name or name in ('.', '..') or '/' in name or '\0' in name:
        raise FsError(errno.EINVAL, f'bad name {name!r}')


class HostNode:
    """Mixin: where an inode lives on the host (parent HostDir + name) and its host identity."""

    def _host_init(self, hparent, hname, st):
        """Record location and identity; copy the host metadata."""
        self.hparent = hparent
        self.hname = hname
        self.hkey = (st.st_dev, st.st_ino)
        self._host_meta(st)

    def _host_meta(self, st):
        """Copy host lstat() metadata into the inode."""
        self.mode = st.st_mode
        self.nlink = st.st_nlink
        self.uid = st.st_uid
        self.gid = st.st_gid
        self.size = st.st_size
        self.host_blocks = st.st_blocks
        self.atime = timespec_from_ns(st.st_atime_ns)
        self.mtime = timespec_from_ns(st.st_mtime_ns)
        self.ctime = timespec_from_ns(st.st_ctime_ns)

    @property
    def blocks(self):
        """st_blocks as the host reports it."""
        return self.host_blocks

    def evict(self):
        """Forget the host inode (close its descriptor)."""
        self.sb._forget(self)

    # ---- extended attributes: the host inode's own (fs/9p/xattr.c forwards names to the server) --
    @contextmanager
    def _xattr_fd(self):
        """A host descriptor of this file or directory; a symlink cannot be opened without being
        followed, so it shows no attributes (ENODATA)."""
        if isinstance(self, HostDir):
            with self.sb._dirfd(self) as fd:
                yield fd
        elif isinstance(self, HostFile):
            yield self.sb._file_fd(self)
        else:
            raise FsError(errno.ENODATA)

    def _xattr_call(self, fn):
        """Run fn(fd) on the host inode, host errors as FsError."""
        with self._xattr_fd() as fd:
            try:
                return fn(fd)
            except OSError as e:
                raise from_oserror(e, self.hname) from None

    def host_getxattr(self, name):
        """fgetxattr on the host inode."""
        return self._xattr_call(lambda fd: os.getxattr(fd, name))

    def host_listxattr(self):
        """flistxattr on the host inode ([] for a symlink)."""
        if isinstance(self, HostSymlink):
            return []
        return self._xattr_call(os.listxattr)

    def host_setxattr(self, name, value, flags):
        """fsetxattr on the host inode (EROFS on a read-only mount)."""
        self.check_writable()
        self._xattr_call(lambda fd: os.setxattr(fd, name, value, flags))

    def host_removexattr(self, name):
        """fremovexattr on the host inode (EROFS on a read-only mount)."""
        self.check_writable()
        self._xattr_call(lambda fd: os.removexattr(fd, name))


class HostDir(HostNode, Directory):
    """A host directory; entries are listed and looked up on the host each time."""

    def __init__(self, sb, hparent, hname, st):
        """Wrap the host directory described by st."""
        Directory.__init__(self, sb, sb.alloc_ino(), S_IFDIR, parent=hparent)
        self._host_init(hparent, hname, st)

    def lookup(self, name):
        """lstat name in this host directory; None if absent or of a type not exposed."""
        _check_name(name)
        with self.sb._dirfd(self) as fd:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as e:
                raise from_oserror(e, name) from None
            return self.sb._iget(self, name, st, fd)

    def name_of(self, child):
        """The host name child was last found under."""
        if getattr(child, 'hparent', None) is not self:
            raise FsError(errno.ENOENT)
        return child.hname

    def entries(self):
        """[(name, inode)] sorted by name (a deterministic order)."""
        out = []
        with self.sb._dirfd(self) as fd:
            try:
                names = sorted(os.listdir(fd))
            except OSError as e:
                raise from_oserror(e) from None
            for name in names:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    raise from_oserror(e, name) from None
                inode = self.sb._iget(self, name, st, fd)
                if inode is not None:
                    out.append((name, inode))
        return out

    def _refresh(self, fd):
        """Re-read this directory's own metadata after a change."""
        self._host_meta(os.fstat(fd))

    def _modify(self, name, fn):
        """Run fn(dir_fd) for a host change of entry name (EROFS first), then refresh metadata."""
        self.check_writable()
        _check_name(name)
        with self.sb._dirfd(self) as fd:
            try:
                result = fn(fd)
            except OSError as e:
                raise from_oserror(e, name) from None
            self._refresh(fd)
            return result

    def create(self, name, mode, uid=0, gid=0):
        """Create an empty host file."""
        def do(fd):
            """The host-side step."""
            hfd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | O_FILE_FLAGS, mode & 0o7777,
                          dir_fd=fd)
            os.close(hfd)
            return self.sb._iget(self, name, os.stat(name, dir_fd=fd, follow_symlinks=False), fd)
        return self._modify(name, do)

    def mkdir(self, name, mode, uid=0, gid=0):
        """Create a host directory."""
        def do(fd):
            """The host-side step."""
            os.mkdir(name, mode & 0o7777, dir_fd=fd)
            return self.sb._iget(self, name, os.stat(name, dir_fd=fd, follow_symlinks=False), fd)
        return self._modify(name, do)

    def symlink(self, name, target, uid=0, gid=0):
        """Create a host symlink (its target is interpreted in the guest namespace)."""
        def do(fd):
            """The host-side step."""
            os.symlink(target, name, dir_fd=fd)
            return self.sb._iget(self, name, os.stat(name, dir_fd=fd, follow_symlinks=False), fd)
        return self._modify(name, do)

    def link(self, name, inode):
        """Hard-link a host file of this mount."""
        if inode.is_dir():
            raise FsError(errno.EPERM)
        self.check_writable()
        _check_name(name)
        with self.sb._dirfd(inode.hparent) as sfd, self.sb._dirfd(self) as dfd:
            try:
                os.link(inode.hname, name, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
            except OSError as e:
                raise from_oserror(e, name) from None
            self._refresh(dfd)
        inode.inc_nlink()

    def unlink(self, name):
        """Remove a host file or symlink."""
        victim = self.lookup(name)
        if victim is None:
            raise FsError(errno.ENOENT)
        if victim.is_dir():
            raise FsError(errno.EISDIR)
        self.sb._pin(victim)
        self._modify(name, lambda fd: os.unlink(name, dir_fd=fd))
        self.sb._unlinked(victim)

    def rmdir(self, name):
        """Remove an empty host directory."""
        victim = self.lookup(name)
        if victim is None:
            raise FsError(errno.ENOENT)
        if not victim.is_dir():
            raise FsError(errno.ENOTDIR)
        self._modify(name, lambda fd: os.rmdir(name, dir_fd=fd))
        victim.parent = victim.hparent = None
        self.sb._unlinked(victim, rmdir=True)

    def rename(self, old_name, new_dir, new_name):
        """Rename on the host, within this mount."""
        self.check_writable()
        _check_name(old_name)
        _check_name(new_name)
        src = self.lookup(old_name)
        if src is None:
            raise FsError(errno.ENOENT)
        target = new_dir.lookup(new_name)
        if target is src:
            return
        if target is not None:
            if src.is_dir() and not target.is_dir():
                raise FsError(errno.ENOTDIR)
            if not src.is_dir() and target.is_dir():
                raise FsError(errno.EISDIR)
            self.sb._pin(target)
        with self.sb._dirfd(self) as sfd, self.sb._dirfd(new_dir) as dfd:
            try:
                os.rename(old_name, new_name, src_dir_fd=sfd, dst_dir_fd=dfd)
            except OSError as e:
                raise from_oserror(e, new_name) from None
            self._refresh(sfd)
            new_dir._refresh(dfd)
        if target is not None:
            self.sb._unlinked(target, rmdir=target.is_dir())
        src.hparent, src.hname = new_dir, new_name
        if src.is_dir():
            src.parent = new_dir
        src.touch_ctime()


class HostFile(HostNode, Inode):
    """A host regular file: pages are read with os.pread on demand (timed like disk reads)."""
    backing = 'disk'

    def __init__(self, sb, hparent, hname, st):
        """Wrap the host file described by st."""
        Inode.__init__(self, sb, sb.alloc_ino(), S_IFREG)
        self._host_init(hparent, hname, st)
        self.pinned_fd = None
        self.synth_base = None

    def read_page(self, index):
        """The file's bytes at [index*4096, +4096): shorter at EOF, b'' past it."""
        if index < 0:
            raise ValueError(f'negative page index {index}')
        start = index * PAGE_SIZE
        if start >= self.size:
            return b''
        n = min(PAGE_SIZE, self.size - start)
        try:
            data = os.pread(self.sb._file_fd(self), n, start)
        except OSError as e:
            raise from_oserror(e, self.hname) from None
        return data + bytes(n - len(data))      # the host file shrank behind our back: zeros

    def bmap(self, index):
        """A stable synthetic block number for page index (None past EOF)."""
        if index < 0 or index * PAGE_SIZE >= self.size:
            return None
        if self.synth_base is None:
            self.synth_base = self.sb._synth_range(self.size)
        return self.synth_base + index

    def _host_call(self, fn):
        """Run fn(fd) on the writable host descriptor, mapping host errors."""
        self.check_writable()
        try:
            return fn(self.sb._file_fd(self))
        except OSError as e:
            raise from_oserror(e, self.hname) from None

    def _after_change(self, fd):
        """Refresh st_blocks and the times after a host change."""
        self.host_blocks = os.fstat(fd).st_blocks
        self.touch_mtime()

    def write_page(self, index, data, offset_in_page=0):
        """pwrite data into page index at offset_in_page (does not change the size; see set_size)."""
        if index < 0 or offset_in_page < 0 or offset_in_page + len(data) > PAGE_SIZE:
            raise ValueError(f'write of {len(data)} bytes at page {index}+{offset_in_page} '
                             f'does not fit in one page')
        self._host_call(lambda fd: os.pwrite(fd, bytes(data), index * PAGE_SIZE + offset_in_page))
        self.touch_mtime()

    def set_size(self, new_size):
        """i_size_write after a write (the host file follows)."""
        self.truncate(new_size)

    def truncate(self, new_size):
        """ftruncate the host file."""
        if new_size < 0:
            raise FsError(errno.EINVAL)

        def do(fd):

            """The host-side step."""
            os.ftruncate(fd, new_size)
            self._after_change(fd)
        self._host_call(do)
        self.size = new_size

    def punch_hole(self, start, length):
        """Zero [start, start+length) within the file (written as zeros on the host)."""
        if start < 0 or length <= 0:
            raise FsError(errno.EINVAL)
        end = min(start + length, self.size)

        def do(fd):

            """The host-side step."""
            pos = start
            while pos < end:
                n = min(1 << 20, end - pos)
                os.pwrite(fd, bytes(n), pos)
                pos += n
            self._after_change(fd)
        self._host_call(do)

    def allocate(self, offset, length):
        """fallocate mode 0 on the host (posix_fallocate), growing the size."""
        if offset < 0 or length <= 0:
            raise FsError(errno.EINVAL)

        def do(fd):

            """The host-side step."""
            os.posix_fallocate(fd, offset, length)
            self._after_change(fd)
        self._host_call(do)
        self.size = max(self.size, offset + length)


class HostSymlink(HostNode, Inode):
    """A host symlink; its target is read once and resolved by the Vfs as a guest path."""

    def __init__(self, sb, hparent, hname, st, target):
        """Wrap the host symlink described by st with its target text."""
        Inode.__init__(self, sb, sb.alloc_ino(), S_IFLNK)
        self._host_init(hparent, hname, st)
        self.target = target

    def readlink(self):
        """The link text as stored on the host."""
        return self.target


class HostFs(SuperBlock):
    """A host directory or single file mounted into the guest (read-only by default)."""
    fstype = '9p'
    magic = V9FS_MAGIC
    max_open_fds = 64

    def __init__(self, host_path, readonly=True, clock=None, dev=None):
        """Open host_path (resolved once, here, with the host's rules: it is what the user gave)."""
        super().__init__(clock, readonly, dev)
        self.host_path = os.path.realpath(host_path)
        self._icache = {}                 # (st_dev, st_ino) -> inode
        self._fds = OrderedDict()         # HostFile -> fd, least recently used first
        self._next_synth = SYNTH_BLOCK_BASE
        try:
            st = os.stat(self.host_path)
            if st_.S_ISDIR(st.st_mode):
                self._root_fd = os.open(self.host_path, O_DIR_FLAGS)
                self.root = HostDir(self, None, '', os.fstat(self._root_fd))
            elif st_.S_ISREG(st.st_mode):
                self._root_fd = os.open(os.path.dirname(self.host_path), O_DIR_FLAGS)
                name = os.path.basename(self.host_path)
                self.root = HostFile(self, None, name,
                                     os.stat(name, dir_fd=self._root_fd, follow_symlinks=False))
            else:
                raise FsError(errno.EINVAL, f'{host_path}: not a directory or regular file')
        except OSError as e:
            raise from_oserror(e, host_path) from None
        self._icache[self.root.hkey] = self.root

    # ---- host descriptors ---------------------------------------------------------------------
    @contextmanager
    def _dirfd(self, d):
        """A descriptor for HostDir d, opened component by component from the root, no symlinks."""
        if d.hparent is None:
            yield self._root_fd
            return
        chain = []
        node = d
        while node.hparent is not None:
            chain.append(node)
            node = node.hparent
        fd = self._root_fd
        try:
            for node in reversed(chain):
                try:
                    nfd = os.open(node.hname, O_DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    raise FsError(errno.ESTALE if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR)
                                  else e.errno, node.hname) from None
                if fd != self._root_fd:
                    os.close(fd)
                fd = nfd
                s = os.fstat(fd)
                if (s.st_dev, s.st_ino) != node.hkey:
                    raise FsError(errno.ESTALE, node.hname)
            yield fd
        finally:
            if fd != self._root_fd:
                os.close(fd)

    def _open_file(self, inode):
        """Open a HostFile's host inode without following symlinks; check it is the same inode."""
        modes = (os.O_RDWR, os.O_RDONLY) if not self.readonly else (os.O_RDONLY,)
        with self._dirfd(inode.hparent) if inode.hparent is not None else _const(self._root_fd) as dfd:
            for i, flags in enumerate(modes):
                try:
                    fd = os.open(inode.hname, flags | O_FILE_FLAGS, dir_fd=dfd)
                    break
                except OSError as e:
                    if e.errno in (errno.EACCES, errno.EROFS) and i + 1 < len(modes):
                        continue         # not writable on the host: read-only access
                    raise FsError(errno.ESTALE if e.errno in (errno.ENOENT, errno.ELOOP) else e.errno,
                                  inode.hname) from None
        s = os.fstat(fd)
        if (s.st_dev, s.st_ino) != inode.hkey or not st_.S_ISREG(s.st_mode):
            os.close(fd)
            raise FsError(errno.ESTALE, inode.hname)
        return fd

    def _file_fd(self, inode):
        """The (cached) host descriptor of a HostFile."""
        if inode.pinned_fd is not None:
            return inode.pinned_fd
        fd = self._fds.get(inode)
        if fd is not None:
            self._fds.move_to_end(inode)
            return fd
        fd = self._fds[inode] = self._open_file(inode)
        while len(self._fds) > self.max_open_fds:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def _pin(self, inode):
        """Keep a HostFile's descriptor open for good (its name is about to go away)."""
        if isinstance(inode, HostFile) and inode.pinned_fd is None:
            fd = self._fds.pop(inode, None)
            inode.pinned_fd = fd if fd is not None else self._open_file(inode)

    # ---- inode cache ------------------------------------------------------------------------------
    def _iget(self, parent, name, st, dir_fd):
        """The inode for a host lstat result (cached by host identity); None for other file types."""
        key = (st.st_dev, st.st_ino)
        inode = self._icache.get(key)
        if inode is not None and inode.mode & S_IFMT == st.st_mode & S_IFMT:
            if inode is not self.root:   # a host bind mount can show the root again: keep its place
                inode.hparent, inode.hname = parent, name
                if inode.is_dir():
                    inode.parent = parent
            return inode
        fmt = st.st_mode & S_IFMT
        if fmt == S_IFDIR:
            inode = HostDir(self, parent, name, st)
        elif fmt == S_IFREG:
            inode = HostFile(self, parent, name, st)
        elif fmt == S_IFLNK:
            try:
                target = os.readlink(name, dir_fd=dir_fd)
            except OSError as e:
                raise from_oserror(e, name) from None
            inode = HostSymlink(self, parent, name, st, target)
        else:
            return None                  # fifos, sockets, device nodes are not exposed
        self._icache[key] = inode
        return inode

    def _unlinked(self, inode, rmdir=False):
        """A guest unlink/rmdir/rename removed a name of inode on the host."""
        if rmdir:
            inode.clear_nlink()
        else:
            inode.drop_nlink()
        if inode.nlink == 0 and self._icache.get(inode.hkey) is inode:
            del self._icache[inode.hkey]

    def _forget(self, inode):
        """An inode was evicted: close its descriptors."""
        fd = self._fds.pop(inode, None)
        if fd is not None:
            os.close(fd)
        if getattr(inode, 'pinned_fd', None) is not None:
            os.close(inode.pinned_fd)
            inode.pinned_fd = None
        if self._icache.get(inode.hkey) is inode:
            del self._icache[inode.hkey]

    def _synth_range(self, size):
        """Reserve a range of synthetic block numbers for a file of size bytes."""
        base = self._next_synth
        pages = max(1, -(-size // PAGE_SIZE))
        self._next_synth += -(-(pages + 1) // SYNTH_BLOCK_ALIGN) * SYNTH_BLOCK_ALIGN
        return base

    def statfs(self):
        """The host filesystem's numbers (fstatvfs of the mount root)."""
        st = super().statfs()
        try:
            v = os.statvfs(self._root_fd)
        except OSError:
            return st
        st.f_bsize, st.f_frsize = v.f_bsize, v.f_frsize
        st.f_blocks, st.f_bfree, st.f_bavail = v.f_blocks, v.f_bfree, v.f_bavail
        st.f_files, st.f_ffree, st.f_namelen = v.f_files, v.f_ffree, v.f_namemax
        return st

    def __del__(self):
        """The machine is gone: its host descriptors go with it."""
        try:
            self.close()
        except (OSError, AttributeError):
            pass

    def close(self):
        """Close every host descriptor (the mount is gone)."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        for inode in list(self._icache.values()):
            if getattr(inode, 'pinned_fd', None) is not None:
                os.close(inode.pinned_fd)
                inode.pinned_fd = None
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None


@contextmanager
def _const(fd):
    """A context manager yielding fd without closing it."""
    yield fd
