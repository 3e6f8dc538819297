"""Process, identity, time, signal-bookkeeping and miscellaneous system calls."""
import errno
import random
import struct

from faultlab.kernel.clock import CLOCK_REALTIME, CLOCK_THREAD_CPUTIME_ID, clock_ns, read_timespec_ns
from faultlab.kernel.file import NR_OPEN
from faultlab.kernel.cred import CAP_SYS_RESOURCE, capable
from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.sigframe import STACK_T, do_sigaltstack
from faultlab.kernel.signal import SI_USER, UNBLOCKABLE, dequeue_signal, next_signal, pending_set, siginfo_kill
from faultlab.kernel.syscalls.registry import s32 as _s32, syscall
from faultlab.kernel.syscalls.fs import MAX_RW_COUNT
from faultlab.kernel.syscalls.thread import schedule_timeout, sigwait_sleep
from faultlab.kernel.uaccess import access_ok
from faultlab.kernel.rlimits import task_rlimit

ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
ARCH_GET_CPUID, ARCH_SET_CPUID = 0x1011, 0x1012
RLIMIT_NLIMITS = 16
SIGKILL, SIGSTOP = 9, 19
_TS = struct.Struct('<qq')


@syscall(39, 'getpid')
def sys_getpid(k, t, *_):
    return t.tgid


@syscall(186, 'gettid')
def sys_gettid(k, t, *_):
    return t.tid


@syscall(110, 'getppid')
def sys_getppid(k, t, *_):
    return t.ppid


@syscall(95, 'umask')
def sys_umask(k, t, mask, *_):
    old, t.umask = t.umask, mask & 0o777
    return old


@syscall(158, 'arch_prctl')
def sys_arch_prctl(k, t, code, addr, *_):
    if code == ARCH_SET_FS:
        if addr >= (1 << 47):
            return -errno.EPERM
        k.cpu.fs_base = addr
        return 0
    if code == ARCH_SET_GS:
        if addr >= (1 << 47):
            return -errno.EPERM
        k.cpu.write_reg('gs_base', addr)
        return 0
    if code == ARCH_GET_FS:
        return 0 if t.umem.write_u64(addr, k.cpu.fs_base) else -errno.EFAULT
    if code == ARCH_GET_GS:
        return 0 if t.umem.write_u64(addr, k.cpu.read_reg('gs_base')) else -errno.EFAULT
    if code == ARCH_GET_CPUID:
        return 1
    return -errno.EINVAL


@syscall(218, 'set_tid_address')
def sys_set_tid_address(k, t, tidptr, *_):
    t.clear_child_tid = tidptr
    return t.tid


@syscall(273, 'set_robust_list')
def sys_set_robust_list(k, t, head, length, *_):
    if length != 24:
        return -errno.EINVAL
    t.robust_list = (head, length)
    return 0


@syscall(334, 'rseq')
def sys_rseq(k, t, *_):
    return -errno.ENOSYS      # glibc falls back cleanly; restartable sequences are not modelled


def do_prlimit(t, res, new, want_old):
    """kernel/sys.c do_prlimit: check and set one limit of task t; (old limit or None, 0) or (None, -errno)."""
    if res >= RLIMIT_NLIMITS:
        return None, -errno.EINVAL
    if new is not None:
        cur, mx = new
        if cur > mx:
            return None, -errno.EINVAL
        if res == 7 and mx > NR_OPEN:        # RLIMIT_NOFILE above fs.nr_open, even for root
            return None, -errno.EPERM
        if mx > task_rlimit(t, res)[1] and not capable(t, CAP_SYS_RESOURCE):
            return None, -errno.EPERM
    old = task_rlimit(t, res) if want_old else None
    if new is not None:
        t.rlimits[res] = (cur, mx)
        if res == 3:
            t.mm.stack_rlimit = cur
        elif res == 7:                   # RLIMIT_NOFILE: alloc_fd's bound
            t.files.nofile = min(cur, NR_OPEN)   # (the table itself holds NR_OPEN at most)
    return old, 0


def _copy_rlimit(t, unew):
    """copy_from_user of a struct rlimit(64): (cur, max), or None when unreadable."""
    b = t.umem.read(unew, 16)
    return None if b is None else struct.unpack('<QQ', b)


@syscall(302, 'prlimit64')
def sys_prlimit64(k, t, pid, res, new, old, *_):
    """The new limit is copied in first, then the task is looked up, then do_prlimit checks it."""
    lim = None
    if new:
        lim = _copy_rlimit(t, new)
        if lim is None:
            return -errno.EFAULT
    pid = _s32(pid)
    tsk = t if pid == 0 else k.tasks.get(pid)
    if tsk is None or tsk.exited:
        return -errno.ESRCH
    cur, err = do_prlimit(tsk, res & 0xFFFFFFFF, lim, bool(old))
    if err:
        return err
    if old and not t.umem.write(old, struct.pack('<QQ', *cur)):
        return -errno.EFAULT
    return 0


