"""Threads and processes: clone/clone3, exit, futex, thread-directed signals, wait4, scheduling calls."""
import errno
import struct

from faultlab.kernel.cgroup.cgroup import cgroup_post_fork
from faultlab.kernel.clock import CLOCK_MONOTONIC, CLOCK_REALTIME, clock_ns, read_timespec_ns
from faultlab.kernel.futex import (BLOCKED, FUTEX_WAIT, FUTEX_WAKE, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP,
                          FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET, FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME,
                          FUTEX_CMD_MASK, cancel_wait, futex_wait, futex_wake, futex_requeue, futex_wake_op)
from faultlab.kernel.syscalls.registry import s32 as _s32, syscall
from faultlab.kernel.signal import SI_TKILL, SIGCONT, check_kill_permission
from faultlab.kernel.ptrace import exit_ptrace, ptrace_event_exec, ptrace_tracee_exit
from faultlab.kernel.signal_send import (CLD_CONTINUED, CLD_STOPPED, CLD_TRAPPED, group_send_sig_info, send_signal,
                                         wake_up_parent)
from faultlab.kernel.sigframe import sys_rt_sigreturn
from faultlab.kernel.cred import exec_creds
from faultlab.kernel.loader import ExecError
from faultlab.kernel.mm.fork import dup_mm
from faultlab.kernel.mm.mdwe import mmf_init_flags
from faultlab.kernel.mm.mmap import mmput
from faultlab.kernel.mm.oom_kill import copy_oom_score_adj
from faultlab.kernel.fork_limits import fork_limits
from faultlab.kernel.rlimits import task_rlimit
from faultlab.kernel.fs import FsError
from faultlab.kernel.fs.perm import MAY_EXEC
from faultlab.kernel.syscalls.pgrp import find_process, processes
from faultlab.kernel.syscalls.rusage import account_reaped, wait_rusage
from faultlab.kernel.task import Task
from faultlab.kernel.tasktable import find_task_by_vpid
from faultlab.kernel.uaccess import UserMemory

CSIGNAL = 0xFF
CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_PIDFD, CLONE_PTRACE, CLONE_VFORK, CLONE_PARENT, CLONE_THREAD = 0x1000, 0x2000, 0x4000, 0x8000, 0x10000
CLONE_NEWNS, CLONE_SYSVSEM, CLONE_SETTLS = 0x20000, 0x40000, 0x80000
CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID, CLONE_DETACHED = 0x100000, 0x200000, 0x400000
CLONE_UNTRACED, CLONE_CHILD_SETTID, CLONE_IO = 0x800000, 0x1000000, 0x80000000
CLONE_NEW_NAMESPACES = 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP = 1 << 32, 1 << 33
# what faultlab models; anything else (namespaces, pidfd, cgroups) is refused with EINVAL
CLONE_SUPPORTED = (CSIGNAL | CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_PTRACE | CLONE_VFORK |
                   CLONE_PARENT | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
                   CLONE_CHILD_CLEARTID | CLONE_DETACHED | CLONE_UNTRACED | CLONE_CHILD_SETTID | CLONE_IO)
CLONE_ARGS_SIZE_VER0 = 64
_CLONE_ARGS = struct.Struct('<11Q')
SIGCHLD, SIGKILL = 17, 9
RLIMIT_NPROC = 6
WNOHANG, WUNTRACED, WCONTINUED, WNOWAIT, __WALL, __WCLONE = 1, 2, 8, 0x01000000, 0x40000000, 0x80000000


