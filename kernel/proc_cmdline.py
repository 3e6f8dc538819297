"""/proc/PID/cmdline and /proc/PID/environ: the argument and environment strings execve put on the stack,
read from the process's memory as fs/proc/base.c does (get_mm_cmdline, environ_read), so a program that
rewrote them (setproctitle) is seen as it is now."""
from faultlab.kernel.mm.access_remote import access_remote_vm


def _read(mm, addr, length):
    """Bytes of the process's memory as FOLL_ANON reads them (no forcing past the mapping's rights)."""
    return access_remote_vm(mm, addr, length=length, gup_flags=0)


def get_mm_cmdline(mm, pos, count):
    """The bytes of [arg_start, arg_end) from pos; if the program overwrote the NUL that ends them
    (setproctitle), get_mm_proctitle's string instead."""
    if mm is None or not getattr(mm, 'arg_end', 0):
        return b''
    start, end = mm.arg_start, mm.arg_end
    if end > start and _read(mm, end - 1, 1) not in (b'\0', b''):
        return get_mm_proctitle(mm, pos, count)
    if pos >= end - start:
        return b''
    return _read(mm, start + pos, min(count, end - start - pos))


def get_mm_proctitle(mm, pos, count):
    """From arg_start up to and including the first NUL, which may lie in the environment area (the
    arguments may overflow into it, not past it)."""
    limit = mm.env_end if mm.env_start == mm.arg_end and mm.env_end >= mm.env_start else mm.arg_end
    title = _read(mm, mm.arg_start, limit - mm.arg_start)
    nul = title.find(b'\0')
    if nul >= 0:
        title = title[:nul + 1]
    return title[pos:pos + count]


def environ_read(mm, pos, count):
    """The bytes of [env_start, env_end) from pos."""
    if mm is None or not getattr(mm, 'env_end', 0):
        return b''
    size = mm.env_end - mm.env_start
    if pos >= size:
        return b''
    return _read(mm, mm.env_start + pos, min(count, size - pos))


def register_proc_cmdline(k):
    """Publish /proc/self/cmdline (world-readable) and /proc/self/environ (owner-only, 0400)."""
    cmdline = k.vfs.register_synth('/proc/self/cmdline', None)
    cmdline.read_at = lambda pos, count: get_mm_cmdline(k.current.mm, pos, count)
    environ = k.vfs.register_synth('/proc/self/environ', None, None, 0o400)
    environ.read_at = lambda pos, count: environ_read(k.current.mm, pos, count)
