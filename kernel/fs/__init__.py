"""The guest filesystem: inodes, superblocks (disk, tmpfs, host, dev, proc) and the Vfs namespace."""
from kernel.fs.chrdev import CharDevice, DeterministicRandom
from kernel.fs.devfs import DevFs
from kernel.fs.dir import Directory, MemDir
from kernel.fs.dirent import pack_dirent64, mode_to_dtype
from kernel.fs.diskfs import DiskFile, DiskFs
from kernel.fs.errors import FsError
from kernel.fs.hostfs import HostFs
from kernel.fs.inode import Inode
from kernel.fs.mountspec import parse_mount_spec
from kernel.fs.perm import ROOT, Cred
from kernel.fs.procfs import ProcFs
from kernel.fs.rootfs import make_root_fs
from kernel.fs.stat import StatFs, Timespec, makedev, pack_stat, pack_statfs
from kernel.fs.synth import SynthFile, SynthSymlink
from kernel.fs.tmpfs import MemFile, TmpFs
from kernel.fs.vfs import Vfs

__all__ = ['CharDevice', 'Cred', 'DeterministicRandom', 'DevFs', 'Directory', 'DiskFile', 'DiskFs',
           'FsError', 'HostFs', 'Inode', 'MemDir', 'MemFile', 'ProcFs', 'ROOT', 'StatFs', 'SynthFile',
           'SynthSymlink', 'Timespec', 'TmpFs', 'Vfs', 'make_root_fs', 'makedev', 'mode_to_dtype',
           'pack_dirent64', 'pack_stat', 'pack_statfs', 'parse_mount_spec']
