"""/proc/PID (fs/proc/base.c proc_pid_lookup, proc_pid_readdir) and /proc/self/stat (fs/proc/array.c
do_task_stat): every process of the guest has a directory in /proc named by its pid, listed after the
fixed entries, with the files /proc/self has, shown for that process (what ps, pgrep and killall read).
A /proc/PID file reads and writes as the same file of /proc/self would with that process as the
current one."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.procfs import ProcDir
from faultlab.kernel.fs.stat import S_IFDIR
from faultlab.kernel.fs.synth import SynthFile, SynthSymlink

PF_FORKNOEXEC = 0x00000040
PF_RANDOMIZE = 0x00400000
RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF


def as_task(k, task, fn, *args):
    """fn(*args) with task as the kernel's current task (the /proc/self file of that process)."""
    old = k.current
    k.current = task
    try:
        return fn(*args)
    finally:
        k.current = old


def task_state_letter(t):
    """get_task_state: the letter /proc shows (R, S, D, T, t, Z)."""
    if t.exited:
        return 'Z'
    return t.state if t.state in ('R', 'S', 'D', 'T', 't') else 'R'


def do_task_stat(k, t):
    """/proc/PID/stat: the 52 fields of do_task_stat, whole-process counters for the leader."""
    mm = t.mm
    group = t.group
    rss = (getattr(mm, 'rss_anon', 0) + getattr(mm, 'rss_file', 0)) if mm is not None and not t.exited else 0
    vsize = (mm.total_vm << 12) if mm is not None and not t.exited else 0

    def mmval(name):
        return getattr(mm, name, 0) if mm is not None and not t.exited else 0
    nthreads = max(1, len(group.live_threads()))
    fields = [
        t.tid, '(%s)' % t.comm, task_state_letter(t), t.ppid, group.pgrp, group.session, 0, -1,
        PF_RANDOMIZE, t.minflt, 0, t.majflt, 0, 0, 0, 0, 0, 20 + t.nice, t.nice, nthreads, 0, 0, vsize, rss,
        RLIM_INFINITY, mmval('start_code') or 1, mmval('end_code') or 1, mmval('start_stack'), 0, 0,
        (t.pending_signals | group.shared_pending) & 0xFFFFFFFFFFFFFFFF, t.sigmask, 0, 0, 0, 0, 0,
        t.group.leader.exit_signal, 0, t.rt_priority, t.policy, 0, 0, 0,
        mmval('start_data'), mmval('end_data'), mmval('start_brk'), mmval('arg_start'), mmval('arg_end'),
        mmval('env_start'), mmval('env_end'), group.exit_code if t.exited else 0,
    ]
    return ' '.join(str(f) for f in fields) + '\n'


class PidFile(SynthFile):
    """A file of /proc/PID: the /proc/self file of the same name, read and written for that process."""

    def __init__(self, sb, ino, k, task, src):
        super().__init__(sb, ino, None, None, src.mode & 0o7777)
        self.k, self.task, self.src = k, task, src
        if src.read_fn is not None:
            self.read_fn = lambda: as_task(k, task, src.read_content)
        if src.read_at is not None:
            self.read_at = lambda pos, count: as_task(k, task, src.read_at, pos, count)
        if src.write_fn is not None:
            self.write_fn = lambda data: as_task(k, task, src.write_fn, data)
        if src.write_at is not None:
            self.write_at = lambda pos, data: as_task(k, task, src.write_at, pos, data)
        self.owner = lambda: as_task(k, task, src.owner) if src.owner is not None else (0, 0)


class PidSymlink(SynthSymlink):
    """A symlink of /proc/PID (exe, cwd, root) resolved for that process."""

    def __init__(self, sb, ino, k, task, src):
        super().__init__(sb, ino, lambda: as_task(k, task, src.target_fn))


class PidDir(ProcDir):
    """/proc/PID: made at the first lookup from what /proc/self holds (its subdirectories aside)."""

    def fill(self, k, task, self_dir):
        """Add the process's view of each /proc/self file and symlink."""
        for name, src in self_dir.entries():
            if isinstance(src, SynthFile):
                self.add_entry(name, PidFile(self.sb, self.sb.alloc_ino(), k, task, src))
            elif isinstance(src, SynthSymlink):
                self.add_entry(name, PidSymlink(self.sb, self.sb.alloc_ino(), k, task, src))
        return self


class ProcPids:
    """The pid part of the /proc root (proc_pid_lookup, proc_pid_readdir): thread-group leaders that
    are not yet reaped, each with one PidDir kept while the process exists."""

    def __init__(self, k, root):
        self.k = k
        self.root = root
        self.dirs = {}

    def _processes(self):
        return sorted((t.tgid, t) for t in self.k.tasks.values() if t.tid == t.tgid and not t.group.reaped)

    def _dir(self, tgid, task):
        d = self.dirs.get(tgid)
        if d is None or d.task is not task:
            self_dir = self.root.lookup('self')
            d = PidDir(self.root.sb, self.root.sb.alloc_ino(), S_IFDIR | 0o555, 0, 0, self.root)
            d.task = task
            d.fill(self.k, task, self_dir)
            self.dirs[tgid] = d
        return d

    def _prune(self, live):
        for tgid in [p for p in self.dirs if p not in live]:
            del self.dirs[tgid]

    def lookup(self, name):
        """proc_pid_lookup: the directory of a live (or zombie) process, a thread's by its tid too."""
        if not name.isdigit() or name != str(int(name)):
            return None
        t = self.k.tasks.get(int(name))
        if t is None or t.group.reaped:
            return None
        return self._dir(t.tid, t)

    def entries(self):
        """proc_pid_readdir: the processes in pid order."""
        procs = self._processes()
        self._prune({tgid for tgid, _ in procs})
        return [(str(tgid), self._dir(tgid, t)) for tgid, t in procs]


def register_proc_pid(k):
    """/proc/self/stat and the /proc/PID directories."""
    k.vfs.register_synth('/proc/self/stat', lambda: do_task_stat(k, k.current))
    root = k.vfs.lookup('/proc')
    if not isinstance(root, ProcDir):
        raise FsError(errno.ENOENT)
    root.dynamic = ProcPids(k, root)


def tgid_pidfd_to_pid(f):
    """tgid_pidfd_to_pid: an open /proc/PID directory of a process stands for that process in
    pidfd_send_signal; (ThreadGroup, 0), or (None, -EBADF / -ESRCH once it was reaped)."""
    inode = getattr(f, 'inode', None)
    if not isinstance(inode, PidDir) or inode.task.tid != inode.task.tgid:
        return None, -errno.EBADF
    group = inode.task.group
    return (None, -errno.ESRCH) if group.reaped else (group, 0)
