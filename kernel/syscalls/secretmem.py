"""memfd_secret(2) (mm/secretmem.c): Linux 6.12 enables secret memory by default
(secretmem.enable=1), so the call makes a secretmem file (kernel/mm/secretmem.py)."""
import errno

from faultlab.kernel.file import O_CLOEXEC
from faultlab.kernel.mm.secretmem import secretmem_file_create
from faultlab.kernel.syscalls.registry import syscall

SECRETMEM_FLAGS_MASK = 0               # no mode flags are defined


@syscall(447, 'memfd_secret')
def sys_memfd_secret(k, t, flags, *_):
    """A secretmem file descriptor; O_CLOEXEC is the only flag (EINVAL otherwise)."""
    flags &= 0xFFFFFFFF
    if flags & ~(SECRETMEM_FLAGS_MASK | O_CLOEXEC):
        return -errno.EINVAL
    f = secretmem_file_create(k, t)
    fd = t.files.install(f, cloexec=bool(flags & O_CLOEXEC))
    if fd < 0:
        f.put()
    return fd
