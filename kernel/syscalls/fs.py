"""File system calls: open/read/write/seek/stat/dirents/links/truncate/sync/fadvise/memfd."""
import errno
import posixpath
import struct

from faultlab.kernel.file import (OpenFile, HostStream, generic_file_read, generic_perform_write, O_ACCMODE, O_RDONLY,
                         O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC,
                         O_PATH, O_TMPFILE, O_NONBLOCK)
from faultlab.kernel.cred import SECURE_NO_SETUID_FIXUP, issecure
from faultlab.kernel.fs import FsError, Inode, pack_stat, pack_dirent64, Timespec
from faultlab.kernel.fs.perm import MAY_EXEC, MAY_WRITE, Cred as FsCred
from faultlab.kernel.fs.pipe import Pipe, PipeEnd, pipe_read, pipe_write
from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.mm.hugetlb_types import huge_size_ok, is_gigantic_size
from faultlab.kernel.mm.memory import fold_pte_dirty
from faultlab.kernel.mm.userfaultfd_k import UserfaultRetry
from faultlab.kernel.fs.stat import S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFIFO, S_IFSOCK, makedev
from faultlab.kernel.fs.synth import SynthFile
from faultlab.kernel.fs.sysfs import SysfsAttr
from faultlab.kernel.fs.file_table import alloc_empty_file_check
from faultlab.kernel.fs.locks import (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW,
                             do_fcntl_lock)
from faultlab.kernel.fs.tmpfile import vfs_tmpfile
from faultlab.kernel.net.socket import SocketInode, sock_read_iter, sock_write_iter
from faultlab.kernel.syscalls.registry import s32 as _s32, s64 as _s64, syscall
from faultlab.kernel.uaccess import access_ok

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_EACCESS = 0x200
AT_EMPTY_PATH = 0x1000
SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 1, 2, 3, 4
PATH_MAX = 4096
MAX_RW_COUNT = 0x7FFFF000
TCGETS, TIOCGWINSZ, FIONREAD = 0x5401, 0x5413, 0x541B
FIGETBSZ, FIONBIO, FIONCLEX, FIOCLEX = 2, 0x5421, 0x5450, 0x5451
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC = 0, 1, 2, 3, 4, 1030
POSIX_FADV_NORMAL, POSIX_FADV_RANDOM, POSIX_FADV_SEQUENTIAL = 0, 1, 2
POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE = 3, 4, 5
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB = 1, 2, 4


def _fs_errno(e):
    return -e.errno


def _get_path(t, upath):
    """getname(): a user path string, or -errno (NULL is an address like any other: root may map page 0)."""
    s = t.umem.read_cstr(upath, PATH_MAX)
    if s is None:
        return -errno.EFAULT
    if len(s) >= PATH_MAX:
        return -errno.ENAMETOOLONG
    return s.decode('utf-8', 'surrogateescape')


def _abs_at(t, dirfd, path):
    """The absolute guest path for path relative to dirfd (AT_FDCWD = the cwd); or -errno."""
    if path.startswith('/'):
        return path
    dirfd = _s32(dirfd)
    if dirfd == AT_FDCWD:
        base = t.cwd
    else:
        f = t.files.get(dirfd)
        if f is None:
            return -errno.EBADF
        if not isinstance(f, OpenFile) or (f.inode.mode & S_IFMT) != S_IFDIR:
            return -errno.ENOTDIR
        base = f.path
    return posixpath.join(base, path) if path else base


def _file_raw(t, fd):
    """fdget_raw: the open file behind fd, O_PATH ones included (fstat, fcntl, dup, a dirfd); or None."""
    return t.files.get(_s32(fd))


def _file(t, fd):
    """fdget: the open file behind fd, or None (EBADF), also for an O_PATH descriptor."""
    f = t.files.get(_s32(fd))
    return None if isinstance(f, OpenFile) and f.flags & O_PATH else f


def _unseekable(f):
    """No FMODE_LSEEK/FMODE_PREAD: host streams, pipes, sockets and files without positioned I/O
    (secretmem): lseek, pread and pwrite are ESPIPE."""
    return isinstance(f, HostStream) or isinstance(f.inode, (PipeEnd, SocketInode)) or \
        getattr(f.inode, 'no_pread', False)


# ---- open / close -----------------------------------------------------------------------------
def build_open_flags(flags):
    """fs/open.c build_open_flags for open/openat (O_PATH keeps only its own flags): -EINVAL for
    O_DIRECTORY with O_CREAT and for O_TMPFILE without write access, else 0; before the path is read."""
    if flags & O_PATH:
        return 0
    if flags & (O_DIRECTORY | O_CREAT) == O_DIRECTORY | O_CREAT:
        return -errno.EINVAL
    if flags & O_TMPFILE & ~O_DIRECTORY and (flags & (O_TMPFILE | O_CREAT) != O_TMPFILE or
                                              not flags & O_ACCMODE):    # no MAY_WRITE (O_TRUNC adds it later)
        return -errno.EINVAL
    return 0


def do_sys_open(k, t, dirfd, upath, flags, mode):
    if flags & O_PATH:                       # build_open_how: O_PATH beats everything else
        flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
    err = build_open_flags(flags & 0xFFFFFFFF)
    if err:
        return err
    path = _get_path(t, upath)
    if isinstance(path, int):
        return path
    if not path:
        return -errno.ENOENT
    err = alloc_empty_file_check(k, t)       # path_openat: the file before the walk
    if err:
        return err
    full = _abs_at(t, dirfd, path)
    if isinstance(full, int):
        return full
    flags &= 0xFFFFFFFF
    acc = flags & O_ACCMODE                  # 3: neither read nor write, both permissions checked
    if flags & O_TMPFILE == O_TMPFILE:
        return do_tmpfile(k, t, full, flags, mode)
    vfs = k.vfs
    cred = t.cred.fs_cred()
    created = False
    try:
        if flags & O_CREAT:
            inode, created = vfs.lookup_open(full, (mode & 0o7777) & ~t.umask, bool(flags & O_EXCL), cred=cred)
        else:
            inode = vfs.lookup(full, follow=not flags & O_NOFOLLOW, cred=cred)
    except FsError as e:
        return _fs_errno(e)
    kind = inode.mode & S_IFMT
    if kind == S_IFLNK:
        return -errno.ELOOP
    if flags & O_DIRECTORY and kind != S_IFDIR:
        return -errno.ENOTDIR
    if kind == S_IFDIR and (acc != O_RDONLY or flags & (O_CREAT | O_TRUNC)):
        return -errno.EISDIR
    if not flags & O_PATH:
        want = (4 if acc != O_WRONLY else 0) | (2 if acc != O_RDONLY else 0)     # ACC_MODE
        if flags & O_TRUNC and kind == S_IFREG:
            want |= 2                        # build_open_flags: O_TRUNC needs MAY_WRITE, even O_RDONLY
        if want & 2 and getattr(inode.sb, 'readonly', False):
            return -errno.EROFS
        if want & 2 and isinstance(inode, SynthFile) and not inode.writable:
            return -errno.EACCES
        if want & 4 and isinstance(inode, SysfsAttr) and inode.read_fn is None and inode.read_at is None:
            return -errno.EACCES             # kernfs_fop_open: a write-only attribute has no show
        if not created:                      # may_open: a file this open created needs no check
            try:
                vfs.may_open(inode, want, cred)
            except FsError as e:
                return _fs_errno(e)
        if kind == S_IFSOCK:
            return -errno.ENXIO              # a socket file opens only with O_PATH (bad_sock_fops)
    if flags & O_TRUNC and kind == S_IFREG and not flags & O_PATH and not isinstance(inode, SynthFile):
        err = _truncate_inode(k, inode, 0)
        if err:
            return err
    # do_dentry_open keeps no creation flags; force_o_largefile adds O_LARGEFILE (F_GETFL shows it)
    f = OpenFile(inode, flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC) | O_LARGEFILE,
                 posixpath.normpath(full), k.pagecache)
    if isinstance(inode, SynthFile):
        f.synth_data = None                  # seq_open shows nothing: the first read generates it
    if hasattr(inode, 'ihold'):
        inode.ihold()
    fd = t.files.install(f, cloexec=bool(flags & O_CLOEXEC))
    return fd


