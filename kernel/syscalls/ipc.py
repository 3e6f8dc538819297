"""System V shared-memory system calls: shmget, shmat, shmdt, shmctl (ipc/shm.c's entry points)."""
import errno

from faultlab.kernel.ipc.shm import (IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT, SHM_INFO, SHM_LOCK, SHM_STAT, SHM_STAT_ANY,
                            SHM_UNLOCK, SHMID64_DS, do_shmat, ksys_shmdt, ksys_shmget, shm_info, shm_ns,
                            shmctl_do_lock, shmctl_down, shmctl_stat, shminfo)
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.mm import mmap_write_locked


@syscall(29, 'shmget')
def sys_shmget(k, t, key, size, shmflg, *_):
    return ksys_shmget(k, t, s32(key), size, s32(shmflg))


@syscall(30, 'shmat')
@mmap_write_locked
def sys_shmat(k, t, shmid, shmaddr, shmflg, *_):
    return do_shmat(k, t, s32(shmid), shmaddr, s32(shmflg))


@syscall(67, 'shmdt')
@mmap_write_locked
def sys_shmdt(k, t, shmaddr, *_):
    return ksys_shmdt(k, t, shmaddr)


def _copy_out(t, buf, data, ret):
    """copy_to_user of a result struct: ret, or -EFAULT."""
    if not buf or not t.umem.write(buf, data):
        return -errno.EFAULT
    return ret


@syscall(31, 'shmctl')
def sys_shmctl(k, t, shmid, cmd, buf, *_):
    shmid, cmd = s32(shmid), s32(cmd)
    if cmd < 0 or shmid < 0:
        return -errno.EINVAL
    if cmd in (IPC_INFO, SHM_INFO):
        data, ret = (shminfo if cmd == IPC_INFO else shm_info)(shm_ns(k))
        return _copy_out(t, buf, data, ret)
    if cmd in (IPC_STAT, SHM_STAT, SHM_STAT_ANY):
        data, ret = shmctl_stat(k, t, shmid, cmd)
        return ret if data is None else _copy_out(t, buf, data, ret)
    if cmd == IPC_SET:
        data = t.umem.read(buf, SHMID64_DS.size) if buf else None
        if data is None:
            return -errno.EFAULT
        return shmctl_down(k, t, shmid, cmd, bytes(data))
    if cmd == IPC_RMID:
        return shmctl_down(k, t, shmid, cmd)
    if cmd in (SHM_LOCK, SHM_UNLOCK):
        return shmctl_do_lock(k, t, shmid, cmd)
    return -errno.EINVAL
