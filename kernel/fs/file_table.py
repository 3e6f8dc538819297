"""The system-wide limit on open files (fs/file_table.c): /proc/sys/fs/file-max and file-nr, and
alloc_empty_file's ENFILE (for open, pipe, socket and memfd_create).

files_maxfiles_init sizes file-max at boot to a tenth of the memory in KiB (at least NR_FILE, 8192);
root may change it (0..LONG_MAX). A new struct file (open, pipe, socket, memfd, an anonymous-inode
file) is refused with ENFILE once the files in use reach it, unless the caller has CAP_SYS_ADMIN, and
the kernel logs "VFS: file-max limit N reached". file-nr shows the files in use (as the approximate
percpu counter reads them: without the reader's own file), 0 free, and the limit.
The files in use are counted as the open files that descriptors and mappings hold.
"""
import errno

from faultlab.kernel.capability import CAP_SYS_ADMIN, capable
from faultlab.kernel.sysctl import LONG_MAX, proc_doulongvec_minmax

NR_FILE = 8192


class FilesStat:
    """files_stat: max_files, and the count of the files in use."""

    def __init__(self, k):
        self.k = k
        nr_pages = k.phys.size >> 12
        memreserve = k.frames.nr_allocated * 3 // 2
        self.max_files = max((nr_pages - memreserve) * 4 // 10, NR_FILE)

    def _holders(self):
        """The distinct descriptor tables and address spaces of the live tasks."""
        tables, mms = {}, {}
        for t in self.k.tasks.live():
            tables[id(t.files)] = t.files
            mms[id(t.mm)] = t.mm
        return tables.values(), mms.values()

    def nr_files(self):
        """get_nr_files: the distinct open files held by descriptor tables and mappings."""
        tables, mms = self._holders()
        seen = set()
        for files in tables:
            seen.update(id(f) for f in files.fds.values() if hasattr(f, 'refs'))
        for mm in mms:
            seen.update(id(v.vm_file) for v in mm.vmas if v.vm_file is not None)
        return len(seen)

    def read_nr_files(self):
        """proc_nr_files: get_nr_files as percpu_counter_read_positive reads it, the global count
        without the CPUs' pending deltas. The reader's own file was counted a moment ago, on its CPU,
        and is still in that CPU's delta (percpu_counter_add_batch folds at 32 or more); so this
        approximation leaves it out: one less than the files in use, at least 0."""
        return max(self.nr_files() - 1, 0)

    def may_be_full(self):
        """Could the files in use have reached max_files? (descriptors plus mappings bound them)"""
        tables, mms = self._holders()
        return sum(len(f.fds) for f in tables) + sum(len(mm.vmas) for mm in mms) >= self.max_files

    def write_max(self, data):
        """file-max: proc_doulongvec_minmax over 0..LONG_MAX."""
        v = proc_doulongvec_minmax(data, 0, LONG_MAX)
        if v is not None:
            self.max_files = v


def files_stat(k):
    """The kernel's FilesStat (made at first use)."""
    fs = getattr(k, 'files_stat', None)
    if fs is None:
        fs = k.files_stat = FilesStat(k)
    return fs


def alloc_empty_file_check(k, t):
    """alloc_empty_file's limit: -ENFILE when the files in use reached file-max and t lacks
    CAP_SYS_ADMIN, else 0."""
    fs = files_stat(k)
    if fs.may_be_full() and fs.nr_files() >= fs.max_files and not capable(t, CAP_SYS_ADMIN):
        k.warn_once(('file-max', fs.max_files), 'VFS: file-max limit %d reached' % fs.max_files)
        return -errno.ENFILE
    return 0


def register_file_table_procfs(k):
    """Publish /proc/sys/fs/file-max and /proc/sys/fs/file-nr."""
    fs = files_stat(k)
    k.vfs.register_synth('/proc/sys/fs/file-max', lambda: '%d\n' % fs.max_files, fs.write_max)
    k.vfs.register_synth('/proc/sys/fs/file-nr', lambda: '%d\t0\t%d\n' % (fs.read_nr_files(), fs.max_files))
