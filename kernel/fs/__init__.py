"""The guest filesystem: inodes, superblocks (disk, tmpfs, host, dev, proc) and the Vfs namespace."""
from faultlab.kernel.fs.chrdev import CharDevice, DeterministicRandom
from faultlab.kernel.fs.devfs import DevFs
from faultlab.kernel.fs.dir import Directory, MemDir
from faultlab.kernel.fs.dirent import pack_dirent64, mode_to_dtype
from faultlab.kernel.fs.diskfs import DiskFile, DiskFs
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.hostfs import HostFs
from faultlab.kernel.fs.inode import Inode
from faultlab.kernel.fs.mountspec import parse_mount_spec
from faultlab.kernel.fs.perm import ROOT, Cred
from faultlab.kernel.fs.procfs import ProcFs
from faultlab.kernel.fs.rootfs import make_root_fs
from faultlab.kernel.fs.stat import StatFs, Timespec, makedev, pack_stat, pack_statfs
from faultlab.kernel.fs.synth import SynthFile, SynthSymlink
from faultlab.kernel.fs.tmpfs import MemFile, TmpFs
from faultlab.kernel.fs.vfs import Vfs

__all__ = ['CharDevice', 'Cred', 'DeterministicRandom', 'DevFs', 'Directory', 'DiskFile', 'DiskFs',
           'FsError', 'HostFs', 'Inode', 'MemDir', 'MemFile', 'ProcFs', 'ROOT', 'StatFs', 'SynthFile',
           'SynthSymlink', 'Timespec', 'TmpFs', 'Vfs', 'make_root_fs', 'makedev', 'mode_to_dtype',
           'pack_dirent64', 'pack_stat', 'pack_statfs', 'parse_mount_spec']
