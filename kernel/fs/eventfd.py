"""eventfd (fs/eventfd.c): a 64-bit counter as a file, for wake-ups between threads and processes.

read() takes the whole count (or 1 with EFD_SEMAPHORE) and sleeps while it is 0; write() adds to it
and sleeps while the sum would reach 2^64 - 1; both move exactly 8 bytes (EINVAL for a shorter buffer,
and a write of 2^64 - 1 is EINVAL). With O_NONBLOCK a call that would sleep fails with EAGAIN. Poll
reports it readable while the count is not 0 and writable while 1 more fits.
"""
import errno
import struct

from faultlab.kernel.file import O_NONBLOCK
from faultlab.kernel.fs.anon_inodes import AnonInode
from faultlab.kernel.fs.pipe import POLLERR, POLLIN, POLLOUT
from faultlab.kernel.wait import WaitQueue

ULLONG_MAX = (1 << 64) - 1
EFD_SEMAPHORE = 1


class EventfdCtx(AnonInode):
    """struct eventfd_ctx: the counter and the wait queue of its readers, writers and pollers."""

    def __init__(self, sb, count, semaphore):
        super().__init__(sb)
        self.count = count
        self.semaphore = semaphore
        self.wait_queue = WaitQueue()

    def poll(self):
        """eventfd_poll."""
        mask = 0
        if self.count > 0:
            mask |= POLLIN
        if self.count == ULLONG_MAX:
            mask |= POLLERR
        if ULLONG_MAX - 1 > self.count:
            mask |= POLLOUT
        return mask

    def fop_read(self, k, t, f, count):
        """eventfd_read: 8 bytes of the count (or 1 with EFD_SEMAPHORE), sleeping while it is 0."""
        if count < 8:
            return -errno.EINVAL
        if self.count == 0:
            if f.flags & O_NONBLOCK:
                return -errno.EAGAIN
            return self.wait_queue.sleep(k, t, 'eventfd_read')
        ucnt = 1 if self.semaphore else self.count
        self.count -= ucnt
        self.wait_queue.wake_all(k)
        return struct.pack('<Q', ucnt)

    def fop_write(self, k, t, f, data):
        """eventfd_write: add an 8-byte value, sleeping while the sum would not stay below 2^64 - 1."""
        if len(data) < 8:
            return -errno.EINVAL
        ucnt = struct.unpack_from('<Q', data)[0]
        if ucnt == ULLONG_MAX:
            return -errno.EINVAL
        if ULLONG_MAX - self.count <= ucnt:
            if f.flags & O_NONBLOCK:
                return -errno.EAGAIN
            return self.wait_queue.sleep(k, t, 'eventfd_write')
        self.count += ucnt
        if ucnt:
            self.wait_queue.wake_all(k)
        return 8

    def eventfd_signal(self, k, n=1):
        """eventfd_signal: the kernel adds n (what a write of n would do, without sleeping)."""
        self.count = min(self.count + n, ULLONG_MAX)
        self.wait_queue.wake_all(k)