def do_tmpfile(k, t, full, flags, mode):
    """open(dir, O_TMPFILE): an unnamed file in dir (kernel/fs/tmpfile.py), named dir/#ino."""
    try:
        inode = vfs_tmpfile(k.vfs, full, mode & ~t.umask, t.cred.fs_cred())
    except FsError as e:
        return _fs_errno(e)
    path = posixpath.join(posixpath.normpath(full), '#%d (deleted)' % inode.ino)
    inode.ihold()
    return t.files.install(OpenFile(inode, flags, path, k.pagecache), cloexec=bool(flags & O_CLOEXEC))


@syscall(2, 'open')
def sys_open(k, t, path, flags, mode, *_):
    return do_sys_open(k, t, AT_FDCWD, path, flags, mode)


@syscall(257, 'openat')
def sys_openat(k, t, dirfd, path, flags, mode, *_):
    return do_sys_open(k, t, dirfd, path, flags, mode)


@syscall(85, 'creat')
def sys_creat(k, t, path, mode, *_):
    return do_sys_open(k, t, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode)


@syscall(3, 'close')
def sys_close(k, t, fd, *_):
    return t.files.close(_s32(fd))


# ---- read / write -----------------------------------------------------------------------------
def _read_to_user(k, t, f, buf, count, pos):
    """Read up to count bytes into the user buffer: bytes copied, or -errno. The read stops where the
    buffer stops being writable (a short read); nothing writable and data to copy is -EFAULT."""
    limit = t.umem.accessible(buf, count, True)
    old_pos = getattr(f, 'pos', None)
    # an anonymous inode's ->read judges the whole count (eventfd: EINVAL below 8, else EAGAIN first)
    ask = count if getattr(getattr(f, 'inode', None), 'fop_read', None) is not None else limit or min(count, 1)
    data = _read_file(k, t, f, ask, pos)
    if isinstance(data, int) or data is BLOCKED:
        return data
    if not data:
        return 0
    try:
        copied = limit and t.umem.write(buf, data)
    except UserfaultRetry:                   # the copy sleeps in userfaultfd: the read runs again
        if isinstance(getattr(f, 'inode', None), PipeEnd):
            f.inode.pipe.unread(data)
        elif pos is None and old_pos is not None and not isinstance(f, HostStream):
            f.pos = old_pos
        raise
    if not copied:
        if pos is None and old_pos is not None and not isinstance(f, HostStream):
            f.pos = old_pos                 # nothing was copied: the position does not move
        return -errno.EFAULT
    return len(data)


def _read_file(k, t, f, count, pos):
    """bytes read from an open file at pos (None pos = the file position), or -errno."""
    try:
        return __read_file(k, t, f, count, pos)
    except FsError as e:
        return _fs_errno(e)


def __read_file(k, t, f, count, pos):
    if isinstance(f, HostStream):
        return f.read(count)
    if not f.readable:
        return -errno.EBADF
    inode = f.inode
    if not _can_rw(f, False):
        return -errno.EINVAL                 # no FMODE_CAN_READ (secretmem, epoll, io_uring)
    if getattr(inode, 'fop_read', None) is not None:
        return inode.fop_read(k, t, f, count)        # an anon inode's ->read (eventfd, userfaultfd)
    if isinstance(inode, PipeEnd):
        return pipe_read(k, t, f, count, f.flags & O_NONBLOCK)
    if isinstance(inode, SocketInode):
        return sock_read_iter(k, t, f, count)
    kind = inode.mode & S_IFMT
    if kind == S_IFDIR:
        return -errno.EISDIR
    if kind == S_IFCHR:
        return inode.read_chr(count)
    use_pos = f.pos if pos is None else pos
    if isinstance(inode, SynthFile) and inode.read_at is not None:
        try:
            data = inode.read_lazy(use_pos, count)
        except FsError as e:
            return _fs_errno(e)
    elif isinstance(inode, SynthFile):
        data = seq_read(f, use_pos, count)
    else:
        data = generic_file_read(k.pagecache, f, count, use_pos)
    if pos is None:
        f.pos += len(data)
    return data


def seq_read(f, pos, count):
    """seq_read_iter: a read from offset 0 walks the records again from the first (after a rewind or
    a pread at 0 the file shows the state of now, not of the open: /proc/self/maps); a read at another
    offset continues the text of the last walk, made now if the file has none yet. FsError on error."""
    if pos == 0 or f.synth_data is None:
        f.synth_data = f.inode.read_content()
    return f.synth_data[pos:pos + count]


def _synth_size(f):
    """The length of a generated file's text for lseek (generated now if no read made it yet)."""
    if f.synth_data is None:
        f.synth_data = f.inode.read_content() if f.readable else b''
    return len(f.synth_data)


def _write_file(k, t, f, data, pos):
    """Write data to an open file at pos (None pos = the file position): bytes written, or -errno."""
    try:
        return __write_file(k, t, f, data, pos)
    except FsError as e:
        return _fs_errno(e)


