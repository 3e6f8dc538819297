"""mount(2) and umount2(2) on the guest namespace (fs/namespace.c path_mount, do_new_mount,
do_remount, do_change_type, path_umount/do_umount): new tmpfs and hugetlbfs mounts, remounts,
lazy and expiring unmounts, EBUSY while a mount is in use. Errors are raised as FsError."""
import errno

from faultlab.kernel.cgroup.cgroup import cgroup_get_tree
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.fs_context import (FILESYSTEMS, hugetlbfs_get_tree, parse_hugetlbfs, parse_tmpfs, split_options,
                                  tmpfs_get_tree, tmpfs_reconfigure)
from faultlab.kernel.fs.mount import (MNT_NOATIME, MNT_NODEV, MNT_NODIRATIME, MNT_NOEXEC, MNT_NOSUID, MNT_NOSYMFOLLOW,
                             MNT_RELATIME, assign_mnt_ids)

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT = 1, 2, 4, 8, 16, 32
MS_MANDLOCK, MS_DIRSYNC, MS_NOSYMFOLLOW, MS_NOATIME, MS_NODIRATIME = 64, 128, 256, 1024, 2048
MS_BIND, MS_MOVE, MS_REC, MS_SILENT = 4096, 8192, 16384, 32768
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_RELATIME, MS_STRICTATIME, MS_NOUSER = 1 << 21, 1 << 24, 1 << 31
MS_MGC_VAL, MS_MGC_MSK = 0xC0ED0000, 0xFFFF0000
MS_PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE
MNT_ATIME_MASK = MNT_NOATIME | MNT_NODIRATIME | MNT_RELATIME
MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW = 1, 2, 4, 8


class MountContext:
    """What path_mount needs besides its arguments: the namespace, the tasks (for EBUSY), the hugetlb
    pool, RAM size (tmpfs defaults), the clock and a one-time warning for what is not emulated."""
    cgroup_root = None       # the cgroup v2 hierarchy (kernel/cgroup/cgroup.py) a cgroup2 mount shows

    def __init__(self, vfs, tasks, hstate, totalram_pages, clock, warn_once):
        self.vfs = vfs
        self.tasks = tasks
        self.hstate = hstate
        self.totalram_pages = totalram_pages
        self.clock = clock
        self.warn_once = warn_once


def mount_at(vfs, inode):
    """The top-most mount whose root is inode (path_mounted), or None."""
    for m in reversed(vfs.mounts):
        if m.root is inode:
            return m
    return None


def _ms_to_mnt_flags(flags):
    """path_mount's per-mount flags from MS_* (relatime unless noatime or strictatime)."""
    mnt = 0 if flags & MS_NOATIME else MNT_RELATIME
    for ms, bit in ((MS_NOSUID, MNT_NOSUID), (MS_NODEV, MNT_NODEV), (MS_NOEXEC, MNT_NOEXEC),
                    (MS_NOATIME, MNT_NOATIME), (MS_NODIRATIME, MNT_NODIRATIME), (MS_NOSYMFOLLOW, MNT_NOSYMFOLLOW)):
        if flags & ms:
            mnt |= bit
    if flags & MS_STRICTATIME:
        mnt &= ~(MNT_RELATIME | MNT_NOATIME)
    return mnt


def path_mount(ctx, devname, target, fstype, flags, data):
    """path_mount after the target was looked up (target: its inode); may_mount was checked by the
    caller. Returns 0."""
    if flags & MS_MGC_MSK == MS_MGC_VAL:
        flags &= ~MS_MGC_MSK
    if flags & MS_NOUSER:
        raise FsError(errno.EINVAL)
    mnt_flags = _ms_to_mnt_flags(flags)
    if flags & MS_REMOUNT and flags & MS_BIND:
        m = _mounted(ctx.vfs, target)
        m.mnt_flags = mnt_flags
        return 0
    if flags & MS_REMOUNT:
        return do_remount(ctx, target, flags, mnt_flags, data)
    if flags & MS_BIND:
        ctx.warn_once(('mount', 'bind'), 'mount(MS_BIND) is not emulated: returns -EINVAL')
        raise FsError(errno.EINVAL)
    if flags & MS_PROPAGATION:
        return do_change_type(ctx, target, flags)
    if flags & MS_MOVE:
        ctx.warn_once(('mount', 'move'), 'mount(MS_MOVE) is not emulated: returns -EINVAL')
        raise FsError(errno.EINVAL)
    return do_new_mount(ctx, target, fstype, flags, mnt_flags, devname, data)


def _mounted(vfs, target):
    """path_mounted: the mount whose root target is (EINVAL otherwise)."""
    m = mount_at(vfs, target)
    if m is None:
        raise FsError(errno.EINVAL)
    return m


def do_change_type(ctx, target, flags):
    """MS_PRIVATE (every mount here is private already); shared and slave propagation are not emulated."""
    _mounted(ctx.vfs, target)
    kind = flags & ~(MS_REC | MS_SILENT)
    if kind & ~MS_PROPAGATION or kind & (kind - 1):
        raise FsError(errno.EINVAL)
    if kind != MS_PRIVATE:
        ctx.warn_once(('mount', 'propagation'), 'mount propagation other than MS_PRIVATE is not emulated: '
                      'returns -EINVAL')
        raise FsError(errno.EINVAL)
    return 0


