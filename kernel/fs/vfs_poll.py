"""vfs_poll (include/linux/poll.h): the ready mask of an open file and the wait queue its pollers sleep on.

poll, select and epoll ask every file the same way: a pipe end as pipe_poll says, a socket as its
poll does, a file with its own ->poll (pidfd, eventfd, userfaultfd, epoll) through that method; a file
without one (a regular file) is always readable and writable; the host's stdin is taken as readable
and its stdout/stderr as writable.
"""
from faultlab.kernel.file import HostStream
from faultlab.kernel.fs.pipe import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, PipeEnd
from faultlab.kernel.net.socket import SocketInode

DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM


def vfs_poll(f):
    """The ready mask of an open file (None: not open)."""
    if f is None:
        return None
    if isinstance(f, HostStream):
        return POLLIN | POLLRDNORM if f.host_fd == 0 else POLLOUT | POLLWRNORM
    inode = f.inode
    if isinstance(inode, PipeEnd):
        return inode.pipe.poll_mask(inode.reading)
    if isinstance(inode, SocketInode):
        return inode.sock.poll()
    poll = getattr(inode, 'poll', None)              # a file with its own ->poll
    return DEFAULT_POLLMASK if poll is None else poll()


def file_can_poll(f):
    """file_can_poll: the file has a ->poll of its own (a pipe, socket or anon inode; not a regular file)."""
    if isinstance(f, HostStream):
        return True
    inode = f.inode
    return isinstance(inode, (PipeEnd, SocketInode)) or getattr(inode, 'poll', None) is not None


def poll_wait_queue(inode):
    """The wait queue a poller of this file sleeps on (None: the file never changes readiness)."""
    if isinstance(inode, PipeEnd):
        return inode.pipe
    if isinstance(inode, SocketInode):
        return inode.sock
    return getattr(inode, 'wait_queue', None)
