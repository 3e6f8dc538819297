"""struct sock and the SOL_SOCKET options (net/core/sock.c, include/uapi/asm-generic/socket.h).

The fields every socket has whatever its family: type, TCP-like state, shutdown bits, the pending
error, send/receive buffer sizes and the bytes in flight against the send buffer, the peer's
credentials, and the options setsockopt stores. Each socket is also the wait queue its readers,
writers and pollers sleep on.
"""
import errno
import struct

from faultlab.kernel.signal import ERESTARTSYS
from faultlab.kernel.wait import WaitQueue

AF_UNSPEC, AF_UNIX = 0, 1
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET = 1, 2, 3, 4, 5
TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN = 1, 7, 10           # include/net/tcp_states.h
RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK = 1, 2, 3
SOL_SOCKET = 1
SO_DEBUG, SO_REUSEADDR, SO_TYPE, SO_ERROR, SO_DONTROUTE, SO_BROADCAST = 1, 2, 3, 4, 5, 6
SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_OOBINLINE, SO_NO_CHECK, SO_PRIORITY = 7, 8, 9, 10, 11, 12
SO_LINGER, SO_BSDCOMPAT, SO_REUSEPORT, SO_PASSCRED, SO_PEERCRED = 13, 14, 15, 16, 17
SO_RCVLOWAT, SO_SNDLOWAT, SO_RCVTIMEO, SO_SNDTIMEO = 18, 19, 20, 21
SO_ACCEPTCONN, SO_SNDBUFFORCE, SO_RCVBUFFORCE, SO_PROTOCOL, SO_DOMAIN = 30, 32, 33, 38, 39
# net.core.{w,r}mem_{default,max}: SK_WMEM_MAX and SK_RMEM_MAX (include/net/sock.h)
SYSCTL_WMEM_DEFAULT = SYSCTL_WMEM_MAX = SYSCTL_RMEM_DEFAULT = SYSCTL_RMEM_MAX = 212992
# TCP_SKB_MIN_TRUESIZE = 2048 + SKB_DATA_ALIGN(sizeof(struct sk_buff)); the minimum buffer sizes
SOCK_MIN_RCVBUF = 2048 + 256
SOCK_MIN_SNDBUF = 2 * SOCK_MIN_RCVBUF
INT_MAX = 0x7FFFFFFF
OVERFLOW_UID = 65534                      # what a missing credential reads as (overflowuid)
BOOL_OPTS = (SO_DEBUG, SO_REUSEADDR, SO_DONTROUTE, SO_BROADCAST, SO_KEEPALIVE, SO_OOBINLINE,
             SO_NO_CHECK, SO_BSDCOMPAT, SO_REUSEPORT)


class Sock(WaitQueue):
    """struct sock: the protocol-independent state of one socket."""

    family = AF_UNSPEC

    def __init__(self, sock_type):
        super().__init__()
        self.type = sock_type
        self.state = TCP_CLOSE
        self.shutdown = 0
        self.err = 0
        self.sndbuf = SYSCTL_WMEM_DEFAULT
        self.rcvbuf = SYSCTL_RMEM_DEFAULT
        self.wmem = 0                      # sk_wmem_alloc: truesize of sent buffers not yet freed
        self.passcred = False              # SO_PASSCRED
        self.peercred = None               # (pid, uid, gid) for SO_PEERCRED
        self.rcvlowat = 1
        self.rcvtimeo = self.sndtimeo = 0  # SO_RCVTIMEO/SO_SNDTIMEO as (sec, usec); 0 = wait forever
        self.linger = (0, 0)
        self.priority = 0
        self.flags = {}                    # the boolean options: optname -> 0/1
        self.dead = False                  # SOCK_DEAD: released
        self.timeo_deadline = {}           # task -> the deadline of its timed wait on this socket
        self.call_deadline = None          # that deadline, for the call now running

    def begin_call(self, t):
        """At the start of a call that may wait: pick up the deadline of the same call when it runs
        again after a wake-up (a signal in between clears it, as it clears restart_deadline)."""
        dl = self.timeo_deadline.pop(t, None)
        self.call_deadline = None
        if dl is not None and t.restart_deadline == dl:
            t.restart_deadline = None
            self.call_deadline = dl

    def wait(self, k, t, what, timeo, on=None):
        """Sleep on `on` (this socket by default) within the socket timeout timeo ((sec, usec), or 0
        for none: sock_rcvtimeo/sock_sndtimeo): BLOCKED, or -EAGAIN once the timeout has passed
        (the timer wakes the call, which runs again and ends here)."""
        q = on if on is not None else self
        deadline = None
        if timeo:
            deadline = self.call_deadline
            if deadline is None:
                deadline = k.now() + k.costs.cycles_for_ns(timeo[0] * 10 ** 9 + timeo[1] * 1000)
            if deadline <= k.now():
                return -errno.EAGAIN
        ret = q.sleep(k, t, what)
        if deadline is not None:
            t.restart_deadline = deadline
            self.timeo_deadline[t] = deadline
            t.sleep_seq += 1
            seq = t.sleep_seq

            def expire(at):
                if t.sleep_seq == seq and t.state == 'S' and t.wait_obj is not None and q in t.wait_obj:
                    t.wait_obj = None
                    k.sched.wake(t, -ERESTARTSYS, at)
            k.events.schedule(deadline, expire)
        return ret

    def sock_error(self):
        """sock_error: take the pending error (as -errno, 0 if none)."""
        err, self.err = self.err, 0
        return -err

    def sock_rcvlowat(self, waitall, size):
        """sock_rcvlowat: how many bytes a stream read waits for."""
        v = size if waitall else min(self.rcvlowat, size)
        return v or 1

    def writable(self):
        """unix_writable (sock_writeable's rule): a quarter of the send buffer is free."""
        return self.state != TCP_LISTEN and self.wmem << 2 <= self.sndbuf


