"""gdb's Host I/O packets (the GDB Remote Serial Protocol manual, "Host I/O Packets"): vFile:setfs,
open, pread, close, fstat, readlink (and a read-only refusal for pwrite and unlink) over the guest's
files, through the kernel's debugger interface. With them gdb reads the program, its shared
libraries and /proc/PID/maps (`info proc mappings`) from the target instead of the host.

Replies are 'Fresult' in hex, 'F-1,errno' with the errno in the protocol's numbering ("Errno
Values"), and 'Fcount;data' with the data as escaped binary for pread, fstat and readlink.
"""
import errno
import struct

from faultlab.gdb.rsp import escape_binary
from faultlab.kernel.debugmon import debug_file_open, debug_readlink
from faultlab.kernel.fs import FsError

# gdb's File-I/O open flags and errno values ("Open Flags", "Errno Values")
GDB_O_ACCMODE, GDB_O_CREAT, GDB_O_TRUNC = 0x3, 0x200, 0x400
GDB_ERRNOS = {errno.EPERM: 1, errno.ENOENT: 2, errno.EINTR: 4, errno.EBADF: 9, errno.EACCES: 13,
              errno.EFAULT: 14, errno.EBUSY: 16, errno.EEXIST: 17, errno.ENODEV: 19, errno.ENOTDIR: 20,
              errno.EISDIR: 21, errno.EINVAL: 22, errno.ENFILE: 23, errno.EMFILE: 24, errno.EFBIG: 27,
              errno.ENOSPC: 28, errno.ESPIPE: 29, errno.EROFS: 30, errno.ENAMETOOLONG: 91}
GDB_EUNKNOWN = 9999
S_IFREG = 0o100000
MAX_OPEN = 64                 # files open at once (EMFILE past it)
# gdb's struct stat ("struct stat" in "Protocol-specific Representation of Datatypes"): big-endian,
# int fields 4 bytes, st_size/st_blksize/st_blocks 8, the three times 4
FIO_STAT = struct.Struct('>IIIIIIIQQQIII')


def fio_errno(err):
    """A Linux errno in the File-I/O numbering."""
    return GDB_ERRNOS.get(err, GDB_EUNKNOWN)


def fio_error(err):
    """The 'F-1,errno' reply."""
    return 'F-1,%x' % fio_errno(err)


def fio_data(data):
    """The 'Fcount;data' reply of pread, fstat and readlink."""
    return 'F%x;' % len(data) + escape_binary(data).decode('latin-1')


def fio_stat(f):
    """gdb's struct stat of an open DebugFile."""
    inode = f.inode
    if inode is None:
        return FIO_STAT.pack(0, 0, S_IFREG | 0o444, 1, 0, 0, 0, f.size, 4096, (f.size + 511) // 512, 0, 0, 0)
    m32 = 0xFFFFFFFF
    return FIO_STAT.pack((inode.dev or 0) & m32, inode.ino & m32, inode.mode & m32, inode.nlink & m32,
                         inode.uid & m32, inode.gid & m32, inode.rdev & m32, f.size,
                         getattr(inode, 'blksize', 4096), inode.blocks,
                         inode.atime[0] & m32, inode.mtime[0] & m32, inode.ctime[0] & m32)


class HostIo:
    """The vFile packets of one gdb session: its open files, by the numbers handed to gdb."""

    def __init__(self, kernel, program=None, max_data=0x1000):
        """program: the host path qXfer:exec-file names (opening it opens the guest's executable);
        max_data: the most bytes one pread reply carries (escaping can double them)."""
        self.kernel = kernel
        self.program = program
        self.max_data = max_data
        self.files = {}
        self.fs_pid = 0

    def packet(self, task, text):
        """One 'vFile:op:args' packet -> its reply ('' for an operation this stub has not)."""
        op, _, args = text[len('vFile:'):].partition(':')
        handler = self.OPS.get(op)
        if handler is None:
            return ''
        try:
            return getattr(self, handler)(task, args)
        except FsError as e:
            return fio_error(e.errno)
        except OSError as e:                # a host file behind a HostFs mount failed under us
            return fio_error(e.errno or errno.EIO)

    OPS = {'setfs': 'vfile_setfs', 'open': 'vfile_open', 'pread': 'vfile_pread', 'close': 'vfile_close',
           'fstat': 'vfile_fstat', 'readlink': 'vfile_readlink', 'pwrite': 'vfile_refuse',
           'unlink': 'vfile_refuse'}

    def _guest_path(self, hexname):
        """The path a hex-encoded file name stands for."""
        return bytes.fromhex(hexname).decode('utf-8', 'surrogateescape')

    def _task_for_fs(self, task):
        """The task whose filesystem view paths are resolved in (setfs's pid, else the stopped one)."""
        if self.fs_pid:
            other = self.kernel.tasks.get(self.fs_pid)
            if other is not None and not other.exited:
                return other
        return task

    def vfile_setfs(self, task, args):
        """vFile:setfs:pid: later paths as process pid sees them (0: the stub's own view)."""
        pid = int(args, 16)
        if pid and (self.kernel.tasks.get(pid) is None or self.kernel.tasks[pid].exited):
            return fio_error(errno.ESRCH)
        self.fs_pid = pid
        return 'F0'

    def vfile_open(self, task, args):
        """vFile:open:filename,flags,mode: a read-only open (writes get EROFS: the target's files are
        the program's, not the debugger's)."""
        hexname, flags, _mode = args.split(',')
        flags = int(flags, 16)
        if flags & (GDB_O_ACCMODE | GDB_O_CREAT | GDB_O_TRUNC):
            return fio_error(errno.EROFS)
        if len(self.files) >= MAX_OPEN:
            return fio_error(errno.EMFILE)
        t = self._task_for_fs(task)
        path = self._guest_path(hexname)
        if self.program is not None and path == self.program:
            path = t.exe_path
        f = debug_file_open(self.kernel, t, path)
        fd = next(n for n in range(MAX_OPEN + 1) if n not in self.files)
        self.files[fd] = f
        return 'F%x' % fd

    def _file(self, fd):
        f = self.files.get(int(fd, 16))
        if f is None:
            raise FsError(errno.EBADF)
        return f

    def vfile_pread(self, task, args):
        """vFile:pread:fd,count,offset: up to count bytes at offset."""
        fd, count, offset = args.split(',')
        f = self._file(fd)
        count, offset = int(count, 16), int(offset, 16)
        if count < 0 or offset < 0:
            return fio_error(errno.EINVAL)
        return fio_data(f.pread(offset, min(count, self.max_data)))

    def vfile_close(self, task, args):
        """vFile:close:fd."""
        if self.files.pop(int(args, 16), None) is None:
            return fio_error(errno.EBADF)
        return 'F0'

    def vfile_fstat(self, task, args):
        """vFile:fstat:fd: gdb's struct stat of the open file."""
        return fio_data(fio_stat(self._file(args)))

    def vfile_readlink(self, task, args):
        """vFile:readlink:filename: the symlink's target."""
        target = debug_readlink(self.kernel, self._task_for_fs(task), self._guest_path(args))
        return fio_data(target.encode('utf-8', 'surrogateescape') if isinstance(target, str) else bytes(target))

    def vfile_refuse(self, task, args):
        """vFile:pwrite and vFile:unlink: the target's files are read-only to the debugger."""
        return fio_error(errno.EROFS)
