"""sysctl.NAME=VALUE boot parameters (fs/proc/proc_sysctl.c do_sysctl_args, process_sysctl_arg):
before the first process runs, each value is written to its /proc/sys file as root through the file's
own write handler, so a boot-time setting is checked and takes effect exactly as `echo VALUE >
/proc/sys/...` would. Names take dots or slashes (vm.overcommit_memory = vm/overcommit_memory)."""
import os

from faultlab.kernel.fs import FsError
from faultlab.kernel.fs.perm import MAY_WRITE


class SysctlArgError(ValueError):
    """A boot-time sysctl that cannot be applied (one line, naming it)."""


def sysctl_path(name):
    """The /proc/sys path of a sysctl name: dots become slashes, as process_sysctl_arg's strreplace;
    ValueError for an empty name or one with empty, '.' or '..' components."""
    comps = name.replace('.', '/').split('/')
    if not name or any(c in ('', '.', '..') for c in comps):
        raise SysctlArgError('sysctl %r: not a sysctl name (e.g. vm.overcommit_memory)' % name)
    return '/proc/sys/' + '/'.join(comps)


def parse_sysctl_arg(text):
    """'NAME=VALUE' -> (name, value); SysctlArgError when there is no '=' or no name."""
    name, eq, value = text.partition('=')
    if not eq or not name.strip():
        raise SysctlArgError('sysctl %r: expected NAME=VALUE (e.g. vm.overcommit_memory=1)' % text)
    name = name.strip()
    sysctl_path(name)
    return name, value.strip()


def process_sysctl_arg(k, name, value):
    """Write value to the sysctl `name` as root: SysctlArgError when the file does not exist, is not
    writable, or its handler refuses the value (with the errno's text)."""
    path = sysctl_path(name)
    try:
        inode = k.vfs.lookup(path)
    except FsError as e:
        raise SysctlArgError('sysctl %s: no such sysctl (%s)' % (name, os.strerror(e.errno)))
    if inode.is_dir():
        raise SysctlArgError('sysctl %s: is a directory, not a sysctl' % name)
    try:
        k.vfs.may_open(inode, MAY_WRITE)
        inode.write_content((value + '\n').encode())
    except FsError as e:
        raise SysctlArgError('sysctl %s=%s: %s' % (name, value, os.strerror(e.errno)))


def do_sysctl_args(k, args):
    """Apply [(name, value)] in order (a later setting of the same name wins, as on the command line)."""
    for name, value in args:
        process_sysctl_arg(k, name, value)
