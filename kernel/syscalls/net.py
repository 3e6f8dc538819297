"""Socket system calls (net/socket.c): socket, socketpair, bind, listen, accept/accept4, connect,
sendto/recvfrom, sendmsg/recvmsg, shutdown, getsockname/getpeername, setsockopt/getsockopt.

Only AF_UNIX is built in. Like a kernel configured without networking, every other family is
EAFNOSUPPORT: __sock_create finds no net_proto_family registered for it.
"""
import errno
import struct

from faultlab.kernel.file import NR_OPEN
from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.net.scm import SCM_CREDENTIALS, UCRED, CmsgBuffer, fput, scm_send
from faultlab.kernel.net.sock import (AF_UNIX, OVERFLOW_UID, SO_LINGER, SO_RCVTIMEO, SO_SNDTIMEO, SOCK_DGRAM, SOCK_RAW,
                             SOCK_SEQPACKET, SOCK_STREAM, SOL_SOCKET, TCP_ESTABLISHED, sock_getsockopt,
                             sock_setsockopt)
from faultlab.kernel.net.socket import (MSG_CMSG_CLOEXEC, NPROTO, SOCK_CLOEXEC, SOCK_MAX, SOCK_NONBLOCK,
                               SOCK_TYPE_MASK, file_nonblock, sock_alloc_file, sockfd_lookup)
from faultlab.kernel.net.unix import UnixSock, task_cred
from faultlab.kernel.signal import SI_USER
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.signal_send import send_signal
from faultlab.kernel.uaccess import access_ok

SIGPIPE = 13
SOCKADDR_STORAGE_SIZE = 128
UIO_MAXIOV = 1024
MAX_RW_COUNT = 0x7FFFF000
INT_MAX = 0x7FFFFFFF
SOMAXCONN = 4096                                # net.core.somaxconn
MSGHDR = struct.Struct('<QI4xQQQQi4x')          # struct msghdr (56 bytes)


def send_sigpipe(k, t):
    """send_sig(SIGPIPE, current, 0): a write to a socket that cannot take data any more."""
    send_signal(k, t, t, SIGPIPE, SI_USER)


def _lookup(t, fd):
    return sockfd_lookup(t, s32(fd))


def _free_fds(files, n):
    """The n lowest free descriptors (get_unused_fd_flags n times), or -EMFILE."""
    fds = []
    fd = 0
    while len(fds) < n:
        if fd >= NR_OPEN:
            return -errno.EMFILE
        if files.get(fd) is None:
            fds.append(fd)
        fd += 1
    return fds


def move_addr_to_kernel(t, uaddr, ulen):
    """The caller's socket address (ulen bytes; b'' for none), or -EINVAL / -EFAULT."""
    ulen = s32(ulen)
    if ulen < 0 or ulen > SOCKADDR_STORAGE_SIZE:
        return -errno.EINVAL
    if ulen == 0:
        return b''
    raw = t.umem.read(uaddr, ulen)
    return -errno.EFAULT if raw is None else raw


def move_addr_to_user(t, kaddr, uaddr, ulen_ptr):
    """Copy an address out, cut to the caller's length, and store its full length: 0 or -errno."""
    raw = t.umem.read(ulen_ptr, 4)
    if raw is None:
        return -errno.EFAULT
    n = min(struct.unpack('<i', raw)[0], len(kaddr))
    if n < 0:
        return -errno.EINVAL
    if n and not t.umem.write(uaddr, kaddr[:n]):
        return -errno.EFAULT
    return 0 if t.umem.write(ulen_ptr, struct.pack('<i', len(kaddr))) else -errno.EFAULT


def _sock_create(k, family, sock_type, protocol):
    """__sock_create + unix_create: a new socket, or -errno."""
    if family < 0 or family >= NPROTO:
        return -errno.EAFNOSUPPORT
    if sock_type < 0 or sock_type >= SOCK_MAX:
        return -errno.EINVAL
    if family != AF_UNIX:
        return -errno.EAFNOSUPPORT
    if protocol and protocol != AF_UNIX:
        return -errno.EPROTONOSUPPORT
    if sock_type == SOCK_RAW:
        sock_type = SOCK_DGRAM
    if sock_type not in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
        return -errno.ESOCKTNOSUPPORT
    return UnixSock(k, sock_type, send_sigpipe)


