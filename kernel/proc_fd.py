"""/proc/self/fd (fs/proc/fd.c): a directory (dr-x------, the task's) with one symlink per open
descriptor of the task reading it, named by the number, whose target is the file's path as d_path
gives it: the path it was opened by, 'pipe:[N]', 'socket:[N]', '/memfd:NAME (deleted)',
'anon_inode:[...]', ' (deleted)' appended once the file is unlinked. The link's mode shows how the
file is open (tid_fd_update_inode: r-x for reading, -wx for writing). The host's standard streams show
the host's name for them (a terminal, a pipe, a file, as QEMU's user mode shows them), a pipe when the
emulator captures the output. The links are "magic" (proc_fd_link): following one reaches the open
file's inode itself (an unlinked file too), and a host stream as a character device reading and
writing that stream, so `echo x > /dev/stderr` works; a pipe's or socket's link is not followed here
(ENOENT), where Linux opens the pipe again."""
import os

from faultlab.kernel.file import HostStream, OpenFile
from faultlab.kernel.fs.chrdev import CharDevice
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.inode import Inode
from faultlab.kernel.fs.pipe import PipeEnd
from faultlab.kernel.fs.procfs import ProcDir
from faultlab.kernel.fs.stat import S_IFDIR, S_IFLNK
from faultlab.kernel.fs.synth import SynthSymlink


def fd_link_target(f):
    """What readlink(/proc/self/fd/N) gives for the open file f."""
    if isinstance(f, HostStream):
        if f.writer is not None or f.host_fd < 0:
            return 'pipe:[%d]' % (3 + max(f.host_fd, 0))     # output captured by the emulator
        try:
            return os.readlink('/proc/self/fd/%d' % f.host_fd)   # the host's own name for it
        except OSError:
            return '/dev/null'
    path = f.path
    if getattr(f.inode, 'nlink', 1) == 0 and path.startswith('/') and not path.endswith(' (deleted)'):
        path += ' (deleted)'
    return path


def fd_link_mode(f):
    """S_IFLNK with the owner bits of the open mode (read: r-x, write: -wx)."""
    if isinstance(f, OpenFile):
        readable, writable = f.readable, f.writable
    else:                                # a host stream: standard input reads, the outputs write
        writable = f.writer is not None or f.host_fd != 0
        readable = not writable
    return S_IFLNK | (0o500 if readable else 0) | (0o300 if writable else 0)


class HostStreamDevice(CharDevice):
    """What opening a host stream's fd link gives: a character device passing reads and writes to
    the stream."""

    def __init__(self, sb, stream):
        super().__init__(sb, sb.alloc_ino(), 0o620, rdev=0)
        self.stream = stream

    def read_chr(self, n):
        """Read from the host stream."""
        return self.stream.read(n)

    def write_chr(self, data):
        """Write to the host stream."""
        return self.stream.write(bytes(data))


class FdLink(SynthSymlink):
    """One /proc/self/fd/N link; get_link_inode is what following it reaches."""

    def __init__(self, fddir, fd):
        super().__init__(fddir.sb, fddir.sb.alloc_ino(), lambda: fddir.target(fd))
        self.fddir, self.fd = fddir, fd

    def get_link_inode(self):
        """The open file's inode (None for a pipe or socket: the link's text is resolved instead)."""
        f = self.fddir.open_file(self.fd)
        if isinstance(f, HostStream):
            return self.fddir.stream_device(f)
        if isinstance(f, OpenFile) and isinstance(f.inode, Inode) and not isinstance(f.inode, PipeEnd):
            return f.inode
        return None


class ProcFdDir(ProcDir):
    """/proc/self/fd of whichever task looks."""

    def __init__(self, k, parent):
        sb = parent.sb
        super().__init__(sb, sb.alloc_ino(), S_IFDIR | 0o500, 0, 0, parent)
        self.k = k
        self._links = {}                 # fd -> its FdLink (one inode per number)
        self._devices = {}               # host stream -> its HostStreamDevice

    def _files(self):
        t = self.k.current
        return t.files if t is not None else None

    @property
    def uid(self):
        """The reading task's (task_dump_owner, as its other /proc/self files)."""
        t = self.k.current
        return t.cred.euid if t is not None else 0

    @uid.setter
    def uid(self, value):
        pass

    @property
    def gid(self):
        t = self.k.current
        return t.cred.egid if t is not None else 0

    @gid.setter
    def gid(self, value):
        pass

    def _link(self, fd, f):
        link = self._links.get(fd)
        if link is None:
            link = self._links[fd] = FdLink(self, fd)
        link.mode = fd_link_mode(f)
        link.uid, link.gid = self.uid, self.gid
        return link

    def open_file(self, fd):
        """The reading task's open file at fd, or None."""
        files = self._files()
        return files.get(fd) if files is not None else None

    def target(self, fd):
        """The link text of fd ('' once it is closed)."""
        f = self.open_file(fd)
        return fd_link_target(f) if f is not None else ''

    def stream_device(self, stream):
        """The character device standing for a host stream (one per stream)."""
        dev = self._devices.get(stream)
        if dev is None:
            dev = self._devices[stream] = HostStreamDevice(self.sb, stream)
        return dev

    def lookup(self, name):
        """The link for descriptor `name` (a decimal number without leading zeros), or None."""
        files = self._files()
        if files is None or not name.isdigit() or name != str(int(name)):
            return None
        f = files.get(int(name))
        return None if f is None else self._link(int(name), f)

    def entries(self):
        """[(str(fd), link)] in descriptor order."""
        files = self._files()
        if files is None:
            return []
        return [(str(fd), self._link(fd, files.fds[fd])) for fd in sorted(files.fds)]


def register_proc_fd(k):
    """/proc/self/fd, and /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr pointing into it (as udev
    and container runtimes create them)."""
    self_dir = k.vfs.lookup('/proc/self')
    self_dir.add_entry('fd', ProcFdDir(k, self_dir))
    for name, target in (('fd', '/proc/self/fd'), ('stdin', '/proc/self/fd/0'), ('stdout', '/proc/self/fd/1'),
                         ('stderr', '/proc/self/fd/2')):
        try:
            k.vfs.symlink(target, '/dev/' + name)
        except FsError:
            pass                         # a --mount already put something there
