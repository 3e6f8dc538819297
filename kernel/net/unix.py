"""AF_UNIX sockets (net/unix/af_unix.c): stream, datagram and seqpacket sockets between tasks.

A socket's receive queue holds buffers (struct sk_buff: the bytes, the files passed with them, the
sender's credentials) that the sender's send buffer is charged for until the reader frees them; a
listening socket's queue holds the embryo sockets connect() made for it. Names are abstract (a
leading NUL byte: a table per socket type) or filesystem paths (a socket inode made in the guest's
file system by bind, found again by its inode). Blocking calls sleep on the socket (or on the
listener or datagram receiver they wait for) and run again when it changes; SO_RCVTIMEO and
SO_SNDTIMEO bound those waits (EAGAIN).

Known differences: sk_buff sizes are modelled as the data plus SKB_TRUESIZE's fixed overhead, so the
number of bytes that fit before a send blocks is close to Linux's but not equal; a stream send that
has to wait for room completes when it can (a signal handler with SA_RESTART resumes it) instead of
returning the partial count; files in flight that only reach themselves (a socket sent over itself
and closed) are not garbage-collected (unix_gc); there is no out-of-band data (MSG_OOB is EOPNOTSUPP,
as without CONFIG_AF_UNIX_OOB).
"""
import collections
import errno
import struct

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.pipe import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM
from faultlab.kernel.fs.stat import S_IFMT, S_IFSOCK
from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.net.scm import fget, fput
from faultlab.kernel.net.sock import (AF_UNIX, AF_UNSPEC, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK, SOCK_DGRAM,
                             SOCK_SEQPACKET, SOCK_STREAM, TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN, Sock)
from faultlab.kernel.net.socket import MSG_DONTWAIT, MSG_NOSIGNAL, MSG_OOB, MSG_PEEK, MSG_TRUNC, MSG_WAITALL, RecvResult

POLLWRBAND, POLLRDHUP = 0x200, 0x2000
SUN_PATH_OFFSET = 2                    # offsetof(struct sockaddr_un, sun_path)
SOCKADDR_UN_SIZE = 110                 # sizeof(struct sockaddr_un)
MAX_DGRAM_QLEN = 10                    # net.unix.max_dgram_qlen
SKB_TRUESIZE_OVERHEAD = 256 + 320      # SKB_TRUESIZE(0): the aligned struct sk_buff and skb_shared_info
SKB_MAX_HEAD0 = 4096 - 320             # SKB_MAX_HEAD(0): what fits in one page with the shared info
UNIX_SKB_FRAGS_SZ = 32768              # paged data per stream buffer
AUTOBIND_NAMES = 1 << 20               # five hex digits


class UnixNet:
    """net->unx: the names bound on this machine (abstract ones by type and name, filesystem ones
    by the socket inode) and the autobind counter."""

    def __init__(self):
        self.abstract = {}
        self.bsd = {}
        self.autobind_next = 0


def unix_net(k):
    """The kernel's AF_UNIX name tables (made on first use)."""
    ns = getattr(k, 'unix_net', None)
    if ns is None:
        ns = k.unix_net = UnixNet()
    return ns


def task_cred(t):
    """The (pid, euid, egid) SO_PEERCRED reports for the current task (cred_to_ucred)."""
    return (t.tgid, t.cred.euid, t.cred.egid)


def scm_cred(t):
    """The (pid, uid, gid) a buffer carries for SCM_CREDENTIALS (current_uid_gid)."""
    return (t.tgid, t.cred.uid, t.cred.gid)


class Skb:
    """struct sk_buff with its UNIXCB: bytes (consumed counts what a stream reader took), passed
    files, credentials, and the sending socket whose send buffer holds truesize bytes of it."""
    __slots__ = ('data', 'consumed', 'fds', 'cred', 'sender', 'truesize')

    def __init__(self, data, fds, cred, sender, truesize):
        self.data = data
        self.consumed = 0
        self.fds = fds
        self.cred = cred
        self.sender = sender
        self.truesize = truesize

    def left(self):
        """unix_skb_len: bytes not yet read."""
        return len(self.data) - self.consumed


