"""struct task_struct: one thread of a process, with what it shares (mm, files, fs)."""


class Task:
    """A guest thread. For now each process has one."""

    def __init__(self, pid, mm, files, umem, exe_path, cwd='/'):
        self.pid = pid
        self.tid = pid
        self.tgid = pid
        self.ppid = 1
        self.mm = mm
        self.files = files
        self.umem = umem
        self.exe_path = exe_path
        self.cwd = cwd
        self.comm = exe_path.rsplit('/', 1)[-1][:15]
        self.umask = 0o022
        self.exited = False
        self.exit_code = 0
        self.killed_by = None        # (signal, report) when a signal ended the task
        self.clear_child_tid = 0
        self.robust_list = (0, 0)
        self.sigactions = {}
        self.sigmask = 0
        self.symbols = []            # [(start, size, name)] with the load bias applied
        self.rlimits = {}
        self.minflt = 0
        self.majflt = 0
