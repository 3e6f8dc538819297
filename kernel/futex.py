"""Fast user-space mutexes (kernel/futex/): wait queues keyed by address, wake, requeue, wake-op.

A private futex, or one in private memory, is keyed by (mm, address); one in a shared mapping by the
file page and offset, so processes sharing the page meet on the same queue (get_futex_key). Waiting blocks the task (it leaves its CPU); a
timeout is a timer event that wakes it with -ETIMEDOUT.
"""
import errno
import struct

from faultlab.kernel.mm.vma import VM_SHARED

FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 2, 3, 4, 5
FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 6, 7, 8, 9, 10
FUTEX_PRIVATE_FLAG = 128
FUTEX_CLOCK_REALTIME = 256
FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF

BLOCKED = object()        # a syscall handler's return value: the task sleeps; whoever wakes it sets RAX


class Waiter:
    __slots__ = ('task', 'key', 'bitset')

    def __init__(self, task, key, bitset):
        self.task = task
        self.key = key
        self.bitset = bitset


def futex_key(k, task, uaddr, private):
    """get_futex_key: (mm, address) for a private futex, the physical address for a shared one."""
    if private:
        return (id(task.mm), uaddr)
    if task.umem.read(uaddr, 4) is None:          # get_user_pages on the word: it must be mapped
        return None
    vma = task.mm.vmas.find_vma(uaddr)
    if vma is not None and vma.vm_flags & VM_SHARED and vma.vm_file is not None:
        # shared memory: the file page and offset, the same in every process that maps it
        return ('inode', id(vma.vm_file.inode), vma.linear_page_index(uaddr), uaddr & 0xFFF)
    return (id(task.mm), uaddr)                   # private memory: the address space and address


def futex_wait(k, task, uaddr, val, deadline, bitset, private=True):
    """FUTEX_WAIT(_BITSET): sleep if *uaddr == val, until woken or `deadline` (cycles, or None)."""
    if uaddr & 3:
        return -errno.EINVAL
    if not bitset:
        return -errno.EINVAL
    cur = task.umem.read(uaddr, 4)
    if cur is None:
        return -errno.EFAULT
    if struct.unpack('<I', cur)[0] != val & 0xFFFFFFFF:
        return -errno.EAGAIN
    key = futex_key(k, task, uaddr, private)
    if key is None:
        return -errno.EFAULT
    w = Waiter(task, key, bitset)
    k.futex_queues.setdefault(key, []).append(w)
    task.waiting_on = 'futex_wait(%#x)' % uaddr
    k.charge('futex_op')
    if deadline is not None:
        if deadline <= k.now():
            _unqueue(k, w)
            return -errno.ETIMEDOUT
        k.events.schedule(deadline, lambda when: _timeout(k, w, when))
    # an untimed wait is restarted after a SA_RESTART handler (-ERESTARTSYS); a timed one is not
    # (-ERESTART_RESTARTBLOCK becomes EINTR when a handler runs)
    task.restartable = deadline is None
    k.sched.block(task)
    return BLOCKED


def _unqueue(k, w):
    q = k.futex_queues.get(w.key)
    if q is not None and w in q:
        q.remove(w)
        if not q:
            del k.futex_queues[w.key]
        return True
    return False


def _timeout(k, w, when):
    if _unqueue(k, w):
        k.sched.wake(w.task, -errno.ETIMEDOUT, when)


def futex_wake(k, task, uaddr, nr, bitset=FUTEX_BITSET_MATCH_ANY, private=True):
    """FUTEX_WAKE(_BITSET): wake up to nr waiters whose bitset matches; returns how many."""
    if uaddr & 3:
        return -errno.EINVAL
    if not bitset:
        return -errno.EINVAL
    k.charge('futex_op')
    key = futex_key(k, task, uaddr, private)
    if key is None:
        return -errno.EFAULT
    return _wake_key(k, key, nr, bitset)


