"""ptrace(2) (kernel/ptrace.c SYSCALL_DEFINE4(ptrace), ptrace_request, generic_ptrace_peekdata):
the requests faultlab models; any other is -EIO, as Linux answers a request it does not know.

PEEKTEXT/PEEKDATA store the word at *data and return 0 (glibc's wrapper returns that word); a word the
tracee's memory cannot give (unmapped, or secret memory, which get_user_pages refuses) is -EIO.
"""
import errno
import struct

from faultlab.kernel.ptrace import (ptrace_attach, ptrace_check_attach, ptrace_detach, ptrace_access_vm,
                                    ptrace_readdata, ptrace_resume, ptrace_traceme)
from faultlab.kernel.signal import SIGKILL
from faultlab.kernel.signal_send import send_signal
from faultlab.kernel.syscalls.registry import syscall
from faultlab.kernel.tasktable import find_task_by_vpid

PTRACE_TRACEME, PTRACE_PEEKTEXT, PTRACE_PEEKDATA, PTRACE_POKETEXT, PTRACE_POKEDATA = 0, 1, 2, 4, 5
PTRACE_CONT, PTRACE_KILL, PTRACE_ATTACH, PTRACE_DETACH = 7, 8, 16, 17
PTRACE_SEIZE = 0x4206
PTRACE_O_MASK = 0x003000FF           # the PTRACE_O_* options SEIZE accepts


def generic_ptrace_peekdata(t, child, addr, data):
    """PTRACE_PEEKTEXT/PEEKDATA: the tracee's word at addr into *data; -EIO if it cannot be read."""
    word = ptrace_readdata(t, child, addr, 8)
    if len(word) != 8:
        return -errno.EIO
    return 0 if t.umem.write(data, word) else -errno.EFAULT


def generic_ptrace_pokedata(t, child, addr, data):
    """PTRACE_POKETEXT/POKEDATA: the word data into the tracee at addr (FOLL_FORCE: even read-only
    private code); -EIO if it cannot be written."""
    done = ptrace_access_vm(t, child, addr, struct.pack('<Q', data & 0xFFFFFFFFFFFFFFFF))
    return 0 if done == 8 else -errno.EIO


def ptrace_kill(k, t, child):
    """PTRACE_KILL: SIGKILL to the tracee's process, stopped or not."""
    send_signal(k, t, child, SIGKILL, shared=True)
    return 0


def ptrace_request(k, t, request, child, addr, data):
    """The requests on an attached, stopped tracee."""
    if request in (PTRACE_PEEKTEXT, PTRACE_PEEKDATA):
        return generic_ptrace_peekdata(t, child, addr, data)
    if request in (PTRACE_POKETEXT, PTRACE_POKEDATA):
        return generic_ptrace_pokedata(t, child, addr, data)
    if request == PTRACE_CONT:
        return ptrace_resume(k, child, data)
    if request == PTRACE_DETACH:
        return ptrace_detach(k, child, data)
    if request == PTRACE_KILL:
        return ptrace_kill(k, t, child)
    return -errno.EIO


def ptrace_seize(k, t, child, addr, flags):
    """PTRACE_SEIZE: addr must be 0 (-EIO), flags only PTRACE_O_* options (-EINVAL)."""
    if addr:
        return -errno.EIO
    if flags & ~PTRACE_O_MASK:
        return -errno.EINVAL
    return ptrace_attach(k, t, child, seize=True)


@syscall(101, 'ptrace')
def sys_ptrace(k, t, request, pid, addr, data, *_):
    """TRACEME, ATTACH, SEIZE, then the requests on a tracee the caller has stopped (-ESRCH if it does
    not trace it or it is running; PTRACE_KILL only needs it traced)."""
    request &= 0xFFFFFFFFFFFFFFFF
    if request == PTRACE_TRACEME:
        return ptrace_traceme(t)
    child = find_task_by_vpid(k, pid & 0xFFFFFFFF) if pid & 0xFFFFFFFF < 0x80000000 else None
    if child is None:
        return -errno.ESRCH
    if request == PTRACE_ATTACH:
        return ptrace_attach(k, t, child)
    if request == PTRACE_SEIZE:
        return ptrace_seize(k, t, child, addr, data)
    err = ptrace_check_attach(t, child, ignore_state=request == PTRACE_KILL)
    if err:
        return err
    return ptrace_request(k, t, request, child, addr, data)
