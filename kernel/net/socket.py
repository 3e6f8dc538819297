"""Sockets as files (net/socket.c): the sockfs inode a socket descriptor shows, descriptor lookup,
and read(2)/write(2) on a socket turned into the protocol's recvmsg/sendmsg.
"""
import errno

from faultlab.kernel.file import O_CLOEXEC, O_NONBLOCK, O_PATH, O_RDWR, OpenFile
from faultlab.kernel.fs.file_table import alloc_empty_file_check
from faultlab.kernel.fs.stat import S_IFSOCK, Timespec, makedev
from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.net.scm import fput

SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK, SOCK_CLOEXEC = O_NONBLOCK, O_CLOEXEC
SOCK_MAX = 11
NPROTO = 46                                   # AF_MAX
MSG_OOB, MSG_PEEK, MSG_CTRUNC, MSG_TRUNC, MSG_DONTWAIT = 1, 2, 8, 0x20, 0x40
MSG_EOR, MSG_WAITALL, MSG_NOSIGNAL, MSG_CMSG_CLOEXEC = 0x80, 0x100, 0x4000, 0x40000000
SOCKFS_DEV = makedev(0, 8)                    # sockfs's anonymous device


class RecvResult:
    """What a recvmsg hands back to the system call: the bytes, the sender's address, the control
    data (passed files, credentials), msg_flags, and the return value (MSG_TRUNC may make it larger
    than the bytes)."""

    def __init__(self, data, addr=None, fds=None, cred=None, flags=0, ret=None):
        self.data = data
        self.addr = addr
        self.fds = fds
        self.cred = cred
        self.flags = flags
        self.ret = len(data) if ret is None else ret


class SocketInode:
    """struct socket_alloc's inode: what fstat shows for a socket (S_IFSOCK on sockfs); the last
    close of its file releases the socket."""

    def __init__(self, sk, ino, k):
        self.sock = sk
        self.k = k
        self.ino = ino
        self.mode = S_IFSOCK | 0o777
        self.nlink = 1
        self.uid = self.gid = 0
        self.size = 0
        self.blksize = 4096
        self.blocks = 0
        self.dev = SOCKFS_DEV
        self.rdev = 0
        self.atime = self.mtime = self.ctime = Timespec(0, 0)

    def iput(self):
        """sock_close: the last reference to the file is gone."""
        self.sock.release(self.k)


def sock_alloc_file(k, t, sk, flags):
    """sock_alloc_file + fd_install: a descriptor for sk (flags: SOCK_NONBLOCK, SOCK_CLOEXEC); the fd or
    -EMFILE (the socket is then released)."""
    err = alloc_empty_file_check(k, t)
    if err:
        sk.release(k)
        return err
    k.sockfs_ino = getattr(k, 'sockfs_ino', 0) + 1
    f = OpenFile(SocketInode(sk, k.sockfs_ino, k), O_RDWR | (flags & O_NONBLOCK), 'socket:[%d]' % k.sockfs_ino)
    fd = t.files.install(f, cloexec=bool(flags & O_CLOEXEC))
    if fd < 0:
        f.put()
    return fd


def sockfd_lookup(t, fd):
    """The open file of the socket behind descriptor fd (its .inode.sock is the socket), or -EBADF /
    -ENOTSOCK."""
    f = t.files.get(fd)
    if f is None or isinstance(f, OpenFile) and f.flags & O_PATH:
        return -errno.EBADF                     # fdget: no O_PATH descriptor
    if not isinstance(f, OpenFile) or not isinstance(f.inode, SocketInode):
        return -errno.ENOTSOCK
    return f


def file_nonblock(f):
    """The MSG_DONTWAIT a non-blocking descriptor adds to every call."""
    return MSG_DONTWAIT if f.flags & O_NONBLOCK else 0


def sock_read_iter(k, t, f, count):
    """read(2) on a socket: recvmsg without control data (passed files are dropped)."""
    if count == 0:
        return b''
    r = f.inode.sock.recvmsg(k, t, count, file_nonblock(f))
    if isinstance(r, int) or r is BLOCKED:
        return r
    for g in r.fds or ():
        fput(g)
    return r.data


def sock_write_iter(k, t, f, data):
    """write(2) on a socket: sendmsg without an address or control data."""
    return f.inode.sock.sendmsg(k, t, data, None, None, file_nonblock(f))