def _wake_key(k, key, nr, bitset=FUTEX_BITSET_MATCH_ANY):
    q = k.futex_queues.get(key)
    if not q or nr <= 0:
        return 0
    woken = 0
    now = k.now()
    for w in list(q):
        if woken >= nr:
            break
        if w.bitset & bitset:
            q.remove(w)
            k.sched.wake(w.task, 0, now)
            woken += 1
    if not q:
        del k.futex_queues[key]
    return woken


def futex_requeue(k, task, uaddr, nr_wake, nr_requeue, uaddr2, cmpval, private=True):
    """FUTEX_(CMP_)REQUEUE: wake nr_wake waiters of uaddr, move up to nr_requeue to uaddr2."""
    if uaddr & 3 or uaddr2 & 3:
        return -errno.EINVAL
    if nr_wake < 0 or nr_requeue < 0:
        return -errno.EINVAL
    if cmpval is not None:
        cur = task.umem.read(uaddr, 4)
        if cur is None:
            return -errno.EFAULT
        if struct.unpack('<I', cur)[0] != cmpval & 0xFFFFFFFF:
            return -errno.EAGAIN
    keys = _wake_first(k, task, uaddr, uaddr2, nr_wake, private)
    if isinstance(keys, int):
        return keys
    key, key2, woken = keys
    q = k.futex_queues.get(key, [])
    moved = 0
    while q and moved < nr_requeue and key != key2:
        w = q.pop(0)
        w.key = key2
        k.futex_queues.setdefault(key2, []).append(w)
        moved += 1
    if key in k.futex_queues and not k.futex_queues[key]:
        del k.futex_queues[key]
    return woken + moved


def _wake_first(k, task, uaddr, uaddr2, nr_wake, private):
    """The keys of both words and the waiters woken on the first: (key, key2, woken), or -EFAULT."""
    k.charge('futex_op')
    key, key2 = futex_key(k, task, uaddr, private), futex_key(k, task, uaddr2, private)
    if key is None or key2 is None:
        return -errno.EFAULT
    return key, key2, _wake_key(k, key, nr_wake)


def _sext12(v):
    return v - 0x1000 if v & 0x800 else v


def futex_wake_op(k, task, uaddr, nr_wake, nr_wake2, uaddr2, val3, private=True):
    """FUTEX_WAKE_OP: *uaddr2 = op(*uaddr2), wake on uaddr, and on uaddr2 if cmp(old) holds."""
    if uaddr & 3 or uaddr2 & 3:
        return -errno.EINVAL
    op, cmp = (val3 >> 28) & 0xF, (val3 >> 24) & 0xF
    oparg, cmparg = _sext12((val3 >> 12) & 0xFFF), _sext12(val3 & 0xFFF)
    if op & 8:
        if not 0 <= oparg < 32:
            return -errno.EINVAL
        oparg = 1 << oparg
        op &= 7
    if op > 4 or cmp > 5:
        return -errno.ENOSYS
    raw = task.umem.read(uaddr2, 4)
    if raw is None:
        return -errno.EFAULT
    old = struct.unpack('<i', raw)[0]
    new = (oparg, old + oparg, old | oparg, old & ~oparg, old ^ oparg)[op]
    if not task.umem.write(uaddr2, struct.pack('<I', new & 0xFFFFFFFF)):
        return -errno.EFAULT
    keys = _wake_first(k, task, uaddr, uaddr2, nr_wake, private)
    if isinstance(keys, int):
        return keys
    key, key2, woken = keys
    if (old == cmparg, old != cmparg, old < cmparg, old <= cmparg, old > cmparg, old >= cmparg)[cmp]:
        woken += _wake_key(k, key2, nr_wake2)
    return woken


def cancel_wait(k, task):
    """Take a task off any futex queue (it is being killed)."""
    for key, q in list(k.futex_queues.items()):
        for w in list(q):
            if w.task is task:
                _unqueue(k, w)
