"""A hint when a guest's open, openat, creat, execve or execveat fails with ENOENT on a path that
exists on the host: the guest sees only its own tree and the --mount directories, which users of
the command line easily forget. Printed once per run, as a kernel warning, naming the directory to
mount: `/data/x exists on the host but is not visible in the guest; --mount /data:/data gives it`.

Never hinted at: the paths the kernel makes up itself (/proc, /sys, /dev: the host has its own), and
the system's directories (/usr, /etc, /lib ..., /var, /run), which libraries probe on their own
(glibc's locale.alias, ld.so's search path): a missing one there is the guest's normal state, not a
forgotten --mount.
"""
import errno
import os
import posixpath

PATH_MAX = 4096
# system call number -> which argument is the path, and whether it is relative to a dirfd argument
PATH_ARG = {2: 0, 257: 1, 85: 0, 59: 0, 322: 1}      # open, openat, creat, execve, execveat
QUIET = ('/proc', '/sys', '/dev', '/usr', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/var', '/run', '/bin',
         '/sbin', '/boot')


def enoent_host_hint(k, task, nr, args, ret):
    """After a system call: if it was one of PATH_ARG's and failed with ENOENT on an absolute (or
    cwd-relative) path that the host has, warn once how to make it visible."""
    if ret != -errno.ENOENT or nr not in PATH_ARG or ('host-path-hint',) in k._warned:
        return
    raw = task.umem.read_code(args[PATH_ARG[nr]], PATH_MAX) if args[PATH_ARG[nr]] else None
    if not raw:
        return
    path = raw.split(b'\0', 1)[0].decode('utf-8', 'surrogateescape')
    if not path:
        return
    if not path.startswith('/'):
        if nr in (257, 322) and args[0] & 0xFFFFFFFF != 0xFFFFFF9C:     # relative to a dirfd, not AT_FDCWD
            return
        path = posixpath.join(task.cwd, path)
    path = posixpath.normpath(path)
    if any(path == s or path.startswith(s + '/') for s in QUIET) or not os.path.exists(path):
        return
    if any(path == g.rstrip('/') or path.startswith(g.rstrip('/') + '/') for _h, g, _ro in k.config.mounts):
        return                          # under a mount: the guest's own ENOENT
    where = path if os.path.isdir(path) else posixpath.dirname(path)
    k.warn_once(('host-path-hint',), '%s exists on the host but is not visible in the guest; --mount %s:%s gives it'
                % (path, where, where))
