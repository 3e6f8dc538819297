"""copy_file_range(2) (fs/read_write.c vfs_copy_file_range, generic_copy_file_checks): copy bytes
between two regular files through the page cache.

As in Linux 6.12: flags must be 0 (EINVAL); EBADF for a bad descriptor, an input not open for
reading or an output not open for writing or opened O_APPEND; EISDIR for a directory, EINVAL for any
other non-regular file or an overlapping range of one file; EXDEV between two filesystems (none of
the filesystems here has its own ->copy_file_range, so only a copy within one is done, as
splice_file_range; a copy within proc is EINVAL here); 0 at or past the end of the input. With NULL offset pointers the files'
positions are used and advanced, else the offsets at the pointers (EFAULT when unreadable)."""
import errno
import struct

from faultlab.kernel.file import OpenFile, generic_file_read, generic_perform_write, O_APPEND
from faultlab.kernel.fs.stat import S_IFMT, S_IFDIR, S_IFREG
from faultlab.kernel.fs.synth import SynthFile
from faultlab.kernel.syscalls.registry import s32, syscall

MAX_RW_COUNT = 0x7FFFF000


def _regular(f):
    """EISDIR/EINVAL unless f is an open regular file, else 0."""
    kind = f.inode.mode & S_IFMT
    if kind == S_IFDIR:
        return -errno.EISDIR
    return 0 if kind == S_IFREG else -errno.EINVAL


def _get_off(t, uoff):
    if not uoff:
        return None
    raw = t.umem.read(uoff, 8)
    return -errno.EFAULT if raw is None else struct.unpack('<q', raw)[0]


@syscall(326, 'copy_file_range')
def sys_copy_file_range(k, t, fd_in, uoff_in, fd_out, uoff_out, length, flags, *_):
    f_in, f_out = t.files.get(s32(fd_in)), t.files.get(s32(fd_out))
    if not isinstance(f_in, OpenFile) or not isinstance(f_out, OpenFile):
        return -errno.EBADF
    pos_in, pos_out = _get_off(t, uoff_in), _get_off(t, uoff_out)
    if -errno.EFAULT in (pos_in, pos_out):
        return -errno.EFAULT
    if flags & 0xFFFFFFFF:
        return -errno.EINVAL                  # after the descriptors and the offsets are copied in
    for p in (pos_in, pos_out):
        if isinstance(p, int) and p < 0:
            return -errno.EINVAL
    err = _regular(f_in) or _regular(f_out)
    if err:
        return err
    if not f_in.readable or not f_out.writable or f_out.flags & O_APPEND:
        return -errno.EBADF
    if f_in.inode.sb is not f_out.inode.sb:
        return -errno.EXDEV
    if isinstance(f_in.inode, SynthFile) or isinstance(f_out.inode, SynthFile):
        return -errno.EINVAL                  # a copy within proc: not done here
    start_in = f_in.pos if pos_in is None else pos_in
    start_out = f_out.pos if pos_out is None else pos_out
    count = min(length, MAX_RW_COUNT, max(0, f_in.inode.size - start_in))
    if f_in.inode is f_out.inode and start_in < start_out + count and start_out < start_in + count:
        return -errno.EINVAL
    if count == 0:
        return 0
    if f_out.inode.sb.readonly:
        return -errno.EROFS
    data = generic_file_read(k.pagecache, f_in, count, start_in)
    n = generic_perform_write(k.pagecache, f_out, data, start_out) if data else 0
    if n < 0:
        return n
    if n:
        f_out.inode.touch_mtime()
    for uoff, f, start in ((uoff_in, f_in, start_in), (uoff_out, f_out, start_out)):
        if uoff:
            if not t.umem.write(uoff, struct.pack('<q', start + n)):
                return -errno.EFAULT
        else:
            f.pos = start + n
    return n