def kernel_clone(k, t, flags, stack, parent_tid, child_tid, tls, exit_signal):
    """Create a thread (CLONE_THREAD) or a process (copy_process); returns the child's TID or -errno."""
    if flags & ~CLONE_SUPPORTED & ~CSIGNAL:
        return -errno.EINVAL
    if flags & CLONE_THREAD and not flags & CLONE_SIGHAND:
        return -errno.EINVAL
    if flags & CLONE_SIGHAND and not flags & CLONE_VM:
        return -errno.EINVAL
    limits = fork_limits(k)
    err = limits.copy_process_check(t, task_rlimit(t, RLIMIT_NPROC)[0])     # and threads-max
    if err:
        return err
    tid = limits.alloc_pid()                 # (before the copy of the mm: nothing to undo)
    if tid < 0:
        return tid
    if not flags & CLONE_VM:
        mm = dup_mm(k, t.mm)
        if mm is None:
            return -errno.ENOMEM
        umem = UserMemory(mm, k.phys, k.charge)
    else:
        mm, umem = t.mm, t.umem
        mm.users += 1
    k.charge('task_create')
    files = t.files if flags & CLONE_FILES else t.files.dup_table()
    if flags & CLONE_FILES:
        files.users += 1
    child = Task(tid, mm, files, umem, t.exe_path, t.cwd)
    child.comm, child.umask, child.symbols, child._sym_starts = t.comm, t.umask, t.symbols, t._sym_starts
    # rlimits live in the signal struct: threads share the process's, a new process gets a copy
    child.rlimits = t.rlimits if flags & CLONE_THREAD else dict(t.rlimits)
    child.cred, child.no_new_privs = t.cred, t.no_new_privs          # copy_creds
    child.nice, child.policy, child.rt_priority = t.nice, t.policy, t.rt_priority
    child.sigactions = t.sigactions if flags & CLONE_SIGHAND else dict(t.sigactions)
    child.sigmask = t.sigmask
    # a thread sharing the address space starts without the alternate signal stack (copy_process)
    child.sas = (0, 0, 0) if flags & (CLONE_VM | CLONE_VFORK) == CLONE_VM else t.sas
    # real_parent: the creating thread; a thread or CLONE_PARENT child shares its creator's
    child.real_parent = t.real_parent if flags & (CLONE_THREAD | CLONE_PARENT) else t
    if flags & CLONE_THREAD:
        child.tgid = t.tgid
        child.ppid = t.ppid
        child.group = t.group
        t.group.threads.append(child)
    else:
        child.ppid = t.tgid if not flags & CLONE_PARENT else t.ppid
        child.group.parent = t.group
        t.group.children.append(child.group)
        child.exit_signal = exit_signal
        child.group.pgrp, child.group.session = t.group.pgrp, t.group.session
        copy_oom_score_adj(t.group, child.group)
        cgroup_post_fork(t, child)
    if flags & CLONE_CHILD_CLEARTID:
        child.clear_child_tid = child_tid
    # the child resumes after the syscall instruction with RAX = 0, on its own stack and TLS
    cpu = k.cpu
    ctx = child.ctx = cpu.save_context()
    cpu.context_write(ctx, 'rip', cpu.rip + 2)
    cpu.context_write(ctx, 'rax', 0)
    if stack:
        cpu.context_write(ctx, 'rsp', stack)
    if flags & CLONE_SETTLS:
        cpu.context_write(ctx, 'fs_base', tls)
    if flags & CLONE_PARENT_SETTID and not t.umem.write(parent_tid, struct.pack('<I', tid)):
        return -errno.EFAULT
    if flags & CLONE_CHILD_SETTID and not umem.write(child_tid, struct.pack('<I', tid)):
        return -errno.EFAULT
    k.tasks[tid] = child
    k.stats['threads_created' if flags & CLONE_THREAD else 'forks'] += 1
    if k.tracer is not None:
        k.tracer.sched_process_fork(k, t, child)
    k.sched.enqueue_new(child, k.now())
    if flags & CLONE_VFORK:
        t.vfork_child = child.group
        t.waiting_on = 'vfork(%d)' % tid
        t.wake_ret = tid
        k.sched.block(t)
        return BLOCKED
    return tid


