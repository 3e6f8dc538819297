"""Inode: metadata every file type shares (struct inode), link counting and attribute changes."""
import errno

from faultlab.kernel.fs.dirent import mode_to_dtype
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.stat import (PAGE_SIZE, S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_ISUID,
                            S_ISGID, Timespec)


class Inode:
    """struct inode: identity, type+permissions, ownership, size, times, link and open counts.

    `refs` counts users other than directory entries (open files, mappings): take one with
    ihold() and drop it with iput(). Storage is freed when both nlink and refs reach zero.
    """
    backing = 'mem'          # 'disk': pages live on a disk (bmap gives blocks); 'mem': no disk I/O
    blksize = PAGE_SIZE

    def __init__(self, sb, ino, mode, uid=0, gid=0, rdev=0, nlink=1):
        """A new inode of superblock sb; mode includes the S_IF* type bits."""
        self.sb = sb
        self.ino = ino
        self.mode = mode
        self.nlink = nlink
        self.uid = uid
        self.gid = gid
        self.rdev = rdev
        self.size = 0
        self.atime = self.mtime = self.ctime = sb.now()
        self.btime = self.ctime          # birth time (ext4's and shmem's i_crtime): set once, here
        self.refs = 0
        self.evicted = False

    def __repr__(self):
        """Type, number, mode and filesystem, for debugging."""
        return f'<{type(self).__name__} ino={self.ino} mode={self.mode:o} sb={self.sb.fstype}>'

    # ---- identity -------------------------------------------------------------------------
    @property
    def dev(self):
        """st_dev: the device number of the superblock."""
        return self.sb.dev

    @property
    def blocks(self):
        """st_blocks: 512-byte units actually allocated."""
        return 0

    @property
    def dtype(self):
        """The DT_* type of this inode."""
        return mode_to_dtype(self.mode)

    def is_dir(self):
        """S_ISDIR."""
        return self.mode & S_IFMT == S_IFDIR

    def is_reg(self):
        """S_ISREG."""
        return self.mode & S_IFMT == S_IFREG

    def is_lnk(self):
        """S_ISLNK."""
        return self.mode & S_IFMT == S_IFLNK

    def is_chr(self):
        """S_ISCHR."""
        return self.mode & S_IFMT == S_IFCHR

    # ---- times ------------------------------------------------------------------------------
    def touch_atime(self):
        """file_accessed with relatime: update atime if not newer than mtime/ctime or a day old."""
        if self.sb.readonly:
            return
        now = self.sb.now()
        if self.atime <= self.mtime or self.atime <= self.ctime or now.sec - self.atime[0] >= 86400:
            self.atime = now

    def touch_mtime(self):
        """Update modification and change times (file_update_time)."""
        self.mtime = self.ctime = self.sb.now()

    def touch_ctime(self):
        """Update the change time (metadata changed)."""
        self.ctime = self.sb.now()

    # ---- lifetime ---------------------------------------------------------------------------
    def ihold(self):
        """Take a reference (an open file or a mapping uses this inode)."""
        self.refs += 1

    def iput(self):
        """Drop a reference; free the storage if this was the last user of an unlinked inode."""
        if self.refs <= 0:
            raise ValueError(f'iput on {self!r} without a reference')
        self.refs -= 1
        self._maybe_evict()

    def inc_nlink(self):
        """A new directory entry points here."""
        self.nlink += 1
        self.touch_ctime()

    def drop_nlink(self):
        """A directory entry pointing here went away."""
        if self.nlink > 0:
            self.nlink -= 1
        self.touch_ctime()
        self._maybe_evict()

    def clear_nlink(self):
        """No directory entry points here any more (rmdir)."""
        self.nlink = 0
        self.touch_ctime()
        self._maybe_evict()

    def _maybe_evict(self):
        """evict() once nobody can reach this inode."""
        if self.nlink == 0 and self.refs == 0 and not self.evicted:
            self.evicted = True
            self.evict()
            self.sb.evict_inode(self)

    def evict(self):
        """Free the inode's storage (subclasses with data override)."""

    # ---- attributes ---------------------------------------------------------------------------
    def check_writable(self):
        """Raise EROFS if the filesystem is mounted read-only."""
        if self.sb.readonly:
            raise FsError(errno.EROFS)

    def setattr(self, mode=None, uid=None, gid=None, atime=None, mtime=None, cred=None):
        """notify_change: chmod (mode bits), chown, utimes (Timespec); EROFS/EPERM like Linux."""
        self.check_writable()
        root = cred is None or cred.uid == 0
        owner = root or cred.uid == self.uid
        if (mode is not None or atime is not None or mtime is not None) and not owner:
            raise FsError(errno.EPERM)
        if uid is not None and uid != self.uid and not root:
            raise FsError(errno.EPERM)
        if gid is not None and gid != self.gid and not root and not (owner and cred.in_group(gid)):
            raise FsError(errno.EPERM)
        if mode is not None:
            mode &= 0o7777
            if not root and not cred.in_group(self.gid if gid is None else gid):
                mode &= ~S_ISGID
            self.mode = (self.mode & S_IFMT) | mode
        if uid is not None or gid is not None:
            if self.is_reg():
                self.mode &= ~S_ISUID
                if self.mode & 0o010:
                    self.mode &= ~S_ISGID
            self.uid = self.uid if uid is None else uid
            self.gid = self.gid if gid is None else gid
        if atime is not None:
            self.atime = Timespec(*atime)
        if mtime is not None:
            self.mtime = Timespec(*mtime)
        self.touch_ctime()
        self.sb.write_inode(self)
