"""Directories: the Directory interface the Vfs calls, and MemDir (entries kept in memory)."""
import errno

from faultlab.kernel.fs.dirent import DT_DIR
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.inode import Inode
from faultlab.kernel.fs.stat import S_IFDIR, S_IFMT, S_ISGID


class Directory(Inode):
    """A directory inode (inode_operations for directories).

    The Vfs checks paths, permissions, EROFS and the type rules before calling the operations
    below; a directory only stores the change. Operations a filesystem does not support fail the
    way Linux fails a missing inode operation (create: EACCES, the others: EPERM).
    """

    def __init__(self, sb, ino, mode, uid=0, gid=0, parent=None):
        """A new directory with nlink 2 (its entry in the parent, and its own '.')."""
        super().__init__(sb, ino, (mode & ~S_IFMT) | S_IFDIR, uid, gid, nlink=2)
        self.parent = parent
        self.size = sb.dir_size(0)

    # ---- reading ----------------------------------------------------------------------------
    def lookup(self, name):
        """The inode called name in this directory, or None."""
        raise NotImplementedError

    def entries(self):
        """[(name, inode)] of the directory's entries, without '.' and '..'."""
        raise NotImplementedError

    def is_empty(self):
        """True if the directory has no entries besides '.' and '..'."""
        return not self.entries()

    def name_of(self, child):
        """The name under which child is linked here (for getcwd); ENOENT if it is not."""
        for name, inode in self.entries():
            if inode is child:
                return name
        raise FsError(errno.ENOENT)

    def readdir(self):
        """[(name, ino, dtype)] including '.' and '..' (what getdents64 lists)."""
        parent = self.parent if self.parent is not None else self
        out = [('.', self.ino, DT_DIR), ('..', parent.ino, DT_DIR)]
        out.extend((name, inode.ino, inode.dtype) for name, inode in self.entries())
        return out

    # ---- modifying (missing operations fail as in fs/namei.c) ---------------------------------
    def create(self, name, mode, uid=0, gid=0):
        """Create a regular file name; returns its inode."""
        raise FsError(errno.EACCES)

    def mkdir(self, name, mode, uid=0, gid=0):
        """Create a subdirectory name; returns its inode."""
        raise FsError(errno.EPERM)

    def symlink(self, name, target, uid=0, gid=0):
        """Create a symlink name -> target; returns its inode."""
        raise FsError(errno.EPERM)

    def link(self, name, inode):
        """Add a hard link name -> inode."""
        raise FsError(errno.EPERM)

    def unlink(self, name):
        """Remove the non-directory entry name."""
        raise FsError(errno.EPERM)

    def rmdir(self, name):
        """Remove the empty subdirectory name."""
        raise FsError(errno.EPERM)

    def rename(self, old_name, new_dir, new_name):
        """Move entry old_name to new_dir/new_name (same filesystem), replacing what is there."""
        raise FsError(errno.EPERM)

    # ---- helpers ----------------------------------------------------------------------------------
    def owner_for_new(self, uid, gid, mode):
        """inode_init_owner: (gid, mode) of a new inode, honouring a setgid directory."""
        if self.mode & S_ISGID:
            gid = self.gid
            if mode & S_IFMT == S_IFDIR:
                mode |= S_ISGID
        return gid, mode


class MemDir(Directory):
    """A directory whose entries live in an insertion-ordered dict (tmpfs, the disk fs, proc, dev)."""

    def __init__(self, sb, ino, mode, uid=0, gid=0, parent=None):
        """A new empty directory."""
        super().__init__(sb, ino, mode, uid, gid, parent)
        self._entries = {}

    def lookup(self, name):
        """The inode called name, or None."""
        return self._entries.get(name)

    def entries(self):
        """[(name, inode)] in creation order."""
        return list(self._entries.items())

    def is_empty(self):
        """True if there are no entries."""
        return not self._entries

    def _check_new(self, name):
        """Refuse to add to a removed directory (ENOENT) or over an existing name (EEXIST)."""
        self.check_writable()
        if self.nlink == 0:
            raise FsError(errno.ENOENT)
        if name in self._entries:
            raise FsError(errno.EEXIST)

    def _add(self, name, inode):
        """Insert an entry and update size and times."""
        self._entries[name] = inode
        self.size = self.sb.dir_size(len(self._entries))
        self.touch_mtime()

    def _remove(self, name):
        """Delete an entry and update size and times; returns the inode."""
        inode = self._entries.pop(name)
        self.size = self.sb.dir_size(len(self._entries))
        self.touch_mtime()
        return inode

    def add_entry(self, name, inode):
        """Link an already-built inode under name (used to populate proc/dev trees)."""
        self._check_new(name)
        if inode.is_dir():
            inode.parent = self
            self.nlink += 1
        self._add(name, inode)
        return inode

    def create(self, name, mode, uid=0, gid=0):
        """Create an empty regular file."""
        self._check_new(name)
        gid, mode = self.owner_for_new(uid, gid, mode)
        inode = self.sb.new_file(mode, uid, gid)
        self._add(name, inode)
        return inode

    def mkdir(self, name, mode, uid=0, gid=0):
        """Create an empty subdirectory."""
        self._check_new(name)
        gid, mode = self.owner_for_new(uid, gid, mode | S_IFDIR)
        inode = self.sb.new_dir(mode, uid, gid, self)
        self.nlink += 1
        self._add(name, inode)
        return inode

    def symlink(self, name, target, uid=0, gid=0):
        """Create a symlink."""
        self._check_new(name)
        gid, _ = self.owner_for_new(uid, gid, 0)
        inode = self.sb.new_symlink(target, uid, gid)
        self._add(name, inode)
        return inode

    def link(self, name, inode):
        """Add a hard link to a non-directory inode of this filesystem."""
        self._check_new(name)
        if inode.is_dir():
            raise FsError(errno.EPERM)
        if inode.nlink == 0:
            raise FsError(errno.ENOENT)
        inode.inc_nlink()
        self._add(name, inode)

    def unlink(self, name):
        """Remove a non-directory entry; the inode is freed when nothing else uses it."""
        self.check_writable()
        inode = self._entries.get(name)
        if inode is None:
            raise FsError(errno.ENOENT)
        if inode.is_dir():
            raise FsError(errno.EISDIR)
        self._remove(name)
        inode.drop_nlink()

    def rmdir(self, name):
        """Remove an empty subdirectory."""
        self.check_writable()
        inode = self._entries.get(name)
        if inode is None:
            raise FsError(errno.ENOENT)
        if not inode.is_dir():
            raise FsError(errno.ENOTDIR)
        if not inode.is_empty():
            raise FsError(errno.ENOTEMPTY)
        self._remove(name)
        self.nlink -= 1
        inode.parent = None
        inode.clear_nlink()

    def rename(self, old_name, new_dir, new_name):
        """Move an entry, replacing a compatible target (an empty dir, or a non-dir)."""
        self.check_writable()
        src = self._entries.get(old_name)
        if src is None:
            raise FsError(errno.ENOENT)
        target = new_dir._entries.get(new_name)
        if target is src:
            return
        if target is not None:
            if src.is_dir() and not target.is_dir():
                raise FsError(errno.ENOTDIR)
            if not src.is_dir() and target.is_dir():
                raise FsError(errno.EISDIR)
            if target.is_dir():
                new_dir.rmdir(new_name)
            else:
                new_dir.unlink(new_name)
        self._remove(old_name)
        new_dir._add(new_name, src)
        if src.is_dir() and new_dir is not self:
            self.nlink -= 1
            new_dir.nlink += 1
            src.parent = new_dir
        src.touch_ctime()
