"""The vm sysctls the mm code obeys (kernel/sysctl.c, mm/util.c, security/min_addr.c) and the commit
accounting of overcommit_memory (mm/util.c __vm_enough_memory): the knobs' values with Linux's
defaults, and the checks that read them. /proc/sys/vm publishes them (kernel/sysctl_vm.py)."""
import errno

from faultlab.kernel.arch.cpu_interface import PAGE_SIZE

from faultlab.kernel.capability import CAP_SYS_ADMIN, CAP_SYS_RAWIO, capable
from faultlab.kernel.mm.vma import VM_ACCOUNT, VM_HUGETLB, VM_NORESERVE, VM_SHARED, VM_WRITE

OVERCOMMIT_GUESS, OVERCOMMIT_ALWAYS, OVERCOMMIT_NEVER = 0, 1, 2
DEFAULT_MAX_MAP_COUNT = 65530           # include/linux/mm.h: USHRT_MAX - MAPCOUNT_ELF_CORE_MARGIN
CONFIG_DEFAULT_MMAP_MIN_ADDR = 65536    # x86's default in security/Kconfig


class VmSysctl:
    """The /proc/sys/vm knobs the kernel acts on, with the values a fresh Linux boots with."""

    def __init__(self):
        self.dac_mmap_min_addr = CONFIG_DEFAULT_MMAP_MIN_ADDR    # /proc/sys/vm/mmap_min_addr
        self.overcommit_memory = OVERCOMMIT_GUESS
        self.overcommit_ratio = 50
        self.overcommit_kbytes = 0
        self.max_map_count = DEFAULT_MAX_MAP_COUNT
        self.swappiness = 60
        self.compact_unevictable_allowed = 1
        self.dirty_ratio = 20
        self.dirty_background_ratio = 10
        self.dirty_bytes = 0
        self.dirty_background_bytes = 0
        self.dirty_expire_centisecs = 3000
        self.dirty_writeback_centisecs = 500
        self.dirtytime_expire_seconds = 43200
        self.admin_reserve_kbytes = 8192       # init_admin_reserve: min(3% of free memory, 8 MiB)
        self.user_reserve_kbytes = 131072      # init_user_reserve: min(3% of free memory, 128 MiB)
        # the shmem objects committed by size (shmem_acct_size): id(inode) -> (inode, pages)
        self.shmem_charged = {}

    def init_reserves(self, free_pages):
        """init_admin_reserve / init_user_reserve: 3% of free memory, capped at 8 MiB / 128 MiB."""
        free_kbytes = free_pages * 4
        self.admin_reserve_kbytes = min(free_kbytes * 3 // 100, 8192)
        self.user_reserve_kbytes = min(free_kbytes * 3 // 100, 131072)


def current_task(svc):
    """The task the kernel is working for (None at boot)."""
    return svc.sched.current_task()


def cap_mmap_addr(sysctl, addr, has_cap_sys_rawio):
    """security/commoncap.c cap_mmap_addr: an address below mmap_min_addr needs CAP_SYS_RAWIO
    (-EPERM without it); 0 when allowed."""
    if addr < sysctl.dac_mmap_min_addr and not has_cap_sys_rawio:
        return -errno.EPERM
    return 0


def security_mmap_addr(svc, addr):
    """security_mmap_addr: cap_mmap_addr for the current task's CAP_SYS_RAWIO."""
    if addr >= svc.sysctl.dac_mmap_min_addr:
        return 0
    return cap_mmap_addr(svc.sysctl, addr, capable(current_task(svc), CAP_SYS_RAWIO))


def vma_pages(vma):
    """The VMA's length in pages."""
    return (vma.vm_end - vma.vm_start) >> 12


def vm_committed_pages(svc):
    """vm_committed_as (Committed_AS in /proc/meminfo), in pages: what vm_acct_memory has charged and
    not given back. The pages of every VM_ACCOUNT mapping of every address space (mmap_region,
    brk, stack growth, mremap, mprotect and dup_mmap charge them; unmapping gives them back), the
    whole size of each live shmem object committed by size (shmem_acct_size: shared anonymous
    memory, System V segments), and each page allocated to any other tmpfs or memfd file
    (VM_NORESERVE inodes: shmem_acct_blocks charges pages as they are allocated, shmem_unacct_blocks
    as they are freed)."""
    total = sum(vma_pages(v) for mm in svc.reclaim.mms() for v in mm.vmas if v.vm_flags & VM_ACCOUNT)
    charged = svc.sysctl.shmem_charged
    for key, (inode, pages) in list(charged.items()):
        if inode.evicted:                  # shmem_evict_inode -> shmem_unacct_size
            del charged[key]
            continue
        total += pages - inode.blocks // (PAGE_SIZE // 512)     # its pages are in its sb's count
    return total + sum(sb.used_pages for sb in _shmem_superblocks(svc))


def _shmem_superblocks(svc):
    """Every tmpfs instance that can hold pages: the mounted ones, and those of the files in the page
    cache or committed by size (the internal mount of memfd and shared anonymous memory)."""
    sbs = {}
    for sb in svc.sched.mounted_superblocks():
        sbs[id(sb)] = sb
    for m in svc.pagecache.mappings.values():
        sbs[id(m.inode.sb)] = m.inode.sb
    for inode, _pages in svc.sysctl.shmem_charged.values():
        sbs[id(inode.sb)] = inode.sb
    return [sb for sb in sbs.values() if getattr(sb, 'fstype', None) == 'tmpfs']


def shmem_acct_size(mm, inode, size, noreserve):
    """mm/shmem.c shmem_acct_size: a shmem object that is not VM_NORESERVE (shared anonymous memory
    without MAP_NORESERVE, a System V segment without SHM_NORESERVE) commits its whole size when it
    is made (0 or -ENOMEM, as __vm_enough_memory decides for mm, the caller's); its pages are then
    not charged one by one. The inode's eviction gives the charge back (shmem_unacct_size)."""
    if noreserve:
        return 0
    pages = (size + PAGE_SIZE - 1) >> 12
    err = vm_enough_memory(mm, pages)
    if err:
        return err
    mm.svc.sysctl.shmem_charged[id(inode)] = (inode, pages)
    return 0


def vm_commit_limit(svc):
    """mm/util.c vm_commit_limit: overcommit_kbytes, or overcommit_ratio% of the RAM outside the
    hugetlb pool, plus swap (CommitLimit in /proc/meminfo), in pages."""
    sc = svc.sysctl
    if sc.overcommit_kbytes:
        allowed = sc.overcommit_kbytes >> 2
    else:
        h = getattr(svc, 'hstate', None)
        huge = h.nr_huge_pages << 9 if h is not None else 0
        allowed = (svc.frames.phys.nr_frames - huge) * sc.overcommit_ratio // 100
    return allowed + _total_swap_pages(svc)


def _total_swap_pages(svc):
    sc = getattr(svc, 'swapcache', None)
    return max(0, sc.area.nr_slots - 1) if sc is not None else 0


def vm_enough_memory(mm, pages, uncharged=0):
    """__vm_enough_memory: may mm commit `pages` more pages? 0 or -ENOMEM, by overcommit_memory:
    GUESS refuses only a single request larger than RAM plus swap, ALWAYS never refuses, NEVER keeps
    the committed total below the commit limit (less the admin reserve for non-admins and, for a
    large process, min(total_vm/32, user_reserve_kbytes)). `uncharged` pages of the committed total
    are being given up by the same call (a MAP_FIXED mapping's predecessors)."""
    svc = mm.svc
    sc = svc.sysctl
    if sc.overcommit_memory == OVERCOMMIT_ALWAYS or pages <= 0:
        return 0
    if sc.overcommit_memory == OVERCOMMIT_GUESS:
        if pages > svc.frames.phys.nr_frames + _total_swap_pages(svc):
            return -errno.ENOMEM
        return 0
    allowed = vm_commit_limit(svc)
    if not capable(current_task(svc), CAP_SYS_ADMIN):      # cap_vm_enough_memory
        allowed -= sc.admin_reserve_kbytes >> 2
    allowed -= min(mm.total_vm // 32, sc.user_reserve_kbytes >> 2)
    if vm_committed_pages(svc) - uncharged + pages < allowed:
        return 0
    return -errno.ENOMEM


def map_noreserve(sysctl, flags):
    """do_mmap: MAP_NORESERVE (0x4000) makes a mapping VM_NORESERVE unless overcommit_memory is 2."""
    return bool(flags & 0x4000) and sysctl.overcommit_memory != OVERCOMMIT_NEVER


def accountable_mapping(vm_flags):
    """mm/mmap.c accountable_mapping: private writable memory without MAP_NORESERVE is committed
    (hugetlb mappings are accounted by their pool reservations instead)."""
    return (vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE | VM_HUGETLB)) == VM_WRITE


def too_many_maps(mm, extra=0):
    """Would mm have more than max_map_count VMAs after `extra` more (the map_count checks of
    do_mmap, __split_vma, move_vma)?"""
    return len(mm.vmas) + extra > mm.svc.sysctl.max_map_count
