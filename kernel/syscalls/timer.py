"""Interval timers and pause(2): alarm, setitimer/getitimer (ITIMER_REAL), pause.

ITIMER_REAL counts simulated time and sends SIGALRM to the process when it expires (kernel/time/
itimer.c). A timer is an event in the simulated-time queue, so the CPU running the process stops
at its expiry; re-arming or cancelling bumps the process's arming number, which makes the events
of earlier armings do nothing.
"""
import errno
import struct

from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.syscalls.registry import syscall
from faultlab.kernel.signal_send import send_signal

ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF = 0, 1, 2
SIGALRM = 14
USEC = 10 ** 6
_ITIMERVAL = struct.Struct('<qqqq')        # it_interval {tv_sec, tv_usec}, it_value {tv_sec, tv_usec}


def _usec_to_cycles(k, usec):
    return k.costs.cycles_for_ns(usec * 1000)


def _cycles_to_usec(k, cycles):
    return int(k.costs.ns(cycles)) // 1000


def _current(k, group):
    """(interval, value) of the process's ITIMER_REAL in microseconds (value 0: disarmed)."""
    timer = group.itimer_real
    if timer is None:
        return 0, 0
    end, interval, _seq = timer
    left = max(1, _cycles_to_usec(k, end - k.now()))      # an armed timer never reads as 0
    return _cycles_to_usec(k, interval), left


def do_setitimer(k, t, value_us, interval_us):
    """Arm (value > 0) or disarm ITIMER_REAL; returns the old (interval, value) in microseconds."""
    group = t.group
    old = _current(k, group)
    group.itimer_seq += 1
    group.itimer_real = None
    if value_us > 0:
        _arm(k, group, k.now() + _usec_to_cycles(k, value_us), _usec_to_cycles(k, interval_us))
    return old


def _arm(k, group, end, interval):
    seq = group.itimer_seq
    group.itimer_real = (end, interval, seq)

    def expire(at):
        if group.itimer_seq != seq or group.exited:
            return                                  # re-armed, cancelled, or the process is gone
        group.itimer_real = None
        if interval:
            group.itimer_seq += 1
            _arm(k, group, at + interval, interval)
        target = group.live_threads()[0]
        send_signal(k, None, target, SIGALRM, shared=True)
    k.events.schedule(end, expire)


def _read_itimerval(t, addr):
    raw = t.umem.read(addr, _ITIMERVAL.size)
    if raw is None:
        return None
    return _ITIMERVAL.unpack(raw)


@syscall(38, 'setitimer')
def sys_setitimer(k, t, which, new, old, *_):
    which &= 0xFFFFFFFF
    if which not in (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF):
        return -errno.EINVAL
    if which != ITIMER_REAL:
        k.warn_once(('itimer', which), 'setitimer: only ITIMER_REAL is modelled; ITIMER_VIRTUAL/PROF '
                    'return -EINVAL')
        return -errno.EINVAL
    isec = iusec = vsec = vusec = 0
    if new:
        val = _read_itimerval(t, new)
        if val is None:
            return -errno.EFAULT
        isec, iusec, vsec, vusec = val
        if not (0 <= iusec < USEC and 0 <= vusec < USEC) or isec < 0 or vsec < 0:
            return -errno.EINVAL
    if old and t.umem.read(old, _ITIMERVAL.size) is None:
        return -errno.EFAULT
    o_int, o_val = do_setitimer(k, t, vsec * USEC + vusec, isec * USEC + iusec) if new else \
        _current(k, t.group)
    if old and not t.umem.write(old, _ITIMERVAL.pack(o_int // USEC, o_int % USEC, o_val // USEC, o_val % USEC)):
        return -errno.EFAULT
    return 0


@syscall(36, 'getitimer')
def sys_getitimer(k, t, which, cur, *_):
    which &= 0xFFFFFFFF
    if which not in (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF):
        return -errno.EINVAL
    interval, value = _current(k, t.group) if which == ITIMER_REAL else (0, 0)
    if not t.umem.write(cur, _ITIMERVAL.pack(interval // USEC, interval % USEC, value // USEC, value % USEC)):
        return -errno.EFAULT
    return 0


@syscall(37, 'alarm')
def sys_alarm(k, t, seconds, *_):
    _interval, value = do_setitimer(k, t, (seconds & 0xFFFFFFFF) * USEC, 0)
    # the seconds left of the previous alarm, rounded to nearest, and at least 1 if one was pending
    sec, usec = divmod(value, USEC)
    if (not sec and usec) or usec >= USEC // 2:
        sec += 1
    return sec


@syscall(34, 'pause')
def sys_pause(k, t, *_):
    t.waiting_on = 'pause'
    k.sched.block(t)
    return BLOCKED
