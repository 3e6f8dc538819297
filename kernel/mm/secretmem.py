"""Secret memory (mm/secretmem.c): memfd_secret files, whose pages only the mappings of the
process that holds them reach.

A secretmem file has no read or write (EINVAL), no positioned I/O or seeking (ESPIPE); its size is
set once by ftruncate (then EINVAL); it maps only MAP_SHARED (EINVAL otherwise), and a mapping is
locked (VM_LOCKED | VM_DONTDUMP, counted against RLIMIT_MEMLOCK like mlock: EAGAIN past it) but
filled as it is touched, not populated at mmap. /proc/PID/maps names it "/secretmem (deleted)".
"""
import errno

from faultlab.kernel.file import O_RDWR, OpenFile
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.tmpfs import MemFile, TmpFs
from faultlab.kernel.mm.mlock import mlock_future_ok
from faultlab.kernel.mm.mmap import MAP_SHARED, MAP_SHARED_VALIDATE, MAP_TYPE, do_mmap, page_align
from faultlab.kernel.mm.vma import VM_DONTDUMP, VM_LOCKED

SECRETMEM_MAGIC = 0x5345434d            # "SECM"
SECRETMEM_NAME = '/secretmem (deleted)'


class SecretMemInode(MemFile):
    """A secretmem file's inode (alloc_anon_secure_inode): memory pages, mode 0600."""
    no_read_write = True                # secretmem_fops has no read_iter/write_iter
    no_pread = True                     # nor llseek: pread, pwrite and lseek are ESPIPE
    no_fsync = no_fallocate = True      # nor fsync (EINVAL) or fallocate (EOPNOTSUPP)

    def truncate(self, new_size):
        """secretmem_setattr: the size is set once; changing it again is EINVAL."""
        if self.size:
            raise FsError(errno.EINVAL)
        super().truncate(new_size)

    def mmap(self, t, addr, length, prot, flags, file, pgoff):
        """secretmem_mmap: shared mappings only, within RLIMIT_MEMLOCK; the VMA is locked and kept
        out of core dumps. The address, or -errno."""
        if flags & MAP_TYPE not in (MAP_SHARED, MAP_SHARED_VALIDATE):
            return -errno.EINVAL
        if not mlock_future_ok(t, page_align(length)):
            return -errno.EAGAIN
        addr = do_mmap(t.mm, addr, length, prot, flags, file, pgoff)
        if addr >= 0:
            t.mm.find_vma(addr).vm_flags |= VM_LOCKED | VM_DONTDUMP
        return addr


class SecretMemFs(TmpFs):
    """The secretmem pseudo filesystem (its inodes' st_dev and f_type)."""
    fstype = 'secretmem'
    magic = SECRETMEM_MAGIC
    file_class = SecretMemInode


def secretmem_file_create(k, t=None):
    """A new secretmem file, opened O_RDWR (the caller installs it), owned by t's fsuid and fsgid
    (alloc_anon_secure_inode takes the creator's, as new inodes do)."""
    sb = getattr(k, 'secretmem_sb', None)
    if sb is None:
        sb = k.secretmem_sb = SecretMemFs(k.vfs.root_sb.clock, dev=k.vfs.alloc_anon_dev())
    inode = sb.new_anon_file(0o600, *((t.cred.fsuid, t.cred.fsgid) if t is not None else (0, 0)))
    inode.ihold()
    return OpenFile(inode, O_RDWR, SECRETMEM_NAME, k.pagecache)
