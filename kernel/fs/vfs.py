"""Vfs: the guest's filesystem namespace (mount table + path-based operations, fs/namei.c order of checks).

Every operation takes an optional cwd (a guest path or a directory inode) and cred (perm.Cred;
None = root) and raises FsError(errno) exactly where Linux would.
"""
import errno
import posixpath

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.inode import Inode
from faultlab.kernel.fs.mount import Mount
from faultlab.kernel.fs.namei import (LAST_DOT, LAST_DOTDOT, LAST_NORM, LAST_ROOT, MAXSYMLINKS, PATH_MAX,
                             Nameidata, check_name, to_str_path)
from faultlab.kernel.fs.perm import MAY_WRITE, ROOT, inode_permission, may_create, may_delete
from faultlab.kernel.fs.procfs import ProcDir
from faultlab.kernel.fs.stat import makedev
from faultlab.kernel.fs.synth import SynthFile
from faultlab.kernel.fs.tmpfs import TmpFs

ANON_DEV_FIRST_MINOR = 20


class Vfs:
    """The mount table and the namespace operations on it."""

    def __init__(self, root_sb):
        """A namespace whose '/' is root_sb's root directory."""
        self.root_sb = root_sb
        self.root = root_sb.root
        self._next_anon = ANON_DEV_FIRST_MINOR
        if root_sb.dev is None:
            root_sb.dev = self.alloc_anon_dev()
        self.mounts = [Mount(root_sb, '/')]
        self._covered = {}                 # covered inode -> Mount on top of it
        self._by_root = {self.root: self.mounts[0]}
        self._memfd_sb = None

    # ---- mounts -----------------------------------------------------------------------------------
    def alloc_anon_dev(self):
        """get_anon_bdev: a fresh 0:N device number for a filesystem without a disk."""
        dev = makedev(0, self._next_anon)
        self._next_anon += 1
        return dev

    def mount(self, sb, guest_path, create=True):
        """Attach sb at guest_path (an absolute path); with create, make a missing mount point.

        EBUSY if sb is already mounted or the target is '/'; ENOTDIR/EISDIR on a type mismatch.
        """
        guest_path = to_str_path(guest_path)
        if not guest_path.startswith('/'):
            raise FsError(errno.EINVAL, f'mount point {guest_path!r} is not absolute')
        if any(m.sb is sb for m in self.mounts):
            raise FsError(errno.EBUSY, 'filesystem already mounted')
        nd = Nameidata(self)
        try:
            d, last, kind, _ = nd.path_parentat(guest_path, self.root)
            node = nd.lookup_last(d, last, kind, False, True)
        except FsError as e:
            if e.errno != errno.ENOENT or not create:
                raise
            self._make_mountpoint(guest_path, sb.root.is_dir())
            d, last, kind, _ = nd.path_parentat(guest_path, self.root)
            node = nd.lookup_last(d, last, kind, False, True)
        if node is self.root or node in self._by_root and not node.is_dir():
            raise FsError(errno.EBUSY, guest_path)
        if sb.root.is_dir() and not node.is_dir():
            raise FsError(errno.ENOTDIR, guest_path)
        if not sb.root.is_dir() and node.is_dir():
            raise FsError(errno.EISDIR, guest_path)
        if sb.dev is None:
            sb.dev = self.alloc_anon_dev()
        m = Mount(sb, posixpath.normpath(guest_path), node, d, last)
        self.mounts.append(m)
        self._covered[node] = m
        self._by_root[sb.root] = m
        return m

    def _make_mountpoint(self, guest_path, is_dir):
        """mkdir -p the mount point (or create an empty file for a file mount)."""
        comps = [c for c in guest_path.split('/') if c]
        for i in range(1, len(comps)):
            try:
                self.mkdir('/' + '/'.join(comps[:i]), 0o755)
            except FsError as e:
                if e.errno != errno.EEXIST:
                    raise
        if is_dir:
            self.mkdir(guest_path, 0o755)
        else:
            self.create(guest_path, 0o644)

    def umount(self, guest_path):
        """Detach the filesystem mounted at guest_path; returns its superblock."""
        node = self.lookup(guest_path)
        m = self._by_root.get(node)
        if m is None:
            raise FsError(errno.EINVAL, guest_path)
        if m.mountpoint is None or any(o.mountpoint is not None and o.mountpoint.sb is m.sb
                                       for o in self.mounts):
            raise FsError(errno.EBUSY, guest_path)
        self.mounts.remove(m)
        del self._by_root[m.root]
        del self._covered[m.mountpoint]
        return m.sb

    def follow_mount(self, inode):
        """If inode is covered by mounts, the root of the top-most one."""
        m = self._covered.get(inode)
        while m is not None:
            inode = m.root
            m = self._covered.get(inode)
        return inode

    def follow_dotdot(self, d):
        """'..' of directory d: stays at the guest root; from a mount root, the mount point's parent."""
        while d is not self.root:
            m = self._by_root.get(d)
            if m is None or m.mountpoint is None:
                break
            d = m.mountpoint
        if d is self.root:
            return d
        parent = d.parent
        if parent is None:               # a removed directory: stays put (Linux: no parent dentry)
            return d
        return self.follow_mount(parent)

    def is_mountpoint(self, inode):
        """True if a filesystem is mounted on inode."""
        return inode in self._covered

    def mount_of(self, inode):
        """The Mount holding inode's filesystem."""
        for m in self.mounts:
            if m.sb is inode.sb:
                return m
        return None

    # ---- lookups -----------------------------------------------------------------------------------
    def _start(self, cwd, nd):
        """The directory relative paths start from."""
        if isinstance(cwd, Inode):
            start = cwd
        else:
            start = Nameidata(self, nd.cred).resolve(cwd if cwd else '/', self.root)
        if not start.is_dir():
            raise FsError(errno.ENOTDIR)
        return start

    def lookup(self, path, cwd='/', follow=True, cred=None):
        """The inode at path (following a final symlink unless follow=False)."""
        nd = Nameidata(self, cred)
        return nd.resolve(path, self._start(cwd, nd), follow)

    def _parent(self, path, cwd, cred):
        """(Nameidata, dir, last, kind, trailing) for an operation on the last component."""
        nd = Nameidata(self, cred)
        d, last, kind, trailing = nd.path_parentat(path, self._start(cwd, nd))
        return nd, d, last, kind, trailing

    @staticmethod
    def _want_write(d):
        """mnt_want_write: EROFS on a read-only filesystem."""
        if d.sb.readonly:
            raise FsError(errno.EROFS)

    @staticmethod
    def _owner(cred):
        """(uid, gid) for new inodes."""
        cred = cred or ROOT
        return cred.uid, cred.gid

    # ---- creating --------------------------------------------------------------------------------------
    def lookup_open(self, path, mode=0o644, exclusive=False, cwd='/', cred=None):
        """open(O_CREAT[|O_EXCL]) name resolution: (inode, created). Follows a final symlink unless exclusive."""
        nd, d, last, kind, trailing = self._parent(path, cwd, cred)
        while True:
            if kind != LAST_NORM or trailing:
                raise FsError(errno.EISDIR)
            check_name(last)
            if d.nlink == 0:
                raise FsError(errno.ENOENT)
            child = d.lookup(last)
            if child is not None:
                if exclusive:
                    raise FsError(errno.EEXIST)
                child = self.follow_mount(child)
                if child.is_lnk():
                    nd.links += 1
                    if nd.links > MAXSYMLINKS:
                        raise FsError(errno.ELOOP)
                    magic = getattr(child, 'get_link_inode', None)    # proc's fd links: the open file
                    if magic is not None and magic() is not None:
                        return magic(), False
                    target = child.readlink()
                    if not target:
                        raise FsError(errno.ENOENT)
                    d, last, kind, trailing = nd.path_parentat(target, d)
                    continue
                if child.is_dir():
                    raise FsError(errno.EISDIR)
                return child, False
            self._want_write(d)
            may_create(d, cred)
            uid, gid = self._owner(cred)
            return d.create(last, mode & 0o7777, uid, gid), True

    def create(self, path, mode=0o644, exclusive=False, cwd='/', cred=None):
        """Create (or, unless exclusive, open) a regular file; returns its inode."""
        return self.lookup_open(path, mode, exclusive, cwd, cred)[0]

    def _filename_create(self, path, cwd, cred, want_dir=False):
        """filename_create: (dir, name) for a new entry; EEXIST, ENOENT, EROFS, EACCES as Linux."""
        _, d, last, kind, trailing = self._parent(path, cwd, cred)
        if kind != LAST_NORM:
            raise FsError(errno.EEXIST)
        check_name(last)
        if d.lookup(last) is not None:
            raise FsError(errno.EEXIST)
        if trailing and not want_dir:
            raise FsError(errno.ENOENT)
        self._want_write(d)
        if d.nlink == 0:
            raise FsError(errno.ENOENT)
        may_create(d, cred)
        return d, last

    def mkdir(self, path, mode=0o755, cwd='/', cred=None):
        """mkdir(2); returns the new directory inode."""
        d, last = self._filename_create(path, cwd, cred, want_dir=True)
        uid, gid = self._owner(cred)
        return d.mkdir(last, mode & 0o1777, uid, gid)

    def symlink(self, target, linkpath, cwd='/', cred=None):
        """symlink(2): linkpath -> target; returns the symlink inode."""
        target = to_str_path(target)
        if not target:
            raise FsError(errno.ENOENT)
        if len(target.encode('utf-8', 'surrogateescape')) >= PATH_MAX:
            raise FsError(errno.ENAMETOOLONG)
        d, last = self._filename_create(linkpath, cwd, cred)
        uid, gid = self._owner(cred)
        return d.symlink(last, target, uid, gid)

    def mknod(self, path, mode, cwd='/', cred=None):
        """vfs_mknod of a node without data (a socket, as unix_bind makes); returns the new inode.
        EPERM where the directory cannot hold one (a host directory)."""
        d, last = self._filename_create(path, cwd, cred)
        add_entry = getattr(d, 'add_entry', None)
        if add_entry is None:
            raise FsError(errno.EPERM)
        uid, gid = self._owner(cred)
        return add_entry(last, Inode(d.sb, d.sb.alloc_ino(), mode, uid, gid))

    def link(self, oldpath, newpath, cwd='/', cred=None, follow=False):
        """link(2)/linkat: a new name for an existing non-directory of the same mount."""
        old = self.lookup(oldpath, cwd, follow, cred)
        d, last = self._filename_create(newpath, cwd, cred)
        if d.sb is not old.sb:
            raise FsError(errno.EXDEV)
        if old.is_dir():
            raise FsError(errno.EPERM)
        d.link(last, old)
        return old

    # ---- removing and renaming -------------------------------------------------------------------------
    def _delete_checks(self, d, victim, isdir, cred):
        """may_delete: permissions, sticky bit, type, mount points."""
        may_delete(d, victim, cred)
        if isdir and not victim.is_dir():
            raise FsError(errno.ENOTDIR)
        if not isdir and victim.is_dir():
            raise FsError(errno.EISDIR)
        if d.nlink == 0:
            raise FsError(errno.ENOENT)

    def unlink(self, path, cwd='/', cred=None):
        """unlink(2) of a non-directory."""
        _, d, last, kind, trailing = self._parent(path, cwd, cred)
        if kind != LAST_NORM:
            raise FsError(errno.EISDIR)
        self._want_write(d)
        check_name(last)
        victim = d.lookup(last)
        if victim is None:
            raise FsError(errno.ENOENT)
        if trailing:
            raise FsError(errno.EISDIR if victim.is_dir() else errno.ENOTDIR)
        self._delete_checks(d, victim, False, cred)
        if victim in self._covered:
            raise FsError(errno.EBUSY)
        d.unlink(last)

    def rmdir(self, path, cwd='/', cred=None):
        """rmdir(2) of an empty directory."""
        _, d, last, kind, _ = self._parent(path, cwd, cred)
        if kind == LAST_DOTDOT:
            raise FsError(errno.ENOTEMPTY)
        if kind == LAST_DOT:
            raise FsError(errno.EINVAL)
        if kind == LAST_ROOT:
            raise FsError(errno.EBUSY)
        self._want_write(d)
        check_name(last)
        victim = d.lookup(last)
        if victim is None:
            raise FsError(errno.ENOENT)
        self._delete_checks(d, victim, True, cred)
        if victim in self._covered:
            raise FsError(errno.EBUSY)
        d.rmdir(last)

    def rename(self, oldpath, newpath, cwd='/', cred=None, noreplace=False):
        """rename(2) (renameat2 with RENAME_NOREPLACE if noreplace)."""
        _, od, olast, okind, otrail = self._parent(oldpath, cwd, cred)
        _, nd_, nlast, nkind, ntrail = self._parent(newpath, cwd, cred)
        if okind != LAST_NORM:
            raise FsError(errno.EBUSY)
        if nkind != LAST_NORM:
            raise FsError(errno.EEXIST if noreplace else errno.EBUSY)
        if self.mount_of(od) is not self.mount_of(nd_):
            raise FsError(errno.EXDEV)
        self._want_write(od)
        check_name(olast)
        check_name(nlast)
        src = od.lookup(olast)
        if src is None:
            raise FsError(errno.ENOENT)
        target = nd_.lookup(nlast)
        if noreplace and target is not None:
            raise FsError(errno.EEXIST)
        if not src.is_dir() and (otrail or ntrail):
            raise FsError(errno.ENOTDIR)
        if src.is_dir() and self._is_ancestor(src, nd_):
            raise FsError(errno.EINVAL)
        if target is not None and target.is_dir() and self._is_ancestor(target, od):
            raise FsError(errno.ENOTEMPTY)
        if src is target:
            return
        self._delete_checks(od, src, src.is_dir(), cred)
        if target is not None:
            self._delete_checks(nd_, target, src.is_dir(), cred)
        else:
            may_create(nd_, cred)
        if src.is_dir() and od is not nd_:
            inode_permission(src, MAY_WRITE, cred)
        if src in self._covered or (target is not None and target in self._covered):
            raise FsError(errno.EBUSY)
        od.rename(olast, nd_, nlast)

    @staticmethod
    def _is_ancestor(a, d):
        """True if directory a is d or one of d's ancestors within their filesystem."""
        while d is not None:
            if d is a:
                return True
            d = d.parent
        return False

    # ---- reading ---------------------------------------------------------------------------------------
    def readlink(self, path, cwd='/', cred=None):
        """readlink(2): the target text of a symlink (EINVAL if path is not one)."""
        node = self.lookup(path, cwd, False, cred)
        if not node.is_lnk():
            raise FsError(errno.EINVAL)
        node.touch_atime()
        return node.readlink()

    def readdir(self, dir_inode):
        """[(name, ino, dtype)] of a directory, '.' and '..' first."""
        if not dir_inode.is_dir():
            raise FsError(errno.ENOTDIR)
        dir_inode.touch_atime()
        return dir_inode.readdir()

    def stat(self, path, cwd='/', follow=True, cred=None):
        """The inode for stat/lstat (pack it with kernel.fs.stat.pack_stat)."""
        return self.lookup(path, cwd, follow, cred)

    def statfs(self, target, cwd='/', cred=None):
        """statfs(2) of the filesystem holding target (a path or an inode)."""
        inode = target if isinstance(target, Inode) else self.lookup(target, cwd, True, cred)
        return inode.sb.statfs()

    def d_path(self, dir_inode):
        """The guest path of a directory (getcwd); ENOENT if it was removed."""
        names = []
        d = dir_inode
        while d is not self.root:
            m = self._by_root.get(d)
            if m is not None and m.mountpoint is not None:
                if m.mountpoint.is_dir():
                    d = m.mountpoint
                else:
                    names.append(m.mp_name)
                    d = m.mp_parent
                continue
            parent = getattr(d, 'parent', None)
            if parent is None or d.nlink == 0:
                raise FsError(errno.ENOENT)
            names.append(parent.name_of(d))
            d = parent
        return '/' + '/'.join(reversed(names))

    # ---- permissions for the file layer -------------------------------------------------------------
    def may_open(self, inode, mask, cred=None):
        """may_open: mask of MAY_READ/MAY_WRITE/MAY_EXEC; EISDIR, EROFS, EACCES as Linux."""
        if mask & MAY_WRITE:
            if inode.is_dir():
                raise FsError(errno.EISDIR)
            if inode.sb.readonly and (inode.is_reg() or inode.is_lnk()):
                raise FsError(errno.EROFS)
            if isinstance(inode, SynthFile) and not inode.writable:
                raise FsError(errno.EACCES)
        inode_permission(inode, mask, cred)

    def permission(self, inode, mask, cred=None):
        """inode_permission: EROFS for writes to a read-only fs, else the DAC check."""
        if mask & MAY_WRITE and inode.sb.readonly and not inode.is_chr():
            raise FsError(errno.EROFS)
        inode_permission(inode, mask, cred)

    # ---- synthetic files (procfs) -------------------------------------------------------------------
    def _proc_dir_for(self, path, make_dirs):
        """(ProcDir, last name) for an absolute path inside a proc mount, creating directories."""
        path = to_str_path(path)
        comps = [c for c in path.split('/') if c]
        if not path.startswith('/') or not comps or any(c in ('.', '..') for c in comps):
            raise FsError(errno.EINVAL, path)
        cur = self.root
        for name in comps[:-1]:
            child = cur.lookup(name)
            if child is None:
                if not (make_dirs and isinstance(cur, ProcDir)):
                    raise FsError(errno.ENOENT, path)
                child = cur.proc_mkdir(name)
            child = self.follow_mount(child)
            if not child.is_dir():
                raise FsError(errno.ENOTDIR, path)
            cur = child
        if not isinstance(cur, ProcDir):
            raise FsError(errno.EINVAL, f'{path} is not inside a proc filesystem')
        return cur, comps[-1]

    def register_synth(self, path, read_fn, write_fn=None, mode=None):
        """Add (or update) a synthetic file at path inside a proc mount, creating directories."""
        d, name = self._proc_dir_for(path, True)
        return d.proc_create(name, read_fn, write_fn, mode)

    def register_synth_symlink(self, path, target):
        """Add a proc symlink whose target is a str or a callable returning one."""
        d, name = self._proc_dir_for(path, True)
        return d.proc_symlink(name, target)

    def register_synth_dir(self, path, mode=0o555):
        """Add a proc directory (and its parents)."""
        d, name = self._proc_dir_for(path, True)
        return d.proc_mkdir(name, mode)

    def unregister_synth(self, path):
        """Remove a proc entry (recursively)."""
        d, name = self._proc_dir_for(path, False)
        d.proc_remove(name)

    # ---- anonymous files ---------------------------------------------------------------------------
    def memfd_create(self, mode=0o777, cred=None):
        """An unlinked tmpfs file for memfd_create (ihold() it for the new open file)."""
        if self._memfd_sb is None:
            self._memfd_sb = TmpFs(self.root_sb.clock, dev=self.alloc_anon_dev(),
                                   max_pages=getattr(self, 'tmpfs_pages', None), internal=True)
        uid, gid = self._owner(cred)
        return self._memfd_sb.new_anon_file(mode, uid, gid)
