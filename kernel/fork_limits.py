"""The limits copy_process enforces on new tasks (kernel/fork.c, kernel/pid.c): RLIMIT_NPROC per real
user, the system-wide threads-max, and the pid space up to pid_max; each refusal is EAGAIN.

- RLIMIT_NPROC: copy_creds counts the new task for its real user (every thread, and processes until
  they are reaped); above the creator's RLIMIT_NPROC the fork fails unless the user is root or the
  creator has CAP_SYS_RESOURCE or CAP_SYS_ADMIN (is_rlimit_overlimit in copy_process).
- threads-max (/proc/sys/kernel/threads-max, set_max_threads: RAM / (8 * THREAD_SIZE), 20 at least):
  no new task while nr_threads (tasks not yet released) has reached it.
- pid_max (/proc/sys/kernel/pid_max, 32768 by default, 301..4194304): alloc_pid hands out numbers
  cyclically below it (after the first wrap from RESERVED_PIDS on), skipping those in use; none free
  is EAGAIN; /proc/sys/kernel/ns_last_pid moves the cursor (checkpoint/restore).
"""
import errno

from faultlab.kernel.capability import CAP_SYS_ADMIN, CAP_SYS_RESOURCE, capable
from faultlab.kernel.fs import FsError
from faultlab.kernel.sysctl import proc_dointvec_minmax

CAP_CHECKPOINT_RESTORE = 40

PID_MAX_DEFAULT, PID_MAX_LIMIT, RESERVED_PIDS = 0x8000, 4 * 1024 * 1024, 300
MIN_THREADS, MAX_THREADS = 20, 0x3FFFFFFF            # FUTEX_TID_MASK
THREAD_SIZE = 16 << 10                              # x86-64's kernel stack


class ForkLimits:
    """The kernel's pid_max, max_threads and the pid allocation cursor."""

    def __init__(self, k):
        self.k = k
        self.pid_max = PID_MAX_DEFAULT
        self.max_threads = min(max(k.phys.size // (THREAD_SIZE * 8), MIN_THREADS), MAX_THREADS)

    def pid_in_use(self, pid):
        """Is the pid still attached to a task (alive, or a process not yet reaped)?"""
        t = self.k.tasks.get(pid)
        return t is not None and (not t.exited or (t.tid == t.tgid and not t.group.reaped))

    def nr_threads(self):
        """nr_threads: the tasks not yet released (live ones and unreaped zombie leaders)."""
        k = self.k
        return len(k.tasks.live()) + sum(1 for g in _zombies(k))

    def copy_process_check(self, t, nproc_limit):
        """copy_process's limits for a new task created by t under RLIMIT_NPROC's soft limit
        nproc_limit: -EAGAIN or 0."""
        uid = t.cred.uid
        count = 1 + sum(1 for x in self.k.tasks.live() if x.cred.uid == uid) + \
            sum(1 for g in _zombies(self.k) if g.leader.cred.uid == uid)
        if count > nproc_limit and uid != 0 and \
                not capable(t, CAP_SYS_RESOURCE) and not capable(t, CAP_SYS_ADMIN):
            return -errno.EAGAIN
        if self.nr_threads() >= self.max_threads:
            return -errno.EAGAIN
        return 0

    def alloc_pid(self):
        """alloc_pid: the next free pid from the cursor, wrapping to RESERVED_PIDS at pid_max; -EAGAIN
        when every number is taken."""
        k = self.k
        start = k.next_pid if k.next_pid < self.pid_max else RESERVED_PIDS
        pid = start
        while self.pid_in_use(pid):
            pid += 1
            if pid >= self.pid_max:
                pid = RESERVED_PIDS
            if pid == start:
                return -errno.EAGAIN
        k.next_pid = pid + 1
        return pid

    def write_pid_max(self, data):
        """pid_max's proc_dointvec_minmax: RESERVED_PIDS + 1 .. PID_MAX_LIMIT."""
        v = proc_dointvec_minmax(data, RESERVED_PIDS + 1, PID_MAX_LIMIT)
        if v is not None:
            self.pid_max = v

    def write_ns_last_pid(self, data):
        """pid_ns_ctl_handler: the allocation cursor (the next pid is the value + 1), 0..pid_max, written
        only with CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE (EPERM)."""
        t = self.k.current
        if not capable(t, CAP_SYS_ADMIN) and not capable(t, CAP_CHECKPOINT_RESTORE):
            raise FsError(errno.EPERM)
        v = proc_dointvec_minmax(data, 0, self.pid_max)
        if v is not None:
            self.k.next_pid = v + 1

    def write_threads_max(self, data):
        """sysctl_max_threads: MIN_THREADS .. MAX_THREADS."""
        v = proc_dointvec_minmax(data, MIN_THREADS, MAX_THREADS)
        if v is not None:
            self.max_threads = v


def _zombies(k):
    """Processes that ended and are not reaped yet (children of live processes, or of none): their
    pids and task counts stay taken."""
    parents = {id(t.group): t.group for t in k.tasks.live()}
    for g in parents.values():
        for c in g.children:
            if not c.reaped and c.exited:
                yield c


def fork_limits(k):
    """The kernel's ForkLimits (made at boot by register_fork_limits_procfs)."""
    return k.fork_limits


def register_fork_limits_procfs(k):
    """Make the kernel's ForkLimits; publish /proc/sys/kernel/pid_max, ns_last_pid and threads-max."""
    fl = k.fork_limits = ForkLimits(k)
    k.vfs.register_synth('/proc/sys/kernel/pid_max', lambda: '%d\n' % fl.pid_max, fl.write_pid_max)
    k.vfs.register_synth('/proc/sys/kernel/ns_last_pid', lambda: '%d\n' % (k.next_pid - 1),
                         fl.write_ns_last_pid, 0o666)
    k.vfs.register_synth('/proc/sys/kernel/threads-max', lambda: '%d\n' % fl.max_threads, fl.write_threads_max)