@syscall(56, 'clone')
def sys_clone(k, t, flags, newsp, parent_tid, child_tid, tls, *_):
    return kernel_clone(k, t, flags & 0xFFFFFFFF & ~CSIGNAL, newsp, parent_tid, child_tid, tls, flags & CSIGNAL)


@syscall(435, 'clone3')
def sys_clone3(k, t, uargs, size, *_):
    if size < CLONE_ARGS_SIZE_VER0:
        return -errno.EINVAL
    if size > 4096:
        return -errno.E2BIG
    raw = t.umem.read(uargs, size)
    if raw is None:
        return -errno.EFAULT
    if any(raw[_CLONE_ARGS.size:]):
        return -errno.E2BIG
    raw = raw[:_CLONE_ARGS.size].ljust(_CLONE_ARGS.size, b'\0')
    (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
     _cgroup) = _CLONE_ARGS.unpack(raw)
    if flags & CSIGNAL or exit_signal > 64 or (flags & CLONE_THREAD and exit_signal):
        return -errno.EINVAL
    if bool(stack) != bool(stack_size) or set_tid_size or set_tid:
        return -errno.EINVAL
    if flags & ~CLONE_SUPPORTED:
        return -errno.EINVAL
    return kernel_clone(k, t, flags, stack + stack_size if stack else 0, parent_tid, child_tid, tls, exit_signal)


@syscall(57, 'fork')
def sys_fork(k, t, *_):
    return kernel_clone(k, t, 0, 0, 0, 0, 0, SIGCHLD)


@syscall(58, 'vfork')
def sys_vfork(k, t, *_):
    return kernel_clone(k, t, CLONE_VM | CLONE_VFORK, 0, 0, 0, 0, SIGCHLD)


@syscall(60, 'exit')
def sys_exit(k, t, code, *_):
    k.do_exit(t, code)
    return 0


@syscall(231, 'exit_group')
def sys_exit_group(k, t, code, *_):
    k.do_group_exit(t, code)
    return 0


CLD_EXITED, CLD_KILLED = 1, 2


def notify_parent(k, group):
    """A child process ended: wake a parent sleeping in wait4 (or vfork), and send it the child's exit
    signal."""
    parent = group.parent
    if parent is None:
        return
    for task in parent.live_threads():
        if task.vfork_child is group:
            task.vfork_child = None
            k.sched.wake(task, task.wake_ret or group.leader.tid, k.now())
        elif task.state == 'S' and task.wait_for is not None:
            ret = task.wait_for()
            if ret is not None:
                task.wait_for = None
                k.sched.wake(task, ret, k.now())
    leader = group.leader
    live = parent.live_threads()
    if leader.exit_signal and live:
        # do_notify_parent: the exit signal (SIGCHLD) to the parent process, saying who and how
        killed = group.killed_by is not None
        info = struct.pack('<iiiiiiqq', leader.exit_signal, 0, CLD_KILLED if killed else CLD_EXITED, 0,
                           leader.tgid, 0, group.killed_by[0] if killed else group.exit_code & 0xFF, 0)
        send_signal(k, leader, live[0], leader.exit_signal, info=info.ljust(128, b'\0'), shared=True)


def wait_status(group):
    """The wait status word of an ended process: its exit code << 8, or the signal that killed it."""
    if group.killed_by:
        return group.killed_by[0] & 0x7F
    return (group.exit_code & 0xFF) << 8


def _wait_match(t, child, pid):
    """eligible_pid: -1 any child, > 0 that one, 0 one in the caller's process group, < -1 one in
    process group -pid."""
    if pid > 0:
        return child.leader.tid == pid
    return pid == -1 or child.pgrp == (-pid if pid else t.group.pgrp)


