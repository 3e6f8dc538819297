"""eventpoll (fs/eventpoll.c): the epoll instance, its watched items and its ready list.

Each watched (file, fd) pair is an epitem with an event mask and 64 bits of user data. The item's
wake function (ep_poll_callback) sits on the watched file's wait queue: every wake-up of the file
whose key matches the mask (or has no key) puts the item on the ready list and wakes the instance's
waiters. ep_send_events polls each ready item: one with no wanted events leaves the list; one with
events is reported, and stays listed if level-triggered, leaves it if EPOLLET (so an edge-triggered
item is reported again only after a new wake-up), and is disabled after one report with EPOLLONESHOT
until EPOLL_CTL_MOD re-arms it. An item goes away with EPOLL_CTL_DEL or when its file is closed for
the last time (eventpoll_release, done lazily here); an epoll file can watch another (nested up to
EP_MAX_NESTS deep, no loops).
"""
import errno
import struct

from faultlab.kernel.capability import CAP_NET_ADMIN, capable
from faultlab.kernel.fs.anon_inodes import AnonInode
from faultlab.kernel.fs.pipe import POLLERR, POLLHUP, POLLIN, POLLRDNORM
from faultlab.kernel.fs.vfs_poll import poll_wait_queue, vfs_poll
from faultlab.kernel.wait import WaitQueue

EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLERR, EPOLLHUP = 0x001, 0x002, 0x004, POLLERR, POLLHUP
EPOLLRDNORM, EPOLLRDBAND, EPOLLWRNORM, EPOLLWRBAND, EPOLLMSG, EPOLLRDHUP = 0x040, 0x080, 0x100, 0x200, 0x400, 0x2000
EPOLLEXCLUSIVE = 1 << 28
EPOLLWAKEUP = 1 << 29
EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
EP_PRIVATE_BITS = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE
EPOLLINOUT_BITS = EPOLLIN | EPOLLOUT
EPOLLEXCLUSIVE_OK_BITS = EPOLLINOUT_BITS | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE
EP_MAX_NESTS = 4
EPIOCSPARAMS, EPIOCGPARAMS = 0x40088A01, 0x80088A02      # _IOW/_IOR(0x8A, 1/2, struct epoll_params)
EPOLL_PARAMS = struct.Struct('<IHBB')    # busy_poll_usecs, busy_poll_budget, prefer_busy_poll, __pad
NAPI_POLL_WEIGHT = 64
EPOLL_EVENT_SIZE = 12                  # struct epoll_event is packed on x86-64: u32 events, u64 data


class EpItem:
    """struct epitem: one watched (file, fd) with its mask and data."""

    def __init__(self, ep, f, fd, events, data):
        self.ep = ep
        self.file = f
        self.fd = fd
        self.events = events
        self.data = data
        self.queue = None                # the watched file's wait queue (None: it never changes)

    def ep_poll_callback(self, k, key):
        """The watched file woke its waiters: queue this item and wake the epoll's waiters."""
        if not self.events & ~EP_PRIVATE_BITS:
            return                       # disabled by EPOLLONESHOT
        if key and not key & self.events:
            return                       # a wake-up about events this item does not want
        ep = self.ep
        if self not in ep.rdllist:
            ep.rdllist[self] = None
        ep.wait_queue.wake_all(k, POLLIN | POLLRDNORM)


