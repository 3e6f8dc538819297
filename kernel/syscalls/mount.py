"""mount(2) and umount2(2): copying the arguments in, looking the target up, CAP_SYS_ADMIN, then
kernel/fs/namespace.py."""
import errno

from faultlab.kernel.cred import CAP_SYS_ADMIN, capable
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.namespace import MNT_DETACH, MNT_EXPIRE, MNT_FORCE, UMOUNT_NOFOLLOW, MountContext, path_mount, path_umount
from faultlab.kernel.syscalls.registry import s32, syscall
from faultlab.kernel.syscalls.fs import AT_FDCWD, AT_SYMLINK_NOFOLLOW, PATH_MAX, user_path_at

MOUNT_DATA_MAX = 4096              # copy_mount_options copies at most one page


def may_mount(t):
    """may_mount: CAP_SYS_ADMIN."""
    return capable(t, CAP_SYS_ADMIN)


def _mount_context(k):
    ctx = MountContext(k.vfs, lambda: list(k.tasks.values()), getattr(k.mmsvc, 'hstate', None),
                       k.phys.nr_frames, k.vfs.root_sb.clock, k.warn_once)
    ctx.cgroup_root = getattr(k, 'cgroup_root', None)       # the unified hierarchy cgroup2 mounts show
    return ctx


def copy_mount_string(t, uptr, maxlen=PATH_MAX):
    """copy_mount_string / copy_mount_options: None for a NULL pointer, the string, or -EFAULT."""
    if not uptr:
        return None
    s = t.umem.read_cstr(uptr, maxlen)
    if s is None:
        return -errno.EFAULT
    return s[:maxlen - 1].decode('utf-8', 'surrogateescape')


@syscall(165, 'mount')
def sys_mount(k, t, dev_name, dir_name, fstype, flags, data, *_):
    kernel_type = copy_mount_string(t, fstype)
    kernel_dev = copy_mount_string(t, dev_name)
    options = copy_mount_string(t, data, MOUNT_DATA_MAX)
    for v in (kernel_type, kernel_dev, options):
        if isinstance(v, int):
            return v
    target = user_path_at(k, t, AT_FDCWD, dir_name, 0)
    if isinstance(target, int):
        return target
    if not may_mount(t):
        return -errno.EPERM
    try:
        return path_mount(_mount_context(k), kernel_dev, target, kernel_type, flags & 0xFFFFFFFF, options)
    except FsError as e:
        return -e.errno


@syscall(166, 'umount2')
def sys_umount2(k, t, name, flags, *_):
    flags = s32(flags)
    if flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW):
        return -errno.EINVAL
    target = user_path_at(k, t, AT_FDCWD, name, AT_SYMLINK_NOFOLLOW if flags & UMOUNT_NOFOLLOW else 0)
    if isinstance(target, int):
        return target
    if not may_mount(t):
        return -errno.EPERM
    try:
        return path_umount(_mount_context(k), target, flags)
    except FsError as e:
        return -e.errno
