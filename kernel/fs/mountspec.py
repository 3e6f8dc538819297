"""Parsing of --mount HOST:GUEST[:rw|:ro] command-line options, and the default view of the host's
shared libraries (or a --sysroot's) that dynamically linked programs need."""
import errno
import os

from faultlab.kernel.fs.errors import FsError

# What a dynamically linked program needs from the host, as QEMU's user mode reads it (or from
# qemu-x86_64 -L's directory): the library directories and the dynamic loader's configuration; and
# what glibc's name service and time zone code read (user and group names for ls -l, id, tar; the
# local time zone; Debian's alternatives, the targets of /usr/bin/awk and the like), so distribution
# tools print what they print natively
LIB_VIEW_PATHS = ('lib', 'lib64', 'usr/lib', 'usr/lib64', 'etc/ld.so.cache', 'etc/ld.so.conf',
                  'etc/ld.so.conf.d', 'etc/passwd', 'etc/group', 'etc/nsswitch.conf', 'etc/localtime',
                  'usr/share/zoneinfo', 'etc/alternatives')


def parse_mount_spec(spec):
    """'HOST:GUEST[:rw|:ro]' -> (host_path, guest_path, readonly); read-only unless ':rw'.

    The host path may itself contain ':' (the guest path and mode are split off the right).
    Raises ValueError with a message saying what is wrong.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError('empty mount spec (expected HOST:GUEST[:rw|:ro])')
    rest, readonly = spec, True
    head, sep, tail = spec.rpartition(':')
    if sep and tail in ('rw', 'ro'):
        rest, readonly = head, tail == 'ro'
    elif sep and spec.count(':') >= 2 and not tail.startswith('/'):
        raise ValueError(f'bad mount mode {tail!r} in {spec!r} (expected rw or ro)')
    host, sep, guest = rest.rpartition(':')
    if not sep:
        raise ValueError(f'mount spec {spec!r} has no guest path (expected HOST:GUEST[:rw|:ro])')
    if not host:
        raise ValueError(f'mount spec {spec!r} has no host path (expected HOST:GUEST[:rw|:ro])')
    if not guest:
        raise ValueError(f'mount spec {spec!r} has no guest path (expected HOST:GUEST[:rw|:ro])')
    if not guest.startswith('/'):
        raise ValueError(f'guest path {guest!r} in mount spec {spec!r} must be absolute')
    if guest.rstrip('/') == '' :
        raise ValueError(f'cannot mount over the guest root in {spec!r}')
    if in_proc(guest) and os.path.isdir(host):
        raise ValueError(f'only a file can be mounted inside /proc in {spec!r} (the kernel fills its directories)'
                         if in_proc(guest, ('/proc',)) else
                         f'only a file can be mounted inside /sys in {spec!r} (the kernel fills its directories)')
    return host, guest, readonly


def in_proc(guest, tops=('/proc', '/sys')):
    """Is the guest path in one of the kernel's synthetic trees (/proc or /sys), or one of them?"""
    return any(guest == top or guest.startswith(top + '/') for top in tops)


def proc_mountpoint(vfs, guest):
    """The mount point of a host file overlaid on /proc: proc lets nobody create names, so a missing
    one is registered as an empty synthetic file that the host file covers (the kernel's own file
    of that name, registered later, stays covered: the overlay's content is what the guest reads)."""
    if not in_proc(guest):
        return
    try:
        vfs.lookup(guest)
    except FsError as e:
        if e.errno != errno.ENOENT:
            raise
        vfs.register_synth(guest, lambda: b'')


def lib_view(sysroot='/'):
    """The read-only library view of sysroot: [('mount', host_path, guest_path)] for each of
    LIB_VIEW_PATHS that is a directory or file there, [('symlink', target, guest_path)] for each
    that is a symlink (kept as one, e.g. Debian's /lib -> usr/lib). Missing ones are left out."""
    out = []
    for rel in LIB_VIEW_PATHS:
        host = os.path.join(sysroot, rel)
        guest = '/' + rel
        if os.path.islink(host):
            out.append(('symlink', os.readlink(host), guest))
        elif os.path.isdir(host) or os.path.isfile(host):
            out.append(('mount', host, guest))
    return out