def __write_file(k, t, f, data, pos):
    if isinstance(f, HostStream):
        return f.write(data)
    if not f.writable:
        return -errno.EBADF
    inode = f.inode
    if not _can_rw(f, True):
        return -errno.EINVAL                 # no FMODE_CAN_WRITE (secretmem, epoll, io_uring)
    if getattr(inode, 'fop_write', None) is not None:
        return inode.fop_write(k, t, f, data)        # an anon inode's ->write (eventfd)
    if isinstance(inode, PipeEnd):
        return pipe_write(k, t, f, data, f.flags & O_NONBLOCK)
    if isinstance(inode, SocketInode):
        return sock_write_iter(k, t, f, data)
    kind = inode.mode & S_IFMT
    if kind == S_IFCHR:
        return inode.write_chr(data)
    if isinstance(inode, SynthFile):
        try:
            if inode.write_at is not None:           # a positioned ->write (mem_write)
                use = f.pos if pos is None else pos
                n = inode.write_at(use, data)
                if pos is None:
                    f.pos = use + n
                return n
            return inode.write_content(data)
        except FsError as e:
            return _fs_errno(e)
    if getattr(inode.sb, 'readonly', False):
        return -errno.EROFS
    if pos is None:
        if f.flags & O_APPEND:
            f.pos = inode.size
        use = f.pos
    else:
        use = pos
    n = generic_perform_write(k.pagecache, f, data, use)
    if n > 0:
        if pos is None:
            f.pos += n
        if hasattr(inode, 'touch_mtime'):
            inode.touch_mtime()
    return n


def _rw_verify(f, buf, count, write):
    """vfs_read/vfs_write before the file's method: -EBADF without FMODE_READ/WRITE, -EINVAL without
    FMODE_CAN_READ/WRITE, -EFAULT when the buffer is not a user range (access_ok of the whole count),
    else 0."""
    if isinstance(f, OpenFile) and not (f.writable if write else f.readable):
        return -errno.EBADF
    if not _can_rw(f, write):
        return -errno.EINVAL
    return 0 if access_ok(buf, count) else -errno.EFAULT


def _can_rw(f, write):
    """FMODE_CAN_READ/FMODE_CAN_WRITE: a file without ->read/->write (an anonymous inode without the
    method: epoll, io_uring; secretmem) cannot be read or written."""
    inode = getattr(f, 'inode', None)
    if getattr(inode, 'no_read_write', False):
        return False
    return getattr(inode, 'fop_write' if write else 'fop_read', True) is not None


def _write_unread(k, t, f, count):
    """A write to a device that never reads the buffer (/dev/null, /dev/full): its result, else None."""
    unread = getattr(f.inode, 'write_unread', None) if isinstance(f, OpenFile) else None
    if unread is None:
        return None
    try:
        return unread(min(count, MAX_RW_COUNT))
    except FsError as e:
        return _fs_errno(e)


@syscall(0, 'read')
def sys_read(k, t, fd, buf, count, *_):
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    err = _rw_verify(f, buf, count, False)
    if err:
        return err
    return _read_to_user(k, t, f, buf, min(count, MAX_RW_COUNT), None)


@syscall(1, 'write')
def sys_write(k, t, fd, buf, count, *_):
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    err = _rw_verify(f, buf, count, True)
    if err:
        return err
    n = _write_unread(k, t, f, count)
    if n is not None:
        return n
    count = min(count, MAX_RW_COUNT)
    if count:                                # a short write where the buffer stops being readable
        count = t.umem.accessible(buf, count, False) or -1
    data = t.umem.read(buf, count) if count >= 0 else None
    if data is None:
        return -errno.EFAULT
    return _write_file(k, t, f, data, None)


@syscall(17, 'pread64')
def sys_pread64(k, t, fd, buf, count, pos, *_):
    pos = _s64(pos)
    if pos < 0:
        return -errno.EINVAL                 # ksys_pread64 checks the offset before the descriptor
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    if _unseekable(f):
        return -errno.ESPIPE
    err = _rw_verify(f, buf, count, False)
    if err:
        return err
    return _read_to_user(k, t, f, buf, min(count, MAX_RW_COUNT), pos)


@syscall(18, 'pwrite64')
def sys_pwrite64(k, t, fd, buf, count, pos, *_):
    pos = _s64(pos)
    if pos < 0:
        return -errno.EINVAL                 # ksys_pwrite64 checks the offset before the descriptor
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    if _unseekable(f):
        return -errno.ESPIPE
    err = _rw_verify(f, buf, count, True)
    if err:
        return err
    n = _write_unread(k, t, f, count)
    if n is not None:
        return n
    count = min(count, MAX_RW_COUNT)
    if count:
        count = t.umem.accessible(buf, count, False) or -1
    data = t.umem.read(buf, count) if count >= 0 else None
    if data is None:
        return -errno.EFAULT
    return _write_file(k, t, f, data, pos)


def _iovecs(t, iov, cnt):
    """import_iovec: at most UIO_MAXIOV vectors (an unsigned int count), copied in; every one checked
    before any I/O (a negative length is EINVAL, a range outside user space EFAULT)."""
    cnt &= 0xFFFFFFFF
    if cnt > 1024:
        return -errno.EINVAL
    raw = t.umem.read(iov, 16 * cnt)
    if raw is None:
        return -errno.EFAULT
    vecs = [struct.unpack_from('<QQ', raw, 16 * i) for i in range(cnt)]
    if any(ln >= 1 << 63 for _, ln in vecs):
        return -errno.EINVAL                 # iovec_from_user, over all of them first
    if not all(access_ok(base, ln) for base, ln in vecs):
        return -errno.EFAULT
    return vecs


@syscall(20, 'writev')
def sys_writev(k, t, fd, iov, cnt, *_):
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    if isinstance(f, OpenFile) and not f.writable:
        return -errno.EBADF                  # vfs_writev: FMODE_WRITE before the vectors
    if not _can_rw(f, True):
        return -errno.EINVAL
    vecs = _iovecs(t, iov, cnt)
    if isinstance(vecs, int):
        return vecs
    data = bytearray()
    for base, ln in vecs:
        if ln >= 1 << 63:
            return -errno.EINVAL             # import_iovec: a negative length
        ln = min(ln, MAX_RW_COUNT - len(data))
        ok = t.umem.accessible(base, ln, False)
        b = t.umem.read(base, ok)
        if b is None or (ln and not ok):
            if not data:
                return -errno.EFAULT
            break
        data += b
        if ok < ln:
            break
    if not data:
        return 0
    return _write_file(k, t, f, bytes(data), None)


