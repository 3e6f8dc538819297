"""Process file descriptors (kernel/pid.c pidfd_open, kernel/signal.c pidfd_send_signal,
mm/oom_kill.c process_mrelease).

A pidfd is an open file on pidfs referring to a process; reading or writing it is EINVAL. It stays
valid after the process ends: the zombie until it is reaped, then ESRCH. Poll on a pidfd reports it
readable once the process (with PIDFD_THREAD, the thread) has ended, and hung up once it is reaped.
"""
import errno
import struct

from faultlab.kernel.file import O_NONBLOCK, O_RDWR, OpenFile
from faultlab.kernel.fs.pipe import POLLHUP, POLLIN, POLLRDNORM
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.superblock import SuperBlock
from faultlab.kernel.fs.synth import SynthFile
from faultlab.kernel.mm.oom_reap import __oom_reap_task_mm
from faultlab.kernel.signal import sigkill_pending
from faultlab.kernel.proc_pid import tgid_pidfd_to_pid
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.pgrp import find_process
from faultlab.kernel.signal_send import group_send_sig_info

PIDFS_MAGIC = 0x50494446
PIDFD_NONBLOCK = O_NONBLOCK
PIDFD_THREAD = 0o200                    # O_EXCL
SI_USER, SI_TKILL = 0, -6


class PidFs(SuperBlock):
    """pidfs: the pseudo filesystem of pidfd inodes."""
    fstype = 'pidfs'
    magic = PIDFS_MAGIC


class PidfdInode(SynthFile):
    """The inode of a pidfd: the process it refers to; no read or write."""

    def __init__(self, sb, ino, group, task, thread=False):
        super().__init__(sb, ino, None, self._einval, 0o600, read_at=self._einval)
        self.group = group
        self.task = task
        self.thread = thread              # PIDFD_THREAD: about the thread, not the process

    def poll(self):
        """pidfd_poll: readable when the thread (PIDFD_THREAD) or the whole process has ended;
        hung up too once nothing is left of it (reaped)."""
        if self.group.reaped:
            return POLLIN | POLLRDNORM | POLLHUP
        if self.task.exited and (self.thread or self.group.exited):
            return POLLIN | POLLRDNORM
        return 0

    @property
    def wait_queue(self):
        """The process's wait_pidfd queue, woken as its threads end."""
        return self.group.wait_pidfd

    @staticmethod
    def _einval(*_):
        raise FsError(errno.EINVAL)


def _pidfs(k):
    sb = getattr(k, 'pidfs', None)
    if sb is None:
        sb = k.pidfs = PidFs(k.vfs.root_sb.clock)
    return sb


@syscall(434, 'pidfd_open')
def sys_pidfd_open(k, t, pid, flags, *_):
    pid = s32(pid)
    if flags & ~(PIDFD_NONBLOCK | PIDFD_THREAD):
        return -errno.EINVAL
    if pid <= 0:
        return -errno.EINVAL
    group = find_process(k, pid)
    if group is None:
        return -errno.ESRCH
    task = k.tasks[pid]
    if not flags & PIDFD_THREAD and task.tid != task.tgid:
        return -errno.EINVAL                      # not a thread-group leader
    sb = _pidfs(k)
    inode = PidfdInode(sb, sb.alloc_ino(), group, task, bool(flags & PIDFD_THREAD))
    inode.nlink = 0                               # anonymous: gone with its last open file
    inode.ihold()
    return t.files.install(OpenFile(inode, O_RDWR | (flags & PIDFD_NONBLOCK), 'anon_inode:[pidfd]'), cloexec=True)


def pidfd_get_task(t, fd):
    """The process a pidfd refers to: (ThreadGroup, -errno or 0)."""
    f = t.files.get(s32(fd))
    if f is None or not isinstance(getattr(f, 'inode', None), PidfdInode):
        return None, -errno.EBADF
    group = f.inode.group
    return (None, -errno.ESRCH) if group.reaped else (group, 0)


def task_will_free_mem(k, group, mm):
    """The process is dying (SIGKILL pending) and so is every other process sharing its mm
    (CLONE_VM without CLONE_THREAD), so its memory is going away."""
    if not sigkill_pending(group):
        return False
    if mm.users <= len(group.live_threads()):
        return True
    return all(sigkill_pending(th.group) for th in k.tasks.values() if th.mm is mm and not th.exited)


@syscall(448, 'process_mrelease')
def sys_process_mrelease(k, t, pidfd, flags, *_):
    """Reap a dying process's memory now: a process sent SIGKILL that has not yet ended loses its
    private memory at once (__oom_reap_task_mm) and the call returns 0; EINVAL while it is alive
    without a pending SIGKILL; once it has ended there is no task with memory left to find (ESRCH,
    as Linux answers for a zombie)."""
    if flags:
        return -errno.EINVAL
    group, err = pidfd_get_task(t, pidfd)
    if err:
        return err
    if group.exited:
        return -errno.ESRCH                        # find_lock_task_mm: no thread with an mm
    mm = group.live_threads()[0].mm
    if not task_will_free_mem(k, group, mm):
        return -errno.EINVAL
    return 0 if __oom_reap_task_mm(mm) else -errno.EAGAIN


@syscall(424, 'pidfd_send_signal')
def sys_pidfd_send_signal(k, t, pidfd, sig, info, flags, *_):
    """A signal to the process, with the caller's siginfo if it gives one (its own process only may
    claim a non-kernel si_code, as rt_sigqueueinfo)."""
    sig = s32(sig)
    if flags & 0xFFFFFFFF:
        return -errno.EINVAL
    group, err = pidfd_get_task(t, pidfd)
    if err == -errno.EBADF:
        group, err = tgid_pidfd_to_pid(t.files.get(s32(pidfd)))
    if err:
        return err
    if not 0 <= sig <= 64:
        return -errno.EINVAL
    raw = None
    if info:
        raw = t.umem.read(info, 128)
        if raw is None:
            return -errno.EFAULT
        signo, _errno, code = struct.unpack_from('<iii', raw)
        if signo != sig:
            return -errno.EINVAL
        if (code >= 0 or code == SI_TKILL) and group is not t.group:
            return -errno.EPERM
    return group_send_sig_info(k, t, group, sig, info=raw)
