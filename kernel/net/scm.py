"""Control messages (net/core/scm.c, include/linux/socket.h): SCM_RIGHTS and SCM_CREDENTIALS.

struct cmsghdr is { size_t cmsg_len; int cmsg_level; int cmsg_type; } (16 bytes on x86-64), its data
follows, and the next header starts CMSG_ALIGN(cmsg_len) (8-byte aligned) further on.
"""
import errno
import struct

from faultlab.kernel.capability import CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN, capable
from faultlab.kernel.file import OpenFile

SOL_SOCKET = 1
SCM_RIGHTS, SCM_CREDENTIALS = 1, 2
SCM_MAX_FD = 253
CMSGHDR_SIZE = 16
MSG_CTRUNC = 8
UCRED = struct.Struct('<iII')                   # struct ucred { pid_t pid; uid_t uid; gid_t gid; }


def cmsg_align(n):
    """CMSG_ALIGN: round up to the size of long."""
    return (n + 7) & ~7


def cmsg_len(n):
    """CMSG_LEN: a header and n bytes of data."""
    return CMSGHDR_SIZE + n


def cmsg_space(n):
    """CMSG_SPACE: a header and n bytes of data, aligned."""
    return CMSGHDR_SIZE + cmsg_align(n)


def fget(f):
    """Take a reference on an open file that is put in flight."""
    if isinstance(f, OpenFile):
        f.get()
    return f


def fput(f):
    """Drop a reference taken by fget (the last one releases the file)."""
    if isinstance(f, OpenFile):
        f.put()


class ScmCookie:
    """struct scm_cookie: the files and credentials one sendmsg carries."""

    def __init__(self):
        self.fds = []
        self.cred = None

    def destroy(self):
        """scm_destroy: the files were not sent; drop their references."""
        fds, self.fds = self.fds, []
        for f in fds:
            fput(f)


def scm_send(t, ctl):
    """__scm_send: parse the control buffer of a sendmsg into an ScmCookie, or -errno (EINVAL for a
    malformed header, too many files or an unknown type, EBADF for a closed descriptor)."""
    scm = ScmCookie()
    off = 0
    size = len(ctl)
    while off + CMSGHDR_SIZE <= size:                 # CMSG_FIRSTHDR / CMSG_NXTHDR
        clen, level, ctype = struct.unpack_from('<Qii', ctl, off)
        if clen < CMSGHDR_SIZE or clen > size - off:   # CMSG_OK
            scm.destroy()
            return -errno.EINVAL
        if level == SOL_SOCKET:
            data = ctl[off + CMSGHDR_SIZE:off + clen]
            err = _scm_one(t, scm, ctype, clen, data)
            if err:
                scm.destroy()
                return err
        off += cmsg_align(clen)
    return scm


def scm_check_creds(t, pid, uid, gid):
    """scm_check_creds: credentials a sender may claim: its own pid (any with CAP_SYS_ADMIN), one of
    its real/effective/saved uids (any with CAP_SETUID) and gids (any with CAP_SETGID); (uid_t)-1
    is EINVAL, anything else EPERM."""
    c = t.cred
    if uid == 0xFFFFFFFF or gid == 0xFFFFFFFF:
        return -errno.EINVAL
    if ((pid == t.tgid or capable(t, CAP_SYS_ADMIN))
            and (uid in (c.uid, c.euid, c.suid) or capable(t, CAP_SETUID))
            and (gid in (c.gid, c.egid, c.sgid) or capable(t, CAP_SETGID))):
        return 0
    return -errno.EPERM


def _scm_one(t, scm, ctype, clen, data):
    if ctype == SCM_RIGHTS:                            # scm_fp_copy
        num = len(data) // 4
        if num <= 0:
            return 0
        if len(scm.fds) + num > SCM_MAX_FD:
            return -errno.EINVAL
        for (fd,) in struct.iter_unpack('<i', data[:4 * num]):
            f = t.files.get(fd)
            if f is None:
                return -errno.EBADF
            scm.fds.append(fget(f))
        return 0
    if ctype == SCM_CREDENTIALS:
        if clen != cmsg_len(UCRED.size):
            return -errno.EINVAL
        cred = UCRED.unpack(data)
        err = scm_check_creds(t, *cred)
        if err:
            return err
        scm.cred = cred
        return 0
    return -errno.EINVAL


class CmsgBuffer:
    """The control buffer of a recvmsg being filled: put_cmsg and scm_detach_fds write into it,
    truncating with MSG_CTRUNC as Linux does; .bytes() is what goes to msg_control."""

    def __init__(self, controllen, usable=True):
        self.size = controllen if usable else 0
        self.buf = bytearray()
        self.flags = 0

    def room(self):
        return self.size - len(self.buf)

    def put_cmsg(self, level, ctype, data):
        """put_cmsg: one control message (cut short, with MSG_CTRUNC, if it does not fit)."""
        room = self.room()
        if room < CMSGHDR_SIZE:
            self.flags |= MSG_CTRUNC
            return
        cmlen = cmsg_len(len(data))
        if room < cmlen:
            self.flags |= MSG_CTRUNC
        whole = struct.pack('<Qii', cmlen, level, ctype) + data
        self.buf += whole[:min(cmlen, room)]
        pad = min(cmsg_space(len(data)), room) - min(cmlen, room)
        self.buf += b'\0' * pad

    def detach_fds(self, t, fds, cloexec):
        """scm_detach_fds: install as many passed files as fit (the others are closed, MSG_CTRUNC)."""
        room = self.room()
        fdmax = min((room - CMSGHDR_SIZE) // 4 if room > CMSGHDR_SIZE else 0, len(fds))
        new = []
        for f in fds[:fdmax]:
            fd = t.files.install(f, cloexec=cloexec)
            if fd < 0:
                break
            new.append(fd)
        for f in fds[len(new):]:
            fput(f)
        if new:
            n = len(new)
            data = struct.pack('<%di' % n, *new)
            hdr = struct.pack('<Qii', cmsg_len(4 * n), SOL_SOCKET, SCM_RIGHTS)
            self.buf += (hdr + data + b'\0' * (cmsg_space(4 * n) - cmsg_len(4 * n)))[:min(cmsg_space(4 * n), room)]
        if len(new) < len(fds):
            self.flags |= MSG_CTRUNC
        return new

    def bytes(self):
        return bytes(self.buf)
