"""The /proc files the kernel publishes: self/maps, self/smaps, self/status, meminfo, sys/vm/*."""
import errno

from kernel.fs import FsError


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


def proc_status(k):
    t = k.current
    mm = t.mm
    return ('Name:\t%s\nUmask:\t%04o\nState:\tR (running)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\n'
            'TracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t64\nVmPeak:\t%8d kB\nVmSize:\t%8d kB\n'
            'VmHWM:\t%8d kB\nVmRSS:\t%8d kB\nRssAnon:\t%8d kB\nRssFile:\t%8d kB\nThreads:\t1\n'
            % (t.comm, t.umask, t.tgid, t.pid, t.ppid, mm.total_vm * 4, mm.total_vm * 4, mm.hiwater_rss * 4,
               (mm.rss_anon + mm.rss_file) * 4, mm.rss_anon * 4, mm.rss_file * 4))


def proc_meminfo(k):
    total = k.phys.size >> 10
    free = k.frames.nr_free * 4
    cached = sum(m.nrpages for m in k.pagecache.mappings.values()) * 4
    return ('MemTotal:       %8d kB\nMemFree:        %8d kB\nMemAvailable:   %8d kB\nBuffers:        %8d kB\n'
            'Cached:         %8d kB\nSwapCached:     %8d kB\nActive:         %8d kB\nInactive:       %8d kB\n'
            'SwapTotal:      %8d kB\nSwapFree:       %8d kB\n'
            % (total, free, free + cached, 0, cached, len(k.swapcache.pages) * 4, len(k.lru.active) * 4,
               len(k.lru.inactive) * 4, (k.swap_area.nr_slots - 1) * 4, k.swap_area.nr_free * 4))


VMSTAT_FIELDS = ('pgpgin', 'pgpgout', 'pswpin', 'pswpout', 'pgfault', 'pgmajfault', 'pgactivate',
                 'pgdeactivate', 'pgscan', 'pgsteal', 'kswapd_runs', 'nowait_faults', 'vdso_fixups')


def proc_vmstat(k):
    """/proc/vmstat: name value lines."""
    s = k.stats
    vals = dict((f, s[f]) for f in VMSTAT_FIELDS)
    vals['pgfault'] = s['minor_faults'] + s['major_faults']
    vals['pgmajfault'] = s['major_faults']
    vals['pgpgin'] = k.blockdev.stats.read_bytes // 1024
    vals['nr_free_pages'] = k.frames.nr_free
    vals['nr_swap_pages'] = k.swap_area.nr_free
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
        k.pagecache.drop_caches()


def register_procfs(k):
    """Publish the kernel's /proc files in the guest's tree."""
    reg = k.vfs.register_synth
    reg('/proc/self/maps', lambda: proc_maps(k))
    reg('/proc/self/status', lambda: proc_status(k))
    reg('/proc/meminfo', lambda: proc_meminfo(k))
    reg('/proc/vmstat', lambda: proc_vmstat(k))
    reg('/proc/sys/vm/drop_caches', lambda: '0\n', lambda d: write_drop_caches(k, d))
    reg('/proc/sys/vm/fault_around_bytes', lambda: '%d\n' % k.mmsvc.fault_around_bytes,
        lambda d: _set_fault_around(k, d))
    k.vfs.register_synth_symlink('/proc/self/exe', lambda: k.current.exe_path if k.current else '/')


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
