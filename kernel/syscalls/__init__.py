"""The system calls: importing this package registers every handler in the table of
kernel/syscalls/registry.py; the kernel enters them through dispatch (kernel/syscalls/entry.py), and
the tools read the names from SYSCALL_NAMES.
"""
from faultlab.kernel.syscalls import close_range, copy_file_range, cred, epoll, eventfd, fchdir, fs, fsattr, \
    io_uring, ipc, mempolicy, mm, mount, net, pgrp, pidfd, pkeys, poll, prctl, priority, proc, process_vm, \
    ptrace, rusage, secretmem, splice, statfs, statx, thread, timer, userfaultfd, waitid, \
    xattr   # noqa: F401 (registers them)
from faultlab.kernel.syscalls.entry import dispatch
from faultlab.kernel.syscalls.registry import KNOWN_NAMES, MASK64, SYSCALL_NAMES, SYSCALLS, s32, s64, syscall

__all__ = ['dispatch', 'KNOWN_NAMES', 'MASK64', 'SYSCALL_NAMES', 'SYSCALLS', 's32', 's64', 'syscall']
