"""open(dir, O_TMPFILE): an unnamed regular file in dir's filesystem (fs/namei.c do_tmpfile and
vfs_tmpfile); it lives while it is open, unless linkat gives it a name."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.perm import MAY_EXEC, MAY_WRITE, ROOT
from faultlab.kernel.fs.stat import S_ISGID

# the filesystems of the guest tree whose directories have ->tmpfile (shmem, ext4, hugetlbfs);
# 9p, proc and sysfs have none (EOPNOTSUPP)
TMPFILE_FSTYPES = ('tmpfs', 'devtmpfs', 'ext4', 'hugetlbfs')


def vfs_tmpfile(vfs, dir_path, mode, cred=None, cwd='/'):
    """The new unlinked inode (mode already masked by the umask), owned by the caller's fsuid/fsgid
    (the directory's group when it is set-group-ID). EROFS, then EACCES without write and search
    permission on the directory, then EOPNOTSUPP where the filesystem has no ->tmpfile; lookup
    errors (ENOENT, ENOTDIR, ...) as for any path."""
    d = vfs.lookup(dir_path, cwd=cwd, cred=cred)
    if not d.is_dir():
        raise FsError(errno.ENOTDIR)
    if d.sb.readonly:
        raise FsError(errno.EROFS)                       # mnt_want_write
    vfs.permission(d, MAY_WRITE | MAY_EXEC, cred)
    if d.sb.fstype not in TMPFILE_FSTYPES:
        raise FsError(errno.EOPNOTSUPP)
    c = cred or ROOT
    gid = d.gid if d.mode & S_ISGID else c.gid             # inode_init_owner
    return d.sb.new_anon_file(mode & 0o7777, c.uid, gid)
