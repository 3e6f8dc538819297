"""Directory entries: DT_* types and the `struct linux_dirent64` encoder used by getdents64."""
import struct

from faultlab.kernel.fs.stat import S_IFMT

DT_UNKNOWN = 0
DT_FIFO = 1
DT_CHR = 2
DT_DIR = 4
DT_BLK = 6
DT_REG = 8
DT_LNK = 10
DT_SOCK = 12
DT_WHT = 14

DIRENT64_HEADER = struct.Struct('<QqHB')   # d_ino, d_off, d_reclen, d_type; d_name follows at 19


def mode_to_dtype(mode):
    """fs_umode_to_dtype: the DT_* value for an inode mode (S_IFMT >> 12)."""
    return (mode & S_IFMT) >> 12


def dirent64_reclen(name):
    """Record length of one linux_dirent64 for `name` (str or bytes), aligned to 8."""
    n = len(name.encode('utf-8', 'surrogateescape') if isinstance(name, str) else name)
    return (DIRENT64_HEADER.size + n + 1 + 7) & ~7


def pack_dirent64(entries, bufsize, start_off=0):
    """Pack (name, ino, dtype) entries into linux_dirent64 records until `bufsize` is full.

    d_off of the i-th packed entry is start_off + i + 1 (the directory position after it).
    Returns (bytes, number of entries packed); (b'', 0) means the first entry does not fit
    (getdents64 then returns EINVAL).
    """
    out = bytearray()
    count = 0
    for name, ino, dtype in entries:
        raw = name.encode('utf-8', 'surrogateescape') if isinstance(name, str) else bytes(name)
        reclen = (DIRENT64_HEADER.size + len(raw) + 1 + 7) & ~7
        if len(out) + reclen > bufsize:
            break
        rec = DIRENT64_HEADER.pack(ino, start_off + count + 1, reclen, dtype) + raw
        out += rec + bytes(reclen - len(rec))
        count += 1
    return bytes(out), count