@syscall(19, 'readv')
def sys_readv(k, t, fd, iov, cnt, *_):
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    if isinstance(f, OpenFile) and not f.readable:
        return -errno.EBADF                  # vfs_readv: FMODE_READ before the vectors
    if not _can_rw(f, False):
        return -errno.EINVAL
    vecs = _iovecs(t, iov, cnt)
    if isinstance(vecs, int):
        return vecs
    total = 0
    for base, ln in vecs:
        if ln >= 1 << 63:
            return total or -errno.EINVAL
        if not ln:
            continue
        ln = min(ln, MAX_RW_COUNT)
        n = _read_to_user(k, t, f, base, ln, None)
        if n < 0:
            return total or n
        total += n
        if n < ln:
            break
    return total


@syscall(8, 'lseek')
def sys_lseek(k, t, fd, off, whence, *_):
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    if whence & 0xFFFFFFFF > SEEK_HOLE:
        return -errno.EINVAL                 # ksys_lseek: before the file's llseek
    if getattr(getattr(f, 'inode', None), 'noop_llseek', False):
        return f.pos                         # noop_llseek: the position, unchanged
    if _unseekable(f):
        return -errno.ESPIPE
    if getattr(f.inode, 'null_lseek', False):
        f.pos = 0                            # null_lseek (/dev/null, /dev/zero): always position 0
        return 0
    off = _s64(off)
    if getattr(f.inode, 'read_at', None) is not None and whence not in (SEEK_SET, SEEK_CUR):
        return -errno.EINVAL                 # a lazily read proc file has no end (mem_lseek)
    try:
        size = _synth_size(f) if hasattr(f, 'synth_data') else f.inode.size
    except FsError as e:
        return _fs_errno(e)
    if whence == SEEK_SET:
        new = off
    elif whence == SEEK_CUR:
        new = f.pos + off
    elif whence == SEEK_END:
        new = size + off
    elif whence in (SEEK_DATA, SEEK_HOLE):
        if off < 0 or off >= size:
            return -errno.ENXIO
        new = off if whence == SEEK_DATA else size
    else:
        return -errno.EINVAL
    if new < 0:
        return -errno.EINVAL
    f.pos = new
    if (f.inode.mode & S_IFMT) == S_IFDIR:
        f.dir_cursor = new
    return new


# ---- stat -------------------------------------------------------------------------------------
class _StreamStat:
    """What fstat reports for the host stdin/stdout/stderr streams."""

    def __init__(self, s):
        self.mode = s.mode
        self.ino = 3 + s.host_fd
        self.nlink = 1
        self.uid = self.gid = 0
        self.size = 0
        self.blksize = 4096
        self.blocks = 0
        self.dev = makedev(0, 13) if (s.mode & S_IFMT) == S_IFIFO else makedev(0, 24)
        self.rdev = makedev(136, 0) if s.is_tty else (0 if (s.mode & S_IFMT) == S_IFIFO else makedev(1, 3))
        self.atime = self.mtime = self.ctime = Timespec(0, 0)


def kstat_of(obj):
    """vfs_getattr's source for a looked-up object: the inode whose fields stat reports (a host
    stream's stand-in for one)."""
    if isinstance(obj, HostStream):
        return _StreamStat(obj)
    return obj.inode if isinstance(obj, OpenFile) else obj


def _stat_bytes(obj):
    return pack_stat(kstat_of(obj))


@syscall(5, 'fstat')
def sys_fstat(k, t, fd, st, *_):
    f = _file_raw(t, fd)
    if f is None:
        return -errno.EBADF
    return 0 if t.umem.write(st, _stat_bytes(f)) else -errno.EFAULT


def _stat_path(k, t, dirfd, upath, st, flags):
    flags &= 0xFFFFFFFF
    if flags & AT_EMPTY_PATH and upath:         # getname_maybe_null: an empty name counts as NULL
        empty = t.umem.read(upath, 1) == b'\0'   # (an unreadable one fails later, after the flags)
    else:
        empty = not upath
    if flags & AT_EMPTY_PATH and empty and _s32(dirfd) >= 0:
        f = _file_raw(t, dirfd)                  # vfs_fstatat: a NULL path is fstat, the flags unchecked
        if f is None:
            return -errno.EBADF
        return 0 if t.umem.write(st, _stat_bytes(f)) else -errno.EFAULT
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800 | 0x6000):
        return -errno.EINVAL
    obj = user_path_at(k, t, dirfd, upath, flags)
    if isinstance(obj, int):
        return obj
    return 0 if t.umem.write(st, _stat_bytes(obj)) else -errno.EFAULT


@syscall(4, 'stat')
def sys_stat(k, t, path, st, *_):
    return _stat_path(k, t, AT_FDCWD, path, st, 0)


@syscall(6, 'lstat')
def sys_lstat(k, t, path, st, *_):
    return _stat_path(k, t, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW)


@syscall(262, 'newfstatat')
def sys_newfstatat(k, t, dirfd, path, st, flags, *_):
    return _stat_path(k, t, dirfd, path, st, flags)


@syscall(21, 'access')
def sys_access(k, t, path, mode, *_):
    return do_faccessat(k, t, AT_FDCWD, path, mode, 0)


def access_override_creds(cred):
    """The credentials access(2) checks with (fs/open.c): the real uid and gid as the filesystem
    ones; the effective capabilities become the permitted set for a real root, none otherwise
    (unless SECURE_NO_SETUID_FIXUP)."""
    caps = cred.cap_effective
    if not issecure(cred, SECURE_NO_SETUID_FIXUP):
        caps = cred.cap_permitted if cred.uid == 0 else 0
    return FsCred(cred.uid, cred.gid, cred.groups, caps, cred.euid, cred.egid)


def do_faccessat(k, t, dirfd, upath, mode, flags):
    """access/faccessat/faccessat2: may the caller (its real ids, or with AT_EACCESS its effective
    ones) read, write or execute the file? A write on a read-only filesystem is EROFS."""
    if mode & 0xFFFFFFFF & ~7:               # int mode
        return -errno.EINVAL
    if flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        return -errno.EINVAL
    cred = t.cred.fs_cred() if flags & AT_EACCESS else access_override_creds(t.cred)
    inode = user_path_at(k, t, dirfd, upath, flags, cred)
    if isinstance(inode, int):
        return inode
    if not isinstance(inode, Inode):
        return 0                              # a descriptor without an inode (the host's streams)
    try:
        k.vfs.permission(inode, mode, cred)
    except FsError as e:
        return _fs_errno(e)
    return 0


@syscall(269, 'faccessat')
def sys_faccessat(k, t, dirfd, upath, mode, *_):
    return do_faccessat(k, t, dirfd, upath, mode, 0)


@syscall(439, 'faccessat2')
def sys_faccessat2(k, t, dirfd, upath, mode, flags, *_):
    return do_faccessat(k, t, dirfd, upath, mode, flags & 0xFFFFFFFF)