def _reap(k, t, pid, wstatus, rusage):
    """A zombie child matching pid: write its status, forget it, return its pid (None if none yet)."""
    for child in t.group.children:
        if child.reaped or not _wait_match(t, child, pid):
            continue
        if child.exited:
            if wstatus and not t.umem.write(wstatus, struct.pack('<i', wait_status(child))):
                return -errno.EFAULT
            if rusage and not t.umem.write(rusage, wait_rusage(child)):
                return -errno.EFAULT
            return release_child(t.group, child)
    return None


def release_child(parent, child):
    """release_task: the parent reaped its ended child (its times join the parent's); its pid."""
    account_reaped(parent, child)
    child.reaped = True
    parent.children.remove(child)
    return child.leader.tid


def wait_sleep(k, t, what, retry):
    """Sleep in a wait call until a child's end makes retry() give a result (None: keep waiting)."""
    t.wait_for = retry
    t.waiting_on = what
    t.restartable = True                # -ERESTARTSYS: SA_RESTART handlers restart the wait
    k.sched.block(t)
    return BLOCKED


def exit_notify(k, task):
    """A thread ends (exit_notify): pollers of its pidfds wake; it leaves its tracer and lets go of its
    tracees (exit_ptrace); the processes it created get their
    new parent (another live thread of its process, or none) and their parent-death signal
    (PR_SET_PDEATHSIG), sent as the ending thread (forget_original_parent)."""
    task.group.wait_pidfd.wake_all(k)
    tracer = task.tracer
    ptrace_tracee_exit(k, task)
    if tracer is not None:
        wake_up_parent(k, tracer.group)        # its tracer's waits look again
    exit_ptrace(k, task)
    live = task.group.live_threads()
    reaper = live[0] if live else None
    for child in list(task.group.children):
        for th in child.live_threads():
            if th.real_parent is task:
                th.real_parent = reaper
                if th.pdeath_signal:
                    group_send_sig_info(k, task, child, th.pdeath_signal)


def tracees_of(group):
    """The threads the threads of group trace (a wait looks at every thread's tracees)."""
    return [tr for th in group.live_threads() for tr in th.ptraced]


def wait_task_stopped(t, match, options):
    """wait_task_stopped and wait_task_continued: (task, si_code, si_status) of a tracee in a ptrace
    stop, a child process group-stopped (WUNTRACED) or resumed by SIGCONT (WCONTINUED), its report
    consumed unless WNOWAIT; None if there is none. match(group, tid) chooses."""
    keep = options & WNOWAIT
    for tracee in tracees_of(t.group):
        if tracee.state == 't' and tracee.ptrace_code and match(tracee.group, tracee.tid):
            code = tracee.ptrace_code
            if not keep:
                tracee.ptrace_code = 0
            return tracee, CLD_TRAPPED, code
    for child in t.group.children:
        if child.reaped or child.exited or not match(child, child.leader.tid):
            continue
        if options & WUNTRACED and child.stopped and child.stop_code:
            code = child.stop_code
            if not keep:
                child.stop_code = 0
            return child.leader, CLD_STOPPED, code
        if options & WCONTINUED and child.continued:
            if not keep:
                child.continued = False
            return child.leader, CLD_CONTINUED, SIGCONT
    return None


def stopped_status(why, code):
    """The wait status word of a stop ((sig << 8) | 0x7f) or of a continue (0xffff)."""
    return 0xFFFF if why == CLD_CONTINUED else (code << 8) | 0x7F


def _wait_match_tracee(t, group, tid, pid):
    """eligible_pid for a tracee: its thread id, or its process group."""
    if pid > 0:
        return tid == pid
    return pid == -1 or group.pgrp == (-pid if pid else t.group.pgrp)


def _wait4_eligible(t, pid):
    """Is there a child process or a tracee a wait4 for pid could ever report?"""
    return any(not c.reaped and _wait_match(t, c, pid) for c in t.group.children) or \
        any(_wait_match_tracee(t, tr.group, tr.tid, pid) for tr in tracees_of(t.group))


