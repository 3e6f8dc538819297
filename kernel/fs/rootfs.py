"""make_root_fs: the standard guest tree (disk root, /tmp, /dev, /proc, /home, /etc, ...)."""
import errno

from faultlab.kernel.fs.devfs import DevFs
from faultlab.kernel.fs.diskfs import DiskFs
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.hostfs import HostFs
from faultlab.kernel.fs.mountspec import lib_view, proc_mountpoint
from faultlab.kernel.fs.mount import MNT_NODEV, MNT_NOEXEC, MNT_NOSUID
from faultlab.kernel.fs.procfs import ProcFs
from faultlab.kernel.fs.sysfs import SysFs
from faultlab.kernel.fs.tmpfs import TmpFs
from faultlab.kernel.fs.vfs import Vfs

ETC_FILES = {
    'hostname': b'faultlab\n',
    'hosts': b'127.0.0.1\tlocalhost\n::1\tlocalhost\n',
}


def make_root_fs(clock=None, seed=0, disk_blocks=1 << 20, host_mounts=(), tmpfs_pages=None, sysroot=None,
                 root=None):
    """Build the guest namespace and return its Vfs.

    / is a DiskFs (disk_blocks 4 KiB blocks) with /home, /root, /etc (hostname, hosts; no passwd),
    /mnt; /tmp is a tmpfs, /dev a DevFs (urandom seeded with seed), /proc an empty procfs, /sys an empty sysfs.
    host_mounts: (host_path, guest_path, readonly) tuples (see parse_mount_spec) mounted as HostFs.
    tmpfs_pages: the size limit of /tmp and of memfd files, in pages (None: unlimited).
    sysroot: a host directory whose shared libraries and loader configuration (lib_view) the guest
    sees read-only, for dynamically linked programs ('/': the host's own; None: none).
    root: the DiskFs for / (a disk image's, whose directories and files are kept); None: a new one.
    """
    root = root if root is not None else DiskFs(clock, nblocks=disk_blocks)
    vfs = Vfs(root)
    vfs.tmpfs_pages = tmpfs_pages
    for path, mode in (('/home', 0o755), ('/root', 0o700), ('/etc', 0o755), ('/mnt', 0o755),
                       ('/tmp', 0o1777), ('/dev', 0o755), ('/proc', 0o555), ('/sys', 0o555)):
        if root.root.lookup(path[1:]) is None:
            vfs.mkdir(path, mode)
    for name, data in ETC_FILES.items():
        if vfs.lookup('/etc').lookup(name) is None:
            _write_file(vfs.create('/etc/' + name, 0o644), data)
    vfs.mount(TmpFs(clock, mode=0o1777, max_pages=tmpfs_pages), '/tmp')
    vfs.mount(DevFs(clock, seed), '/dev')
    vfs.mount(ProcFs(clock), '/proc')
    vfs.mount(SysFs(clock), '/sys').mnt_flags |= MNT_NOSUID | MNT_NODEV | MNT_NOEXEC
    if sysroot is not None:
        mount_lib_view(vfs, sysroot, clock)
    for host, guest, readonly in host_mounts:
        proc_mountpoint(vfs, guest)
        vfs.mount(HostFs(host, readonly, clock), guest)
    return vfs


def mount_lib_view(vfs, sysroot, clock=None):
    """Mount sysroot's library directories and loader files read-only at their places, and make
    its symlinks among them guest symlinks with the same target."""
    for kind, src, guest in lib_view(sysroot):
        parent = guest.rsplit('/', 1)[0]
        if parent:
            try:
                vfs.lookup(parent)
            except FsError:
                vfs.mkdir(parent, 0o755)
        if kind == 'symlink':
            try:
                vfs.symlink(src, guest)
            except FsError as e:           # a disk image's root filesystem has it from its first run
                if e.errno != errno.EEXIST:
                    raise
        else:
            vfs.mount(HostFs(src, True, clock), guest)


def _write_file(inode, data):
    """Fill a new regular file with data (setup only)."""
    for i in range(0, len(data), 4096):
        inode.write_page(i // 4096, data[i:i + 4096])
    inode.set_size(len(data))
