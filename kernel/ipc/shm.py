"""System V shared memory (ipc/shm.c, ipc/util.c): segments are unlinked shmem (tmpfs) files, or
hugetlbfs files for SHM_HUGETLB, and shmat maps them MAP_SHARED through the ordinary shared-file
fault path. Ids are allocated as ipc_idr_alloc does (cyclic index, sequence bumped on wrap), the
destroy-on-last-detach rule, shm_rmid_forced and the kernel.shm* sysctls are Linux's."""
import errno
import struct

from faultlab.kernel.capability import CAP_IPC_LOCK, CAP_IPC_OWNER, CAP_SYS_ADMIN, capable
from faultlab.kernel.file import OpenFile, O_RDONLY, O_RDWR
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.hugetlbfs import hugetlb_file_setup
from faultlab.kernel.mm.hugetlb import hugetlb_reserve_pages
from faultlab.kernel.mm.hugetlb_types import HPAGE_SHIFT, HPAGE_SIZE, PAGES_PER_HPAGE
from faultlab.kernel.mm.mmap import do_mmap, do_munmap, page_align
from faultlab.kernel.mm.vm_sysctl import OVERCOMMIT_NEVER, shmem_acct_size
from faultlab.kernel.sysctl import ULONG_MAX, proc_dointvec_minmax, proc_doulongvec_minmax

IPC_PRIVATE = 0
IPC_CREAT, IPC_EXCL = 0o1000, 0o2000
IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
SHM_LOCK, SHM_UNLOCK, SHM_STAT, SHM_INFO, SHM_STAT_ANY = 11, 12, 13, 14, 15
SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC = 0o10000, 0o20000, 0o40000, 0o100000
SHM_HUGETLB, SHM_NORESERVE = 0o4000, 0o10000
SHM_DEST, SHM_LOCKED = 0o1000, 0o2000
SHM_HUGE_SHIFT, SHM_HUGE_MASK = 26, 0x3F
S_IRWXUGO, S_IRUGO, S_IWUGO, S_IXUGO = 0o777, 0o444, 0o222, 0o111
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_FIXED, MAP_NORESERVE = 0x01, 0x10, 0x4000

PAGE_SIZE = 4096
SHMLBA = PAGE_SIZE
SHMMIN = 1
SHMMNI = 4096
SHMMAX = SHMALL = ULONG_MAX - (1 << 24)       # include/uapi/linux/shm.h
IPCMNI_SHIFT = 15
IPCMNI = 1 << IPCMNI_SHIFT
IPCID_SEQ_MAX = (1 << 31) >> IPCMNI_SHIFT      # ipcid_seq_max(): INT_MAX >> IPCMNI_SHIFT, exclusive
IPC_MIN_CYCLE = 64                             # RADIX_TREE_MAP_SIZE

# struct ipc64_perm + struct shmid64_ds (asm-generic/ipcbuf.h, shmbuf.h on x86-64): 112 bytes
SHMID64_DS = struct.Struct('<iIIIIIHH4xQQ' 'QqqqiiQQQ')
SHMID64_PERM_END = 48
SHMINFO64 = struct.Struct('<9Q')               # shmmax shmmin shmmni shmseg shmall __unused1-4: 72 bytes
SHM_INFO_STRUCT = struct.Struct('<i4x5Q')      # used_ids, shm_tot, shm_rss, shm_swp, swap_attempts/successes


class ShmSegment:
    """struct shmid_kernel: one segment, its permissions and its backing file (shm_file)."""

    def __init__(self, ns, key, mode, size, file, hugetlb, cpid, uid, gid, now):
        self.ns = ns
        self.key = key
        self.mode = mode
        self.uid = self.cuid = uid
        self.gid = self.cgid = gid
        self.segsz = size
        self.numpages = (size + PAGE_SIZE - 1) >> 12
        self.file = file
        self.hugetlb = hugetlb
        self.cpid = cpid
        self.lpid = 0
        self.atime = self.dtime = 0
        self.ctime = now
        self.idx = self.seq = self.id = -1
        self.attaching = 0             # do_shmat in progress (its shm_nattch++ before do_mmap)


