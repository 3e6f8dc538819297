"""Who may lock how much memory (mm/mlock.c can_do_mlock, do_mlock, mlockall; mm/mmap.c
mlock_future_ok): RLIMIT_MEMLOCK bounds the locked pages of a process without CAP_IPC_LOCK."""
import errno

from faultlab.kernel.cred import CAP_IPC_LOCK, capable
from faultlab.kernel.mm.vma import VM_LOCKED
from faultlab.kernel.rlimits import task_rlimit

RLIMIT_MEMLOCK = 8
PAGE_SHIFT = 12


def can_do_mlock(t):
    """A non-zero RLIMIT_MEMLOCK or CAP_IPC_LOCK."""
    return task_rlimit(t, RLIMIT_MEMLOCK)[0] != 0 or capable(t, CAP_IPC_LOCK)


def _locked_pages(mm, start=0, end=1 << 64):
    """Pages of VM_LOCKED mappings in [start, end) (mm->locked_vm over the whole space)."""
    n = 0
    for v in mm.vmas:
        if v.vm_flags & VM_LOCKED:
            n += max(0, min(v.vm_end, end) - max(v.vm_start, start)) >> PAGE_SHIFT
    return n


def mlock_check(t, start, length):
    """do_mlock's checks before locking [start, start+length): -EPERM, -ENOMEM or 0."""
    if not can_do_mlock(t):
        return -errno.EPERM
    if capable(t, CAP_IPC_LOCK):
        return 0
    length = (length + (start & 0xFFF) + 0xFFF) & ~0xFFF & ((1 << 64) - 1)    # PAGE_ALIGN may wrap to 0
    start &= ~0xFFF
    end = start + length
    limit = task_rlimit(t, RLIMIT_MEMLOCK)[0] >> PAGE_SHIFT
    locked = ((end - start) >> PAGE_SHIFT) + _locked_pages(t.mm)
    if locked > limit:
        locked -= _locked_pages(t.mm, start, end)      # already locked pages count once
    return 0 if locked <= limit else -errno.ENOMEM


def mlockall_check(t, flags, mcl_current):
    """mlockall's checks: -EPERM without the right to lock, -ENOMEM when MCL_CURRENT would lock more
    than RLIMIT_MEMLOCK allows."""
    if not can_do_mlock(t):
        return -errno.EPERM
    limit = task_rlimit(t, RLIMIT_MEMLOCK)[0] >> PAGE_SHIFT
    if not flags & mcl_current or t.mm.total_vm <= limit or capable(t, CAP_IPC_LOCK):
        return 0
    return -errno.ENOMEM


def mlock_future_ok(t, nbytes):
    """mlock_future_ok: may nbytes more of locked memory be mapped (RLIMIT_MEMLOCK over the pages
    already locked, or CAP_IPC_LOCK)?"""
    if capable(t, CAP_IPC_LOCK):
        return True
    limit = task_rlimit(t, RLIMIT_MEMLOCK)[0] >> PAGE_SHIFT
    return (nbytes >> PAGE_SHIFT) + _locked_pages(t.mm) <= limit
