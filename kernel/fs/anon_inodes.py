"""anon_inodefs (fs/anon_inodes.c): the inodes behind eventfd, epoll and userfaultfd descriptors.

Such a file has no name in any directory (/proc/self/fd shows `anon_inode:[eventfd]`); its type bits
are zero and its mode 0600, as alloc_anon_inode makes them. Its file operations are methods of the
inode: fop_read(k, t, f, count) -> bytes, -errno or BLOCKED, fop_write(k, t, f, data),
unlocked_ioctl(k, t, f, cmd, arg), poll() -> mask and wait_queue (vfs_poll), release(k) at the
last close.
"""
from faultlab.kernel.file import O_ACCMODE, O_CLOEXEC, O_NONBLOCK, OpenFile
from faultlab.kernel.fs.inode import Inode
from faultlab.kernel.fs.superblock import SuperBlock

ANON_INODE_FS_MAGIC = 0x09041934


class AnonInodeFs(SuperBlock):
    """The anon_inodefs superblock."""
    fstype = 'anon_inodefs'
    magic = ANON_INODE_FS_MAGIC


class AnonInode(Inode):
    """An anonymous inode with its file operations (subclasses define them)."""
    fop_read = None
    fop_write = None
    unlocked_ioctl = None
    no_pread = True                   # no FMODE_PREAD/PWRITE: pread/pwrite are ESPIPE
    noop_llseek = True                # lseek succeeds and leaves the position (noop_llseek)
    no_setattr = True                 # chmod/chown/utimes are EOPNOTSUPP (anon_inode_setattr)

    def __init__(self, sb):
        super().__init__(sb, sb.alloc_ino(), 0o600, nlink=0)

    def iput(self):
        """The last open file went away: ->release."""
        self.refs -= 1
        if self.refs <= 0:
            self.release()

    def release(self):
        """->release: nothing by default."""


def anon_sb(k):
    """The kernel's anon_inodefs superblock (made at first use)."""
    sb = getattr(k, 'anon_inode_sb', None)
    if sb is None:
        sb = k.anon_inode_sb = AnonInodeFs(k.vfs.root_sb.clock)
    return sb


def anon_inode_getfd(t, name, inode, flags):
    """A new descriptor for inode named anon_inode:[name], with O_NONBLOCK/O_CLOEXEC from flags and
    the access mode of flags (O_RDWR usually)."""
    inode.ihold()
    f = OpenFile(inode, flags & (O_ACCMODE | O_NONBLOCK), 'anon_inode:[%s]' % name)
    fd = t.files.install(f, cloexec=bool(flags & O_CLOEXEC))
    if fd < 0:
        f.put()
    return fd
