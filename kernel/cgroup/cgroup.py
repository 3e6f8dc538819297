"""cgroup v2 (kernel/cgroup/cgroup.c; Documentation/admin-guide/cgroup-v2.rst): the unified hierarchy
of control groups, the cgroup2 filesystem that shows it (every mount shows the same hierarchy), the
core files (cgroup.procs, cgroup.controllers, cgroup.subtree_control, cgroup.events, ...), mkdir and
rmdir of child cgroups, and /proc/PID/cgroup. The only controller is hugetlb
(kernel/cgroup/hugetlb_cgroup.py); a process's cgroup is kept in its ThreadGroup (cgroup v2 moves
whole processes) and inherited at fork (cgroup_post_fork)."""
import errno

from faultlab.kernel.cgroup.hugetlb_cgroup import (HugetlbCgroup, HugetlbCgroupState, hugetlb_cgroup_css_offline,
                                                   hugetlb_cgroup_files)
from faultlab.kernel.fs.dir import Directory
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.stat import S_IFDIR
from faultlab.kernel.fs.superblock import SuperBlock
from faultlab.kernel.fs.synth import SynthFile

CGROUP2_SUPER_MAGIC = 0x63677270
CONTROLLERS = ('hugetlb',)               # the controllers this kernel has, in cgroup_subsys order
CGROUP2_OPTIONS = ('nsdelegate', 'favordynmods', 'memory_localevents', 'memory_recursiveprot',
                   'memory_hugetlb_accounting', 'pids_localevents')


class Cgroup:
    """struct cgroup: a node of the hierarchy, its child cgroups, the controllers it enables for
    them (subtree_control) and the hugetlb css it has when its parent enables hugetlb."""

    def __init__(self, hier, name, parent):
        self.hier = hier
        self.name = name
        self.parent = parent
        self.children = {}
        self.subtree_control = set()
        self.hugetlb = HugetlbCgroup() if parent is None else None
        self.dead = False

    def path(self):
        """The path /proc/PID/cgroup shows (cgroup_path_ns)."""
        if self.parent is None:
            return '/'
        up = self.parent.path()
        return up + ('' if up.endswith('/') else '/') + self.name

    def hugetlb_css(self):
        """The hugetlb css tasks of this cgroup are charged to (the nearest ancestor's if the
        controller is not enabled here)."""
        cg = self
        while cg.hugetlb is None:
            cg = cg.parent
        return cg.hugetlb

    def controllers(self):
        """cgroup.controllers: what the parent enables for it (everything, for the root)."""
        if self.parent is None:
            return [c for c in CONTROLLERS]
        return [c for c in CONTROLLERS if c in self.parent.subtree_control]

    def descendants(self):
        out = []
        for c in self.children.values():
            out.append(c)
            out.extend(c.descendants())
        return out

    def processes(self):
        """The live processes directly in this cgroup (thread-group leaders)."""
        return sorted((t for t in self.hier.tasks() if t.tid == t.tgid and not t.exited and task_cgroup(self.hier, t)
                       is self), key=lambda t: t.tgid)

    def threads(self):
        return sorted((t for t in self.hier.tasks() if not t.exited and task_cgroup(self.hier, t) is self),
                      key=lambda t: t.tid)

    def populated(self):
        """cgroup_is_populated: a live task here or below."""
        return bool(self.threads()) or any(c.populated() for c in self.children.values())


def task_cgroup(hier, t):
    """task_dfl_cgroup: the process's cgroup (the root until it is moved)."""
    return getattr(t.group, 'cgroup', None) or hier.root


def cgroup_post_fork(parent, child):
    """cgroup_post_fork: a new process starts in its parent's cgroup."""
    cg = getattr(parent.group, 'cgroup', None)
    if cg is not None and child.group is not parent.group:
        child.group.cgroup = cg


