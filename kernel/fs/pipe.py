"""Pipes (fs/pipe.c): a 64 KiB buffer between a read end and a write end.

A read takes what is buffered, returns 0 (end of file) once no write end is open, and otherwise sleeps
(EAGAIN with O_NONBLOCK). A write of at most PIPE_BUF bytes goes in whole or waits; a longer one
writes what fits, and waits only when nothing fits (a blocking write here may return a partial count,
which Linux does only when interrupted). Writing with no read end open sends SIGPIPE and fails with
EPIPE. A sleeping reader or writer is woken when the other side moves and its system call runs
again (the -ERESTARTSYS path, so a signal handler with SA_RESTART restarts it too).

The buffer is a queue of pipe buffers: bytes that write(2) copied in, and pages that vmsplice(2)
referenced (kernel/fs/splice.py), read at read(2) time and released once consumed or when the pipe
goes away (free_pipe_info).
"""
import errno
from collections import deque

from faultlab.kernel.fs.stat import S_IFIFO, Timespec, makedev
from faultlab.kernel.signal import SI_USER
from faultlab.kernel.signal_send import send_signal
from faultlab.kernel.wait import WaitQueue

PIPE_BUF = 4096
PIPE_CAPACITY = 65536
SIGPIPE = 13
POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL, POLLRDNORM, POLLWRNORM = 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x100


class Pipe(WaitQueue):
    """struct pipe_inode_info: the buffer, how many ends are open, and the wait queue of both ends."""

    def __init__(self, ino):
        self.ino = ino
        self.bufs = deque()          # bytearrays (written data) and page buffers (vmsplice), in order
        self.nbytes = 0
        self.readers = 1
        self.writers = 1
        super().__init__()

    def poll_mask(self, reading):
        """pipe_poll for one end."""
        if reading:
            return (POLLIN | POLLRDNORM if self.nbytes else 0) | (POLLHUP if not self.writers else 0)
        return (POLLOUT | POLLWRNORM if self.nbytes + PIPE_BUF <= PIPE_CAPACITY else 0) | \
            (POLLERR if not self.readers else 0)

    def room(self):
        """Bytes that still fit."""
        return PIPE_CAPACITY - self.nbytes

    def push_bytes(self, data):
        """Append written bytes (merged into the last buffer when that one holds bytes too)."""
        if self.bufs and isinstance(self.bufs[-1], bytearray):
            self.bufs[-1] += data
        else:
            self.bufs.append(bytearray(data))
        self.nbytes += len(data)

    def push_buffer(self, buf):
        """Append a page buffer (len(buf) bytes; buf.read(n) reads and consumes, buf.release())."""
        self.bufs.append(buf)
        self.nbytes += len(buf)

    def take(self, count):
        """Remove and return up to count bytes from the front, releasing emptied page buffers."""
        out = bytearray()
        while self.bufs and len(out) < count:
            b = self.bufs[0]
            want = count - len(out)
            if isinstance(b, bytearray):
                out += b[:want]
                del b[:want]
            else:
                out += b.read(want)
            if not len(b):
                self.bufs.popleft()
                if not isinstance(b, bytearray):
                    b.release()
        self.nbytes -= len(out)
        return bytes(out)

    def unread(self, data):
        """Put bytes taken by a read whose copy to user memory must run again back at the front."""
        if data:
            self.bufs.appendleft(bytearray(data))
            self.nbytes += len(data)

    def free_pipe_info(self):
        """Both ends are closed: drop what is still buffered (the pages' references)."""
        while self.bufs:
            b = self.bufs.popleft()
            if not isinstance(b, bytearray):
                b.release()
        self.nbytes = 0


class PipeEnd:
    """The inode one end of a pipe shows (fstat: a FIFO on pipefs); the last close of the end
    releases it."""

    def __init__(self, pipe, reading, k):
        self.pipe = pipe
        self.reading = reading
        self.k = k
        self.ino = pipe.ino
        self.mode = S_IFIFO | 0o600
        self.nlink = 1
        self.uid = self.gid = 0
        self.size = 0
        self.blksize = 4096
        self.blocks = 0
        self.dev = makedev(0, 13)
        self.rdev = 0
        self.atime = self.mtime = self.ctime = Timespec(0, 0)

    def iput(self):
        p = self.pipe
        if self.reading:
            p.readers -= 1
        else:
            p.writers -= 1
        if not p.readers and not p.writers:
            p.free_pipe_info()
        p.wake_all(self.k)


def pipe_read(k, t, f, count, nonblock):
    """read(2) on the read end: bytes, b'' at end of file, -EAGAIN, or BLOCKED."""
    p = f.inode.pipe
    if count == 0:
        return b''
    if p.nbytes:
        data = p.take(count)
        p.wake_all(k, POLLOUT | POLLWRNORM)     # room for writers
        return data
    if not p.writers:
        return b''
    if nonblock:
        return -errno.EAGAIN
    return p.sleep(k, t, 'pipe_read')


def pipe_write(k, t, f, data, nonblock):
    """write(2) on the write end: bytes written, -EPIPE (and SIGPIPE), -EAGAIN, or BLOCKED."""
    p = f.inode.pipe
    if not p.readers:
        send_signal(k, t, t, SIGPIPE, SI_USER)      # send_sig(SIGPIPE, current, 0): SI_USER
        return -errno.EPIPE
    if not data:
        return 0
    room = p.room()
    n = len(data) if len(data) <= room else (room if len(data) > PIPE_BUF else 0)
    if n == 0:
        return -errno.EAGAIN if nonblock else p.sleep(k, t, 'pipe_write')
    p.push_bytes(data[:n])
    p.wake_all(k, POLLIN | POLLRDNORM)          # data for readers
    return n