def _do_wait4(k, t, pid, wstatus, options, rusage):
    """One pass of do_wait for wait4: a zombie reaped, a stop or continue reported (its pid), -ECHILD
    once nothing can match any more, None to keep waiting."""
    ret = _reap(k, t, pid, wstatus, rusage)
    if ret is not None:
        return ret
    found = wait_task_stopped(t, lambda g, tid: _wait_match_tracee(t, g, tid, pid), options)
    if found is not None:
        task, why, code = found
        if wstatus and not t.umem.write(wstatus, struct.pack('<i', stopped_status(why, code))):
            return -errno.EFAULT
        if rusage and not t.umem.write(rusage, wait_rusage(task.group)):
            return -errno.EFAULT
        return task.tid if why == CLD_TRAPPED else task.tgid
    if not _wait4_eligible(t, pid):
        return -errno.ECHILD
    return None


@syscall(61, 'wait4')
def sys_wait4(k, t, pid, wstatus, options, rusage, *_):
    pid = _s32(pid)
    if options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WALL | __WCLONE):
        return -errno.EINVAL
    if not _wait4_eligible(t, pid):
        return -errno.ECHILD
    ret = _do_wait4(k, t, pid, wstatus, options, rusage)
    if ret is not None:
        return ret
    if options & WNOHANG:
        return 0
    return wait_sleep(k, t, 'wait4(%d)' % pid, lambda: _do_wait4(k, t, pid, wstatus, options, rusage))


@syscall(202, 'futex')
def sys_futex(k, t, uaddr, op, val, utime, uaddr2, val3, *_):
    cmd = op & FUTEX_CMD_MASK
    private = bool(op & FUTEX_PRIVATE_FLAG)
    if op & FUTEX_CLOCK_REALTIME and cmd not in (FUTEX_WAIT_BITSET, FUTEX_WAIT):
        return -errno.ENOSYS
    val &= 0xFFFFFFFF
    val3 &= 0xFFFFFFFF
    if cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        deadline = None
        if utime:
            ns = read_timespec_ns(t, utime)
            if ns < 0:
                return ns
            if cmd == FUTEX_WAIT:
                deadline = k.now() + k.costs.cycles_for_ns(ns)
            else:                        # absolute, on CLOCK_MONOTONIC or CLOCK_REALTIME
                clk = CLOCK_REALTIME if op & FUTEX_CLOCK_REALTIME else CLOCK_MONOTONIC
                deadline = k.now() + k.costs.cycles_for_ns(max(0, ns - clock_ns(k, t, clk)))
        bitset = val3 if cmd == FUTEX_WAIT_BITSET else 0xFFFFFFFF
        return futex_wait(k, t, uaddr, val, deadline, bitset, private)
    if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
        return futex_wake(k, t, uaddr, _s32(val), val3 if cmd == FUTEX_WAKE_BITSET else 0xFFFFFFFF, private)
    if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
        return futex_requeue(k, t, uaddr, _s32(val), _s32(utime), uaddr2,
                             val3 if cmd == FUTEX_CMP_REQUEUE else None, private)
    if cmd == FUTEX_WAKE_OP:
        return futex_wake_op(k, t, uaddr, _s32(val), _s32(utime), uaddr2, val3, private)
    return -errno.ENOSYS             # PI futexes, FUTEX_FD and requeue-PI are not modelled


def sigwait_sleep(k, t, these, uinfo, deadline):
    """rt_sigtimedwait's sleep: until a signal of `these` comes (send_signal hands it over) or the
    deadline passes (EAGAIN)."""
    t.sigwait = (these, uinfo)
    t.waiting_on = 'sigtimedwait'
    if deadline is not None:
        t.sleep_seq += 1
        seq = t.sleep_seq

        def expire(at):
            if t.sleep_seq == seq and t.sigwait is not None:
                t.sigwait = None
                k.sched.wake(t, -errno.EAGAIN, at)
        k.events.schedule(deadline, expire)
    k.sched.block(t)
    return BLOCKED