def user_path_at(k, t, dirfd, upath, flags, cred=None):
    """The inode a user path names relative to dirfd (following a final symlink unless
    AT_SYMLINK_NOFOLLOW; an empty path is dirfd itself with AT_EMPTY_PATH, else ENOENT), looked up
    with cred (the task's filesystem credentials by default); or -errno. An open file without an
    inode (a host stream) comes back as itself."""
    path = _get_path(t, upath)
    if isinstance(path, int):
        return path
    cred = t.cred.fs_cred() if cred is None else cred
    if not path:
        if not flags & AT_EMPTY_PATH:
            return -errno.ENOENT
        if _s32(dirfd) != AT_FDCWD:
            f = _file_raw(t, dirfd)
            if f is None:
                return -errno.EBADF
            return f.inode if isinstance(f, OpenFile) else f
        path = t.cwd
    full = _abs_at(t, dirfd, path)
    if isinstance(full, int):
        return full
    try:
        return k.vfs.lookup(full, follow=not flags & AT_SYMLINK_NOFOLLOW, cred=cred)
    except FsError as e:
        return _fs_errno(e)


# ---- directories, links ---------------------------------------------------------------------------
@syscall(217, 'getdents64')
def sys_getdents64(k, t, fd, buf, count, *_):
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    if not isinstance(f, OpenFile) or (f.inode.mode & S_IFMT) != S_IFDIR:
        return -errno.ENOTDIR
    try:
        entries = k.vfs.readdir(f.inode)
    except FsError as e:
        return _fs_errno(e)
    rest = entries[f.dir_cursor:]
    if not rest:
        return 0
    # the callback's count is an int: above INT_MAX no entry fits (EINVAL), as in fs/readdir.c
    data, n = pack_dirent64(rest, max(_s32(count), 0), f.dir_cursor)
    if n == 0:
        return -errno.EINVAL
    if not t.umem.write(buf, data):
        return -errno.EFAULT
    f.dir_cursor += n
    f.pos = f.dir_cursor
    return len(data)


@syscall(79, 'getcwd')
def sys_getcwd(k, t, buf, size, *_):
    cwd = t.cwd.encode() + b'\0'
    if size < len(cwd):
        return -errno.ERANGE
    return len(cwd) if t.umem.write(buf, cwd) else -errno.EFAULT


@syscall(80, 'chdir')
def sys_chdir(k, t, upath, *_):
    path = _get_path(t, upath)
    if isinstance(path, int):
        return path
    if not path:
        return -errno.ENOENT
    full = posixpath.normpath(_abs_at(t, AT_FDCWD, path))
    cred = t.cred.fs_cred()
    try:
        inode = k.vfs.lookup(full, cred=cred)
        if (inode.mode & S_IFMT) != S_IFDIR:
            return -errno.ENOTDIR
        k.vfs.permission(inode, MAY_EXEC, cred)
    except FsError as e:
        return _fs_errno(e)
    t.cwd = full
    return 0


def _path_op(k, t, dirfd, upath, op):
    path = _get_path(t, upath)
    if isinstance(path, int):
        return path
    if not path:
        return -errno.ENOENT                 # getname: an empty name
    full = _abs_at(t, dirfd, path)
    if isinstance(full, int):
        return full
    try:
        op(full, cred=t.cred.fs_cred())
    except FsError as e:
        return _fs_errno(e)
    return 0


@syscall(83, 'mkdir')
def sys_mkdir(k, t, path, mode, *_):
    return _path_op(k, t, AT_FDCWD, path, lambda p, cred: k.vfs.mkdir(p, (mode & 0o7777) & ~t.umask, cred=cred))


@syscall(258, 'mkdirat')
def sys_mkdirat(k, t, dirfd, path, mode, *_):
    return _path_op(k, t, dirfd, path, lambda p, cred: k.vfs.mkdir(p, (mode & 0o7777) & ~t.umask, cred=cred))


@syscall(84, 'rmdir')
def sys_rmdir(k, t, path, *_):
    return _path_op(k, t, AT_FDCWD, path, k.vfs.rmdir)


@syscall(87, 'unlink')
def sys_unlink(k, t, path, *_):
    return _path_op(k, t, AT_FDCWD, path, k.vfs.unlink)


@syscall(263, 'unlinkat')
def sys_unlinkat(k, t, dirfd, path, flags, *_):
    flags &= 0xFFFFFFFF                      # int flags
    if flags & ~AT_REMOVEDIR:
        return -errno.EINVAL
    return _path_op(k, t, dirfd, path, k.vfs.rmdir if flags & AT_REMOVEDIR else k.vfs.unlink)


RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4


def _rename(k, t, olddir, oldp, newdir, newp, flags=0):
    """do_renameat2: the old name's parent is looked up before the new name's errors count."""
    cred = t.cred.fs_cred()
    fa = fb = None
    for dirfd, upath in ((olddir, oldp), (newdir, newp)):
        x = _get_path(t, upath)
        if isinstance(x, int):
            return x
        if not x:
            return -errno.ENOENT
        x = _abs_at(t, dirfd, x)
        if isinstance(x, int):
            return x
        try:
            parent = k.vfs.lookup(posixpath.dirname(x.rstrip('/')) or '/', cred=cred)
        except FsError as e:
            return _fs_errno(e)
        if (parent.mode & S_IFMT) != S_IFDIR:
            return -errno.ENOTDIR
        fa, fb = (x, None) if fa is None else (fa, x)
    if flags & (RENAME_EXCHANGE | RENAME_WHITEOUT):
        return -errno.EINVAL                 # not emulated: as a filesystem without them
    if flags & RENAME_NOREPLACE:
        try:
            k.vfs.lookup(fb, follow=False, cred=cred)
            return -errno.EEXIST
        except FsError:
            pass
    try:
        k.vfs.rename(fa, fb, cred=cred)
    except FsError as e:
        return _fs_errno(e)
    return 0


@syscall(82, 'rename')
def sys_rename(k, t, old, new, *_):
    return _rename(k, t, AT_FDCWD, old, AT_FDCWD, new)


@syscall(264, 'renameat')
def sys_renameat(k, t, od, old, nd, new, *_):
    return _rename(k, t, od, old, nd, new)


@syscall(316, 'renameat2')
def sys_renameat2(k, t, od, old, nd, new, flags, *_):
    flags &= 0xFFFFFFFF
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) or \
            flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT):
        return -errno.EINVAL
    return _rename(k, t, od, old, nd, new, flags)


@syscall(88, 'symlink')
def sys_symlink(k, t, target, linkpath, *_):
    tgt = _get_path(t, target)
    if isinstance(tgt, int):
        return tgt
    if not tgt:
        return -errno.ENOENT                 # do_symlinkat: the target's getname error comes first
    return _path_op(k, t, AT_FDCWD, linkpath, lambda p, cred: k.vfs.symlink(tgt, p, cred=cred))