def _split_type(raw_type):
    """(type, flags) of socket()'s type argument, or -EINVAL for unknown flags."""
    sock_type = s32(raw_type)
    flags = sock_type & ~SOCK_TYPE_MASK
    if flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
        return -errno.EINVAL
    return sock_type & SOCK_TYPE_MASK, flags


@syscall(41, 'socket')
def sys_socket(k, t, family, sock_type, protocol, *_):
    st = _split_type(sock_type)
    if isinstance(st, int):
        return st
    sk = _sock_create(k, s32(family), st[0], s32(protocol))
    if isinstance(sk, int):
        return sk
    return sock_alloc_file(k, t, sk, st[1])


@syscall(53, 'socketpair')
def sys_socketpair(k, t, family, sock_type, protocol, usockvec, *_):
    st = _split_type(sock_type)
    if isinstance(st, int):
        return st
    fds = _free_fds(t.files, 2)                 # reserved and reported before the sockets exist
    if isinstance(fds, int):
        return fds
    if not t.umem.write(usockvec, struct.pack('<ii', *fds)):
        return -errno.EFAULT
    a = _sock_create(k, s32(family), st[0], s32(protocol))
    if isinstance(a, int):
        return a
    b = _sock_create(k, s32(family), st[0], s32(protocol))
    # unix_socketpair: join the two back to back
    a.peer, b.peer = b, a
    a.state = b.state = TCP_ESTABLISHED
    a.peercred = b.peercred = task_cred(t)
    sock_alloc_file(k, t, a, st[1])
    sock_alloc_file(k, t, b, st[1])
    return 0


@syscall(49, 'bind')
def sys_bind(k, t, fd, umyaddr, addrlen, *_):
    f = _lookup(t, fd)
    if isinstance(f, int):
        return f
    addr = move_addr_to_kernel(t, umyaddr, addrlen)
    if isinstance(addr, int):
        return addr
    return f.inode.sock.bind(k, t, addr)


@syscall(50, 'listen')
def sys_listen(k, t, fd, backlog, *_):
    f = _lookup(t, fd)
    if isinstance(f, int):
        return f
    backlog = s32(backlog)
    if backlog & 0xFFFFFFFF > SOMAXCONN:
        backlog = SOMAXCONN
    return f.inode.sock.listen(k, t, backlog)


@syscall(42, 'connect')
def sys_connect(k, t, fd, uservaddr, addrlen, *_):
    if t.files.get(s32(fd)) is None:
        return -errno.EBADF                  # __sys_connect: the address is copied before ENOTSOCK
    addr = move_addr_to_kernel(t, uservaddr, addrlen)
    if isinstance(addr, int):
        return addr
    f = _lookup(t, fd)
    if isinstance(f, int):
        return f
    return f.inode.sock.connect(k, t, addr, file_nonblock(f))


@syscall(288, 'accept4')
def sys_accept4(k, t, fd, upeer_sockaddr, upeer_addrlen, flags, *_):
    flags = s32(flags)
    if flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
        return -errno.EINVAL
    f = _lookup(t, fd)
    if isinstance(f, int):
        return f
    free = _free_fds(t.files, 1)
    if isinstance(free, int):
        return free
    newsk = f.inode.sock.accept(k, t, file_nonblock(f))
    if isinstance(newsk, int) or newsk is BLOCKED:
        return newsk
    newfd = sock_alloc_file(k, t, newsk, flags)
    if upeer_sockaddr:
        err = move_addr_to_user(t, newsk.getname(True), upeer_sockaddr, upeer_addrlen)
        if err:
            t.files.close(newfd)
            return err
    return newfd


@syscall(43, 'accept')
def sys_accept(k, t, fd, upeer_sockaddr, upeer_addrlen, *_):
    return sys_accept4(k, t, fd, upeer_sockaddr, upeer_addrlen, 0)


@syscall(51, 'getsockname')
def sys_getsockname(k, t, fd, usockaddr, usockaddr_len, *_):
    return _getname(t, fd, usockaddr, usockaddr_len, False)


@syscall(52, 'getpeername')
def sys_getpeername(k, t, fd, usockaddr, usockaddr_len, *_):
    return _getname(t, fd, usockaddr, usockaddr_len, True)


