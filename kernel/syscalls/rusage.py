"""getrusage(2) and times(2) (kernel/sys.c): fault counts, peak RSS and CPU time.

ru_minflt/ru_majflt are the kernel's own per-thread fault counters (those mm_account_fault
increments), ru_maxrss the address space's hiwater RSS in KiB. CPU time is simulated time: the user
and kernel cycles of the CPU the caller runs on, as CLOCK_PROCESS_CPUTIME_ID reads it (exact for a
process that has its CPU to itself; per-task time is not accounted). A reaped child's faults and peak
RSS go to its parent's RUSAGE_CHILDREN, as wait_task_zombie adds them. Context switches (ru_nvcsw,
ru_nivcsw): RUSAGE_THREAD the caller's, RUSAGE_SELF the sum over every thread of the process.
"""
import errno
import struct

from faultlab.kernel.syscalls.registry import s32, syscall

RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD = 0, -1, 1
# struct rusage: two struct timeval, then fourteen longs (maxrss, ixrss, idrss, isrss, minflt, majflt,
# nswap, inblock, oublock, msgsnd, msgrcv, nsignals, nvcsw, nivcsw): 144 bytes
_RUSAGE = struct.Struct('<qqqq14q')
USER_HZ = 100
PAGE_KB = 4


def pack_rusage(utime_ns=0, stime_ns=0, maxrss_kb=0, minflt=0, majflt=0, nvcsw=0, nivcsw=0):
    """A struct rusage."""
    tv = lambda ns: (ns // 10**9, ns % 10**9 // 1000)
    return _RUSAGE.pack(*tv(utime_ns), *tv(stime_ns), maxrss_kb, 0, 0, 0, minflt, majflt, 0, 0, 0, 0, 0, 0,
                        nvcsw, nivcsw)


def cpu_times_ns(k):
    """(user, system) nanoseconds of simulated time on the caller's CPU."""
    return int(k.costs.ns(k.gbase + k.cpu.guest_cycles)), int(k.costs.ns(k.kcycles))


def _children(group):
    """What the reaped children of a process used: (minflt, majflt, maxrss pages)."""
    return getattr(group, 'rusage_children', (0, 0, 0))


def _self_usage(group):
    """A process's own faults (every thread, ended ones too) and peak RSS in pages."""
    threads = group.threads
    maxrss = max((getattr(th.mm, 'hiwater_rss', 0) for th in threads), default=0)
    return (sum(th.minflt for th in threads), sum(th.majflt for th in threads),
            max(maxrss, getattr(group, 'exit_maxrss', 0)))


def _switches(threads):
    """nvcsw and nivcsw summed over threads (getrusage RUSAGE_SELF adds every thread's, the ended ones'
    through the signal struct's totals, which __exit_signal adds them to)."""
    return (sum(getattr(th, 'nvcsw', 0) for th in threads), sum(getattr(th, 'nivcsw', 0) for th in threads))


def account_reaped(parent, child):
    """wait_task_zombie: the child's usage and its own children's join the parent's RUSAGE_CHILDREN."""
    mn, mj, rss = _self_usage(child)
    cmn, cmj, crss = _children(child)
    pmn, pmj, prss = _children(parent)
    parent.rusage_children = (pmn + mn + cmn, pmj + mj + cmj, max(prss, rss, crss))


def wait_rusage(child):
    """The rusage wait4 reports for a reaped child (RUSAGE_BOTH: itself and its children)."""
    mn, mj, rss = _self_usage(child)
    cmn, cmj, crss = _children(child)
    return pack_rusage(maxrss_kb=max(rss, crss) * PAGE_KB, minflt=mn + cmn, majflt=mj + cmj)


@syscall(98, 'getrusage')
def sys_getrusage(k, t, who, ru, *_):
    who = s32(who)
    if who not in (RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD):
        return -errno.EINVAL
    if who == RUSAGE_CHILDREN:
        mn, mj, rss = _children(t.group)
        data = pack_rusage(maxrss_kb=rss * PAGE_KB, minflt=mn, majflt=mj)
    else:
        utime, stime = cpu_times_ns(k)
        if who == RUSAGE_THREAD:
            mn, mj, rss = t.minflt, t.majflt, t.mm.hiwater_rss
            nv, niv = _switches((t,))
        else:
            mn, mj, rss = _self_usage(t.group)
            nv, niv = _switches(t.group.threads)
        data = pack_rusage(utime, stime, rss * PAGE_KB, mn, mj, nv, niv)
    return 0 if t.umem.write(ru, data) else -errno.EFAULT


@syscall(100, 'times')
def sys_times(k, t, tbuf, *_):
    """struct tms in clock ticks (USER_HZ); returns the ticks since boot."""
    utime, stime = cpu_times_ns(k)
    tick = 10**9 // USER_HZ
    if tbuf and not t.umem.write(tbuf, struct.pack('<4q', utime // tick, stime // tick, 0, 0)):
        return -errno.EFAULT
    return int(k.now_ns()) // tick
