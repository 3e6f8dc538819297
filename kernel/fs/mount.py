"""Mount records: which superblock is attached where in the guest namespace, and their /proc views
(/proc/self/mounts and /proc/self/mountinfo as fs/proc_namespace.c prints them)."""
from dataclasses import dataclass
from typing import Any, Optional

from faultlab.kernel.fs.stat import dev_major

# per-mount flags (include/linux/mount.h) and the text show_mnt_opts gives them, in its order
MNT_NOSUID, MNT_NODEV, MNT_NOEXEC, MNT_NOATIME, MNT_NODIRATIME, MNT_RELATIME = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
MNT_NOSYMFOLLOW = 0x80
MNT_OPT_NAMES = ((MNT_NOSUID, ',nosuid'), (MNT_NODEV, ',nodev'), (MNT_NOEXEC, ',noexec'),
                 (MNT_NOATIME, ',noatime'), (MNT_NODIRATIME, ',nodiratime'), (MNT_RELATIME, ',relatime'),
                 (MNT_NOSYMFOLLOW, ',nosymfollow'))
# the device name of the filesystems the kernel mounts itself (the disk is the NVMe namespace's partition)
DEFAULT_DEVNAMES = {'ext4': '/dev/nvme0n1p1', '9p': 'hostfs'}
FIRST_MNT_ID = 21


@dataclass(eq=False)
class Mount:
    """struct mount: sb's root covers `mountpoint` (the inode at guest path `path`)."""
    sb: Any
    path: str
    mountpoint: Optional[Any] = None     # covered inode (None for the root mount)
    mp_parent: Optional[Any] = None      # directory holding the mount point
    mp_name: Optional[str] = None        # name of the mount point in mp_parent
    devname: Optional[str] = None        # mnt_devname: the source given to mount(2)
    mnt_flags: int = MNT_RELATIME
    mnt_id: Optional[int] = None
    expiry_mark: bool = False            # MNT_EXPIRE asked once

    @property
    def root(self):
        """The root inode of the mounted filesystem."""
        return self.sb.root

    @property
    def readonly(self):
        """True if the filesystem refuses modifications."""
        return self.sb.readonly

    def source(self):
        """The device name /proc shows (mount(2) without one gives "none")."""
        if self.devname is not None:
            return self.devname
        return DEFAULT_DEVNAMES.get(self.sb.fstype, self.sb.fstype)


def assign_mnt_ids(mounts):
    """mnt_alloc_id: each mount without an id, in the order they were made, takes the lowest free one
    (an IDA; the root mount gets FIRST_MNT_ID)."""
    used = {m.mnt_id for m in mounts if m.mnt_id is not None}
    nxt = FIRST_MNT_ID
    for m in mounts:
        if m.mnt_id is None:
            while nxt in used:
                nxt += 1
            m.mnt_id = nxt
            used.add(nxt)


def mangle(s):
    """seq_escape(" \\t\\n\\\\"): those characters as octal escapes."""
    return ''.join('\\%03o' % ord(c) if c in ' \t\n\\' else c for c in s)


def show_mnt_opts(m):
    """show_mnt_opts + the ro/rw in front: the per-mount options."""
    return ('ro' if m.readonly else 'rw') + ''.join(name for bit, name in MNT_OPT_NAMES if m.mnt_flags & bit)


def show_sb_opts(m):
    """The superblock's options: ro/rw and what the filesystem's show_options prints."""
    show = getattr(m.sb, 'show_options', None)
    return ('ro' if m.sb.readonly else 'rw') + (show() if show is not None else '')


def _parent_id(vfs, m):
    if m.mountpoint is None:
        return m.mnt_id
    parent = vfs.mount_of(m.mountpoint)
    return parent.mnt_id if parent is not None else m.mnt_id


def show_vfsmnt(m):
    """One /proc/self/mounts line: device, mount point, type, options, 0 0."""
    opts = show_mnt_opts(m)
    extra = show_sb_opts(m)[2:]
    return '%s %s %s %s%s 0 0\n' % (mangle(m.source()), mangle(m.path), m.sb.fstype, opts, extra)


def show_mountinfo(vfs, m):
    """One /proc/self/mountinfo line: id, parent id, major:minor, root, mount point, mount options,
    (no optional fields: every mount is private), '-', type, source, superblock options."""
    dev = m.sb.dev or 0
    minor = (dev & 0xFF) | ((dev >> 12) & 0xFFF00)
    return '%d %d %d:%d / %s %s - %s %s %s\n' % (m.mnt_id, _parent_id(vfs, m), dev_major(dev), minor,
                                                 mangle(m.path), show_mnt_opts(m), m.sb.fstype,
                                                 mangle(m.source()), show_sb_opts(m))


def proc_mounts(vfs):
    """/proc/self/mounts."""
    assign_mnt_ids(vfs.mounts)
    return ''.join(show_vfsmnt(m) for m in vfs.mounts)


def proc_mountinfo(vfs):
    """/proc/self/mountinfo."""
    assign_mnt_ids(vfs.mounts)
    return ''.join(show_mountinfo(vfs, m) for m in vfs.mounts)


def register_mount_procfs(k):
    """/proc/self/mounts, /proc/self/mountinfo and the /proc/mounts symlink to self/mounts."""
    vfs = k.vfs
    vfs.register_synth('/proc/self/mounts', lambda: proc_mounts(vfs))
    vfs.register_synth('/proc/self/mountinfo', lambda: proc_mountinfo(vfs))
    vfs.register_synth_symlink('/proc/mounts', 'self/mounts')