class ShmFile(OpenFile):
    """The struct file of one shmat (do_shmat's sfd): the VMAs mapping it hold its only references;
    taking one is shm_open, dropping one shm_close."""

    def __init__(self, seg, flags, pagecache):
        super().__init__(seg.file.inode, flags, seg.file.path, pagecache)
        self.seg = seg
        self.refs = 0

    def get(self):
        """shm_open: a VMA maps the segment (attach, fork, split)."""
        super().get()
        self.seg.ns.shm_open(self.seg)

    def put(self):
        """shm_close: a VMA mapping the segment went away."""
        self.refs -= 1
        self.seg.ns.shm_close(self.seg)


class ShmNamespace:
    """The shm part of struct ipc_namespace: the id table, the limits (sysctls) and shm_tot."""

    def __init__(self, k):
        self.k = k
        self.shm_ctlmax = SHMMAX
        self.shm_ctlall = SHMALL
        self.shm_ctlmni = SHMMNI
        self.shm_rmid_forced = 0
        self.shm_tot = 0
        self.segs = {}                 # idx -> ShmSegment (ipcs_idr)
        self.seq = 0
        self.last_idx = -1
        self.next_idx = 0              # the IDR's cyclic cursor

    # ---- ids (ipc/util.c) ------------------------------------------------------------------------
    def max_idx(self):
        """ipc_get_maxidx: the highest index in use, -1 when none."""
        if not self.segs:
            return -1
        return max(self.segs)

    def ipc_addid(self, seg):
        """ipc_addid: give seg an index and an id (-ENOSPC past shmmni)."""
        if len(self.segs) >= min(self.shm_ctlmni, IPCMNI):
            return -errno.ENOSPC
        end = min(max(len(self.segs) * 3 // 2, IPC_MIN_CYCLE), IPCMNI)
        idx = None
        for i in list(range(self.next_idx, end)) + list(range(0, min(self.next_idx, end))):
            if i not in self.segs:
                idx = i
                break
        if idx is None:
            return -errno.ENOSPC
        self.next_idx = idx + 1
        if idx <= self.last_idx:
            self.seq += 1
            if self.seq >= IPCID_SEQ_MAX:
                self.seq = 0
        self.last_idx = idx
        seg.idx, seg.seq = idx, self.seq
        seg.id = (self.seq << IPCMNI_SHIFT) + idx
        self.segs[idx] = seg
        return seg.id

    def obtain_check(self, shmid):
        """shm_obtain_object_check: the segment with this id, or None (EINVAL)."""
        seg = self.segs.get(shmid % IPCMNI) if shmid >= 0 else None
        if seg is None or seg.id != shmid:
            return None
        return seg

    def findkey(self, key):
        """ipc_findkey."""
        for seg in self.segs.values():
            if seg.key == key:
                return seg
        return None

    # ---- attach counting --------------------------------------------------------------------------
    def nattch(self, seg):
        """shm_nattch: the VMAs of live address spaces that map the segment."""
        n = seg.attaching
        seen = set()
        for t in self.k.tasks.values():
            mm = t.mm
            if t.exited or id(mm) in seen:
                continue
            seen.add(id(mm))
            n += sum(1 for v in mm.vmas if isinstance(v.vm_file, ShmFile) and v.vm_file.seg is seg)
        return n

    def now(self):
        """ktime_get_real_seconds."""
        return self.k.wall_clock_ns() // 1_000_000_000

    def _current_tgid(self):
        t = self.k.current
        return t.tgid if t is not None else 0

    def shm_open(self, seg):
        """__shm_open: attach time and last pid."""
        seg.atime = self.now()
        seg.lpid = self._current_tgid()

    def shm_close(self, seg):
        """shm_close: detach time and last pid; destroy the segment if it may go."""
        seg.dtime = self.now()
        seg.lpid = self._current_tgid()
        self.shm_may_destroy_now(seg)

    def shm_may_destroy(self, seg):
        """shm_may_destroy: unattached and removed (or shm_rmid_forced)."""
        return self.nattch(seg) == 0 and (self.shm_rmid_forced or seg.mode & SHM_DEST)

    def shm_may_destroy_now(self, seg):
        if seg.idx in self.segs and self.segs[seg.idx] is seg and self.shm_may_destroy(seg):
            self.shm_destroy(seg)

    def shm_destroy(self, seg):
        """shm_destroy: leave the id table, give back shm_tot, drop the backing file."""
        del self.segs[seg.idx]
        self.shm_tot -= seg.numpages
        seg.file.put()

    def do_shm_rmid(self, seg):
        """do_shm_rmid: an attached segment is marked SHM_DEST and its key made private; else destroyed."""
        if self.nattch(seg):
            seg.mode |= SHM_DEST
            seg.key = IPC_PRIVATE
            seg.mode &= ~SHM_LOCKED
        else:
            self.shm_destroy(seg)

    def shm_destroy_orphaned(self):
        """shm_destroy_orphaned: segments whose creator is gone and that may go are destroyed."""
        for seg in list(self.segs.values()):
            if not self._creator_alive(seg) and self.shm_may_destroy(seg):
                self.shm_destroy(seg)

    def _creator_alive(self, seg):
        t = self.k.tasks.get(seg.cpid)
        return t is not None and not t.exited

    def rss_swap(self, seg):
        """shm_add_rss_swap: resident pages (page-cache pages, or huge pages x 512) and swapped pages."""
        inode = seg.file.inode
        if seg.hugetlb:     # pages_per_huge_page * nrpages, and nrpages already counts 4 KiB pages
            return len(inode.hpages) * PAGES_PER_HPAGE * PAGES_PER_HPAGE, 0
        return self.k.pagecache.mapping_of(inode).nrpages, 0


def shm_ns(k):
    """The kernel's shm namespace (init_ipc_ns, made at boot by register_shm_procfs)."""
    return k.shm_ipc_ns


def current_euid_egid(task):
    """current_euid_egid()."""
    return task.cred.euid, task.cred.egid


def ipcperms(task, seg, flag):
    """ipcperms: 0 if the requested rwx bits (of flag) are granted, -EACCES otherwise."""
    cred = task.cred
    requested = (flag >> 6 | flag >> 3 | flag) & 0o7
    granted = seg.mode
    if cred.euid in (seg.cuid, seg.uid):
        granted >>= 6
    elif cred.egid in (seg.cgid, seg.gid) or seg.cgid in cred.groups or seg.gid in cred.groups:   # in_group_p
        granted >>= 3
    if requested & ~granted & 0o7 and not capable(task, CAP_IPC_OWNER):
        return -errno.EACCES
    return 0


# ---- shmget ------------------------------------------------------------------------------------------
def newseg(k, task, ns, key, shmflg, size):
    """newseg: a new segment of size bytes; its id or -errno."""
    numpages = (size + PAGE_SIZE - 1) >> 12
    if size < SHMMIN or size > ns.shm_ctlmax:
        return -errno.EINVAL
    if numpages << 12 < size:
        return -errno.ENOSPC
    if ns.shm_tot + numpages > ns.shm_ctlall:
        return -errno.ENOSPC
    name = '/SYSV%08x' % (key & 0xFFFFFFFF)
    noreserve = bool(shmflg & SHM_NORESERVE) and k.mmsvc.sysctl.overcommit_memory != OVERCOMMIT_NEVER
    if shmflg & SHM_HUGETLB:
        h = getattr(k.mmsvc, 'hstate', None)
        sizelog = (shmflg >> SHM_HUGE_SHIFT) & SHM_HUGE_MASK
        if h is None or sizelog not in (0, HPAGE_SHIFT):      # hstate_sizelog: only 2 MiB pages here
            return -errno.EINVAL
        hugesize = (size + HPAGE_SIZE - 1) & ~(HPAGE_SIZE - 1)
        file = hugetlb_file_setup(h, k.pagecache, hugesize, name + ' (deleted)')
        err = hugetlb_reserve_pages(h, task.mm, 0, hugesize >> HPAGE_SHIFT, file, 0, True, noreserve)
        if err:
            file.put()
            return err
    else:
        if size >= 1 << 63:
            return -errno.EINVAL          # __shmem_file_setup: a negative loff_t size
        inode = k.vfs.memfd_create(0o777)
        inode.ihold()
        try:
            inode.set_size(size)
        except FsError as e:
            inode.iput()
            return -e.errno
        err = shmem_acct_size(task.mm, inode, size, noreserve)
        if err:
            inode.iput()
            return err
        file = OpenFile(inode, O_RDWR, name + ' (deleted)', k.pagecache)
    uid, gid = current_euid_egid(task)
    seg = ShmSegment(ns, key, shmflg & S_IRWXUGO, size, file, bool(shmflg & SHM_HUGETLB), task.tgid, uid, gid,
                     ns.now())
    err = ns.ipc_addid(seg)
    if err < 0:
        file.put()
        return err
    ns.shm_tot += numpages
    return seg.id


def ksys_shmget(k, task, key, size, shmflg):
    """shmget(2) (ipcget): a new private segment, or the one with this key (ENOENT, EEXIST, EINVAL
    when it is smaller than size, EACCES)."""
    ns = shm_ns(k)
    if key == IPC_PRIVATE:
        return newseg(k, task, ns, key, shmflg, size)
    seg = ns.findkey(key)
    if seg is None:
        if not shmflg & IPC_CREAT:
            return -errno.ENOENT
        return newseg(k, task, ns, key, shmflg, size)
    if shmflg & IPC_CREAT and shmflg & IPC_EXCL:
        return -errno.EEXIST
    if seg.segsz < size:                                        # shm_more_checks
        return -errno.EINVAL
    err = ipcperms(task, seg, shmflg)
    return err if err else seg.id


# ---- shmat / shmdt -----------------------------------------------------------------------------------
def do_shmat(k, task, shmid, shmaddr, shmflg):
    """do_shmat: map the segment MAP_SHARED (at shmaddr, rounded down with SHM_RND; SHM_REMAP replaces
    what is there); the address or -errno."""
    if shmid < 0:
        return -errno.EINVAL
    flags = MAP_SHARED
    addr = shmaddr
    if addr:
        if addr & (SHMLBA - 1):
            if shmflg & SHM_RND:
                addr &= ~(SHMLBA - 1)
                if not addr and shmflg & SHM_REMAP:
                    return -errno.EINVAL
            else:
                return -errno.EINVAL
        flags |= MAP_FIXED
    elif shmflg & SHM_REMAP:
        return -errno.EINVAL
    if shmflg & SHM_RDONLY:
        prot, acc_mode, f_flags = PROT_READ, S_IRUGO, O_RDONLY
    else:
        prot, acc_mode, f_flags = PROT_READ | PROT_WRITE, S_IRUGO | S_IWUGO, O_RDWR
    if shmflg & SHM_EXEC:
        prot |= PROT_EXEC
        acc_mode |= S_IXUGO
    ns = shm_ns(k)
    seg = ns.obtain_check(shmid)
    if seg is None:
        return -errno.EINVAL
    err = ipcperms(task, seg, acc_mode)
    if err:
        return err
    size = seg.file.inode.size
    mm = task.mm
    if addr and not shmflg & SHM_REMAP:
        if addr + size > ULONG_MAX or mm.vmas.overlapping(addr, addr + page_align(size)):
            return -errno.EINVAL
    if seg.hugetlb:
        flags |= MAP_NORESERVE     # hugetlbfs_file_mmap: an SHM file's pages were reserved by shmget
    f = ShmFile(seg, f_flags, k.pagecache)
    seg.attaching += 1
    try:
        ret = do_mmap(mm, addr, size, prot, flags, f, 0)
    finally:
        seg.attaching -= 1
    ns.shm_may_destroy_now(seg)
    return ret


def ksys_shmdt(k, task, shmaddr):
    """shmdt(2): unmap the segment attached at shmaddr (and the fragments of it that mprotect or munmap
    left, up to its size); -EINVAL when nothing of a segment starts there."""
    if shmaddr & (PAGE_SIZE - 1):
        return -errno.EINVAL
    mm = task.mm
    found = None
    size = 0
    for v in list(mm.vmas):
        if v.vm_end <= shmaddr:
            continue
        if isinstance(v.vm_file, ShmFile) and v.vm_start >= shmaddr and \
                (v.vm_start - shmaddr) >> 12 == v.vm_pgoff:
            found = v.vm_file
            size = page_align(found.inode.size)
            break
    if found is None:
        return -errno.EINVAL
    for v in list(mm.vmas):
        if v.vm_start < shmaddr or v.vm_end - shmaddr > size:
            continue
        if v.vm_file is found and (v.vm_start - shmaddr) >> 12 == v.vm_pgoff:
            do_munmap(mm, v.vm_start, v.vm_end - v.vm_start)
    return 0


# ---- shmctl ------------------------------------------------------------------------------------------
def shminfo(ns):
    """shmctl_ipc_info: (struct shminfo64 bytes, return value = highest index in use or 0)."""
    data = SHMINFO64.pack(ns.shm_ctlmax, SHMMIN, ns.shm_ctlmni, ns.shm_ctlmni, ns.shm_ctlall, 0, 0, 0, 0)
    return data, max(0, ns.max_idx())


def shm_info(ns):
    """shmctl_shm_info: (struct shm_info bytes, highest index in use or 0)."""
    rss = swp = 0
    for seg in ns.segs.values():
        r, s = ns.rss_swap(seg)
        rss += r
        swp += s
    data = SHM_INFO_STRUCT.pack(len(ns.segs), ns.shm_tot, rss, swp, 0, 0)
    return data, max(0, ns.max_idx())


def shmctl_stat(k, task, shmid, cmd):
    """shmctl_stat: (struct shmid64_ds bytes, return value) or (None, -errno); SHM_STAT(_ANY) take an
    index and return the segment's id."""
    ns = shm_ns(k)
    if cmd in (SHM_STAT, SHM_STAT_ANY):
        seg = ns.segs.get(shmid)
    else:
        seg = ns.obtain_check(shmid)
    if seg is None:
        return None, -errno.EINVAL
    if cmd != SHM_STAT_ANY:
        err = ipcperms(task, seg, S_IRUGO)
        if err:
            return None, err
    data = SHMID64_DS.pack(seg.key, seg.uid, seg.gid, seg.cuid, seg.cgid, seg.mode, seg.seq & 0xFFFF, 0, 0, 0,
                           seg.segsz, seg.atime, seg.dtime, seg.ctime, seg.cpid, seg.lpid, ns.nattch(seg), 0, 0)
    return data, seg.id if cmd in (SHM_STAT, SHM_STAT_ANY) else 0


def shmctl_down(k, task, shmid, cmd, buf=None):
    """shmctl_down: IPC_RMID, or IPC_SET of uid, gid and the mode's permission bits (buf is the
    struct shmid64_ds read from the caller); only the owner, the creator or CAP_SYS_ADMIN."""
    ns = shm_ns(k)
    seg = ns.obtain_check(shmid)
    if seg is None:
        return -errno.EINVAL
    euid, _ = current_euid_egid(task)
    if euid not in (seg.uid, seg.cuid) and not capable(task, CAP_SYS_ADMIN):
        return -errno.EPERM
    if cmd == IPC_RMID:
        ns.do_shm_rmid(seg)
        return 0
    _key, uid, gid, _cuid, _cgid, mode = SHMID64_DS.unpack(buf)[:6]
    if uid == 0xFFFFFFFF or gid == 0xFFFFFFFF:                      # ipc_update_perm: invalid ids
        return -errno.EINVAL
    seg.uid, seg.gid = uid, gid
    seg.mode = (seg.mode & ~S_IRWXUGO) | (mode & S_IRWXUGO)
    seg.ctime = ns.now()
    return 0


def shmctl_do_lock(k, task, shmid, cmd):
    """SHM_LOCK / SHM_UNLOCK: set or clear SHM_LOCKED (a no-op for hugetlb segments)."""
    ns = shm_ns(k)
    seg = ns.obtain_check(shmid)
    if seg is None:
        return -errno.EINVAL
    if not capable(task, CAP_IPC_LOCK):
        euid, _ = current_euid_egid(task)
        if euid not in (seg.uid, seg.cuid):
            return -errno.EPERM
    if seg.hugetlb:
        return 0
    if cmd == SHM_LOCK:
        seg.mode |= SHM_LOCKED
    else:
        seg.mode &= ~SHM_LOCKED
    return 0


# ---- /proc ------------------------------------------------------------------------------------------
SYSVIPC_SHM_HEADER = ('       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid'
                      '      atime      dtime      ctime                   rss                  swap\n')


def sysvipc_shm_proc_show(k):
    """/proc/sysvipc/shm: a header, then one line per segment in index order."""
    ns = shm_ns(k)
    out = [SYSVIPC_SHM_HEADER]
    for idx in sorted(ns.segs):
        seg = ns.segs[idx]
        rss, swp = ns.rss_swap(seg)
        out.append('%10d %10d  %4o %21d %5d %5d  %5d %5d %5d %5d %5d %10d %10d %10d %21d %21d\n' % (
            seg.key, seg.id, seg.mode, seg.segsz, seg.cpid, seg.lpid, ns.nattch(seg), seg.uid, seg.gid,
            seg.cuid, seg.cgid, seg.atime, seg.dtime, seg.ctime, rss * PAGE_SIZE, swp * PAGE_SIZE))
    return ''.join(out)


def _store(ns, name, v):
    """Set the namespace's knob to v (None: an empty write, which changes nothing)."""
    if v is not None:
        setattr(ns, name, v)


def _set_rmid_forced(ns, data):
    """proc_dointvec_minmax_orphans: shm_rmid_forced is 0 or 1; while set, orphaned segments go now."""
    _store(ns, 'shm_rmid_forced', proc_dointvec_minmax(data, 0, 1))
    if ns.shm_rmid_forced:
        ns.shm_destroy_orphaned()


def register_shm_procfs(k):
    """Make the shm namespace (shm_init_ns); publish /proc/sys/kernel/shmmax, shmall, shmmni,
    shm_rmid_forced (read and written as Linux's ipc sysctls) and /proc/sysvipc/shm."""
    ns = k.shm_ipc_ns = ShmNamespace(k)
    reg = k.vfs.register_synth
    reg('/proc/sys/kernel/shmmax', lambda: '%d\n' % ns.shm_ctlmax,
        lambda d: _store(ns, 'shm_ctlmax', proc_doulongvec_minmax(d)))
    reg('/proc/sys/kernel/shmall', lambda: '%d\n' % ns.shm_ctlall,
        lambda d: _store(ns, 'shm_ctlall', proc_doulongvec_minmax(d)))
    reg('/proc/sys/kernel/shmmni', lambda: '%d\n' % ns.shm_ctlmni,
        lambda d: _store(ns, 'shm_ctlmni', proc_dointvec_minmax(d, 0, IPCMNI)))
    reg('/proc/sys/kernel/shm_rmid_forced', lambda: '%d\n' % ns.shm_rmid_forced,
        lambda d: _set_rmid_forced(ns, d))
    reg('/proc/sysvipc/shm', lambda: sysvipc_shm_proc_show(k), None, 0o444)
