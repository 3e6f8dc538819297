"""epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait, epoll_pwait2 (fs/eventpoll.c).

The instance and its items are kernel/fs/eventpoll.py. epoll_wait sleeps like poll (on the epoll
file's wait queue, with the deadline kept across wake-ups) until an item is ready or the timeout
passes; a signal handler ends the wait with EINTR (never restarted, as in Linux).
"""
import errno
import struct

from faultlab.kernel.capability import capable
from faultlab.kernel.file import O_CLOEXEC, O_RDWR
from faultlab.kernel.fs.anon_inodes import anon_inode_getfd, anon_sb
from faultlab.kernel.fs.eventpoll import (EPOLL_EVENT_SIZE, EPOLLERR, EPOLLEXCLUSIVE, EPOLLEXCLUSIVE_OK_BITS, EPOLLHUP,
                                 EPOLLWAKEUP, EventPoll, is_file_epoll)
from faultlab.kernel.fs.vfs_poll import file_can_poll
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.poll import poll_schedule_timeout, poll_select_deadline, set_user_sigmask
from faultlab.kernel.clock import read_timespec_ns
from faultlab.kernel.uaccess import access_ok

EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
EPOLL_CLOEXEC = O_CLOEXEC
EP_MAX_EVENTS = 0x7FFFFFFF // EPOLL_EVENT_SIZE
CAP_BLOCK_SUSPEND = 36


def do_epoll_create(k, t, flags):
    """A new epoll instance and its descriptor."""
    if flags & ~EPOLL_CLOEXEC:
        return -errno.EINVAL
    return anon_inode_getfd(t, 'eventpoll', EventPoll(anon_sb(k)), O_RDWR | (flags & EPOLL_CLOEXEC))


@syscall(213, 'epoll_create')
def sys_epoll_create(k, t, size, *_):
    if s32(size) <= 0:
        return -errno.EINVAL
    return do_epoll_create(k, t, 0)


@syscall(291, 'epoll_create1')
def sys_epoll_create1(k, t, flags, *_):
    return do_epoll_create(k, t, flags & 0xFFFFFFFF)


def ep_op_has_event(op):
    """Every operation but EPOLL_CTL_DEL carries a struct epoll_event."""
    return op != EPOLL_CTL_DEL


def do_epoll_ctl(k, t, epfd, op, fd, events, data):
    """Add, modify or remove the watch of fd in the epoll instance epfd, with Linux's checks in order."""
    f = t.files.get(epfd)
    if f is None:
        return -errno.EBADF
    tf = t.files.get(fd)
    if tf is None:
        return -errno.EBADF
    if not file_can_poll(tf):
        return -errno.EPERM
    if ep_op_has_event(op) and events & EPOLLWAKEUP:
        if not capable(t, CAP_BLOCK_SUSPEND):
            events &= ~EPOLLWAKEUP                  # ep_take_care_of_epollwakeup
    if f is tf or not is_file_epoll(f):
        return -errno.EINVAL
    if ep_op_has_event(op) and events & EPOLLEXCLUSIVE:
        if op == EPOLL_CTL_MOD:
            return -errno.EINVAL
        if op == EPOLL_CTL_ADD and (is_file_epoll(tf) or events & ~EPOLLEXCLUSIVE_OK_BITS):
            return -errno.EINVAL
    ep = f.inode
    ep._reap_closed()
    if op == EPOLL_CTL_ADD and is_file_epoll(tf) and ep.ep_loop_check(tf.inode):
        return -errno.ELOOP
    epi = ep.ep_find(tf, fd)
    if op == EPOLL_CTL_ADD:
        if epi is not None:
            return -errno.EEXIST
        return ep.ep_insert(k, tf, fd, events | EPOLLERR | EPOLLHUP, data)
    if op == EPOLL_CTL_DEL:
        if epi is None:
            return -errno.ENOENT
        ep.ep_remove(epi)
        return 0
    if op == EPOLL_CTL_MOD:
        if epi is None:
            return -errno.ENOENT
        if epi.events & EPOLLEXCLUSIVE:
            return -errno.EINVAL
        return ep.ep_modify(k, epi, events | EPOLLERR | EPOLLHUP, data)
    return -errno.EINVAL


@syscall(233, 'epoll_ctl')
def sys_epoll_ctl(k, t, epfd, op, fd, event, *_):
    op = s32(op)
    events = data = 0
    if ep_op_has_event(op):
        raw = t.umem.read(event, EPOLL_EVENT_SIZE)
        if raw is None:
            return -errno.EFAULT
        events, data = struct.unpack('<IQ', raw)
    return do_epoll_ctl(k, t, s32(epfd), op, s32(fd), events, data)


def do_epoll_wait(k, t, epfd, uevents, maxevents, deadline):
    """Report up to maxevents ready items to the user array, sleeping until one is ready or the deadline."""
    if maxevents <= 0 or maxevents > EP_MAX_EVENTS:
        t.restart_deadline = None
        return -errno.EINVAL
    if not access_ok(uevents, maxevents * EPOLL_EVENT_SIZE):
        t.restart_deadline = None
        return -errno.EFAULT
    f = t.files.get(epfd)
    if f is None:
        t.restart_deadline = None
        return -errno.EBADF
    if not is_file_epoll(f):
        t.restart_deadline = None
        return -errno.EINVAL
    ep = f.inode
    while ep.ep_events_available():
        data, n = ep.ep_send_events(maxevents)
        if n:
            t.restart_deadline = None
            return n if t.umem.write(uevents, data) else -errno.EFAULT
    return poll_schedule_timeout(k, t, [f], deadline)


def _timeout_ms(k, t, timeout):
    ms = s32(timeout)
    return poll_select_deadline(k, t, None if ms < 0 else ms * 10 ** 6)


@syscall(232, 'epoll_wait')
def sys_epoll_wait(k, t, epfd, events, maxevents, timeout, *_):
    return do_epoll_wait(k, t, s32(epfd), events, s32(maxevents), _timeout_ms(k, t, timeout))


@syscall(281, 'epoll_pwait')
def sys_epoll_pwait(k, t, epfd, events, maxevents, timeout, sigmask, sigsetsize):
    call = (lambda: do_epoll_wait(k, t, s32(epfd), events, s32(maxevents), _timeout_ms(k, t, timeout)))
    if sigmask:
        return set_user_sigmask(k, t, sigmask, sigsetsize, call)
    return call()


@syscall(441, 'epoll_pwait2')
def sys_epoll_pwait2(k, t, epfd, events, maxevents, tsp, sigmask, sigsetsize):
    ns = None
    if tsp:
        ns = read_timespec_ns(t, tsp)
        if ns < 0:
            return ns

    def call():
        return do_epoll_wait(k, t, s32(epfd), events, s32(maxevents), poll_select_deadline(k, t, ns))
    if sigmask:
        return set_user_sigmask(k, t, sigmask, sigsetsize, call)
    return call()