def do_new_mount(ctx, target, fstype, flags, mnt_flags, devname, data):
    """A new tmpfs or hugetlbfs at target (ENODEV for other types, EINVAL for bad options, ENOTDIR on a
    non-directory)."""
    if fstype is None:
        raise FsError(errno.EINVAL)
    if fstype == 'cgroup2':
        opts, ro_opt = split_options(data)
        sb = cgroup_get_tree(ctx.cgroup_root, opts, bool(flags & MS_RDONLY) if ro_opt is None else ro_opt,
                             ctx.clock)
        return _attach(ctx, target, sb, devname, mnt_flags)
    if fstype not in FILESYSTEMS:
        raise FsError(errno.ENODEV)
    opts, ro_opt = split_options(data)
    readonly = bool(flags & MS_RDONLY) if ro_opt is None else ro_opt
    if fstype == 'tmpfs':
        sb = tmpfs_get_tree(parse_tmpfs(opts, ctx.totalram_pages), ctx.clock, ctx.totalram_pages, readonly)
    else:
        if ctx.hstate is None:
            raise FsError(errno.ENODEV)
        sb = hugetlbfs_get_tree(parse_hugetlbfs(opts, ctx.hstate), ctx.hstate, ctx.clock, readonly)
    return _attach(ctx, target, sb, devname, mnt_flags)


def _attach(ctx, target, sb, devname, mnt_flags):
    """do_new_mount_fc: the new superblock's root covers target."""
    if not target.is_dir():
        _kill_sb(sb)
        raise FsError(errno.ENOTDIR)
    vfs = ctx.vfs
    try:
        m = vfs.mount(sb, vfs.d_path(target), create=False)
    except FsError:
        _kill_sb(sb)
        raise
    m.devname = devname if devname is not None else 'none'
    m.mnt_flags = mnt_flags
    assign_mnt_ids(vfs.mounts)
    return 0


def _kill_sb(sb):
    kill = getattr(sb, 'kill_sb', None)
    if kill is not None:
        kill()


def do_remount(ctx, target, flags, mnt_flags, data):
    """MS_REMOUNT: new options (tmpfs size=/nr_inodes=; hugetlbfs options are parsed and ignored, as it
    has no reconfigure), ro/rw (EBUSY going read-only with files open for writing) and mount flags."""
    m = _mounted(ctx.vfs, target)
    if not flags & (MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME):
        mnt_flags = (mnt_flags & ~MNT_ATIME_MASK) | (m.mnt_flags & MNT_ATIME_MASK)
    sb = m.sb
    opts, ro_opt = split_options(data)
    readonly = bool(flags & MS_RDONLY) if ro_opt is None else ro_opt
    if sb.fstype == 'tmpfs':
        tctx = parse_tmpfs(opts, ctx.totalram_pages)
    elif sb.fstype == 'hugetlbfs':
        parse_hugetlbfs(opts, sb.hstate)
        tctx = None
    else:
        ctx.warn_once(('mount', 'remount', sb.fstype), 'remount of %s is not emulated: returns -EINVAL' % sb.fstype)
        raise FsError(errno.EINVAL)
    if readonly and not sb.readonly and any(f.writable for f in _open_files(ctx, sb)):
        raise FsError(errno.EBUSY)
    if tctx is not None:
        tmpfs_reconfigure(sb, tctx)
    sb.readonly = readonly
    m.mnt_flags = mnt_flags
    return 0


# ---- unmounting ---------------------------------------------------------------------------------------
def _live_tasks(ctx):
    return [t for t in ctx.tasks() if not t.exited]


def _open_files(ctx, sb):
    """The open files of live tasks on sb."""
    seen = set()
    out = []
    for t in _live_tasks(ctx):
        for f in t.files.fds.values():
            inode = getattr(f, 'inode', None)
            if inode is not None and getattr(inode, 'sb', None) is sb and id(f) not in seen:     # (a pipe has none)
                seen.add(id(f))
                out.append(f)
    return out


def mount_busy(ctx, m):
    """propagate_mount_busy: something uses the mount (an open file, a mapping, the executable, a
    working directory below it)."""
    sb = m.sb
    if _open_files(ctx, sb):
        return True
    prefix = m.path.rstrip('/') + '/'
    for t in _live_tasks(ctx):
        if t.cwd == m.path or t.cwd.startswith(prefix):
            return True
        mm = t.mm
        exe = getattr(mm, 'exe_file', None)
        if exe is not None and exe.inode.sb is sb:
            return True
        if any(v.vm_file is not None and v.vm_file.inode.sb is sb for v in mm.vmas):
            return True
    return False


def _children(vfs, m):
    return [c for c in vfs.mounts if c.mountpoint is not None and c.mountpoint.sb is m.sb and c is not m]


def _detach(vfs, m):
    """umount_tree: m and the mounts below it leave the namespace (deepest first)."""
    for c in _children(vfs, m):
        _detach(vfs, c)
    vfs.umount(m.path)
    _kill_sb(m.sb)


def path_umount(ctx, target, flags):
    """can_umount + do_umount for the mount whose root is target: EINVAL when target is not a mount's
    root, EBUSY in use (unless MNT_DETACH), EAGAIN the first time with MNT_EXPIRE."""
    vfs = ctx.vfs
    m = _mounted(vfs, target)
    if flags & MNT_EXPIRE:
        if m.mountpoint is None or flags & (MNT_FORCE | MNT_DETACH):
            raise FsError(errno.EINVAL)
        if mount_busy(ctx, m):
            raise FsError(errno.EBUSY)
        if not m.expiry_mark:
            m.expiry_mark = True
            raise FsError(errno.EAGAIN)
    if m.mountpoint is None:
        raise FsError(errno.EBUSY)
    if flags & MNT_DETACH:
        _detach(vfs, m)
        return 0
    if _children(vfs, m) or mount_busy(ctx, m):
        raise FsError(errno.EBUSY)
    vfs.umount(m.path)
    _kill_sb(m.sb)
    return 0