class CgroupHierarchy:
    """cgrp_dfl_root: the root cgroup and the kernel state the files read (the tasks, the current
    one, the hugetlb pool)."""

    def __init__(self, tasks, current, hstate=None):
        self.tasks = tasks
        self.current = current
        self.hstate = hstate
        self.root = Cgroup(self, '', None)
        if hstate is not None:
            hstate.hugetlb_cgroup = HugetlbCgroupState(self.root, current)

    # ---- mkdir / rmdir ---------------------------------------------------------------------------
    def cgroup_mkdir(self, parent, name):
        """cgroup_mkdir: a child cgroup with a css for each controller its parent enables."""
        cg = Cgroup(self, name, parent)
        if 'hugetlb' in parent.subtree_control:
            cg.hugetlb = HugetlbCgroup(parent.hugetlb_css())
        parent.children[name] = cg
        return cg

    def cgroup_rmdir(self, cg):
        """cgroup_destroy_locked: EBUSY while it has tasks or child cgroups; its css go offline."""
        if cg.populated() or cg.children:
            raise FsError(errno.EBUSY)
        del cg.parent.children[cg.name]
        cg.dead = True
        if cg.hugetlb is not None and self.hstate is not None:
            hugetlb_cgroup_css_offline(self.hstate, cg.hugetlb)

    # ---- cgroup.procs, cgroup.subtree_control ------------------------------------------------------------
    def procs_write(self, cg, data):
        """__cgroup_procs_write: move the process with that pid (0: the writer's) and all its threads."""
        pid = _parse_int(data)
        if pid < 0:
            raise FsError(errno.EINVAL)
        writer = self.current()
        t = writer if pid == 0 else next((x for x in self.tasks() if x.tid == pid and not x.exited), None)
        if t is None:
            raise FsError(errno.ESRCH)
        if cg.dead:
            raise FsError(errno.ENODEV)
        if cg.parent is not None and cg.subtree_control:
            raise FsError(errno.EBUSY)          # no internal processes (cgroup_migrate_vet_dst)
        t.group.cgroup = cg if cg.parent is not None else None

    def subtree_control_write(self, cg, data):
        """cgroup_subtree_control_write: '+name' enables, '-name' disables a controller for the
        children; EINVAL for a bad token or unknown controller, ENOENT for one the cgroup does not
        have, EBUSY enabling under a cgroup with processes or disabling one a child still uses."""
        try:
            tokens = bytes(data).decode().split()
        except UnicodeDecodeError:
            raise FsError(errno.EINVAL)
        enable, disable = set(), set()
        for tok in tokens:
            name = tok[1:]
            if tok[:1] not in '+-' or not tok[:1] or name not in CONTROLLERS:
                raise FsError(errno.EINVAL)
            if tok[0] == '+':
                if name not in cg.controllers():
                    raise FsError(errno.ENOENT)
                enable.add(name)
                disable.discard(name)
            else:
                disable.add(name)
                enable.discard(name)
        enable -= cg.subtree_control
        disable &= cg.subtree_control
        if enable and cg.parent is not None and cg.processes():
            raise FsError(errno.EBUSY)
        for name in disable:
            if any(name in c.subtree_control for c in cg.children.values()):
                raise FsError(errno.EBUSY)
        for name in enable:
            cg.subtree_control.add(name)
            for c in cg.children.values():
                c.hugetlb = HugetlbCgroup(cg.hugetlb_css())
        for name in disable:
            cg.subtree_control.discard(name)
            for c in cg.children.values():
                if c.hugetlb is not None and self.hstate is not None:
                    hugetlb_cgroup_css_offline(self.hstate, c.hugetlb)
                c.hugetlb = None

    # ---- the core files -----------------------------------------------------------------------------
    def core_files(self, cg):
        """[(name, read_fn, write_fn)] of cgroup_base_files (those without CFTYPE_NOT_ON_ROOT on the
        root)."""
        root = cg.parent is None
        files = []
        if not root:
            files.append(('cgroup.type', lambda: 'domain\n', None))
        files += [
            ('cgroup.procs', lambda: ''.join('%d\n' % t.tgid for t in cg.processes()),
             lambda d: self.procs_write(cg, d)),
            ('cgroup.threads', lambda: ''.join('%d\n' % t.tid for t in cg.threads()), None),
            ('cgroup.controllers', lambda: ' '.join(cg.controllers()) + '\n', None),
            ('cgroup.subtree_control', lambda: ' '.join(c for c in CONTROLLERS if c in cg.subtree_control) + '\n',
             lambda d: self.subtree_control_write(cg, d)),
        ]
        if not root:
            files.append(('cgroup.events', lambda: 'populated %d\nfrozen 0\n' % cg.populated(), None))
        files += [
            ('cgroup.max.descendants', lambda: 'max\n', None),
            ('cgroup.max.depth', lambda: 'max\n', None),
            ('cgroup.stat', lambda: self.cgroup_stat(cg), None),
        ]
        if not root:
            files += [('cgroup.freeze', lambda: '0\n', None), ('cgroup.kill', None, None)]
        files += [
            ('cpu.stat', lambda: 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n', None),
            ('cpu.stat.local', lambda: 'throttled_usec 0\n', None),
        ]
        return files

    @staticmethod
    def cgroup_stat(cg):
        """cgroup.stat: descendants and the css of each controller in the subtree."""
        below = cg.descendants()
        css = sum(1 for c in [cg] + below if c.hugetlb is not None)
        return ('nr_descendants %d\nnr_subsys_hugetlb %d\nnr_dying_descendants 0\nnr_dying_subsys_hugetlb 0\n'
                % (len(below), css))

    def files(self, cg):
        """Every control file of cg: the core ones, then the controllers'."""
        out = self.core_files(cg)
        if cg.parent is not None and cg.hugetlb is not None:
            out += hugetlb_cgroup_files(cg.hugetlb)
        return out

    def proc_cgroup(self, t):
        """/proc/PID/cgroup (proc_cgroup_show) on a cgroup v2 only system: '0::PATH'."""
        if t is None:
            return '0::/\n'
        return '0::%s\n' % task_cgroup(self, t).path()


def _parse_int(data):
    """kstrtoint(strstrip(buf), 0): EINVAL for anything but an integer."""
    try:
        s = bytes(data).decode().strip()
        return int(s, 0) if not (len(s) > 1 and s[0] == '0' and s[1].isdigit()) else int(s, 8)
    except (UnicodeDecodeError, ValueError):
        raise FsError(errno.EINVAL)


# ---- the cgroup2 filesystem --------------------------------------------------------------------------
class CgroupFile(SynthFile):
    """A control file (a kernfs attribute of a cgroup): st_size 0, 0644 if writable, 0444 if not; a
    write-only file (cgroup.kill) is 0200."""

    def __init__(self, sb, ino, read_fn, write_fn):
        mode = 0o644 if write_fn is not None and read_fn is not None else 0o200 if read_fn is None else 0o444
        super().__init__(sb, ino, read_fn, write_fn, mode)


class CgroupDir(Directory):
    """A cgroup's directory: its control files and its children; mkdir makes a child cgroup,
    rmdir removes one (cgroup_rmdir); files cannot be created, removed or renamed."""

    def __init__(self, sb, ino, cgroup, parent=None):
        super().__init__(sb, ino, S_IFDIR | 0o755, 0, 0, parent)
        self.cgroup = cgroup
        self._files = {}

    def _file(self, name, read_fn, write_fn):
        """The inode of a control file (made once; its callbacks follow the cgroup's state)."""
        f = self._files.get(name)
        if f is None:
            f = self._files[name] = CgroupFile(self.sb, self.sb.alloc_ino(), read_fn, write_fn)
        else:
            f.read_fn, f.write_fn = read_fn, write_fn
        return f

    def entries(self):
        """The control files, then the child cgroups."""
        cg = self.cgroup
        if cg.dead:
            return []
        out = [(name, self._file(name, r, w)) for name, r, w in self.sb.hier.files(cg)]
        live = set(out_name for out_name, _ in out)
        for name in [n for n in self._files if n not in live]:
            del self._files[name]
        out += [(name, self.sb.dir_of(child, self)) for name, child in cg.children.items()]
        self.nlink = 2 + len(cg.children)
        return out

    def lookup(self, name):
        for n, inode in self.entries():
            if n == name:
                return inode
        return None

    def is_empty(self):
        return False

    def mkdir(self, name, mode, uid=0, gid=0):
        """cgroup_mkdir: EEXIST over an existing name, ENOENT in a removed cgroup."""
        cg = self.cgroup
        if cg.dead:
            raise FsError(errno.ENOENT)
        if self.lookup(name) is not None:
            raise FsError(errno.EEXIST)
        child = self.sb.hier.cgroup_mkdir(cg, name)
        self.nlink += 1
        self.touch_mtime()
        return self.sb.dir_of(child, self)

    def rmdir(self, name):
        """cgroup_rmdir: ENOTDIR for a control file, EBUSY while populated or with children."""
        victim = self.lookup(name)
        if victim is None:
            raise FsError(errno.ENOENT)
        if not isinstance(victim, CgroupDir):
            raise FsError(errno.ENOTDIR)
        self.sb.hier.cgroup_rmdir(victim.cgroup)
        self.sb.forget(victim.cgroup)
        self.nlink -= 1
        victim.parent = None
        victim.clear_nlink()
        self.touch_mtime()


class CgroupFs(SuperBlock):
    """A cgroup2 mount: a view of the one unified hierarchy."""
    fstype = 'cgroup2'
    magic = CGROUP2_SUPER_MAGIC

    def __init__(self, hier, clock=None, options=()):
        super().__init__(clock, False, None)
        self.hier = hier
        self.options = tuple(o for o in CGROUP2_OPTIONS if o in options)
        self._dirs = {}
        self.root = self.dir_of(hier.root, None)

    def dir_of(self, cg, parent):
        """The directory inode of a cgroup in this mount (made once)."""
        d = self._dirs.get(id(cg))
        if d is None:
            d = self._dirs[id(cg)] = CgroupDir(self, self.alloc_ino(), cg, parent)
        return d

    def forget(self, cg):
        self._dirs.pop(id(cg), None)

    def show_options(self):
        """cgroup_show_options: the mount options given."""
        return ''.join(',' + o for o in self.options)


def cgroup_get_tree(hier, opts, readonly, clock=None):
    """cgroup_init_fs_context + cgroup2_parse_param: a cgroup2 mount (EINVAL for an unknown option;
    no hierarchy: ENODEV)."""
    if hier is None:
        raise FsError(errno.ENODEV)
    names = []
    for key, value in opts:
        if key not in CGROUP2_OPTIONS or value is not None:
            raise FsError(errno.EINVAL)
        names.append(key)
    sb = CgroupFs(hier, clock, names)
    sb.readonly = readonly
    return sb


def cgroup_init(k):
    """cgroup_init: the unified hierarchy, with the hugetlb controller on the pool, and
    /proc/self/cgroup."""
    hstate = getattr(k.mmsvc, 'hstate', None)
    hier = CgroupHierarchy(lambda: list(k.tasks.values()), lambda: k.current, hstate)
    k.cgroup_root = hier
    k.vfs.register_synth('/proc/self/cgroup', lambda: hier.proc_cgroup(k.current))
    return hier
