"""File-type constants and the Linux x86-64 `struct stat` / `struct statfs` encoders."""
import struct
import stat as _hoststat
from dataclasses import dataclass
from typing import NamedTuple

S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000
S_ISUID = 0o4000
S_ISGID = 0o2000
S_ISVTX = 0o1000

PAGE_SIZE = 4096

# struct stat (arch/x86/include/uapi/asm/stat.h, __x86_64__): 144 bytes
STAT_FORMAT = '<QQQIIIiQqqqqqqqqq3q'
STAT_SIZE = 144
# (name, offset, size) of each field, as the C compiler lays it out
STAT_FIELDS = (
    ('st_dev', 0, 8), ('st_ino', 8, 8), ('st_nlink', 16, 8), ('st_mode', 24, 4),
    ('st_uid', 28, 4), ('st_gid', 32, 4), ('__pad0', 36, 4), ('st_rdev', 40, 8),
    ('st_size', 48, 8), ('st_blksize', 56, 8), ('st_blocks', 64, 8),
    ('st_atime', 72, 8), ('st_atime_nsec', 80, 8), ('st_mtime', 88, 8), ('st_mtime_nsec', 96, 8),
    ('st_ctime', 104, 8), ('st_ctime_nsec', 112, 8), ('__unused', 120, 24),
)

# struct statfs (x86-64, include/uapi/asm-generic/statfs.h with 64-bit longs): 120 bytes
STATFS_FORMAT = '<qqQQQQQIIqqq4q'
STATFS_SIZE = 120
STATFS_FIELDS = (
    ('f_type', 0, 8), ('f_bsize', 8, 8), ('f_blocks', 16, 8), ('f_bfree', 24, 8),
    ('f_bavail', 32, 8), ('f_files', 40, 8), ('f_ffree', 48, 8), ('f_fsid', 56, 8),
    ('f_namelen', 64, 8), ('f_frsize', 72, 8), ('f_flags', 80, 8), ('f_spare', 88, 32),
)
ST_RDONLY = 0x0001
ST_NOSUID = 0x0002
ST_NODEV = 0x0004
ST_NOEXEC = 0x0008
ST_VALID = 0x0020

EXT4_SUPER_MAGIC = 0xEF53
TMPFS_MAGIC = 0x01021994
PROC_SUPER_MAGIC = 0x9FA0
V9FS_MAGIC = 0x01021997

assert struct.calcsize(STAT_FORMAT) == STAT_SIZE
assert struct.calcsize(STATFS_FORMAT) == STATFS_SIZE


class Timespec(NamedTuple):
    """struct timespec: seconds and nanoseconds."""
    sec: int
    nsec: int


def timespec_from_ns(ns):
    """A Timespec from integer nanoseconds."""
    ns = int(ns)
    return Timespec(ns // 1_000_000_000, ns % 1_000_000_000)


def makedev(major, minor):
    """new_encode_dev/huge_encode_dev: the dev_t value stored in st_dev/st_rdev."""
    return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) << 32)


def dev_major(dev):
    """MAJOR() of an encoded dev_t."""
    return ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)


def dev_minor(dev):
    """MINOR() of an encoded dev_t."""
    return (dev & 0xff) | ((dev >> 12) & ~0xff)


def S_ISDIR(mode):
    """True for a directory mode."""
    return mode & S_IFMT == S_IFDIR


def S_ISREG(mode):
    """True for a regular-file mode."""
    return mode & S_IFMT == S_IFREG


def S_ISLNK(mode):
    """True for a symlink mode."""
    return mode & S_IFMT == S_IFLNK


def S_ISCHR(mode):
    """True for a character-device mode."""
    return mode & S_IFMT == S_IFCHR


def pack_stat(inode):
    """cp_new_stat: the inode's metadata as a 144-byte Linux x86-64 `struct stat`."""
    a, m, c = inode.atime, inode.mtime, inode.ctime
    return struct.pack(STAT_FORMAT,
                       inode.dev or 0, inode.ino, inode.nlink, inode.mode,
                       inode.uid, inode.gid, 0, inode.rdev,
                       inode.size, inode.blksize, inode.blocks,
                       a[0], a[1], m[0], m[1], c[0], c[1], 0, 0, 0)


@dataclass
class StatFs:
    """struct statfs contents (sizes in f_bsize units)."""
    f_type: int
    f_bsize: int = PAGE_SIZE
    f_blocks: int = 0
    f_bfree: int = 0
    f_bavail: int = 0
    f_files: int = 0
    f_ffree: int = 0
    f_fsid: tuple = (0, 0)
    f_namelen: int = 255
    f_frsize: int = PAGE_SIZE
    f_flags: int = ST_VALID


def pack_statfs(st):
    """The StatFs as a 120-byte Linux x86-64 `struct statfs`."""
    return struct.pack(STATFS_FORMAT, st.f_type, st.f_bsize, st.f_blocks, st.f_bfree, st.f_bavail,
                       st.f_files, st.f_ffree, st.f_fsid[0], st.f_fsid[1], st.f_namelen,
                       st.f_frsize, st.f_flags, 0, 0, 0, 0)


# The host module's values are Linux's; check once so a mismatch fails loudly.
assert (S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR) == (_hoststat.S_IFREG, _hoststat.S_IFDIR,
                                                _hoststat.S_IFLNK, _hoststat.S_IFCHR)
