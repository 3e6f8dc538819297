"""Run a static program natively in a world shaped like faultlab's guest, so that whatever it does stays there.

The program runs as root in fresh mount, PID, UTS, IPC and network namespaces (unshare(1)), chrooted into
a tmpfs laid out like faultlab's root (kernel/fs/rootfs.py): /bin/PROG, /dev with its own null, zero,
full, random and urandom nodes and a /dev/shm tmpfs, a /tmp tmpfs, /proc of the new PID namespace (the
program is PID 1 there, as faultlab's first process is), /etc/hostname and /etc/hosts, the host's
library view that faultlab shows every guest (kernel/fs/mountspec.py lib_view: read-only bind mounts
and the same symlinks), the hostname "faultlab", the resource limits faultlab's first process starts
with (prlimit(1); the host's own, e.g. a raised RLIMIT_NOFILE, would let dup2 reach descriptors the guest
cannot), /tmp and /dev/shm of faultlab's /tmp size, a memory cgroup bounding the whole run (a fuzzed
call must not take the host's memory), and address-space randomization off (setarch -R). Needs root; native_root_available() says
whether this host can do it.
"""
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time

from faultlab.kernel.fs.mountspec import lib_view
from faultlab.kernel.rlimits import init_rlimit, RLIM_INFINITY

_SETUP = r'''
set -e
[ -z "$MEMCG" ] || echo $$ > "$MEMCG/tasks"
R="$1"; PROG="$2"; NENV="$3"; shift 3
ENV=""; i=0
while [ "$i" -lt "$NENV" ]; do ENV="$ENV $1"; shift; i=$((i + 1)); done
mount -t tmpfs -o mode=755 faultlab-root "$R"
mkdir -p "$R/bin" "$R/dev" "$R/etc" "$R/home" "$R/mnt" "$R/proc" "$R/root" "$R/tmp"
chmod 700 "$R/root"
mount -t tmpfs -o mode=1777,size=$TMPFS_SIZE tmpfs "$R/tmp"
mount -t tmpfs -o mode=755 devtmpfs-copy "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3; mknod -m 666 "$R/dev/zero" c 1 5; mknod -m 666 "$R/dev/full" c 1 7
mknod -m 666 "$R/dev/random" c 1 8; mknod -m 666 "$R/dev/urandom" c 1 9
mkdir -m 1777 "$R/dev/shm"; mount -t tmpfs -o mode=1777,size=$TMPFS_SIZE tmpfs "$R/dev/shm"
printf 'faultlab\n' > "$R/etc/hostname"; printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' > "$R/etc/hosts"
cp "$PROG" "$R/bin/"
eval "$LIBVIEW"
mount -t proc proc "$R/proc"
hostname faultlab
exec "$(command -v prlimit)" $RLIMITS env -i $ENV "$(command -v setarch)" x86_64 -R "$(command -v chroot)" "$R" "/bin/$(basename "$PROG")" "$@"
'''


def _lib_view_script():
    """Shell commands that make faultlab's view of the host's libraries under "$R"."""
    lines = []
    for kind, src, guest in lib_view('/'):
        dst = '"$R"%s' % guest
        lines.append('mkdir -p "$(dirname %s)"' % dst)
        if kind == 'symlink':
            lines.append('ln -s %s %s' % (src, dst))
        else:
            lines.append('if [ -d %s ]; then mkdir -p %s; else touch %s; fi' % (src, dst, dst))
            lines.append('mount --bind %s %s && mount -o remount,bind,ro %s' % (src, dst, dst))
    return '\n'.join(lines)


# prlimit(1)'s option for each resource number (include/uapi/asm-generic/resource.h)
_PRLIMIT_OPTS = ('cpu', 'fsize', 'data', 'stack', 'core', 'rss', 'nproc', 'nofile', 'memlock', 'as', 'locks',
                 'sigpending', 'msgqueue', 'nice', 'rtprio', 'rttime')


def _rlimit_args():
    """prlimit(1) options giving every resource faultlab's initial soft:hard limit (no higher than this
    host lets the run raise its hard limit to: a container may deny CAP_SYS_RESOURCE)."""
    args = []
    for res, opt in enumerate(_PRLIMIT_OPTS):
        host_hard = resource.getrlimit(res)[1]
        host_hard = RLIM_INFINITY if host_hard == resource.RLIM_INFINITY else host_hard
        soft, hard = (min(v, host_hard) for v in init_rlimit(res))
        args.append('--%s=%s:%s' % (opt, *('unlimited' if v == RLIM_INFINITY else str(v) for v in (soft, hard))))
    return ' '.join(args)


def native_root_available():
    """True when this host can run a program in a private namespace-and-chroot root (root, unshare)."""
    if os.geteuid() != 0 or not all(shutil.which(c) for c in ('unshare', 'setarch', 'prlimit')):
        return False
    return subprocess.run(['unshare', '-m', '-p', '-f', '-u', '-i', '-n', 'true'],
                          capture_output=True).returncode == 0


MEMCG_ROOT = '/sys/fs/cgroup/memory'
NATIVE_MEMORY_LIMIT = 2 << 30     # the native run's memory cgroup: its tmpfs files and memory together


def _memcg_create(d):
    """A cgroup-v1 memory cgroup limited to NATIVE_MEMORY_LIMIT for the run (a fuzzed fallocate on the
    tmpfs root once took the whole host's memory), or '' where the host has none."""
    path = os.path.join(MEMCG_ROOT, os.path.basename(d))
    try:
        os.mkdir(path)
        with open(os.path.join(path, 'memory.limit_in_bytes'), 'w') as f:
            f.write(str(NATIVE_MEMORY_LIMIT))
    except OSError:
        return ''
    return path


def _memcg_remove(path):
    """End what is left in the run's cgroup (its own processes only) and remove it."""
    if not path:
        return
    for _ in range(50):
        try:
            with open(os.path.join(path, 'tasks')) as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
    try:
        os.rmdir(path)
    except OSError:
        pass


def run_native_root(program, args=(), env=(), timeout=300, tmpfs_size='32m'):
    """Run program natively as root in the guest-like private root; (exit status, stdout, stderr).
    /tmp and /dev/shm are tmpfs of tmpfs_size (faultlab's /tmp is half of the guest's RAM); the whole run
    is held to NATIVE_MEMORY_LIMIT by a memory cgroup where the host has cgroup v1's."""
    d = tempfile.mkdtemp(prefix='faultlab-root-')
    memcg = _memcg_create(d)
    try:
        e = {'PATH': '/bin', 'LANG': 'C'}
        e.update(kv.split('=', 1) for kv in env)
        assigns = ['%s=%s' % kv for kv in e.items()]
        assert not any(c.isspace() for a in assigns for c in a)
        cmd = ['env', 'LIBVIEW=' + _lib_view_script(), 'RLIMITS=' + _rlimit_args(), 'MEMCG=' + memcg,
               'TMPFS_SIZE=' + tmpfs_size, 'unshare', '-m', '-p', '-f', '-u', '-i', '-n', '--propagation', 'private', '--',
               'sh', '-c', _SETUP, 'sh', d, program, str(len(assigns))] + assigns + list(args)
        p = subprocess.run(cmd, capture_output=True, timeout=timeout,
                           env={'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C'})
        return p.returncode, p.stdout, p.stderr
    finally:
        _memcg_remove(memcg)
        os.rmdir(d)