def _readlink(k, t, dirfd, upath, buf, size):
    if _s32(size) <= 0:
        return -errno.EINVAL
    path = _get_path(t, upath)
    if isinstance(path, int):
        return path
    if not path:                             # do_readlinkat: LOOKUP_EMPTY finds dirfd, not a symlink
        return -errno.EBADF if _s32(dirfd) != AT_FDCWD and _file_raw(t, dirfd) is None else -errno.ENOENT
    full = _abs_at(t, dirfd, path)
    if isinstance(full, int):
        return full
    try:
        target = k.vfs.readlink(full, cred=t.cred.fs_cred())
    except FsError as e:
        return _fs_errno(e)
    data = target.encode('utf-8', 'surrogateescape')[:size]
    return len(data) if t.umem.write(buf, data) else -errno.EFAULT


@syscall(89, 'readlink')
def sys_readlink(k, t, path, buf, size, *_):
    return _readlink(k, t, AT_FDCWD, path, buf, size)


@syscall(267, 'readlinkat')
def sys_readlinkat(k, t, dirfd, path, buf, size, *_):
    return _readlink(k, t, dirfd, path, buf, size)


# ---- size, sync, advice ------------------------------------------------------------------------
def _truncate_inode(k, inode, length):
    if (inode.mode & S_IFMT) == S_IFDIR:
        return -errno.EISDIR
    if (inode.mode & S_IFMT) != S_IFREG:
        return -errno.EINVAL
    if isinstance(inode, SynthFile):
        return 0                             # proc_setattr accepts a size and changes nothing
    if getattr(inode.sb, 'readonly', False):
        return -errno.EROFS
    try:
        old = inode.size
        mapping = k.pagecache.mapping_of(inode)
        if length < old:
            k.pagecache.truncate_inode_pages(mapping, (length + 4095) >> 12)
            # the partial last page keeps only the bytes below the new size
            page = mapping.pages.get(length >> 12)
            if page is not None and length & 0xFFF:
                fr = k.frames.phys.frame(page.pfn)
                fr[length & 0xFFF:] = bytes(4096 - (length & 0xFFF))
        inode.truncate(length)
    except FsError as e:
        return _fs_errno(e)
    return 0


@syscall(77, 'ftruncate')
def sys_ftruncate(k, t, fd, length, *_):
    length = _s64(length)
    if length < 0:
        return -errno.EINVAL                 # do_sys_ftruncate checks the length before the descriptor
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    if not isinstance(f, OpenFile) or not f.writable:
        return -errno.EINVAL if isinstance(f, OpenFile) and f.readable else -errno.EBADF
    return _truncate_inode(k, f.inode, length)


@syscall(76, 'truncate')
def sys_truncate(k, t, upath, length, *_):
    length = _s64(length)
    if length < 0:
        return -errno.EINVAL                 # do_sys_truncate checks the length before the path
    path = _get_path(t, upath)
    if isinstance(path, int):
        return path
    if not path:
        return -errno.ENOENT
    cred = t.cred.fs_cred()
    try:
        inode = k.vfs.lookup(_abs_at(t, AT_FDCWD, path), cred=cred)
        if inode.is_reg() and not inode.sb.readonly:
            k.vfs.permission(inode, MAY_WRITE, cred)          # vfs_truncate
    except FsError as e:
        return _fs_errno(e)
    return _truncate_inode(k, inode, length)


def _has_fsync(f):
    """Does the file have an ->fsync? (vfs_fsync_range is EINVAL without one: pipes, sockets, terminals,
    procfs, the mem character devices.)"""
    if not isinstance(f, OpenFile) or isinstance(f.inode, (PipeEnd, SocketInode)) or \
            getattr(f.inode, 'no_setattr', False) or getattr(f.inode, 'no_fsync', False) or \
            f.inode.sb.fstype == 'proc':     # anonymous inodes, secretmem
        return False
    return (f.inode.mode & S_IFMT) != S_IFCHR or getattr(f.inode, 'has_fsync', False)


def _fsync(k, t, fd):
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    if not _has_fsync(f):
        return -errno.EINVAL
    if isinstance(f, OpenFile) and f.mapping is not None:
        for vma in t.mm.vmas:
            if vma.vm_file is not None and vma.vm_file.mapping is f.mapping and vma.vm_flags & 0x8:
                fold_pte_dirty(t.mm, vma)
        err = k.pagecache.filemap_write_and_wait(f.mapping)
        k.blockdev_flush_wait()
        return err
    return 0


@syscall(74, 'fsync')
def sys_fsync(k, t, fd, *_):
    return _fsync(k, t, fd)


@syscall(75, 'fdatasync')
def sys_fdatasync(k, t, fd, *_):
    return _fsync(k, t, fd)


@syscall(162, 'sync')
def sys_sync(k, t, *_):
    for m in list(k.pagecache.mappings.values()):
        k.pagecache.filemap_write_and_wait(m)
    k.blockdev_flush_wait()
    return 0


def charge_fallocate(k, inode, n):
    """Cycles for n blocks fallocate allocated: on disk, block allocation of unwritten extents; in tmpfs,
    shmem_fallocate allocates, clears and caches each page; hugetlbfs charged its pages as it cleared them."""
    if not n:
        return
    if getattr(inode, 'backing', 'mem') == 'disk':
        k.charge('fallocate_block', n)
    elif inode.blksize == 4096:
        k.charge('page_alloc', n)
        k.charge('page_zero', n)
        k.charge('pagecache_insert', n)
    else:
        k.charge('fallocate_block', n)


def falloc_mode_ok(mode):
    """vfs_fallocate's mode check: KEEP_SIZE with one of ALLOCATE, PUNCH_HOLE (KEEP_SIZE required),
    ZERO_RANGE, UNSHARE_RANGE, or COLLAPSE_RANGE, INSERT_RANGE, WRITE_ZEROES (KEEP_SIZE refused)."""
    kind = mode & ~FALLOC_FL_KEEP_SIZE
    if kind in (0, 0x10, 0x40):
        return True
    if kind == FALLOC_FL_PUNCH_HOLE:
        return bool(mode & FALLOC_FL_KEEP_SIZE)
    return kind in (0x08, 0x20, 0x80) and not mode & FALLOC_FL_KEEP_SIZE


