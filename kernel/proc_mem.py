"""/proc/self/mem (fs/proc/base.c mem_rw): the task's memory read at the file offset = the address."""
import errno

from kernel.fs import FsError


def mem_read(k, pos, count):
    """mem_rw for reading: the readable bytes at address pos (at most count); EIO when none is."""
    task = k.current
    n = task.umem.accessible(pos, min(count, 1 << 20), False) if count else 0
    data = task.umem.read(pos, n) if n else None
    if count and not data:
        raise FsError(errno.EIO)
    return data or b''


def mem_write(data):
    """Writes are refused with EIO, as mem_rw refuses an address it cannot reach: the synthetic-file
    layer gives a write no offset, so no address could be named."""
    raise FsError(errno.EIO)


def register_proc_mem(k):
    """Publish /proc/self/mem (mode 0600)."""
    k.vfs.register_synth('/proc/self/mem', None, mem_write, 0o600).read_at = lambda pos, count: mem_read(k, pos, count)
