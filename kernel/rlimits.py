"""Resource limits (include/asm-generic/resource.h INIT_RLIMITS): the first process's, and a task's
current ones (kept per process, copied by fork; set by setrlimit/prlimit64 in kernel/syscalls/proc.py)."""

RLIM_INFINITY = (1 << 64) - 1
RLIMIT_SIGPENDING = 11
_INIT_RLIMITS = {3: (8 << 20, RLIM_INFINITY), 7: (1024, 4096), 4: (0, RLIM_INFINITY),
                 8: (8 << 20, 8 << 20), 6: (63457, 63457), 11: (63457, 63457), 13: (0, 0), 14: (0, 0)}


def init_rlimit(res):
    """(soft, hard) limit `res` of the first process (init_task's, as INIT_RLIMITS sets them)."""
    return _INIT_RLIMITS.get(res, (RLIM_INFINITY, RLIM_INFINITY))


def task_rlimit(t, res):
    """(soft, hard) limit `res` of the task."""
    return t.rlimits.get(res, init_rlimit(res))
