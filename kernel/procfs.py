"""The /proc files the kernel publishes: self/maps, self/smaps(_rollup), self/pagemap, self/clear_refs,
self/status, meminfo, vmstat, sys/vm/*."""
import errno

from faultlab.kernel.capability import CAP_SYS_ADMIN, capable
from faultlab.kernel.cred import SUID_DUMP_USER, get_dumpable
from faultlab.kernel.fs import FsError
from faultlab.kernel.fs.synth import SynthFile
from faultlab.kernel.fs.mount import register_mount_procfs
from faultlab.kernel.ipc.shm import register_shm_procfs
from faultlab.kernel.mm.hugetlb import register_hugetlb_procfs
from faultlab.kernel.mm.hugetlb_types import vma_kernel_pagesize
from faultlab.kernel.mm.huge_memory import VM_HUGEPAGE, VM_NOHUGEPAGE, nr_anon_thp_pages, thp_vma_eligible
from faultlab.kernel.mm.shmem import shmem_resident_pages
from faultlab.kernel.mm.shmem_fault import shmem_thp_eligible
from faultlab.kernel.mm.shmem_huge import shmem_thp_meminfo, shmem_thp_vmstat
from faultlab.kernel.mm.vm_sysctl import vm_commit_limit, vm_committed_pages
from faultlab.kernel.mm.pagemap import MemSizeStats, PSS_SHIFT, clear_refs_write, pagemap_read, smap_gather_stats
from faultlab.kernel.mm.oom_kill import register_oom_procfs
from faultlab.kernel.fork_limits import register_fork_limits_procfs
from faultlab.kernel.fs.file_table import register_file_table_procfs
from faultlab.kernel.mm.pagemap_scan import pagemap_ioctl
from faultlab.kernel.sysctl_vm import register_sysctl_vm
from faultlab.kernel.rlimits import RLIMIT_SIGPENDING, task_rlimit
from faultlab.kernel.signal import handler_of
from faultlab.kernel.kpageflags import register_kpageflags
from faultlab.kernel.proc_fd import register_proc_fd
from faultlab.kernel.proc_cmdline import register_proc_cmdline
from faultlab.kernel.proc_mem import register_proc_mem
from faultlab.kernel.mm.ksm_sysfs import register_ksm_procfs
from faultlab.kernel.mm.ksm_types import VM_MERGEABLE
from faultlab.kernel.proc_pid import register_proc_pid
from faultlab.kernel.cgroup.cgroup import cgroup_init
from faultlab.kernel.ikconfig import register_ikconfig
from faultlab.kernel.mm.vma import (VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC,
                           VM_MAYSHARE, VM_GROWSDOWN, VM_PFNMAP, VM_LOCKED, VM_IO, VM_SEQ_READ, VM_RAND_READ,
                           VM_DONTCOPY, VM_DONTEXPAND, VM_LOCKONFAULT, VM_ACCOUNT, VM_NORESERVE, VM_HUGETLB,
                           VM_SOFTDIRTY, VM_DONTDUMP, VM_WIPEONFORK)
from faultlab.kernel.mm.userfaultfd_k import VM_UFFD_MINOR, VM_UFFD_MISSING, VM_UFFD_WP


def _vma_name(k, task, vma):
    if vma.name:
        return vma.name
    if vma.vm_file is not None:
        return vma.vm_file.path
    return ''


def show_map_vma(k, task, vma):
    """One /proc/PID/maps line, as fs/proc/task_mmu.c prints it."""
    f = vma.vm_file
    ino = getattr(f.inode, 'ino', 0) if f is not None else 0
    dev = getattr(f.inode, 'dev', 0) if f is not None else 0
    major, minor = (dev >> 8) & 0xFFF, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)
    pgoff = (vma.vm_pgoff << 12) if f is not None else 0
    line = '%08x-%08x %s %08x %02x:%02x %d ' % (vma.vm_start, vma.vm_end, vma.prot_str(), pgoff, major, minor, ino)
    name = _vma_name(k, task, vma)
    if name:
        line = line.ljust(73) + name
    return line.rstrip(' ') + '\n' if not name else line + '\n'


def proc_maps(k):
    task = k.current
    return ''.join(show_map_vma(k, task, v) for v in task.mm.vmas)