class EventPoll(AnonInode):
    """struct eventpoll: the watched items, the ready list and the wait queue of epoll_wait callers
    and of pollers of the epoll file itself."""

    def __init__(self, sb):
        super().__init__(sb)
        self.items = {}                  # (id of the OpenFile, fd) -> EpItem
        self.rdllist = {}                # the ready list: EpItem -> None, in the order they became ready
        self.wait_queue = WaitQueue()

    def unlocked_ioctl(self, k, t, f, cmd, arg):
        """ep_eventpoll_ioctl (Linux 6.9+): EPIOCSPARAMS/EPIOCGPARAMS set and get the busy-poll
        parameters (checked as there, kept, no effect here); any other command is EINVAL."""
        if cmd == EPIOCSPARAMS:
            raw = t.umem.read(arg, EPOLL_PARAMS.size)
            if raw is None:
                return -errno.EFAULT
            usecs, budget, prefer, pad = EPOLL_PARAMS.unpack(raw)
            if pad or usecs > 0x7FFFFFFF or prefer > 1:
                return -errno.EINVAL
            if budget > NAPI_POLL_WEIGHT and not capable(t, CAP_NET_ADMIN):
                return -errno.EPERM
            self.busy_poll_params = raw
            return 0
        if cmd == EPIOCGPARAMS:
            raw = getattr(self, 'busy_poll_params', bytes(EPOLL_PARAMS.size))
            return 0 if t.umem.write(arg, raw) else -errno.EFAULT
        return -errno.EINVAL

    # ---- the watched set ----------------------------------------------------------------------
    def ep_find(self, f, fd):
        """The item watching (f, fd), or None."""
        epi = self.items.get((id(f), fd))
        if epi is not None and epi.file is not f:
            return None
        return epi

    def ep_insert(self, k, f, fd, events, data):
        """EPOLL_CTL_ADD: watch (f, fd); queue it at once if it is ready."""
        epi = EpItem(self, f, fd, events, data)
        self.items[(id(f), fd)] = epi
        inode = getattr(f, 'inode', None)
        q = poll_wait_queue(inode) if inode is not None else None
        if q is not None:
            q.add_wait_queue(epi.ep_poll_callback)
            epi.queue = q
        if self.ep_item_poll(epi):
            self.rdllist[epi] = None
            self.wait_queue.wake_all(k, POLLIN | POLLRDNORM)
        return 0

    def ep_modify(self, k, epi, events, data):
        """EPOLL_CTL_MOD: a new mask and data; queue it if it is ready now."""
        epi.events = events
        epi.data = data
        if self.ep_item_poll(epi):
            if epi not in self.rdllist:
                self.rdllist[epi] = None
            self.wait_queue.wake_all(k, POLLIN | POLLRDNORM)
        return 0

    def ep_remove(self, epi):
        """EPOLL_CTL_DEL (or the watched file's last close): forget the item."""
        if epi.queue is not None:
            epi.queue.remove_wait_queue(epi.ep_poll_callback)
            epi.queue = None
        self.items.pop((id(epi.file), epi.fd), None)
        self.rdllist.pop(epi, None)

    def _reap_closed(self):
        """eventpoll_release: items whose file has been closed everywhere go away."""
        for epi in [e for e in self.items.values() if getattr(e.file, 'refs', 1) <= 0]:
            self.ep_remove(epi)

    def release(self):
        """ep_free at the last close: unhook every item from its file."""
        for epi in list(self.items.values()):
            self.ep_remove(epi)

    # ---- readiness ----------------------------------------------------------------------------
    @staticmethod
    def ep_item_poll(epi):
        """The item's wanted events that its file reports now."""
        return (vfs_poll(epi.file) or 0) & epi.events & ~EP_PRIVATE_BITS

    def poll(self):
        """ep_eventpoll_poll: readable when an item on the ready list has events."""
        self._reap_closed()
        return POLLIN | POLLRDNORM if any(self.ep_item_poll(e) for e in self.rdllist) else 0

    def ep_events_available(self):
        """True if the ready list is not empty."""
        self._reap_closed()
        return bool(self.rdllist)

    def ep_send_events(self, maxevents):
        """Poll the ready items in order and collect up to maxevents (events, data) pairs, leaving
        level-triggered ones listed; the packed struct epoll_event array."""
        self._reap_closed()
        out = bytearray()
        n = 0
        for epi in list(self.rdllist):
            if n >= maxevents:
                break
            del self.rdllist[epi]
            revents = self.ep_item_poll(epi)
            if not revents:
                continue
            out += struct.pack('<IQ', revents, epi.data)
            n += 1
            if epi.events & EPOLLONESHOT:
                epi.events &= EP_PRIVATE_BITS
            elif not epi.events & EPOLLET:
                self.rdllist[epi] = None           # level-triggered: it stays ready
        return bytes(out), n

    # ---- nesting ------------------------------------------------------------------------------
    def ep_loop_check(self, target, depth=0):
        """True if watching the epoll `target` would close a loop through self or nest too deep."""
        if target is self or depth >= EP_MAX_NESTS:
            return True
        for epi in target.items.values():
            inner = getattr(epi.file, 'inode', None)
            if isinstance(inner, EventPoll) and self.ep_loop_check(inner, depth + 1):
                return True
        return False


def is_file_epoll(f):
    """The open file is an epoll instance."""
    return isinstance(getattr(f, 'inode', None), EventPoll)