def _getname(t, fd, uaddr, ulen, peer):
    f = _lookup(t, fd)
    if isinstance(f, int):
        return f
    addr = f.inode.sock.getname(peer)
    if isinstance(addr, int):
        return addr
    return move_addr_to_user(t, addr, uaddr, ulen)


@syscall(48, 'shutdown')
def sys_shutdown(k, t, fd, how, *_):
    f = _lookup(t, fd)
    if isinstance(f, int):
        return f
    return f.inode.sock.shutdown_sock(k, s32(how))


# ---- data --------------------------------------------------------------------------------------
MSG_CMSG_COMPAT = 0x80000000


def _ubuf_socket(t, fd, ubuf, size):
    """The start of __sys_sendto and __sys_recvfrom: import_ubuf (size capped at MAX_RW_COUNT,
    EFAULT) before the descriptor; (file, size) or -errno."""
    size = min(size, MAX_RW_COUNT)
    if not access_ok(ubuf, size):
        return -errno.EFAULT
    f = _lookup(t, fd)
    if isinstance(f, int):
        return f
    return f, size


@syscall(44, 'sendto')
def sys_sendto(k, t, fd, buff, length, flags, addr, addr_len):
    fl = _ubuf_socket(t, fd, buff, length)
    if isinstance(fl, int):
        return fl
    f, length = fl
    dest = None
    if addr:
        dest = move_addr_to_kernel(t, addr, addr_len)
        if isinstance(dest, int):
            return dest
    data = t.umem.read(buff, length) if length else b''
    if data is None:
        return -errno.EFAULT
    return f.inode.sock.sendmsg(k, t, data, dest or None, None, s32(flags) | file_nonblock(f))


@syscall(45, 'recvfrom')
def sys_recvfrom(k, t, fd, ubuf, size, flags, addr, addr_len):
    fl = _ubuf_socket(t, fd, ubuf, size)
    if isinstance(fl, int):
        return fl
    f, size = fl
    r = f.inode.sock.recvmsg(k, t, size, s32(flags) | file_nonblock(f))
    if isinstance(r, int) or r is BLOCKED:
        return r
    for g in r.fds or ():
        fput(g)
    if r.data and not t.umem.write(ubuf, r.data):
        return -errno.EFAULT
    if addr:
        err = move_addr_to_user(t, r.addr or b'', addr, addr_len)
        if err:
            return err
    return r.ret


def _copy_msghdr(t, umsg):
    """copy_msghdr_from_user: (name, namelen, [(base, len)], control, controllen) or -errno."""
    raw = t.umem.read(umsg, MSGHDR.size)
    if raw is None:
        return -errno.EFAULT
    name, namelen, iov, iovlen, control, controllen, _flags = MSGHDR.unpack(raw)
    namelen = s32(namelen) if name else 0
    if namelen < 0:
        return -errno.EINVAL
    namelen = min(namelen, SOCKADDR_STORAGE_SIZE)
    if iovlen > UIO_MAXIOV:
        return -errno.EMSGSIZE
    vecs = []
    if iovlen:
        rawv = t.umem.read(iov, 16 * iovlen)
        if rawv is None:
            return -errno.EFAULT
        total = 0
        for base, ln in struct.iter_unpack('<QQ', rawv):
            if ln >= 1 << 63:
                return -errno.EINVAL
            if not access_ok(base, ln):
                return -errno.EFAULT
            ln = min(ln, MAX_RW_COUNT - total)
            total += ln
            vecs.append((base, ln))
    return name, namelen, vecs, control, controllen


def _msg_socket(t, fd, umsg, flags):
    """The start of __sys_sendmsg and __sys_recvmsg: (file, copied msghdr) or -errno."""
    if flags & MSG_CMSG_COMPAT:
        return -errno.EINVAL                 # a 64-bit caller may not ask for compat cmsgs, checked first
    f = _lookup(t, fd)
    if isinstance(f, int):
        return f
    m = _copy_msghdr(t, umsg)
    if isinstance(m, int):
        return m
    return f, m