# show_smap_vma_flags: two letters per VMA flag, in bit order
# show_smap_vma_flags (fs/proc/task_mmu.c): in bit order, as it walks the bits
VM_FLAG_MNEMONICS = ((VM_READ, 'rd'), (VM_WRITE, 'wr'), (VM_EXEC, 'ex'), (VM_SHARED, 'sh'), (VM_MAYREAD, 'mr'),
                     (VM_MAYWRITE, 'mw'), (VM_MAYEXEC, 'me'), (VM_MAYSHARE, 'ms'), (VM_GROWSDOWN, 'gd'),
                     (VM_UFFD_MISSING, 'um'), (VM_PFNMAP, 'pf'), (VM_UFFD_WP, 'uw'), (VM_LOCKED, 'lo'),
                     (VM_IO, 'io'), (VM_SEQ_READ, 'sr'), (VM_RAND_READ, 'rr'), (VM_DONTCOPY, 'dc'),
                     (VM_DONTEXPAND, 'de'), (VM_LOCKONFAULT, 'lf'), (VM_ACCOUNT, 'ac'), (VM_NORESERVE, 'nr'),
                     (VM_HUGETLB, 'ht'), (VM_WIPEONFORK, 'wf'), (VM_DONTDUMP, 'dd'), (VM_SOFTDIRTY, 'sd'),
                     (VM_HUGEPAGE, 'hg'), (VM_NOHUGEPAGE, 'nh'), (VM_MERGEABLE, 'mg'),
                     (VM_UFFD_MINOR, 'ui'))


def _kb(name, nbytes):
    """One smaps counter line: the name padded to 16 columns, kB right-aligned in 8 (SEQ_PUT_DEC)."""
    return '%-16s%8d kB\n' % (name + ':', nbytes >> 10)


def show_smap_vma_flags(vma):
    """The VmFlags: line."""
    return 'VmFlags: ' + ''.join(code + ' ' for bit, code in VM_FLAG_MNEMONICS if vma.vm_flags & bit) + '\n'


def __show_smap(mss, rollup):
    """The counter lines shared by smaps and smaps_rollup."""
    out = [_kb('Rss', mss.resident), _kb('Pss', mss.pss >> PSS_SHIFT), _kb('Pss_Dirty', mss.pss_dirty >> PSS_SHIFT)]
    if rollup:
        out += [_kb('Pss_Anon', mss.pss_anon >> PSS_SHIFT), _kb('Pss_File', mss.pss_file >> PSS_SHIFT),
                _kb('Pss_Shmem', mss.pss_shmem >> PSS_SHIFT)]
    out += [_kb('Shared_Clean', mss.shared_clean), _kb('Shared_Dirty', mss.shared_dirty),
            _kb('Private_Clean', mss.private_clean), _kb('Private_Dirty', mss.private_dirty),
            _kb('Referenced', mss.referenced), _kb('Anonymous', mss.anonymous), _kb('KSM', mss.ksm),
            _kb('LazyFree', mss.lazyfree), _kb('AnonHugePages', mss.anonymous_thp),
            _kb('ShmemPmdMapped', mss.shmem_thp), _kb('FilePmdMapped', mss.file_thp),
            _kb('Shared_Hugetlb', mss.shared_hugetlb), _kb('Private_Hugetlb', mss.private_hugetlb),
            _kb('Swap', mss.swap), _kb('SwapPss', mss.swap_pss >> PSS_SHIFT),
            _kb('Locked', mss.pss_locked >> PSS_SHIFT)]
    return ''.join(out)


def show_smap(k, task, vma):
    """One VMA of /proc/PID/smaps: its maps line, sizes, counters, THPeligible and VmFlags."""
    mss = smap_gather_stats(task.mm, vma)
    return (show_map_vma(k, task, vma) + _kb('Size', vma.vm_end - vma.vm_start) + _kb('KernelPageSize', vma_kernel_pagesize(vma))
            + _kb('MMUPageSize', vma_kernel_pagesize(vma)) + __show_smap(mss, False)
            + 'THPeligible:    %8d\n' % (thp_vma_eligible(task.mm, vma) or shmem_thp_eligible(task.mm, vma))
            + show_smap_vma_flags(vma))


def proc_smaps(k):
    """/proc/self/smaps."""
    task = k.current
    return ''.join(show_smap(k, task, v) for v in task.mm.vmas)


def show_smaps_rollup(k):
    """/proc/self/smaps_rollup: the counters summed over every VMA under one [rollup] header."""
    task = k.current
    vmas = list(task.mm.vmas)
    mss = MemSizeStats()
    for v in vmas:
        smap_gather_stats(task.mm, v, mss)
    start, end = (vmas[0].vm_start, vmas[-1].vm_end) if vmas else (0, 0)
    head = ('%08x-%08x ---p 00000000 00:00 0 ' % (start, end)).ljust(73) + '[rollup]\n'
    return head + __show_smap(mss, True)