@syscall(285, 'fallocate')
def sys_fallocate(k, t, fd, mode, offset, length, *_):
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    offset, length = _s64(offset), _s64(length)
    if offset < 0 or length <= 0:
        return -errno.EINVAL
    if not falloc_mode_ok(mode & 0xFFFFFFFF):
        return -errno.EOPNOTSUPP
    if not isinstance(f, OpenFile) or not f.writable:
        return -errno.EBADF
    inode = f.inode
    if (inode.mode & S_IFMT) == S_IFDIR:
        return -errno.EISDIR
    if (inode.mode & S_IFMT) != S_IFREG:
        return -errno.ENODEV
    if getattr(inode, 'no_fallocate', False):
        return -errno.EOPNOTSUPP             # no ->fallocate (secretmem)
    try:
        if mode == 0 or mode == FALLOC_FL_KEEP_SIZE:
            n = inode.allocate(offset, length) or 0
            charge_fallocate(k, inode, n)
            if mode == 0 and offset + length > inode.size:
                inode.set_size(offset + length)
        elif mode == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE:
            mapping = k.pagecache.mapping_of(inode)
            first, last = (offset + 4095) >> 12, (offset + length) >> 12
            for idx in [i for i in mapping.pages if first <= i < last]:      # the cached ones only
                page = mapping.pages[idx]
                if page.mapcount == 0:
                    k.pagecache.delete_from_page_cache(page)
            inode.punch_hole(offset, length)
        else:
            return -errno.EOPNOTSUPP
    except FsError as e:
        return _fs_errno(e)
    return 0


@syscall(221, 'fadvise64')
def sys_fadvise64(k, t, fd, offset, length, advice, *_):
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    if isinstance(f, HostStream) or isinstance(getattr(f, 'inode', None), PipeEnd):
        return -errno.ESPIPE                 # generic_fadvise: S_ISFIFO first
    advice &= 0xFFFFFFFF                     # int advice
    if advice > POSIX_FADV_NOREUSE:
        return -errno.EINVAL
    offset, length = _s64(offset), _s64(length)
    if length < 0:
        return -errno.EINVAL
    if f.mapping is None:
        return 0
    end = None if length == 0 else (offset + length - 1) >> 12
    if advice == POSIX_FADV_DONTNEED:
        k.pagecache.filemap_write_and_wait(f.mapping)
        k.pagecache.invalidate_mapping_pages(f.mapping, offset >> 12, end)
    elif advice == POSIX_FADV_WILLNEED:
        n = ((length or f.inode.size - offset) + 4095) >> 12
        k.pagecache.page_cache_ra_unbounded(f.mapping, offset >> 12, n)
    elif advice == POSIX_FADV_RANDOM:
        f.ra.ra_pages = 0
    elif advice == POSIX_FADV_SEQUENTIAL:
        f.ra.ra_pages = 64
    elif advice == POSIX_FADV_NORMAL:
        f.ra.ra_pages = 32
    return 0


def _memfd_hugetlb_sb(k, flags):
    """The internal hugetlbfs of the hstate MFD_HUGE_* names (hugetlb_file_setup): the 1 GiB one's
    for MFD_HUGE_1GB, else the default 2 MiB one's."""
    h = k.mmsvc.hstate
    return h.gigantic_hstate.internal_sb(k.vfs.alloc_anon_dev) if is_gigantic_size(flags) else h.sb


@syscall(319, 'memfd_create')
def sys_memfd_create(k, t, uname, flags, *_):
    flags &= 0xFFFFFFFF                      # unsigned int flags
    if flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | 0xFC000000 | 8 | 16):
        return -errno.EINVAL
    if not flags & MFD_HUGETLB and flags & 0xFC000000:
        return -errno.EINVAL
    if flags & MFD_HUGETLB and getattr(k.mmsvc, 'hstate', None) is None:
        return -errno.EINVAL
    name = _get_path(t, uname)
    if isinstance(name, int):
        return name
    if len(name) > 249:
        return -errno.EINVAL
    if flags & MFD_HUGETLB and not huge_size_ok(flags) and not is_gigantic_size(flags):
        return -errno.ENODEV                 # hugetlb_file_setup: no hstate of that size
    err = alloc_empty_file_check(k, t)
    if err:
        return err
    inode = _memfd_hugetlb_sb(k, flags).new_anon_file() if flags & MFD_HUGETLB else k.vfs.memfd_create()
    inode.ihold()
    f = OpenFile(inode, O_RDWR | O_LARGEFILE, '/memfd:%s (deleted)' % name, k.pagecache)
    return t.files.install(f, cloexec=bool(flags & MFD_CLOEXEC))


O_DIRECT = 0o40000


# ---- pipes ---------------------------------------------------------------------------------------
@syscall(293, 'pipe2')
def sys_pipe2(k, t, ufds, flags, *_):
    flags &= 0xFFFFFFFF
    if flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT):
        return -errno.EINVAL
    if t.umem.accessible(ufds, 8, True) < 8:
        return -errno.EFAULT
    err = alloc_empty_file_check(k, t)       # create_pipe_files: two files
    if err:
        return err
    k.pipe_ino = getattr(k, 'pipe_ino', 0) + 1
    p = Pipe(k.pipe_ino)
    ends = [OpenFile(PipeEnd(p, True, k), O_RDONLY | (flags & O_NONBLOCK), 'pipe:[%d]' % p.ino),
            OpenFile(PipeEnd(p, False, k), O_WRONLY | (flags & O_NONBLOCK), 'pipe:[%d]' % p.ino)]
    fds = []
    for f in ends:
        fd = t.files.install(f, cloexec=bool(flags & O_CLOEXEC))
        if fd < 0:
            for other in fds:
                t.files.close(other)
            f.put()
            return fd
        fds.append(fd)
    if not t.umem.write(ufds, struct.pack('<ii', *fds)):
        for fd in fds:
            t.files.close(fd)
        return -errno.EFAULT
    return 0


@syscall(22, 'pipe')
def sys_pipe(k, t, ufds, *_):
    return sys_pipe2(k, t, ufds, 0)


# ---- descriptors ----------------------------------------------------------------------------------
@syscall(32, 'dup')
def sys_dup(k, t, fd, *_):
    f = _file_raw(t, fd)
    if f is None:
        return -errno.EBADF
    if isinstance(f, OpenFile):
        f.get()
    return t.files.install(f)


def _dup_to(t, f, newfd, cloexec):
    if not 0 <= newfd < t.files.nofile:  # newfd is an unsigned int: a negative one is huge
        return -errno.EBADF
    if newfd in t.files.fds:
        t.files.close(newfd)
    if isinstance(f, OpenFile):
        f.get()
    t.files.fds[newfd] = f
    if cloexec:
        t.files.cloexec.add(newfd)
    return newfd


@syscall(33, 'dup2')
def sys_dup2(k, t, fd, newfd, *_):
    f = _file_raw(t, fd)
    if f is None:
        return -errno.EBADF
    if _s32(fd) == _s32(newfd):
        return _s32(newfd)
    return _dup_to(t, f, _s32(newfd), False)


