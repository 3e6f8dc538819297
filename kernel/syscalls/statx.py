"""statx(2) (fs/stat.c do_statx, vfs_statx, cp_statx; include/uapi/linux/stat.h struct statx).

The fields come from the same source newfstatat reads (kstat_of), so the two always agree. What each
filesystem adds, as in Linux 6.12: the birth time on ext4 (ext4_getattr, large inodes) and tmpfs /
devtmpfs (shmem_getattr), none on 9p, proc or hugetlbfs; the attributes each fs can report
(attributes_mask: ext4's append/compressed/encrypted/immutable/nodump/verity, shmem's
append/immutable/nodump, and the VFS's automount/dax/mount-root); the mount's id (STATX_MNT_ID, the
first column of /proc/self/mountinfo) and STATX_ATTR_MOUNT_ROOT on the root of a mount.
Not filled: STATX_DIOALIGN, STATX_MNT_ID_UNIQUE, STATX_SUBVOL, STATX_WRITE_ATOMIC (left out of
stx_mask, as a filesystem without them does); objects outside the namespace (pipes, sockets, memfd)
report mount id 0.
"""
import errno
import struct

from faultlab.kernel.fs import FsError
from faultlab.kernel.fs.mount import assign_mnt_ids
from faultlab.kernel.fs.stat import dev_major, dev_minor
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.fs import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, kstat_of, user_path_at

AT_NO_AUTOMOUNT = 0x800
AT_STATX_SYNC_TYPE = 0x6000
STATX_TYPE, STATX_MODE, STATX_NLINK, STATX_UID, STATX_GID = 0x1, 0x2, 0x4, 0x8, 0x10
STATX_ATIME, STATX_MTIME, STATX_CTIME, STATX_INO, STATX_SIZE, STATX_BLOCKS = 0x20, 0x40, 0x80, 0x100, 0x200, 0x400
STATX_BASIC_STATS = 0x7ff
STATX_BTIME, STATX_MNT_ID = 0x800, 0x1000
STATX__RESERVED = 0x80000000
STATX_ATTR_COMPRESSED, STATX_ATTR_IMMUTABLE, STATX_ATTR_APPEND, STATX_ATTR_NODUMP = 0x4, 0x10, 0x20, 0x40
STATX_ATTR_ENCRYPTED, STATX_ATTR_AUTOMOUNT, STATX_ATTR_MOUNT_ROOT = 0x800, 0x1000, 0x2000
STATX_ATTR_VERITY, STATX_ATTR_DAX = 0x100000, 0x200000
VFS_ATTRS = STATX_ATTR_AUTOMOUNT | STATX_ATTR_DAX | STATX_ATTR_MOUNT_ROOT
SHMEM_ATTRS = STATX_ATTR_APPEND | STATX_ATTR_IMMUTABLE | STATX_ATTR_NODUMP
FS_ATTRS = {
    'ext4': SHMEM_ATTRS | STATX_ATTR_COMPRESSED | STATX_ATTR_ENCRYPTED | STATX_ATTR_VERITY,
    'tmpfs': SHMEM_ATTRS, 'devtmpfs': SHMEM_ATTRS,
}
BTIME_FILESYSTEMS = ('ext4', 'tmpfs', 'devtmpfs')

# struct statx: 256 bytes. mask, blksize, attributes, nlink, uid, gid, mode, spare, ino, size, blocks,
# attributes_mask, atime/btime/ctime/mtime (s64 sec, u32 nsec, s32 reserved), rdev/dev major/minor,
# mnt_id, dio_mem_align, dio_offset_align, subvol, atomic write unit min/max, segments max, spare,
# and 9 spare u64
STATX_FORMAT = '<IIQIIIHHQQQQ' + 'qIi' * 4 + 'IIIIQIIQIIII9Q'
STATX_SIZE = 256
assert struct.calcsize(STATX_FORMAT) == STATX_SIZE


class Kstat:
    """struct kstat: what vfs_getattr fills for cp_statx."""

    def __init__(self, src):
        self.result_mask = STATX_BASIC_STATS
        self.src = src
        self.attributes = 0
        self.attributes_mask = VFS_ATTRS
        self.btime = (0, 0)
        self.mnt_id = 0


def vfs_getattr(k, obj, request_mask):
    """The Kstat of a looked-up object: the basic fields, the filesystem's additions, the mount."""
    src = kstat_of(obj)
    st = Kstat(src)
    sb = getattr(src, 'sb', None)
    fstype = getattr(sb, 'fstype', None)
    st.attributes_mask |= FS_ATTRS.get(fstype, 0)
    if request_mask & STATX_BTIME and fstype in BTIME_FILESYSTEMS and hasattr(src, 'btime'):
        st.result_mask |= STATX_BTIME
        st.btime = src.btime
    st.result_mask |= STATX_MNT_ID
    if sb is not None:
        vfs = k.vfs
        mnt = vfs.mount_of(src)
        if mnt is not None:
            assign_mnt_ids(vfs.mounts)
            st.mnt_id = mnt.mnt_id
        if any(m.root is src for m in vfs.mounts):
            st.attributes |= STATX_ATTR_MOUNT_ROOT
    return st


def cp_statx(st):
    """The Kstat as the 256-byte struct statx (zeroed padding)."""
    s = st.src
    times = []
    for ts in (s.atime, st.btime, s.ctime, s.mtime):
        times += [ts[0], ts[1], 0]
    return struct.pack(STATX_FORMAT, st.result_mask, s.blksize, st.attributes, s.nlink, s.uid, s.gid,
                       s.mode & 0xFFFF, 0, s.ino, s.size, s.blocks, st.attributes_mask, *times,
                       dev_major(s.rdev), dev_minor(s.rdev), dev_major(s.dev or 0), dev_minor(s.dev or 0),
                       st.mnt_id, 0, 0, 0, 0, 0, 0, 0, *([0] * 9))


def _empty_path_target(t, dirfd):
    """A NULL path with AT_EMPTY_PATH (allowed since Linux 6.11): dirfd itself, or the cwd."""
    if s32(dirfd) == AT_FDCWD:
        return None
    f = t.files.get(s32(dirfd))
    return -errno.EBADF if f is None else f


def do_statx(k, t, dirfd, upath, flags, mask, buf):
    """statx: EINVAL for the reserved mask bit, both sync types or an unknown flag, then the lookup
    (AT_EMPTY_PATH: dirfd itself; AT_SYMLINK_NOFOLLOW: a final symlink itself), then the copy-out."""
    if mask & STATX__RESERVED:
        return -errno.EINVAL
    if flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE:
        return -errno.EINVAL
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE):
        return -errno.EINVAL
    obj = None
    if not upath and flags & AT_EMPTY_PATH:
        obj = _empty_path_target(t, dirfd)
        if obj is None:
            try:
                obj = k.vfs.lookup(t.cwd, cred=t.cred.fs_cred())
            except FsError as e:
                return -e.errno
    else:
        obj = user_path_at(k, t, dirfd, upath, flags)
    if isinstance(obj, int):
        return obj
    data = cp_statx(vfs_getattr(k, obj, mask))
    return 0 if t.umem.write(buf, data) else -errno.EFAULT


@syscall(332, 'statx')
def sys_statx(k, t, dirfd, upath, flags, mask, buf, *_):
    return do_statx(k, t, dirfd, upath, flags & 0xFFFFFFFF, mask & 0xFFFFFFFF, buf)
