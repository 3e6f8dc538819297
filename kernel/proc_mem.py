"""/proc/self/mem (fs/proc/base.c mem_rw, mem_lseek): the task's memory at the file offset = the
address, read and written through access_remote_vm with FOLL_FORCE as ptrace does (PROT_NONE memory
reads, a write to a read-only private mapping breaks copy-on-write and the mapping stays read-only);
the bytes up to the first address that cannot be reached, EIO when that is the first one."""
import errno

from faultlab.kernel.fs import FsError
from faultlab.kernel.mm.access_remote import access_remote_vm
from faultlab.kernel.mm.gup_pin import FOLL_FORCE

ADDR_MASK = (1 << 64) - 1


def mem_read(k, pos, count):
    """mem_rw for reading: the bytes at address pos (at most count); EIO when none can be read."""
    mm = k.current.mm
    if not count or mm is None:
        return b''
    data = access_remote_vm(mm, pos & ADDR_MASK, length=count, gup_flags=FOLL_FORCE)
    if not data:
        raise FsError(errno.EIO)
    return data


def mem_write(k, pos, data):
    """mem_rw for writing: how many bytes of data were stored at address pos; EIO when none was."""
    mm = k.current.mm
    if not data or mm is None:
        return 0
    n = access_remote_vm(mm, pos & ADDR_MASK, data=data, gup_flags=FOLL_FORCE)
    if not n:
        raise FsError(errno.EIO)
    return n


def _no_unpositioned_write(data):
    """Every write of this file goes through write_at (the file position is the address)."""
    raise FsError(errno.EIO)


def register_proc_mem(k):
    """Publish /proc/self/mem (mode 0600; read and written at the file position)."""
    inode = k.vfs.register_synth('/proc/self/mem', None, _no_unpositioned_write, 0o600)
    inode.read_at = lambda pos, count: mem_read(k, pos, count)
    inode.write_at = lambda pos, data: mem_write(k, pos, data)