def proc_status(k):
    """/proc/self/status (fs/proc/array.c): identity, memory (task_mem), threads, signal masks and
    CPUs, in Linux's order and format."""
    t = k.current
    mm = t.mm
    group = t.group
    c = t.cred
    locked = data = stack = exec_vm = hugetlb = 0
    for v in mm.vmas:
        pages = (v.vm_end - v.vm_start) >> 12
        f = v.vm_flags
        if f & VM_LOCKED:
            locked += pages
        if f & VM_GROWSDOWN:
            stack += pages
        elif f & VM_WRITE and not f & VM_SHARED:
            data += pages
        if f & VM_EXEC and not f & VM_WRITE and not f & VM_GROWSDOWN:
            exec_vm += pages
        if f & VM_HUGETLB:
            hugetlb += pages
    text_kb = ((mm.end_code + 0xFFF) & ~0xFFF) - (mm.start_code & ~0xFFF) >> 10 if mm.end_code else 0
    ignored = caught = 0
    for sig in range(1, 65):
        handler, _flags = handler_of(t, sig)
        if handler == 1:
            ignored |= 1 << (sig - 1)
        elif handler > 1:
            caught |= 1 << (sig - 1)
    ncpu = len(k.sched.rqs)
    rq = k.sched.this_rq
    kb = lambda name, v: '%s:\t%8d kB\n' % (name, v)
    return ''.join([
        'Name:\t%s\n' % t.comm, 'Umask:\t%04o\n' % t.umask, 'State:\tR (running)\n',
        'Tgid:\t%d\n' % t.tgid, 'Ngid:\t0\n', 'Pid:\t%d\n' % t.tid, 'PPid:\t%d\n' % t.ppid,
        'TracerPid:\t%d\n' % (t.tracer.tid if t.tracer is not None else 0),
        'Uid:\t%d\t%d\t%d\t%d\n' % (c.uid, c.euid, c.suid, c.fsuid),
        'Gid:\t%d\t%d\t%d\t%d\n' % (c.gid, c.egid, c.sgid, c.fsgid), 'FDSize:\t64\n',
        'Groups:\t%s \n' % ' '.join(map(str, c.groups)),
        'NStgid:\t%d\n' % t.tgid, 'NSpid:\t%d\n' % t.tid, 'NSpgid:\t%d\n' % group.pgrp, 'NSsid:\t%d\n' % group.session,
        'Kthread:\t0\n',
        kb('VmPeak', max(mm.total_vm, getattr(mm, 'hiwater_vm', 0)) * 4), kb('VmSize', mm.total_vm * 4),
        kb('VmLck', locked * 4), kb('VmPin', 0), kb('VmHWM', mm.hiwater_rss * 4),
        kb('VmRSS', (mm.rss_anon + mm.rss_file) * 4), kb('RssAnon', mm.rss_anon * 4),
        kb('RssFile', mm.rss_file * 4), kb('RssShmem', 0), kb('VmData', data * 4), kb('VmStk', stack * 4),
        kb('VmExe', text_kb), kb('VmLib', max(0, exec_vm * 4 - text_kb)),
        kb('VmPTE', len(mm.pgtables.table_pfns) * 4), kb('VmSwap', max(0, getattr(mm, 'swap_ents', 0)) * 4),
        'HugetlbPages:\t%8d kB\n' % (hugetlb * 4), 'CoreDumping:\t0\n',
        'THP_enabled:\t%d\n' % (not getattr(mm, 'mmf_disable_thp', False)),     # task_thp_status
        'untag_mask:\t0xffffffffffffffff\n',
        'Threads:\t%d\n' % len(group.live_threads()),
        'SigQ:\t%d/%d\n' % (bin(t.pending_signals | group.shared_pending).count('1'),
                            task_rlimit(t, RLIMIT_SIGPENDING)[0]),
        'SigPnd:\t%016x\n' % t.pending_signals, 'ShdPnd:\t%016x\n' % group.shared_pending,
        'SigBlk:\t%016x\n' % t.sigmask, 'SigIgn:\t%016x\n' % ignored, 'SigCgt:\t%016x\n' % caught,
        'CapInh:\t%016x\n' % c.cap_inheritable, 'CapPrm:\t%016x\n' % c.cap_permitted,
        'CapEff:\t%016x\n' % c.cap_effective, 'CapBnd:\t%016x\n' % c.cap_bset, 'CapAmb:\t%016x\n' % c.cap_ambient,
        'NoNewPrivs:\t%d\n' % t.no_new_privs, 'Seccomp:\t0\n',
        'Seccomp_filters:\t0\n', 'Speculation_Store_Bypass:\tnot vulnerable\n',
        'SpeculationIndirectBranch:\tnot affected\n',
        'Cpus_allowed:\t%x\n' % ((1 << ncpu) - 1), 'Cpus_allowed_list:\t%s\n' % ('0' if ncpu == 1 else '0-%d' % (ncpu - 1)),
        'Mems_allowed:\t00000001\n', 'Mems_allowed_list:\t0\n',
        'voluntary_ctxt_switches:\t%d\n' % getattr(t, 'nvcsw', 0),
        'nonvoluntary_ctxt_switches:\t%d\n' % getattr(t, 'nivcsw', 0),
    ])