@syscall(97, 'getrlimit')
def sys_getrlimit(k, t, res, rlim, *_):
    cur, err = do_prlimit(t, res & 0xFFFFFFFF, None, True)
    if err:
        return err
    return 0 if t.umem.write(rlim, struct.pack('<QQ', *cur)) else -errno.EFAULT


@syscall(160, 'setrlimit')
def sys_setrlimit(k, t, res, rlim, *_):
    lim = _copy_rlimit(t, rlim)
    if lim is None:
        return -errno.EFAULT
    return do_prlimit(t, res & 0xFFFFFFFF, lim, False)[1]


@syscall(63, 'uname')
def sys_uname(k, t, buf, *_):
    fields = [b'Linux', b'faultlab', b'6.1.0-faultlab', b'#1 SMP PREEMPT_DYNAMIC', b'x86_64', b'(none)']
    data = b''.join(f.ljust(65, b'\0') for f in fields)
    return 0 if t.umem.write(buf, data) else -errno.EFAULT


@syscall(99, 'sysinfo')
def sys_sysinfo(k, t, buf, *_):
    uptime = int(k.now_ns() // 10**9)
    total = k.phys.size
    free = k.frames.nr_free * 4096
    cached = sum(m.nrpages for m in k.pagecache.mappings.values()) * 4096
    data = struct.pack('<q3Q6QHH4xQQI4x', uptime, 0, 0, 0, total, free, 0, cached, 0, 0, len(k.tasks), 0, 0, 0, 1)
    return 0 if t.umem.write(buf, data) else -errno.EFAULT


@syscall(318, 'getrandom')
def sys_getrandom(k, t, buf, count, flags, *_):
    flags &= 0xFFFFFFFF                        # unsigned int; GRND_RANDOM with GRND_INSECURE is EINVAL
    if flags & ~0x7 or flags & 6 == 6:
        return -errno.EINVAL
    if not access_ok(buf, min(count, MAX_RW_COUNT)):
        return -errno.EFAULT                   # import_ubuf
    count = min(count, 1 << 25)
    if count:                                  # a short result where the buffer stops being writable
        count = t.umem.accessible(buf, count, True)
        if not count:
            return -errno.EFAULT
    rng = getattr(k, '_rng', None)
    if rng is None:
        rng = k._rng = random.Random(k.config.seed)
    data = rng.randbytes(count)
    return count if t.umem.write(buf, data) else -errno.EFAULT


@syscall(228, 'clock_gettime')
def sys_clock_gettime(k, t, clk, tp, *_):
    ns = clock_ns(k, t, _s32(clk))
    if ns is None:
        return -errno.EINVAL
    return 0 if t.umem.write(tp, _TS.pack(ns // 10**9, ns % 10**9)) else -errno.EFAULT


@syscall(229, 'clock_getres')
def sys_clock_getres(k, t, clk, tp, *_):
    if clock_ns(k, t, _s32(clk)) is None:
        return -errno.EINVAL
    if tp and not t.umem.write(tp, _TS.pack(0, 1)):
        return -errno.EFAULT
    return 0


@syscall(96, 'gettimeofday')
def sys_gettimeofday(k, t, tv, tz, *_):
    ns = clock_ns(k, t, CLOCK_REALTIME)
    if tv and not t.umem.write(tv, _TS.pack(ns // 10**9, (ns % 10**9) // 1000)):
        return -errno.EFAULT
    if tz and not t.umem.write(tz, bytes(8)):
        return -errno.EFAULT
    return 0


@syscall(201, 'time')
def sys_time(k, t, tloc, *_):
    sec = clock_ns(k, t, CLOCK_REALTIME) // 10**9
    if tloc and not t.umem.write_u64(tloc, sec):
        return -errno.EFAULT
    return sec


def _sleep(k, t, req, rem):
    ns = read_timespec_ns(t, req)
    if ns < 0:
        return ns
    return schedule_timeout(k, t, k.now() + k.costs.cycles_for_ns(ns), rem)


@syscall(35, 'nanosleep')
def sys_nanosleep(k, t, req, rem, *_):
    return _sleep(k, t, req, rem)


@syscall(230, 'clock_nanosleep')
def sys_clock_nanosleep(k, t, clk, flags, req, rem, *_):
    clk = _s32(clk)
    if clock_ns(k, t, clk) is None or clk in (CLOCK_THREAD_CPUTIME_ID,):
        return -errno.EINVAL
    if flags & 1:                     # TIMER_ABSTIME
        ns = read_timespec_ns(t, req)
        if ns < 0:
            return ns
        delta = ns - clock_ns(k, t, clk)
        if delta > 0:
            return schedule_timeout(k, t, k.now() + k.costs.cycles_for_ns(delta))
        return 0
    return _sleep(k, t, req, rem)


@syscall(13, 'rt_sigaction')
def sys_rt_sigaction(k, t, sig, act, oact, sigsetsize, *_):
    if sigsetsize != 8:
        return -errno.EINVAL
    sig = _s32(sig)
    new = None
    if act:                          # copied in before do_sigaction validates the signal
        new = t.umem.read(act, 32)
        if new is None:
            return -errno.EFAULT
    if not 1 <= sig <= 64 or (act and sig in (SIGKILL, SIGSTOP)):
        return -errno.EINVAL
    if oact and not t.umem.write(oact, t.sigactions.get(sig, bytes(32))):
        return -errno.EFAULT
    if new is not None:
        t.sigactions[sig] = new
    return 0


@syscall(14, 'rt_sigprocmask')
def sys_rt_sigprocmask(k, t, how, nset, oset, sigsetsize, *_):
    if sigsetsize != 8:
        return -errno.EINVAL
    new = None
    if nset:
        new = t.umem.read_u64(nset)
        if new is None:
            return -errno.EFAULT
        if how not in (0, 1, 2):
            return -errno.EINVAL
    if oset and not t.umem.write_u64(oset, t.sigmask):
        return -errno.EFAULT
    if new is not None:
        new &= ~((1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1)))
        t.sigmask = (t.sigmask | new) if how == 0 else (t.sigmask & ~new) if how == 1 else new
    return 0


@syscall(127, 'rt_sigpending')
def sys_rt_sigpending(k, t, uset, sigsetsize, *_):
    if sigsetsize > 8:
        return -errno.EINVAL
    pending = pending_set(t) & t.sigmask          # raised while blocked
    if not t.umem.write(uset, struct.pack('<Q', pending)[:sigsetsize]):
        return -errno.EFAULT
    return 0


@syscall(130, 'rt_sigsuspend')
def sys_rt_sigsuspend(k, t, unewset, sigsetsize, *_):
    """Sleep with a temporary mask until a signal is acted on; the handler's return restores the old
    mask. Always -EINTR."""
    if sigsetsize != 8:
        return -errno.EINVAL
    new = t.umem.read_u64(unewset)
    if new is None:
        return -errno.EFAULT
    t.saved_sigmask = t.sigmask
    t.sigmask = new & ~UNBLOCKABLE
    if next_signal(t):
        return -errno.EINTR
    t.waiting_on = 'sigsuspend'
    k.sched.block(t)
    return BLOCKED


@syscall(128, 'rt_sigtimedwait')
def sys_rt_sigtimedwait(k, t, uthese, uinfo, uts, sigsetsize, *_):
    """Take a pending signal of the set (blocked or not) or wait for one; EAGAIN at the timeout."""
    if sigsetsize != 8:
        return -errno.EINVAL
    these = t.umem.read_u64(uthese)
    if these is None:
        return -errno.EFAULT
    these &= ~UNBLOCKABLE
    deadline = None
    if uts:
        ns = read_timespec_ns(t, uts)
        if ns < 0:
            return ns
        deadline = k.now() + k.costs.cycles_for_ns(ns)
    sig = next_signal(t, these)
    if sig:
        info = dequeue_signal(t, sig) or siginfo_kill(sig, SI_USER, 0)
        if uinfo and not t.umem.write(uinfo, info):
            return -errno.EFAULT
        return sig
    if deadline is not None and deadline <= k.now():
        return -errno.EAGAIN
    return sigwait_sleep(k, t, these, uinfo, deadline)


@syscall(131, 'sigaltstack')
def sys_sigaltstack(k, t, ss, oss, *_):
    new = None
    if ss:
        raw = t.umem.read(ss, STACK_T.size)
        if raw is None:
            return -errno.EFAULT
        ss_sp, ss_flags, _pad, ss_size = STACK_T.unpack(raw)
        new = (ss_sp, ss_flags, ss_size)
    err, old = do_sigaltstack(t, new, k.cpu.gpr[4])
    if not err and oss and not t.umem.write(oss, STACK_T.pack(old[0], old[1], 0, old[2])):
        return -errno.EFAULT
    return err