@syscall(234, 'tgkill')
def sys_tgkill(k, t, tgid, tid, sig, *_):
    tgid, tid, sig = _s32(tgid), _s32(tid), _s32(sig)
    if tgid <= 0 or tid <= 0 or not 0 <= sig <= 64:
        return -errno.EINVAL
    target = find_task_by_vpid(k, tid)
    if target is None or target.tgid != tgid:
        return -errno.ESRCH
    return check_kill_permission(t, target, sig) or send_signal(k, t, target, sig)


@syscall(200, 'tkill')
def sys_tkill(k, t, tid, sig, *_):
    tid, sig = _s32(tid), _s32(sig)
    if tid <= 0 or not 0 <= sig <= 64:
        return -errno.EINVAL
    target = find_task_by_vpid(k, tid)
    if target is None:
        return -errno.ESRCH
    return check_kill_permission(t, target, sig) or send_signal(k, t, target, sig)


@syscall(62, 'kill')
def sys_kill(k, t, pid, sig, *_):
    pid, sig = _s32(pid), _s32(sig)
    if not 0 <= sig <= 64:
        return -errno.EINVAL
    if pid > 0:
        group = find_process(k, pid)
        return -errno.ESRCH if group is None else group_send_sig_info(k, t, group, sig)
    if pid != -1:                                        # __kill_pgrp_info
        pgrp = -pid if pid else t.group.pgrp
        ok, ret = False, -errno.ESRCH
        for group in [g for g in processes(k) if g.pgrp == pgrp and not g.exited]:
            ret = group_send_sig_info(k, t, group, sig)
            ok |= not ret
        return 0 if ok else ret
    ret, count = -errno.ESRCH, 0                         # every process but init and the caller
    for group in [g for g in processes(k) if g.leader.tgid > 1 and g is not t.group and not g.exited]:
        err = group_send_sig_info(k, t, group, sig)
        count += 1
        if err != -errno.EPERM:
            ret = err
    return ret if count else -errno.ESRCH


def _queueinfo(k, t, target, sig, uinfo, shared):
    """rt_(tg)sigqueueinfo: the caller's own siginfo; only a process signalling itself may claim a
    kernel or kill/tkill si_code (EPERM)."""
    if not 0 <= sig <= 64:
        return -errno.EINVAL
    raw = t.umem.read(uinfo, 128)
    if raw is None:
        return -errno.EFAULT
    si_code = struct.unpack_from('<i', raw, 8)[0]
    if (si_code >= 0 or si_code == SI_TKILL) and target.tgid != t.tgid:
        return -errno.EPERM
    return check_kill_permission(t, target, sig) or \
        send_signal(k, t, target, sig, info=struct.pack('<i', sig) + raw[4:], shared=shared)


@syscall(129, 'rt_sigqueueinfo')
def sys_rt_sigqueueinfo(k, t, tgid, sig, uinfo, *_):
    tgid, sig = _s32(tgid), _s32(sig)
    target = find_task_by_vpid(k, tgid) if tgid > 0 else None
    if target is None:
        return -errno.ESRCH
    return _queueinfo(k, t, target.group.leader if not target.group.leader.exited else target, sig, uinfo, True)


@syscall(297, 'rt_tgsigqueueinfo')
def sys_rt_tgsigqueueinfo(k, t, tgid, tid, sig, uinfo, *_):
    tgid, tid, sig = _s32(tgid), _s32(tid), _s32(sig)
    if tgid <= 0 or tid <= 0:
        return -errno.EINVAL
    target = find_task_by_vpid(k, tid)
    if target is None or target.tgid != tgid:
        return -errno.ESRCH
    return _queueinfo(k, t, target, sig, uinfo, False)


@syscall(15, 'rt_sigreturn')
def sys_rt_sigreturn_(k, t, *_):
    return sys_rt_sigreturn(k, t)