def _buf_size(val, limit, minimum):
    """__sock_set_sndbuf/__sock_set_rcvbuf: the unsigned value, capped by the sysctl limit (None for
    the *BUFFORCE options), doubled for bookkeeping overhead, at least the minimum."""
    v = val & 0xFFFFFFFF
    if limit is not None:
        v = min(v, limit)
    return max(min(v, INT_MAX // 2) * 2, minimum)


def sock_setsockopt(k, sk, optname, raw):
    """sk_setsockopt for SOL_SOCKET: raw is the option's bytes (optlen of them); 0 or -errno."""
    if optname in (SO_RCVTIMEO, SO_SNDTIMEO):
        if len(raw) < 16:
            return -errno.EINVAL
        sec, usec = struct.unpack_from('<qq', raw)
        if usec < 0 or usec >= 1000000:
            return -errno.EDOM
        val = 0 if sec < 0 or (sec == 0 and usec == 0) else (sec, usec)
        if optname == SO_RCVTIMEO:
            sk.rcvtimeo = val
        else:
            sk.sndtimeo = val
        return 0
    if len(raw) < 4:
        return -errno.EINVAL
    val = struct.unpack_from('<i', raw)[0]
    if optname == SO_LINGER:
        if len(raw) < 8:
            return -errno.EINVAL
        onoff, secs = struct.unpack_from('<ii', raw)
        sk.linger = (1 if onoff else 0, secs if onoff else sk.linger[1])
        return 0
    if optname in (SO_SNDBUF, SO_SNDBUFFORCE):
        sk.sndbuf = _buf_size(val, SYSCTL_WMEM_MAX if optname == SO_SNDBUF else None, SOCK_MIN_SNDBUF)
        sk.wake_all(k)                     # sk_write_space: writers may have room now
        return 0
    if optname in (SO_RCVBUF, SO_RCVBUFFORCE):
        sk.rcvbuf = _buf_size(val, SYSCTL_RMEM_MAX if optname == SO_RCVBUF else None, SOCK_MIN_RCVBUF)
        return 0
    if optname == SO_PASSCRED:
        sk.passcred = bool(val)
        return 0
    if optname == SO_RCVLOWAT:
        sk.rcvlowat = INT_MAX if val < 0 else (val or 1)
        return 0
    if optname == SO_PRIORITY:
        sk.priority = val
        return 0
    if optname in BOOL_OPTS:
        sk.flags[optname] = 1 if val else 0
        return 0
    return -errno.ENOPROTOOPT


def sock_getsockopt(sk, optname):
    """sk_getsockopt for SOL_SOCKET: the option's bytes (before truncation to optlen), or -errno."""
    ints = {SO_TYPE: sk.type, SO_SNDBUF: sk.sndbuf, SO_RCVBUF: sk.rcvbuf, SO_PASSCRED: int(sk.passcred),
            SO_ACCEPTCONN: int(sk.state == TCP_LISTEN), SO_DOMAIN: sk.family, SO_PROTOCOL: 0,
            SO_RCVLOWAT: sk.rcvlowat, SO_SNDLOWAT: 1, SO_PRIORITY: sk.priority}
    if optname == SO_ERROR:
        return struct.pack('<i', -sk.sock_error())
    if optname in ints:
        return struct.pack('<i', ints[optname])
    if optname in BOOL_OPTS:
        return struct.pack('<i', sk.flags.get(optname, 0))
    if optname == SO_PEERCRED:
        pid, uid, gid = sk.peercred if sk.peercred is not None else (0, 0xFFFFFFFF, 0xFFFFFFFF)
        return struct.pack('<iII', pid, uid, gid)
    if optname in (SO_RCVTIMEO, SO_SNDTIMEO):
        tv = sk.rcvtimeo if optname == SO_RCVTIMEO else sk.sndtimeo
        return struct.pack('<qq', *(tv or (0, 0)))
    if optname == SO_LINGER:
        return struct.pack('<ii', *sk.linger)
    return -errno.ENOPROTOOPT
