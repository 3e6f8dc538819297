"""The system-call table: Linux x86-64 numbers, the @syscall registry and the argument helpers.

Handlers are registered with @syscall(nr, name) and called as handler(kernel, task, a0..a5); they
return the value for RAX (negative errno on failure). This module sits below every syscall module:
they import the decorator from here, and kernel/syscalls/__init__.py imports them all.
"""
SYSCALLS = {}
# names of calls we know but do not implement (for the one-time warning)
KNOWN_NAMES = {
    7: 'poll', 15: 'rt_sigreturn', 22: 'pipe', 23: 'select', 29: 'shmget', 30: 'shmat', 31: 'shmctl',
    34: 'pause', 37: 'alarm', 38: 'setitimer', 41: 'socket', 42: 'connect', 43: 'accept', 44: 'sendto',
    45: 'recvfrom', 56: 'clone', 57: 'fork', 58: 'vfork', 59: 'execve', 61: 'wait4', 62: 'kill',
    101: 'ptrace', 149: 'mlock', 150: 'munlock', 151: 'mlockall', 152: 'munlockall', 157: 'prctl',
    200: 'tkill', 203: 'sched_setaffinity', 204: 'sched_getaffinity', 213: 'epoll_create', 232: 'epoll_wait',
    234: 'tgkill', 272: 'unshare', 290: 'eventfd2', 293: 'pipe2', 324: 'membarrier', 325: 'mlock2',
    332: 'statx', 334: 'rseq', 435: 'clone3',
}
SYSCALL_NAMES = dict(KNOWN_NAMES)
MASK64 = (1 << 64) - 1


def s32(v):
    """A register argument read as a C int."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & (1 << 31) else v


def s64(v):
    """A register argument read as a C long."""
    return v - (1 << 64) if v & (1 << 63) else v


def syscall(nr, name):
    """Register a handler for system call number nr."""
    def deco(fn):
        SYSCALLS[nr] = fn
        SYSCALL_NAMES[nr] = name
        fn.sysname = name
        return fn
    return deco