@syscall(24, 'sched_yield')
def sys_sched_yield(k, t, *_):
    k.sched.yield_cpu(t)
    return 0


def _cpu_mask(k):
    n = len(k.sched.rqs)
    return (1 << n) - 1, (n + 63) // 64 * 8


@syscall(204, 'sched_getaffinity')
def sys_sched_getaffinity(k, t, pid, size, mask, *_):
    size &= 0xFFFFFFFF                  # unsigned int len, checked before the pid (kernel/sched/syscalls.c)
    bits, nbytes = _cpu_mask(k)
    if (size * 8) & 0xFFFFFFFF < len(k.sched.rqs) or size & 7:     # len * BITS_PER_BYTE in 32 bits
        return -errno.EINVAL
    pid = _s32(pid)
    if pid and find_task_by_vpid(k, pid) is None:
        return -errno.ESRCH
    nbytes = min(size, nbytes)
    return nbytes if t.umem.write(mask, bits.to_bytes(nbytes, 'little')) else -errno.EFAULT


@syscall(203, 'sched_setaffinity')
def sys_sched_setaffinity(k, t, pid, size, mask, *_):
    raw = t.umem.read(mask, min(size & 0xFFFFFFFF, _cpu_mask(k)[1]))   # get_user_cpu_mask, then the pid
    if raw is None:
        return -errno.EFAULT
    pid = _s32(pid)
    if pid and find_task_by_vpid(k, pid) is None:
        return -errno.ESRCH
    bits, _n = _cpu_mask(k)
    if not int.from_bytes(raw, 'little') & bits:
        return -errno.EINVAL
    return 0                            # accepted; placement stays the scheduler's


@syscall(309, 'getcpu')
def sys_getcpu(k, t, cpu, node, *_):
    if cpu and not t.umem.write(cpu, struct.pack('<I', k.sched.this_rq.index)):
        return -errno.EFAULT
    if node and not t.umem.write(node, struct.pack('<I', 0)):
        return -errno.EFAULT
    return 0


def schedule_timeout(k, t, when, rem=0):
    """Sleep until simulated time `when`: the CPU idles if this is the only task, else others run.
    A signal handler ends the sleep early with EINTR and the time left written to `rem` (nanosleep)."""
    if k.nr_live_tasks() == 1 and t.group.itimer_real is None:
        k.wait_until(when, 'sleep')       # nothing can interrupt it: the CPU just idles
        return 0
    t.waiting_on = 'sleep'
    t.sleep_until, t.sleep_rem = when, rem
    t.sleep_seq += 1
    seq = t.sleep_seq

    def expire(at):
        # the timer of this sleep only: a signal may have ended it and the task sleep on something else
        if t.sleep_seq == seq and t.waiting_on == 'sleep':
            k.sched.wake(t, 0, at)
    k.events.schedule(when, expire)
    k.sched.block(t)
    return BLOCKED


# ---- execve -----------------------------------------------------------------------------------------
MAX_ARG_STRINGS = 0x7FFFFFFF
PATH_MAX = 4096


def _user_strings(t, uptr):
    """A NULL-terminated array of user string pointers (argv, envp): [bytes], or -errno."""
    out = []
    total = 0
    while uptr:
        p = t.umem.read_u64(uptr + 8 * len(out))
        if p is None:
            return -errno.EFAULT
        if p == 0:
            break
        s = t.umem.read_cstr(p, 128 * 1024 + 1)
        if s is None:
            return -errno.EFAULT
        if len(s) > 128 * 1024:
            return -errno.E2BIG                       # MAX_ARG_STRLEN
        total += len(s) + 1
        if total > 2 * 1024 * 1024:                   # the stack rlimit's quarter (8 MiB / 4)
            return -errno.E2BIG
        out.append(s)
    return out


