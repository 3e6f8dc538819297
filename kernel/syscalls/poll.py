"""poll, ppoll, select and pselect6 (fs/select.c) over pipes, sockets, files and the host streams.

A regular file is always ready; a pipe end is ready as pipe_poll says, a socket as its poll does, a
pidfd when its process has ended; the host's stdin is taken as
readable and its stdout/stderr as writable. With nothing ready the caller sleeps on the pipes it
watches until one of them changes (its system call then runs again with the deadline it started
with) or the timeout passes (0 ready). A signal handler ends the wait with EINTR (these calls are
never restarted).
"""
import errno
import struct

from faultlab.kernel.file import OpenFile
from faultlab.kernel.fs.pipe import POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLRDNORM, POLLWRNORM
from faultlab.kernel.fs.vfs_poll import poll_wait_queue as _queue, vfs_poll as _mask
from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.signal import UNBLOCKABLE
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.clock import read_timespec_ns

POLLIN_SET = POLLRDNORM | POLLIN | POLLHUP | POLLERR      # what select counts as readable
POLLOUT_SET = POLLWRNORM | POLLOUT | POLLERR
POLLEX_SET = 2                                           # POLLPRI
NFDS_MAX = 1024


def _pipes(files):
    """The wait queues of the watched pipes, sockets and pidfds, each once, in descriptor order."""
    queues = (_queue(f.inode) for f in files if isinstance(f, OpenFile))
    return tuple(dict.fromkeys(q for q in queues if q is not None))


def poll_select_deadline(k, t, ns):
    """The absolute deadline of this call (kept across the restarts a pipe wake-up causes)."""
    if t.restart_deadline is not None:
        d, t.restart_deadline = t.restart_deadline, None
        return d
    return None if ns is None else k.now() + k.costs.cycles_for_ns(ns)


def poll_schedule_timeout(k, t, files, deadline, on_timeout=None):
    """Nothing is ready: sleep until a watched pipe changes or the deadline (then 0 ready, after
    on_timeout() has written the empty result)."""
    if deadline is not None and deadline <= k.now():
        if on_timeout is not None:
            on_timeout()
        return 0
    t.waiting_on = 'poll'
    t.wait_obj = _pipes(files) or ()
    t.restartable = False
    t.restart_deadline = deadline
    pipes = t.wait_obj
    for p in pipes:
        p.sleepers.append(t)
    if deadline is not None:
        t.sleep_seq += 1
        seq = t.sleep_seq

        def expire(at):
            if t.sleep_seq == seq and t.waiting_on == 'poll' and t.state == 'S':
                t.wait_obj = None
                t.restart_deadline = None
                ret = 0
                if on_timeout is not None and on_timeout() is False:
                    ret = -errno.EFAULT
                k.sched.wake(t, ret, at)
        k.events.schedule(deadline, expire)
    k.sched.block(t)
    return BLOCKED


def do_poll(k, t, ufds, nfds, deadline):
    if nfds > NFDS_MAX:
        return -errno.EINVAL
    raw = t.umem.read(ufds, 8 * nfds) if nfds else b''
    if raw is None:
        return -errno.EFAULT
    entries = [struct.unpack_from('<ihh', raw, 8 * i) for i in range(nfds)]
    out = bytearray(raw)
    ready = 0
    files = []
    for i, (fd, events, _rev) in enumerate(entries):
        rev = 0
        if fd >= 0:
            f = t.files.get(fd)
            m = _mask(f)
            if m is None:
                rev = POLLNVAL
            else:
                files.append(f)
                rev = m & ((events & 0xFFFF) | POLLERR | POLLHUP)
        struct.pack_into('<h', out, 8 * i + 6, rev)
        ready += bool(rev)
    if nfds and not t.umem.write(ufds, bytes(out)):
        return -errno.EFAULT
    if ready:
        t.restart_deadline = None
        return ready
    return poll_schedule_timeout(k, t, files, deadline)


@syscall(7, 'poll')
def sys_poll(k, t, ufds, nfds, timeout, *_):
    timeout = s32(timeout)
    return do_poll(k, t, ufds, nfds & 0xFFFFFFFF,
                   poll_select_deadline(k, t, None if timeout < 0 else timeout * 10 ** 6))