def proc_meminfo(k):
    total = k.phys.size >> 10
    free = k.frames.nr_free * 4
    cached = sum(m.nrpages for m in k.pagecache.mappings.values()) * 4
    return ('MemTotal:       %8d kB\nMemFree:        %8d kB\nMemAvailable:   %8d kB\nBuffers:        %8d kB\n'
            'Cached:         %8d kB\nSwapCached:     %8d kB\nActive:         %8d kB\nInactive:       %8d kB\n'
            'SwapTotal:      %8d kB\nSwapFree:       %8d kB\nDirty:          %8d kB\nWriteback:      %8d kB\n'
            % (total, free, free + cached, 0, cached, len(k.swapcache.pages) * 4, len(k.lru.active) * 4,
               len(k.lru.inactive) * 4, (k.swap_area.nr_slots - 1) * 4, k.swap_area.nr_free * 4,
               k.pagecache.writeback.nr_dirty * 4, k.pagecache.writeback.nr_writeback * 4)
            + meminfo_commit(k) + 'AnonHugePages:  %8d kB\n' % (nr_anon_thp_pages(k.mmsvc) * 4)
            + shmem_thp_meminfo(k.mmsvc, k.pagecache)
            + (k.mmsvc.hstate.meminfo() if getattr(k.mmsvc, 'hstate', None) else ''))


def meminfo_commit(k):
    """The Shmem, CommitLimit and Committed_AS lines (fs/proc/meminfo.c: NR_SHMEM, vm_commit_limit(),
    vm_memory_committed())."""
    return ('Shmem:          %8d kB\nCommitLimit:    %8d kB\nCommitted_AS:   %8d kB\n'
            % (shmem_resident_pages(k.pagecache) * 4, vm_commit_limit(k.mmsvc) * 4,
               vm_committed_pages(k.mmsvc) * 4))


VMSTAT_FIELDS = ('pgpgin', 'pgpgout', 'pswpin', 'pswpout', 'pgfault', 'pgmajfault', 'pgactivate',
                 'pgdeactivate', 'pgscan', 'pgsteal', 'kswapd_runs', 'nowait_faults', 'vdso_fixups',
                 'thp_fault_alloc', 'thp_fault_fallback', 'thp_fault_fallback_charge', 'thp_collapse_alloc',
                 'thp_collapse_alloc_failed', 'thp_split_page', 'thp_split_page_failed',
                 'thp_deferred_split_page', 'thp_split_pmd', 'thp_zero_page_alloc', 'thp_zero_page_alloc_failed',
                 'thp_swpout', 'thp_swpout_fallback', 'nr_dirtied', 'nr_written')


def proc_vmstat(k):
    """/proc/vmstat: name value lines."""
    s = k.stats
    vals = dict((f, s[f]) for f in VMSTAT_FIELDS)
    vals['pgfault'] = s['minor_faults'] + s['major_faults'] + s['gup_pgfault']
    vals['pgmajfault'] = s['major_faults'] + s['gup_pgmajfault']
    vals['pgpgin'] = k.blockdev.stats.read_bytes // 1024
    vals['nr_free_pages'] = k.frames.nr_free
    vals['nr_anon_transparent_hugepages'] = nr_anon_thp_pages(k.mmsvc) >> 9
    vals['nr_swap_pages'] = k.swap_area.nr_free
    vals.update(shmem_thp_vmstat(k.mmsvc, k.pagecache))
    vals['nr_dirty'] = k.pagecache.writeback.nr_dirty
    vals['nr_writeback'] = k.pagecache.writeback.nr_writeback
    return ''.join('%s %d\n' % kv for kv in sorted(vals.items()))