@syscall(59, 'execve')
def sys_execve(k, t, upath, uargv, uenvp, *_):
    path = t.umem.read_cstr(upath, PATH_MAX) if upath else None
    if path is None:
        return -errno.EFAULT
    if len(path) >= PATH_MAX:
        return -errno.ENAMETOOLONG
    path = path.decode('utf-8', 'surrogateescape')
    if not path:
        return -errno.ENOENT
    argv = _user_strings(t, uargv)
    if isinstance(argv, int):
        return argv
    envp = _user_strings(t, uenvp)
    if isinstance(envp, int):
        return envp
    full = path if path.startswith('/') else t.cwd.rstrip('/') + '/' + path
    return do_execve(k, t, full, argv, envp)


def do_execve(k, t, path, argv, envp):
    """Replace the calling process's program (fs/exec.c): past the point of no return the other
    threads end, the address space, handlers, alternate stack and close-on-exec descriptors go."""
    err = may_open_exec(k, t, path)
    if err:
        return err
    try:
        image = k.load_image(path, argv, envp)
    except ExecError as e:
        return -e.errno
    group, old_tid = t.group, t.tid
    for other in group.live_threads():                  # de_thread
        if other is not t:
            cancel_wait(k, other)
            k._exit_thread(other)
    if t.tid != t.tgid:                                  # the exec'ing thread takes the leader's pid
        k.tasks.pop(t.tid, None)
        t.tid = t.pid = t.tgid
        k.tasks[t.tid] = t
        group.leader = t
    group.threads = [t]
    old = t.mm
    old.users -= 1
    if old.users == 0:
        mmput(old)
    t.mm, t.umem = image.mm, image.umem
    mmf_init_flags(image.mm, old)                      # mm_init: MDWE survives execve unless NO_INHERIT
    _vfork_done(k, t)
    t.exe_path = path
    t.comm = path.rsplit('/', 1)[-1][:15]
    t.cred = exec_creds(t.cred)
    t.symbols, t._sym_starts = image.symbols, [s[0] for s in image.symbols]
    t.sigactions = {sig: act for sig, act in t.sigactions.items()
                    if struct.unpack_from('<Q', act)[0] == 1}      # handlers reset, SIG_IGN stays
    t.sas = (0, 0, 0)
    t.saved_sigmask = None
    t.sig_frames = []
    t.clear_child_tid = 0
    for fd in sorted(t.files.cloexec):
        t.files.close(fd)
    cpu = k.cpu
    cpu.set_cr3(image.mm.cr3)
    cpu.flush_tlb()
    cpu.flush_code()
    k.sched.loaded_mm = image.mm
    g = cpu.gpr
    for i in range(16):
        g[i] = 0
    g[4] = image.sp
    cpu.fs_base = 0
    cpu.rip = image.entry - 2                           # the syscall hook adds 2 to a RIP it set
    k.stats['execs'] += 1
    if k.tracer is not None:
        k.tracer.sched_process_exec(k, t, old_tid)
    ptrace_event_exec(k, t)
    return 0


def may_open_exec(k, t, path):
    """do_open_execat's checks as the task: search permission along the path, EACCES for anything
    but a regular file, then MAY_EXEC on it (an x bit for its owner, group or others, as the
    caller falls; root needs one x bit at all). 0 or -errno."""
    cred = t.cred.fs_cred()
    try:
        inode = k.vfs.lookup(path, cred=cred)
        if not inode.is_reg():
            return -errno.EACCES
        k.vfs.permission(inode, MAY_EXEC, cred)
    except FsError as e:
        return -e.errno
    return 0


def _vfork_done(k, child):
    """The vfork child let go of its parent's memory (exec or exit): the parent runs again."""
    for task in child.group.parent.live_threads() if child.group.parent is not None else ():
        if task.vfork_child is child.group:
            task.vfork_child = None
            k.sched.wake(task, task.wake_ret or child.tgid, k.now())
