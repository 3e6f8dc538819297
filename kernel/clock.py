"""The POSIX clocks (kernel/time/posix-timers.c, posix-cpu-timers.c): clock ids, a clock's value in
nanoseconds, and a user struct timespec read as nanoseconds (get_timespec64)."""
import errno
import struct

CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID = 0, 1, 2, 3
CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME = 4, 5, 6, 7
CLOCK_TAI = 11
TIMESPEC = struct.Struct('<qq')


def _cpu_clock_ok(k, t, clk):
    """A negative clock id names a CPU-time clock (posix-cpu-timers.c pid_for_clock): bits 0-1 the kind
    (PROF, VIRT, SCHED), bit 2 a thread's clock, the rest ~pid (0: the caller); 3 in bits 0-2 is a
    clock file descriptor, none of which is a clock here."""
    if clk & 3 == 3:
        return False
    pid = ~(clk >> 3)
    if pid == 0:
        return True
    task = k.tasks.get(pid)
    if task is None or task.exited:
        return False
    if clk & 4:
        return task.group is t.group
    return task is task.group.leader or task is t


def clock_ns(k, t, clk):
    """The value of clock clk in nanoseconds, or None for an invalid clock id."""
    if clk < 0:
        return int(k.costs.ns(k.gbase + k.cpu.guest_cycles + k.kcycles)) if _cpu_clock_ok(k, t, clk) else None
    if clk in (CLOCK_REALTIME, CLOCK_REALTIME_COARSE, CLOCK_TAI):     # TAI: the TAI offset is 0 until set
        return k.boot_epoch_ns + int(k.now_ns())
    if clk in (CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME):
        return int(k.now_ns())
    if clk in (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID):
        return int(k.costs.ns(k.gbase + k.cpu.guest_cycles + k.kcycles))
    return None


def read_timespec_ns(t, addr):
    """A user struct timespec as nanoseconds, or -errno (EFAULT, EINVAL for a bad value)."""
    b = t.umem.read(addr, 16)
    if b is None:
        return -errno.EFAULT
    sec, nsec = TIMESPEC.unpack(b)
    if sec < 0 or not 0 <= nsec < 10**9:
        return -errno.EINVAL
    return sec * 10**9 + nsec