def write_drop_caches(k, data):
    """echo 1|2|3 > /proc/sys/vm/drop_caches."""
    try:
        v = int(data.strip() or b'x')
    except ValueError:
        raise FsError(errno.EINVAL)
    if v not in (1, 2, 3):
        raise FsError(errno.EINVAL)
    if v & 1:
        drop_pagecache(k)


def drop_pagecache(k):
    """drop_pagecache_sb: invalidate_mapping_pages over every cached file. tmpfs and memfd pages are
    the files' only copy (shmem folios stay dirty until swapped), so only files with a disk behind
    them lose their clean, unmapped pages."""
    pc = k.pagecache
    for m in list(pc.mappings.values()):
        if getattr(m.inode, 'backing', 'mem') == 'disk':
            pc.invalidate_mapping_pages(m)


def register_procfs(k):
    """Publish the kernel's /proc files in the guest's tree."""
    reg = k.vfs.register_synth
    reg('/proc/self/maps', lambda: proc_maps(k))
    reg('/proc/self/smaps', lambda: proc_smaps(k))
    reg('/proc/self/smaps_rollup', lambda: show_smaps_rollup(k))
    # frame numbers only for CAP_SYS_ADMIN (pagemap_read; Linux asks it of the opener's creds)
    pagemap = reg('/proc/self/pagemap', None, None, 0o400)
    pagemap.read_at = lambda pos, count: pagemap_read(k.current.mm, pos, count, capable(k.current, CAP_SYS_ADMIN))
    pagemap.unlocked_ioctl = lambda k_, t, f, cmd, arg: pagemap_ioctl(t.mm, t.umem, cmd, arg)
    reg('/proc/self/clear_refs', None, lambda d: clear_refs_write(k.current.mm, d), 0o200).read_at = \
        _no_read
    reg('/proc/self/status', lambda: proc_status(k))
    reg('/proc/self/comm', lambda: k.current.comm + '\n', lambda d: k.current.set_comm(d))
    reg('/proc/meminfo', lambda: proc_meminfo(k))
    reg('/proc/vmstat', lambda: proc_vmstat(k))
    reg('/proc/sys/vm/drop_caches', lambda: '0\n', lambda d: write_drop_caches(k, d), 0o200)
    reg('/proc/sys/vm/fault_around_bytes', lambda: '%d\n' % k.mmsvc.fault_around_bytes,
        lambda d: _set_fault_around(k, d))
    register_hugetlb_procfs(k)
    register_shm_procfs(k)
    register_mount_procfs(k)
    register_sysctl_vm(k)
    register_kpageflags(k)
    register_proc_mem(k)
    register_proc_cmdline(k)
    register_proc_fd(k)
    register_oom_procfs(k)
    register_fork_limits_procfs(k)
    register_file_table_procfs(k)
    register_ksm_procfs(k)
    register_proc_pid(k)
    cgroup_init(k)                                  # and /proc/self/cgroup
    register_ikconfig(k)
    k.vfs.lookup('/proc/self').immutable = True     # proc_pid_instantiate's S_IMMUTABLE
    owner = lambda: task_dump_owner(k.current)      # noqa: E731
    for _name, inode in k.vfs.lookup('/proc/self').entries():
        if isinstance(inode, SynthFile):
            inode.owner = owner
    k.vfs.register_synth_symlink('/proc/self/exe', lambda: k.current.exe_path if k.current else '/')
    # the task's root and cwd, as guest paths: following them stays in the guest's tree
    k.vfs.register_synth_symlink('/proc/self/root', lambda: '/')
    k.vfs.register_synth_symlink('/proc/self/cwd', lambda: k.current.cwd if k.current else '/')


def task_dump_owner(task):
    """The owner of a task's /proc/PID files: its effective uid and gid while the process is
    dumpable, root once a credential change made it not (fs/proc/base.c task_dump_owner)."""
    if task is None or get_dumpable(task.mm) != SUID_DUMP_USER:
        return 0, 0
    return task.cred.euid, task.cred.egid


def _no_read(pos, count):
    """A proc file without ->read (clear_refs): reading it fails with EINVAL."""
    raise FsError(errno.EINVAL)


def _set_fault_around(k, data):
    """Like debugfs fault_around_bytes: rounded down to a power-of-two number of pages, min one page."""
    try:
        v = int(data.strip())
    except ValueError:
        raise FsError(errno.EINVAL)
    if v < 0 or v > (1 << 21):
        raise FsError(errno.EINVAL)
    pages = max(1, v // 4096)
    p = 1
    while p * 2 <= pages:
        p *= 2
    k.mmsvc.fault_around_bytes = p * 4096