@syscall(271, 'ppoll')
def sys_ppoll(k, t, ufds, nfds, tsp, sigmask, sigsetsize, *_):
    ns = None
    if tsp:
        ns = read_timespec_ns(t, tsp)
        if ns < 0:
            return ns
    if sigmask:
        return set_user_sigmask(k, t, sigmask, sigsetsize,
                                lambda: do_poll(k, t, ufds, nfds & 0xFFFFFFFF, poll_select_deadline(k, t, ns)))
    return do_poll(k, t, ufds, nfds & 0xFFFFFFFF, poll_select_deadline(k, t, ns))


def set_user_sigmask(k, t, usigmask, sigsetsize, call):
    """ppoll/pselect6 with a signal mask: it holds while the call waits (as rt_sigsuspend's does)."""
    if sigsetsize != 8:
        return -errno.EINVAL
    mask = t.umem.read_u64(usigmask)
    if mask is None:
        return -errno.EFAULT
    if t.saved_sigmask is None:
        t.saved_sigmask = t.sigmask
    t.sigmask = mask & ~UNBLOCKABLE
    ret = call()
    if ret is not BLOCKED and ret != -errno.EINTR:
        t.sigmask, t.saved_sigmask = t.saved_sigmask, None
    return ret


def do_select(k, t, n, inp, outp, exp, deadline):
    if n < 0 or n > NFDS_MAX:
        return -errno.EINVAL
    nbytes = (n + 63) // 64 * 8
    sets = []
    for addr in (inp, outp, exp):
        if addr:
            raw = t.umem.read(addr, nbytes)
            if raw is None:
                return -errno.EFAULT
            sets.append(int.from_bytes(raw, 'little'))
        else:
            sets.append(0)
    res = [0, 0, 0]
    ready = 0
    files = []
    for fd in range(n):
        bit = 1 << fd
        if not (sets[0] | sets[1] | sets[2]) & bit:
            continue
        f = t.files.get(fd)
        m = _mask(f)
        if m is None:
            return -errno.EBADF
        files.append(f)
        for i, want in enumerate((POLLIN_SET, POLLOUT_SET, POLLEX_SET)):
            if sets[i] & bit and m & want:
                res[i] |= bit
                ready += 1
    def write_sets(vals):
        for addr, val in zip((inp, outp, exp), vals):
            if addr and not t.umem.write(addr, val.to_bytes(nbytes, 'little')):
                return False
        return True
    if ready:
        t.restart_deadline = None
        return ready if write_sets(res) else -errno.EFAULT
    return poll_schedule_timeout(k, t, files, deadline, lambda: write_sets((0, 0, 0)))


@syscall(23, 'select')
def sys_select(k, t, n, inp, outp, exp, tvp, *_):
    ns = None
    if tvp:
        raw = t.umem.read(tvp, 16)
        if raw is None:
            return -errno.EFAULT
        sec, usec = struct.unpack('<qq', raw)
        if sec < 0 or usec < 0:
            return -errno.EINVAL
        ns = sec * 10 ** 9 + usec * 1000
    return do_select(k, t, s32(n), inp, outp, exp, poll_select_deadline(k, t, ns))


@syscall(270, 'pselect6')
def sys_pselect6(k, t, n, inp, outp, exp, tsp, sig, *_):
    ns = None
    if tsp:
        ns = read_timespec_ns(t, tsp)
        if ns < 0:
            return ns
    n = s32(n)
    if sig:
        raw = t.umem.read(sig, 16)                  # { const sigset_t *ss; size_t ss_len; }
        if raw is None:
            return -errno.EFAULT
        ss, ss_len = struct.unpack('<QQ', raw)
        if ss:
            return set_user_sigmask(k, t, ss, ss_len,
                                    lambda: do_select(k, t, n, inp, outp, exp, poll_select_deadline(k, t, ns)))
    return do_select(k, t, n, inp, outp, exp, poll_select_deadline(k, t, ns))
