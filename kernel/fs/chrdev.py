"""Character devices: /dev/null, /dev/zero, /dev/full, /dev/random and /dev/urandom (drivers/char/mem.c)."""
import errno
import hashlib

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.inode import Inode
from faultlab.kernel.fs.stat import S_IFCHR, makedev

MEM_MAJOR = 1


class CharDevice(Inode):
    """A character-device inode; read_chr/write_chr are its file operations."""
    minor = None
    has_fsync = False           # mem devices have no ->fsync (fsync is EINVAL), random ones noop_fsync

    def __init__(self, sb, ino, mode=0o666, uid=0, gid=0, rdev=None):
        """A device node crw-rw-rw- with rdev (default: 1:<class minor>)."""
        rdev = makedev(MEM_MAJOR, self.minor) if rdev is None else rdev
        super().__init__(sb, ino, S_IFCHR | (mode & 0o7777), uid, gid, rdev)

    def read_chr(self, n):
        """Read up to n bytes."""
        raise FsError(errno.EINVAL)

    def write_chr(self, data):
        """Write data; returns the number of bytes accepted."""
        raise FsError(errno.EINVAL)

    def write_unread(self, n):
        """A write of n bytes the driver never reads (write_null, write_full): its result, or None when
        the device takes the data (then the buffer is copied in and may fault)."""
        return None


class NullDevice(CharDevice):
    """/dev/null (1:3): reads hit EOF, writes vanish."""
    minor = 3
    null_lseek = True

    def read_chr(self, n):
        """EOF."""
        return b''

    def write_chr(self, data):
        """Discard everything."""
        return len(data)

    def write_unread(self, n):
        """Everything is accepted unread."""
        return n


class ZeroDevice(CharDevice):
    """/dev/zero (1:5): reads return zeros, writes vanish."""
    minor = 5
    null_lseek = True

    def read_chr(self, n):
        """n zero bytes."""
        return bytes(n)

    def write_chr(self, data):
        """Discard everything."""
        return len(data)

    def write_unread(self, n):
        """Everything is accepted unread."""
        return n


class FullDevice(CharDevice):
    """/dev/full (1:7): reads return zeros, writes fail with ENOSPC."""
    minor = 7
    null_lseek = True

    def read_chr(self, n):
        """n zero bytes."""
        return bytes(n)

    def write_chr(self, data):
        """Always ENOSPC."""
        raise FsError(errno.ENOSPC)

    def write_unread(self, n):
        """Always ENOSPC, the buffer unread."""
        raise FsError(errno.ENOSPC)


class DeterministicRandom:
    """A reproducible byte stream: SHA-256(seed || counter) blocks (the 'entropy pool' of a run)."""

    def __init__(self, seed=0):
        """seed: int, str or bytes."""
        if isinstance(seed, int):
            seed = seed.to_bytes(16, 'little', signed=True)
        elif isinstance(seed, str):
            seed = seed.encode()
        self._seed = bytes(seed)
        self._counter = 0
        self._buf = b''

    def read(self, n):
        """The next n bytes of the stream."""
        while len(self._buf) < n:
            block = hashlib.sha256(self._seed + self._counter.to_bytes(8, 'little')).digest()
            self._counter += 1
            self._buf += block
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def mix(self, data):
        """Writing to the device stirs data into the pool (changes the rest of the stream)."""
        self._seed = hashlib.sha256(self._seed + bytes(data)).digest()
        self._buf = b''


class RandomDevice(CharDevice):
    """/dev/urandom (1:9) or /dev/random (1:8): bytes from the shared deterministic pool."""
    minor = 9
    has_fsync = True

    def __init__(self, sb, ino, pool, mode=0o666, uid=0, gid=0, minor=9):
        """A random device reading from pool (a DeterministicRandom)."""
        self.minor = minor
        super().__init__(sb, ino, mode, uid, gid)
        self.pool = pool

    def read_chr(self, n):
        """n pseudo-random bytes."""
        return self.pool.read(n)

    def write_chr(self, data):
        """Mix the data into the pool."""
        self.pool.mix(data)
        return len(data)