@syscall(292, 'dup3')
def sys_dup3(k, t, fd, newfd, flags, *_):
    if flags & 0xFFFFFFFF & ~O_CLOEXEC or _s32(fd) == _s32(newfd):
        return -errno.EINVAL
    f = _file_raw(t, fd)
    if f is None:
        return -errno.EBADF
    return _dup_to(t, f, _s32(newfd), bool(flags & O_CLOEXEC))


F_SETOWN, F_GETOWN, F_SETSIG, F_GETSIG, F_SETOWN_EX, F_GETOWN_EX = 8, 9, 10, 11, 15, 16
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2
O_NOCTTY, O_LARGEFILE = 0o400, 0o100000


@syscall(72, 'fcntl')
def sys_fcntl(k, t, fd, cmd, arg, *_):
    f = _file_raw(t, fd)
    if f is None:
        return -errno.EBADF
    fd = _s32(fd)
    cmd &= 0xFFFFFFFF                        # unsigned int cmd
    if isinstance(f, OpenFile) and f.flags & O_PATH and \
            cmd not in (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL):
        return -errno.EBADF                  # check_fcntl_cmd
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        if arg >= t.files.nofile:        # f_dupfd: from >= RLIMIT_NOFILE
            return -errno.EINVAL
        if isinstance(f, OpenFile):
            f.get()
        return t.files.install(f, cloexec=cmd == F_DUPFD_CLOEXEC, minfd=arg)
    if cmd == F_GETFD:
        return 1 if fd in t.files.cloexec else 0
    if cmd == F_SETFD:
        (t.files.cloexec.add if arg & 1 else t.files.cloexec.discard)(fd)
        return 0
    if cmd == F_GETFL:
        return f.flags if isinstance(f, OpenFile) else (O_RDWR if fd == 0 else O_WRONLY)
    if cmd == F_SETFL:
        if isinstance(f, OpenFile):
            f.flags = (f.flags & ~(O_APPEND | 0o4000)) | (arg & (O_APPEND | 0o4000))
        return 0
    if cmd == F_SETOWN:                      # f_setown: the pid (or -pgid) that gets SIGIO
        who = _s32(arg)
        if who == -(1 << 31):
            return -errno.EINVAL
        if who and k.tasks.get(abs(who)) is None:
            return -errno.ESRCH              # find_vpid of the pid or process group id
        if isinstance(f, OpenFile):
            f.owner = who
        return 0
    if cmd == F_GETOWN:
        return getattr(f, 'owner', 0)
    if cmd == F_SETOWN_EX:                   # f_setown_ex: struct f_owner_ex {int type; pid_t pid}
        raw = t.umem.read(arg, 8)
        if raw is None:
            return -errno.EFAULT
        kind, who = struct.unpack('<ii', raw)
        if kind not in (F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP):
            return -errno.EINVAL
        if who and k.tasks.get(who) is None:
            return -errno.ESRCH
        f.owner_ex = (kind, who)
        f.owner = -who if kind == F_OWNER_PGRP else who
        return 0
    if cmd == F_GETOWN_EX:
        owner = getattr(f, 'owner', 0)
        kind, who = getattr(f, 'owner_ex', (F_OWNER_PGRP if owner < 0 else F_OWNER_PID, abs(owner)))
        return 0 if t.umem.write(arg, struct.pack('<ii', kind, who)) else -errno.EFAULT
    if cmd in (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW):
        return do_fcntl_lock(k, t, f, cmd, arg)
    if cmd == F_SETSIG:                      # f_owner's signal for SIGIO (valid_signal)
        if not 0 <= _s32(arg) <= 64:
            return -errno.EINVAL
        f.f_owner_signum = _s32(arg)
        return 0
    if cmd == F_GETSIG:
        return getattr(f, 'f_owner_signum', 0)
    return -errno.EINVAL


def _do_vfs_ioctl(t, f, fd, cmd, arg):
    """do_vfs_ioctl: the commands every file answers before its own ->unlocked_ioctl (close-on-exec,
    non-blocking mode, the filesystem's block size, a regular file's bytes left); None for the
    others."""
    if cmd in (FIOCLEX, FIONCLEX):
        (t.files.cloexec.add if cmd == FIOCLEX else t.files.cloexec.discard)(fd)
        return 0
    if cmd == FIONBIO:
        raw = t.umem.read(arg, 4)
        if raw is None:
            return -errno.EFAULT
        if isinstance(f, OpenFile):
            f.flags = f.flags | O_NONBLOCK if struct.unpack('<i', raw)[0] else f.flags & ~O_NONBLOCK
        return 0
    if cmd == FIGETBSZ:                      # put_user(inode->i_sb->s_blocksize)
        return 0 if t.umem.write(arg, struct.pack('<i', 4096)) else -errno.EFAULT
    if cmd == FIONREAD and isinstance(f, OpenFile) and getattr(f.inode, 'mode', 0) & S_IFMT == S_IFREG:
        # a regular file (a /proc one too, whose i_size is 0): i_size - f_pos, stored as an int
        left = (f.inode.size - f.pos) & 0xFFFFFFFF
        return 0 if t.umem.write(arg, struct.pack('<I', left)) else -errno.EFAULT
    return None


@syscall(16, 'ioctl')
def sys_ioctl(k, t, fd, cmd, arg, *_):
    f = _file(t, fd)
    if f is None:
        return -errno.EBADF
    cmd &= 0xFFFFFFFF
    generic = _do_vfs_ioctl(t, f, _s32(fd), cmd, arg)
    if generic is not None:
        return generic
    if getattr(getattr(f, 'inode', None), 'unlocked_ioctl', None) is not None:
        return f.inode.unlocked_ioctl(k, t, f, cmd, arg)     # an anon inode's ->unlocked_ioctl
    if isinstance(f, HostStream) and f.is_tty and cmd in (TCGETS, TIOCGWINSZ):
        if cmd == TIOCGWINSZ:
            return 0 if t.umem.write(arg, struct.pack('<HHHH', 24, 80, 0, 0)) else -errno.EFAULT
        termios = struct.pack('<IIII', 0x500, 0x5, 0xBF, 0x8A3B) + bytes(1 + 19) + bytes(8)
        return 0 if t.umem.write(arg, termios[:36]) else -errno.EFAULT
    if cmd == FIONREAD and isinstance(f, OpenFile) and isinstance(f.inode, PipeEnd):
        # pipe_ioctl: the bytes in the pipe
        return 0 if t.umem.write(arg, struct.pack('<i', f.inode.pipe.nbytes)) else -errno.EFAULT
    return -errno.ENOTTY


# for kernel users that move data to and from files themselves (io_uring): bytes or -errno
vfs_read = _read_file
vfs_write = _write_file