@syscall(46, 'sendmsg')
def sys_sendmsg(k, t, fd, umsg, flags, *_):
    fm = _msg_socket(t, fd, umsg, flags)
    if isinstance(fm, int):
        return fm
    f, (name, namelen, vecs, control, controllen) = fm
    dest = None
    if namelen:
        dest = move_addr_to_kernel(t, name, namelen)
        if isinstance(dest, int):
            return dest
    if controllen > INT_MAX:
        return -errno.ENOBUFS
    ctl = t.umem.read(control, controllen) if controllen else b''
    if ctl is None:
        return -errno.EFAULT
    data = bytearray()
    for base, ln in vecs:
        b = t.umem.read(base, ln) if ln else b''
        if b is None:
            return -errno.EFAULT
        data += b
    scm = None
    if controllen:
        scm = scm_send(t, ctl)
        if isinstance(scm, int):
            return scm
    ret = f.inode.sock.sendmsg(k, t, bytes(data), dest or None, scm, s32(flags) | file_nonblock(f))
    if scm is not None:
        scm.destroy()
    return ret


@syscall(47, 'recvmsg')
def sys_recvmsg(k, t, fd, umsg, flags, *_):
    fm = _msg_socket(t, fd, umsg, flags)
    if isinstance(fm, int):
        return fm
    f, (name, namelen, vecs, control, controllen) = fm
    flags = s32(flags)
    sk = f.inode.sock
    r = sk.recvmsg(k, t, sum(ln for _, ln in vecs), flags | file_nonblock(f))
    if isinstance(r, int) or r is BLOCKED:
        return r
    off = 0
    for base, ln in vecs:
        piece = r.data[off:off + ln]
        if piece and not t.umem.write(base, piece):
            for g in r.fds or ():
                fput(g)
            return -errno.EFAULT
        off += len(piece)
    usable = bool(control) and t.umem.accessible(control, controllen, True) == controllen
    cm = CmsgBuffer(controllen, usable)
    if sk.passcred:
        cm.put_cmsg(SOL_SOCKET, SCM_CREDENTIALS, UCRED.pack(*(r.cred or (0, OVERFLOW_UID, OVERFLOW_UID))))
    if r.fds:
        cm.detach_fds(t, r.fds, bool(flags & MSG_CMSG_CLOEXEC))
    ctl = cm.bytes()
    if ctl:
        t.umem.write(control, ctl)
    if name:
        err = move_addr_to_user(t, r.addr or b"", name, umsg + 8)
        if err:
            return err
    msg_flags = (flags & MSG_CMSG_CLOEXEC) | r.flags | cm.flags
    if not t.umem.write(umsg + 48, struct.pack('<i', msg_flags)) or \
            not t.umem.write(umsg + 40, struct.pack('<Q', len(ctl))):
        return -errno.EFAULT
    return r.ret


# ---- options -------------------------------------------------------------------------------------
@syscall(54, 'setsockopt')
def sys_setsockopt(k, t, fd, level, optname, optval, optlen, *_):
    f = _lookup(t, fd)
    if isinstance(f, int):
        return f
    optlen = s32(optlen)
    if optlen < 0:
        return -errno.EINVAL
    if s32(level) != SOL_SOCKET:
        return -errno.EOPNOTSUPP
    optname = s32(optname)
    if optlen < 4:
        return -errno.EINVAL
    need = 16 if optname in (SO_RCVTIMEO, SO_SNDTIMEO) else 8 if optname == SO_LINGER else 4
    raw = t.umem.read(optval, min(optlen, need))
    if raw is None:
        return -errno.EFAULT
    return sock_setsockopt(k, f.inode.sock, optname, raw)


@syscall(55, 'getsockopt')
def sys_getsockopt(k, t, fd, level, optname, optval, optlen, *_):
    f = _lookup(t, fd)
    if isinstance(f, int):
        return f
    if s32(level) != SOL_SOCKET:
        return -errno.EOPNOTSUPP
    raw = t.umem.read(optlen, 4)
    if raw is None:
        return -errno.EFAULT
    ln = struct.unpack('<i', raw)[0]
    if ln < 0:
        return -errno.EINVAL
    v = sock_getsockopt(f.inode.sock, s32(optname))
    if isinstance(v, int):
        return v
    n = min(ln, len(v))
    if n and not t.umem.write(optval, v[:n]):
        return -errno.EFAULT
    return 0 if t.umem.write(optlen, struct.pack('<i', n)) else -errno.EFAULT
