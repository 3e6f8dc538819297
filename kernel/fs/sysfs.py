"""sysfs (fs/sysfs, fs/kernfs): the /sys tree of kernel objects and their attribute files, registered
by the kernel like the proc files (Vfs.register_synth works inside it); the guest cannot add or
remove names. An attribute reads as one value per file and reports st_size 4096, as kernfs gives
every attribute a page."""
from faultlab.kernel.fs.procfs import ProcDir
from faultlab.kernel.fs.stat import PAGE_SIZE, S_IFDIR
from faultlab.kernel.fs.superblock import SuperBlock
from faultlab.kernel.fs.synth import SynthFile

SYSFS_MAGIC = 0x62656572
SYSFS_ROOT_INO = 1


class SysfsAttr(SynthFile):
    """A kobject attribute file (sysfs_create_file): st_size is PAGE_SIZE."""

    def __init__(self, sb, ino, read_fn, write_fn=None, mode=None, uid=0, gid=0, read_at=None):
        super().__init__(sb, ino, read_fn, write_fn, mode, uid, gid, read_at)
        self.size = PAGE_SIZE


class SysfsDir(ProcDir):
    """A kobject directory (kernfs_create_dir): the guest's create/mkdir/unlink/... are refused."""

    def proc_mkdir(self, name, mode=0o755):
        """kernfs_create_dir: a kobject's directory is drwxr-xr-x."""
        return super().proc_mkdir(name, mode)

    def proc_create(self, name, read_fn, write_fn=None, mode=None):
        """sysfs_create_file: add an attribute, or replace the callbacks of an existing one."""
        child = self._entries.get(name)
        if child is not None:
            return super().proc_create(name, read_fn, write_fn, mode)
        return self.add_entry(name, SysfsAttr(self.sb, self.sb.alloc_ino(), read_fn, write_fn, mode))


class SysFs(SuperBlock):
    """The sysfs instance mounted at /sys (nosuid, nodev, noexec, as systemd mounts it)."""
    fstype = 'sysfs'
    magic = SYSFS_MAGIC
    dir_class = SysfsDir
    first_ino = SYSFS_ROOT_INO + 1

    def __init__(self, clock=None, dev=None):
        """An empty sysfs tree."""
        super().__init__(clock, False, dev)
        self.root = SysfsDir(self, SYSFS_ROOT_INO, S_IFDIR | 0o555, 0, 0, None)
