"""Run a static program natively in a world shaped like faultlab's guest, so that whatever it does stays there.

The program runs as root in fresh mount, PID, UTS, IPC and network namespaces (unshare(1)), chrooted into
a tmpfs laid out like faultlab's root (kernel/fs/rootfs.py): /bin/PROG, /dev with its own null, zero,
full, random and urandom nodes and a /dev/shm tmpfs, a /tmp tmpfs, /proc of the new PID namespace (the
program is PID 1 there, as faultlab's first process is), /etc/hostname and /etc/hosts, the host's
library view that faultlab shows every guest (kernel/fs/mountspec.py lib_view: read-only bind mounts
and the same symlinks), the hostname "faultlab", and address-space randomization off (setarch -R). Needs root; native_root_available() says
whether this host can do it.
"""
import os
import shutil
import subprocess
import tempfile

from kernel.fs.mountspec import lib_view

_SETUP = r'''
set -e
R="$1"; PROG="$2"; NENV="$3"; shift 3
ENV=""; i=0
while [ "$i" -lt "$NENV" ]; do ENV="$ENV $1"; shift; i=$((i + 1)); done
mount -t tmpfs -o mode=755 faultlab-root "$R"
mkdir -p "$R/bin" "$R/dev" "$R/etc" "$R/home" "$R/mnt" "$R/proc" "$R/root" "$R/tmp"
chmod 700 "$R/root"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mount -t tmpfs -o mode=755 devtmpfs-copy "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3; mknod -m 666 "$R/dev/zero" c 1 5; mknod -m 666 "$R/dev/full" c 1 7
mknod -m 666 "$R/dev/random" c 1 8; mknod -m 666 "$R/dev/urandom" c 1 9
mkdir -m 1777 "$R/dev/shm"; mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
printf 'faultlab\n' > "$R/etc/hostname"; printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' > "$R/etc/hosts"
cp "$PROG" "$R/bin/"
eval "$LIBVIEW"
mount -t proc proc "$R/proc"
hostname faultlab
exec env -i $ENV "$(command -v setarch)" x86_64 -R "$(command -v chroot)" "$R" "/bin/$(basename "$PROG")" "$@"
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


def native_root_available():
    """True when this host can run a program in a private namespace-and-chroot root (root, unshare)."""
    if os.geteuid() != 0 or not shutil.which('unshare') or not shutil.which('setarch'):
        return False
    return subprocess.run(['unshare', '-m', '-p', '-f', '-u', '-i', '-n', 'true'],
                          capture_output=True).returncode == 0


def run_native_root(program, args=(), env=(), timeout=300):
    """Run program natively as root in the guest-like private root; (exit status, stdout, stderr)."""
    d = tempfile.mkdtemp(prefix='faultlab-root-')
    try:
        e = {'PATH': '/bin', 'LANG': 'C'}
        e.update(kv.split('=', 1) for kv in env)
        assigns = ['%s=%s' % kv for kv in e.items()]
        assert not any(c.isspace() for a in assigns for c in a)
        cmd = ['env', 'LIBVIEW=' + _lib_view_script(), 'unshare', '-m', '-p', '-f', '-u', '-i', '-n', '--propagation', 'private', '--',
               'sh', '-c', _SETUP, 'sh', d, program, str(len(assigns))] + assigns + list(args)
        p = subprocess.run(cmd, capture_output=True, timeout=timeout,
                           env={'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C'})
        return p.returncode, p.stdout, p.stderr
    finally:
        os.rmdir(d)
