"""procfs: a tree of synthetic files registered by the kernel; the guest cannot add or remove names."""
import errno

from faultlab.kernel.fs.dir import Directory, MemDir
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.perm import sysctl_perm
from faultlab.kernel.fs.stat import PROC_SUPER_MAGIC, S_IFDIR
from faultlab.kernel.fs.superblock import SuperBlock
from faultlab.kernel.fs.synth import SynthFile, SynthSymlink

PROC_ROOT_INO = 1


class SysctlFile(SynthFile):
    """A file under /proc/sys: its mode is checked as proc_sys_permission does (no capability
    overrides it)."""

    def permission(self, mask, cred):
        """i_op->permission: sysctl_perm."""
        sysctl_perm(self, mask, cred)


class ProcDir(MemDir):
    """A proc directory: the guest's create/mkdir/unlink/... fail like missing inode operations."""
    sysctl = False           # inside /proc/sys: its files are SysctlFiles
    dynamic = None           # the root's /proc/PID directories (kernel/proc_pid.py ProcPids)

    def lookup(self, name):
        """The entry called name, or a /proc/PID directory in the root."""
        child = self._entries.get(name)
        if child is None and self.dynamic is not None:
            return self.dynamic.lookup(name)
        return child

    def entries(self):
        """The fixed entries, then (in the root) the processes, as proc_root_readdir lists them."""
        out = list(self._entries.items())
        return out + self.dynamic.entries() if self.dynamic is not None else out

    # no inode operations for the guest: the refusals of the base Directory, not MemDir's
    create = Directory.create
    mkdir = Directory.mkdir
    symlink = Directory.symlink
    link = Directory.link
    unlink = Directory.unlink
    rmdir = Directory.rmdir
    rename = Directory.rename

    # kernel-side registration (bypasses the guest restrictions above)
    def proc_mkdir(self, name, mode=0o555):
        """proc_mkdir: add a subdirectory (or return the existing one)."""
        child = self._entries.get(name)
        if child is not None:
            if not child.is_dir():
                raise FsError(errno.ENOTDIR)
            return child
        child = self.add_entry(name, self.sb.new_dir(S_IFDIR | mode, 0, 0, self))
        child.sysctl = self.sysctl or (self is self.sb.root and name == 'sys')
        return child

    def proc_create(self, name, read_fn, write_fn=None, mode=None):
        """proc_create: add a SynthFile, or replace the callbacks of an existing one."""
        child = self._entries.get(name)
        if child is not None:
            if not isinstance(child, SynthFile):
                raise FsError(errno.EEXIST)
            child.read_fn, child.write_fn = read_fn, write_fn
            if mode is not None:
                child.mode = (child.mode & ~0o7777) | (mode & 0o7777)
            return child
        cls = SysctlFile if self.sysctl else SynthFile
        return self.add_entry(name, cls(self.sb, self.sb.alloc_ino(), read_fn, write_fn, mode))

    def proc_symlink(self, name, target_fn):
        """proc_symlink: add a symlink whose target is computed (str or callable)."""
        fn = target_fn if callable(target_fn) else (lambda t=target_fn: t)
        child = self._entries.get(name)
        if child is not None:
            if not isinstance(child, SynthSymlink):
                raise FsError(errno.EEXIST)
            child.target_fn = fn
            return child
        return self.add_entry(name, SynthSymlink(self.sb, self.sb.alloc_ino(), fn))

    def proc_remove(self, name):
        """remove_proc_entry: drop a name (a directory with everything below it)."""
        child = self._entries.get(name)
        if child is None:
            raise FsError(errno.ENOENT)
        if child.is_dir():
            for sub, _ in child.entries():
                child.proc_remove(sub)
            self.nlink -= 1
            child.parent = None
        self._remove(name)
        child.clear_nlink()


class ProcFs(SuperBlock):
    """A procfs instance (files are added by the kernel through Vfs.register_synth)."""
    fstype = 'proc'
    magic = PROC_SUPER_MAGIC
    dir_class = ProcDir
    first_ino = PROC_ROOT_INO + 1

    def __init__(self, clock=None, dev=None):
        """An empty proc tree."""
        super().__init__(clock, False, dev)
        self.root = ProcDir(self, PROC_ROOT_INO, S_IFDIR | 0o555, 0, 0, None)