def unix_validate_addr(addr):
    """unix_validate_addr: a name longer than the family and no longer than sockaddr_un, of AF_UNIX."""
    if len(addr) <= SUN_PATH_OFFSET or len(addr) > SOCKADDR_UN_SIZE:
        return -errno.EINVAL
    if struct.unpack_from('<H', addr)[0] != AF_UNIX:
        return -errno.EINVAL
    return 0


def _bsd_path(addr):
    """unix_mkname_bsd: the path (up to its NUL) of a filesystem name."""
    return addr[SUN_PATH_OFFSET:].split(b'\0', 1)[0]


class UnixSock(Sock):
    """struct unix_sock: a socket of the AF_UNIX family. send_sig(k, t) sends SIGPIPE to t."""

    family = AF_UNIX

    def __init__(self, k, sock_type, send_sig):
        super().__init__(sock_type)
        self.net = unix_net(k)
        self.send_sig = send_sig
        self.queue = collections.deque()     # sk_receive_queue: Skbs, or embryo sockets when listening
        self.peer = None
        self.addr = None                     # the bound sockaddr_un, as many bytes as its length
        self.path_inode = None               # the socket file a filesystem name made
        self.max_ack_backlog = MAX_DGRAM_QLEN
        self.listener = None
        self.sending = {}                    # task -> ((length, head), bytes sent) of a waiting stream send

    # ---- helpers ----------------------------------------------------------------------------------
    def recvq_full(self):
        """unix_recvq_full: more buffers queued than the backlog allows."""
        return len(self.queue) > self.max_ack_backlog

    def may_send(self, other):
        """unix_may_send: other is not connected to a third socket."""
        return other.peer is None or other.peer is self

    def _free_skb(self, k, skb):
        """kfree_skb: drop the files it carries and give its bytes back to the sender's buffer."""
        for f in skb.fds or ():
            fput(f)
        skb.fds = None
        if skb.sender is not None and skb.truesize:
            skb.sender.wmem -= skb.truesize
            skb.truesize = 0
            skb.sender.wake_all(k)           # sock_wfree -> unix_write_space

    def _queue_skb(self, k, other, data, fds, cred):
        truesize = len(data) + SKB_TRUESIZE_OVERHEAD
        self.wmem += truesize
        other.queue.append(Skb(data, fds, cred, self, truesize))
        other.wake_all(k)                    # sk_data_ready

    def _skb_cred(self, t, other, scm):
        """unix_scm_to_skb + unix_maybe_add_creds: credentials go with a buffer when the sender gave
        them or either socket has SO_PASSCRED."""
        if scm is not None and scm.cred is not None:
            return scm.cred
        if self.passcred or other.passcred:
            return scm_cred(t)
        return None

    # ---- names ------------------------------------------------------------------------------------
    def autobind(self):
        """unix_autobind: an abstract name of five hex digits."""
        if self.addr is not None:
            return 0
        ns = self.net
        for _ in range(AUTOBIND_NAMES):
            n = ns.autobind_next
            ns.autobind_next = (n + 1) % AUTOBIND_NAMES
            name = struct.pack('<H', AF_UNIX) + b'\0' + b'%05x' % n
            if (self.type, name) not in ns.abstract:
                ns.abstract[(self.type, name)] = self
                self.addr = name
                return 0
        return -errno.ENOSPC

    def bind(self, k, t, addr):
        """unix_bind: autobind, a filesystem name or an abstract one."""
        if len(addr) == SUN_PATH_OFFSET and struct.unpack_from('<H', addr)[0] == AF_UNIX:
            return self.autobind()
        err = unix_validate_addr(addr)
        if err:
            return err
        if addr[SUN_PATH_OFFSET]:
            return self._bind_bsd(k, t, addr)
        if self.addr is not None:
            return -errno.EINVAL
        key = (self.type, bytes(addr))
        if key in self.net.abstract:
            return -errno.EADDRINUSE
        self.net.abstract[key] = self
        self.addr = bytes(addr)
        return 0

    def _bind_bsd(self, k, t, addr):
        """unix_bind_bsd: make the socket inode (vfs_mknod), then take the name."""
        path = _bsd_path(addr)
        spath = path.decode('utf-8', 'surrogateescape')
        try:
            inode = k.vfs.mknod(spath, S_IFSOCK | (0o777 & ~t.umask), t.cwd)
        except FsError as e:
            return -errno.EADDRINUSE if e.errno == errno.EEXIST else -e.errno
        if self.addr is not None:
            k.vfs.unlink(spath, t.cwd)
            return -errno.EINVAL
        inode.ihold()
        self.path_inode = inode
        self.addr = struct.pack('<H', AF_UNIX) + path + b'\0'
        self.net.bsd[inode] = self
        return 0

    def _passcred_autobind(self):
        """unix_may_passcred: a socket with SO_PASSCRED and no name gets an autobound one."""
        return self.autobind() if self.passcred and self.addr is None else 0

    def _connect_target(self, k, t, addr):
        """The start of unix_stream_connect and unix_dgram_connect: unix_validate_addr, the
        SO_PASSCRED autobind, then unix_find_other; the peer socket or -errno."""
        err = unix_validate_addr(addr)
        if err:
            return err
        err = self._passcred_autobind()
        if err:
            return err
        return self.find_other(k, t, addr)

    def find_other(self, k, t, addr):
        """unix_find_other: the socket bound to addr, or -errno (ENOENT and the like from the path
        lookup, ECONNREFUSED when nothing is bound there, EPROTOTYPE for another socket type)."""
        if addr[SUN_PATH_OFFSET]:
            spath = _bsd_path(addr).decode('utf-8', 'surrogateescape')
            try:
                inode = k.vfs.lookup(spath, t.cwd)
            except FsError as e:
                return -e.errno
            if (inode.mode & S_IFMT) != S_IFSOCK:
                return -errno.ECONNREFUSED
            other = self.net.bsd.get(inode)
            if other is None:
                return -errno.ECONNREFUSED
            if other.type != self.type:
                return -errno.EPROTOTYPE
            return other
        other = self.net.abstract.get((self.type, bytes(addr)))
        return other if other is not None else -errno.ECONNREFUSED

    def getname(self, peer):
        """unix_getname: the bound name of this socket (or of its peer), or just the family."""
        sk = self
        if peer:
            sk = self.peer
            if sk is None:
                return -errno.ENOTCONN
        return sk.addr if sk.addr is not None else struct.pack('<H', AF_UNIX)

    # ---- connections ------------------------------------------------------------------------------
    def listen(self, k, t, backlog):
        """unix_listen."""
        if self.type not in (SOCK_STREAM, SOCK_SEQPACKET):
            return -errno.EOPNOTSUPP
        if self.addr is None:
            return -errno.EINVAL
        if self.state not in (TCP_CLOSE, TCP_LISTEN):
            return -errno.EINVAL
        if backlog > self.max_ack_backlog:
            self.wake_all(k)
        self.max_ack_backlog = backlog
        self.state = TCP_LISTEN
        self.peercred = task_cred(t)
        return 0

    def connect(self, k, t, addr, nonblock):
        """connect(2): unix_stream_connect or unix_dgram_connect."""
        self.begin_call(t)
        if self.type == SOCK_DGRAM:
            return self._dgram_connect(k, t, addr)
        return self._stream_connect(k, t, addr, nonblock)

    def _stream_connect(self, k, t, addr, nonblock):
        other = self._connect_target(k, t, addr)
        if isinstance(other, int):
            return other
        if other.state != TCP_LISTEN or other.shutdown & RCV_SHUTDOWN:
            return -errno.ECONNREFUSED
        if other.recvq_full():                                      # unix_wait_for_peer
            return -errno.EAGAIN if nonblock else self.wait(k, t, 'unix_stream_connect', self.sndtimeo, other)
        if self.state != TCP_CLOSE:
            return -errno.EISCONN if self.state == TCP_ESTABLISHED else -errno.EINVAL
        newsk = UnixSock(k, self.type, self.send_sig)
        newsk.peer = self
        newsk.state = TCP_ESTABLISHED
        newsk.peercred = task_cred(t)
        newsk.passcred = other.passcred
        newsk.listener = other
        newsk.addr = other.addr
        self.peercred = other.peercred
        self.state = TCP_ESTABLISHED
        self.peer = newsk
        other.queue.append(newsk)
        other.wake_all(k)
        return 0

    def _dgram_connect(self, k, t, addr):
        if len(addr) < SUN_PATH_OFFSET:
            return -errno.EINVAL
        other = None
        if struct.unpack_from('<H', addr)[0] != AF_UNSPEC:
            other = self._connect_target(k, t, addr)
            if isinstance(other, int):
                return other
            if not self.may_send(other):
                return -errno.EPERM
            self.state = TCP_ESTABLISHED
            other.state = TCP_ESTABLISHED
        old = self.peer
        self.peer = other
        if old is not None:
            if other is None:
                self.state = TCP_CLOSE
            self.wake_all(k)
            if other is not old:
                self._dgram_disconnected(k, old)
                if old.peer is None:
                    old.state = TCP_CLOSE
        return 0

    def _dgram_disconnected(self, k, other):
        """unix_dgram_disconnected: drop what the old peer sent; a peer that was connected back
        learns of it through ECONNRESET."""
        if self.queue:
            while self.queue:
                self._free_skb(k, self.queue.popleft())
            self.wake_all(k)
            if not other.dead and other.peer is self:
                other.err = errno.ECONNRESET
                other.wake_all(k)

    def accept(self, k, t, nonblock):
        """unix_accept: the next embryo socket, -errno, or BLOCKED."""
        self.begin_call(t)
        if self.type not in (SOCK_STREAM, SOCK_SEQPACKET):
            return -errno.EOPNOTSUPP
        if self.state != TCP_LISTEN:
            return -errno.EINVAL
        err = self.sock_error()
        if err:
            return err
        if not self.queue:
            if self.shutdown & RCV_SHUTDOWN:
                return -errno.EINVAL
            return -errno.EAGAIN if nonblock else self.wait(k, t, 'unix_accept', self.rcvtimeo)
        newsk = self.queue.popleft()
        newsk.listener = None
        self.wake_all(k)                      # connect() calls waiting for backlog room
        return newsk

    def shutdown_sock(self, k, how):
        """unix_shutdown: SHUT_RD/SHUT_WR/SHUT_RDWR here and the mirror image on a connected peer."""
        if how < 0 or how > 2:
            return -errno.EINVAL
        mode = how + 1
        self.shutdown |= mode
        other = self.peer
        self.wake_all(k)
        if other is not None and self.type in (SOCK_STREAM, SOCK_SEQPACKET):
            peer_mode = (SEND_SHUTDOWN if mode & RCV_SHUTDOWN else 0) | (RCV_SHUTDOWN if mode & SEND_SHUTDOWN else 0)
            other.shutdown |= peer_mode
            other.wake_all(k)
        return 0

    def release(self, k, embryo=False):
        """unix_release_sock: unbind, hang up on the peer (ECONNRESET if data was left unread), free
        the queue (a listener's embryos are released too)."""
        ns = self.net
        if self.addr is not None and ns.abstract.get((self.type, self.addr)) is self:
            del ns.abstract[(self.type, self.addr)]
        if self.path_inode is not None:
            if ns.bsd.get(self.path_inode) is self:
                del ns.bsd[self.path_inode]
            self.path_inode.iput()
            self.path_inode = None
        self.dead = True
        self.shutdown = SHUTDOWN_MASK
        state, self.state = self.state, TCP_CLOSE
        skpair, self.peer = self.peer, None
        self.sending.clear()
        self.wake_all(k)
        if skpair is not None:
            if self.type in (SOCK_STREAM, SOCK_SEQPACKET):
                skpair.shutdown = SHUTDOWN_MASK
                if self.queue or embryo:
                    skpair.err = errno.ECONNRESET
            skpair.wake_all(k)
        while self.queue:
            item = self.queue.popleft()
            if state == TCP_LISTEN:
                item.release(k, True)
            else:
                self._free_skb(k, item)

    # ---- sending ----------------------------------------------------------------------------------
    def sendmsg(self, k, t, data, addr, scm, flags):
        """sendmsg(2) and write(2): bytes sent, -errno, or BLOCKED. The files of scm that were sent
        are taken out of it (the caller destroys what is left)."""
        self.begin_call(t)
        if self.type == SOCK_STREAM:
            return self._stream_sendmsg(k, t, data, addr, scm, flags)
        if self.type == SOCK_SEQPACKET:
            err = self.sock_error()
            if err:
                return err
            if self.state != TCP_ESTABLISHED:
                return -errno.ENOTCONN
            addr = None
        return self._dgram_sendmsg(k, t, data, addr, scm, flags)

    def _epipe(self, k, t, sent, flags):
        if not sent and not flags & MSG_NOSIGNAL:
            self.send_sig(k, t)
        return sent or -errno.EPIPE

    def _stream_sendmsg(self, k, t, data, addr, scm, flags):
        if flags & MSG_OOB:
            return -errno.EOPNOTSUPP
        if addr:
            return -errno.EISCONN if self.state == TCP_ESTABLISHED else -errno.EOPNOTSUPP
        other = self.peer
        if other is None:
            return -errno.ENOTCONN
        if self.shutdown & SEND_SHUTDOWN:
            return self._epipe(k, t, 0, flags)
        key = (len(data), bytes(data[:64]))
        resumed = self.sending.pop(t, None)
        sent = resumed[1] if resumed is not None and resumed[0] == key else 0
        fds_sent = sent > 0                   # a resumed send already passed its files
        while sent < len(data):
            # sock_alloc_send_pskb
            if self.err:
                return sent or self.sock_error()
            if self.shutdown & SEND_SHUTDOWN:
                return sent or -errno.EPIPE
            if self.wmem >= self.sndbuf:
                r = -errno.EAGAIN if flags & MSG_DONTWAIT else self.wait(k, t, 'unix_stream_sendmsg', self.sndtimeo)
                if r is BLOCKED:
                    self.sending[t] = (key, sent)
                    return r
                return sent or r
            size = min(len(data) - sent, (self.sndbuf >> 1) - 64, SKB_MAX_HEAD0 + UNIX_SKB_FRAGS_SZ)
            if other.dead or other.shutdown & RCV_SHUTDOWN:
                return self._epipe(k, t, sent, flags)
            fds = None
            if not fds_sent and scm is not None and scm.fds:
                fds, scm.fds = scm.fds, []
            fds_sent = True
            self._queue_skb(k, other, bytes(data[sent:sent + size]), fds, self._skb_cred(t, other, scm))
            sent += size
        return sent

    def _dgram_sendmsg(self, k, t, data, addr, scm, flags):
        if flags & MSG_OOB:
            return -errno.EOPNOTSUPP
        if addr:
            err = unix_validate_addr(addr)
            if err:
                return err
        err = self._passcred_autobind()
        if err:
            return err
        if len(data) > self.sndbuf - 32:
            return -errno.EMSGSIZE
        err = self.sock_error()                # sock_alloc_send_pskb
        if err:
            return err
        if self.shutdown & SEND_SHUTDOWN:
            return -errno.EPIPE
        if self.wmem >= self.sndbuf:
            return -errno.EAGAIN if flags & MSG_DONTWAIT else self.wait(k, t, 'unix_dgram_sendmsg', self.sndtimeo)
        other = self.find_other(k, t, addr) if addr else self.peer
        if other is None:
            return -errno.ENOTCONN
        if isinstance(other, int):
            return other
        if not self.may_send(other):
            return -errno.EPERM
        if other.dead:
            if self.type == SOCK_SEQPACKET:
                return -errno.EPIPE
            if self.peer is other:
                self.peer = None
                self.state = TCP_CLOSE
                self.wake_all(k)
                self._dgram_disconnected(k, other)
                return -errno.ECONNREFUSED
            return -errno.ECONNRESET if not addr else -errno.ECONNREFUSED
        if other.shutdown & RCV_SHUTDOWN:
            return -errno.EPIPE
        if other is not self and other.peer is not self and other.recvq_full():
            return -errno.EAGAIN if flags & MSG_DONTWAIT else self.wait(k, t, 'unix_wait_for_peer', self.sndtimeo, other)
        fds = None
        if scm is not None and scm.fds:
            fds, scm.fds = scm.fds, []
        self._queue_skb(k, other, bytes(data), fds, self._skb_cred(t, other, scm))
        return len(data)

    # ---- receiving --------------------------------------------------------------------------------
    def recvmsg(self, k, t, size, flags):
        """recvmsg(2) and read(2): a RecvResult, -errno, or BLOCKED."""
        self.begin_call(t)
        if self.type == SOCK_STREAM:
            return self._stream_recvmsg(k, t, size, flags)
        if self.type == SOCK_SEQPACKET and self.state != TCP_ESTABLISHED:
            return -errno.ENOTCONN
        return self._dgram_recvmsg(k, t, size, flags)

    def _dgram_recvmsg(self, k, t, size, flags):
        if flags & MSG_OOB:
            return -errno.EOPNOTSUPP
        err = self.sock_error()
        if err:
            return err
        if not self.queue:
            if flags & MSG_DONTWAIT:
                if self.type == SOCK_SEQPACKET and self.shutdown & RCV_SHUTDOWN:
                    return RecvResult(b'')
                return -errno.EAGAIN
            if self.shutdown & RCV_SHUTDOWN:          # __skb_wait_for_more_packets
                return RecvResult(b'')
            if self.type == SOCK_SEQPACKET and self.state not in (TCP_ESTABLISHED, TCP_LISTEN):
                return -errno.ENOTCONN
            return self.wait(k, t, 'unix_dgram_recvmsg', self.rcvtimeo)
        skb = self.queue[0]
        peek = flags & MSG_PEEK
        msg_flags = 0
        n = len(skb.data)
        data = skb.data
        if size < n:
            data = data[:size]
            msg_flags |= MSG_TRUNC
        addr = skb.sender.addr if skb.sender is not None else None
        if peek:
            fds = [fget(f) for f in skb.fds] if skb.fds else None
        else:
            self.queue.popleft()
            fds, skb.fds = skb.fds, None
            self._free_skb(k, skb)
            self.wake_all(k)                          # senders waiting for room in this queue
        return RecvResult(data, addr, fds, skb.cred, msg_flags, n if flags & MSG_TRUNC else len(data))

    def _stream_recvmsg(self, k, t, size, flags):
        if self.state != TCP_ESTABLISHED:
            return -errno.EINVAL
        if flags & MSG_OOB:
            return -errno.EOPNOTSUPP
        peek = flags & MSG_PEEK
        target = self.sock_rcvlowat(flags & MSG_WAITALL, size)
        out = bytearray()
        fds = cred = addr = None
        check_creds = False
        first_sender = None
        err = 0
        i = 0
        while size:
            skb = self.queue[i] if i < len(self.queue) else None
            if skb is None:
                if len(out) >= target:
                    break
                err = self.sock_error()
                if err or self.shutdown & RCV_SHUTDOWN:
                    break
                err = -errno.EAGAIN if flags & MSG_DONTWAIT else self.wait(k, t, 'unix_stream_recvmsg', self.rcvtimeo)
                if err is BLOCKED:
                    if out and not peek:      # keep what was taken at the head until the wait ends
                        self.queue.appendleft(Skb(bytes(out), None, cred, first_sender, 0))
                    return err
                break
            if check_creds:
                if skb.cred != cred:          # never glue data from different writers
                    break
            elif self.passcred:
                cred = skb.cred
                check_creds = True
            if skb.sender is not None:
                addr = skb.sender.addr
                first_sender = first_sender or skb.sender
            chunk = min(skb.left(), size)
            out += skb.data[skb.consumed:skb.consumed + chunk]
            size -= chunk
            if not peek:
                skb.consumed += chunk
                if skb.fds:
                    fds, skb.fds = skb.fds, None
                if skb.left():
                    break
                self.queue.popleft()
                self._free_skb(k, skb)
                if fds:
                    break
            else:
                if skb.fds:
                    fds = [fget(f) for f in skb.fds]
                    break
                i += 1
        if not out and err:
            return err
        return RecvResult(bytes(out), addr, fds, cred)

    # ---- readiness --------------------------------------------------------------------------------
    def poll(self):
        """unix_poll (stream) and unix_dgram_poll (datagram, seqpacket): the ready mask."""
        mask = 0
        if self.err:
            mask |= POLLERR
        if self.shutdown == SHUTDOWN_MASK:
            mask |= POLLHUP
        if self.shutdown & RCV_SHUTDOWN:
            mask |= POLLRDHUP | POLLIN | POLLRDNORM
        if self.queue:
            mask |= POLLIN | POLLRDNORM
        if self.type in (SOCK_STREAM, SOCK_SEQPACKET) and self.state == TCP_CLOSE:
            mask |= POLLHUP
        writable = self.writable()
        if writable and self.type != SOCK_STREAM:
            other = self.peer
            if other is not None and other.peer is not self and other.recvq_full() and not other.dead:
                writable = False
        if writable:
            mask |= POLLOUT | POLLWRNORM | POLLWRBAND
        return mask
