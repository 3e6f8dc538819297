"""The kernel: owns memory, the page cache, the disk, the filesystem and tasks; handles CPU traps.

The CPU calls `page_fault`, `syscall`, `exception`, `invalid_opcode`, `rdtsc` and `fast_faults` on this
object (kernel/arch/cpu_interface.py's Traps); the entries themselves are in kernel/arch/traps.py. Kernel work
is billed in cycles from the cost table (`charge`), so simulated time is guest cycles + kernel cycles
+ idle (waiting for I/O or sleeping).
"""
import bisect
import collections
import errno
import os
import stat as pystat
import sys

from faultlab.kernel.arch.traps import exc_page_fault, do_error_trap, exc_invalid_op, do_syscall_64
from faultlab.kernel.arch.vdso import VdsoPages, map_vdso
from faultlab.kernel.block.device import BlockDevice
from faultlab.kernel.block.params import DiskParams
from faultlab.kernel.block.store import DiskStore
from faultlab.kernel.counters import snapshot
from faultlab.kernel.debug.check import TrapChecker
from faultlab.kernel.events import EventQueue
from faultlab.kernel.fastfault import FastFaults
from faultlab.kernel.file import FdTable, HostStream, OpenFile, O_RDONLY
from faultlab.kernel.fs import make_root_fs, FsError, HostFs
from faultlab.kernel.fs.diskimage import open_root_fs, save_root_fs
from faultlab.kernel.futex import futex_wake
from faultlab.kernel.loader import (ExecError, has_interp, parse_elf, parse_interp, printable, load_elf_binary, load_elf_interp,
                           create_elf_tables, elf_et_dyn_bias)
from faultlab.kernel.mm.filemap import PageCache
from faultlab.kernel.mm.hugetlb import HState
from faultlab.kernel.mm.llc import LlcModel, charge_first_touches
from faultlab.kernel.mm.tlb_model import MAX_INTERVAL as TLB_SAMPLE_INTERVAL, TlbModel
from faultlab.kernel.mm.mm_types import MmServices, MmStruct, VM_FAULT_MAJOR, VM_FAULT_RETRY
from faultlab.kernel.mm.page_alloc import FrameAllocator, PG_dirty
from faultlab.kernel.mm.swap import SWAP_BLOCK_BASE, SwapArea, SwapCache
from faultlab.kernel.mm.vmscan import LruLists, Reclaim
from faultlab.kernel.mm.mmap import exit_mmap, mmput
from faultlab.kernel.mm.oom_kill import out_of_memory
from faultlab.kernel.mm.ksm_sysfs import ksm_init
from faultlab.kernel.mm.khugepaged_scan import khugepaged_init
from faultlab.kernel.procfs import register_procfs
from faultlab.kernel.sched import Scheduler
from faultlab.kernel.sigframe import force_sig_fault_handler
from faultlab.kernel.syscalls.thread import exit_notify, notify_parent
from faultlab.kernel.sysctl_args import do_sysctl_args
from faultlab.kernel.sysfs import register_sysfs
from faultlab.kernel.task import Task
from faultlab.kernel.tasktable import TaskTable
from faultlab.kernel.uaccess import UserMemory
from faultlab.vdso.vvar import tsc_mult_for, tsc_to_ns


class LoadedImage:
    """A program loaded into a new address space: where it starts and its symbols."""

    def __init__(self, mm, umem, entry, sp, symbols):
        self.mm, self.umem, self.entry, self.sp, self.symbols = mm, umem, entry, sp, symbols


class KernelClock:
    """The kernel's time as the page cache, swap and reclaim see it: now(), wait_until(t, why),
    next_event_time(), cpu_id() and lock_wait(until, what, spin), bound to one kernel."""

    def __init__(self, kernel):
        self.now = kernel.now
        self.wait_until = kernel.wait_until
        self.next_event_time = kernel.next_event_time
        self.cpu_id = kernel.cpu_id
        self.lock_wait = kernel.lock_wait


class MmSched(KernelClock):
    """The kernel as mm code sees it (MmServices.sched): the clock, and the tasks that userfaultfd
    puts to sleep and wakes and that the vm sysctls check, bound to one kernel."""

    def __init__(self, kernel):
        super().__init__(kernel)
        self._kernel = kernel

    def current_task(self):
        """The task the kernel is working for (None at boot)."""
        return self._kernel.current

    def block(self, task, state):
        """The current task sleeps in state ('S' or 'D') until wake; its CPU runs another task or idles."""
        self._kernel.sched.block(task, state)

    def wake(self, task, ret):
        """Make a sleeping task runnable now with ret as its result; False if it was not asleep."""
        return self._kernel.sched.wake(task, ret, self._kernel.now())

    def mounted_superblocks(self):
        """The superblocks of the mounted filesystems."""
        return [m.sb for m in self._kernel.vfs.mounts]


class KernelConfig:
    """Knobs of the simulated machine's kernel (CLI options map onto these)."""

    def __init__(self, **kw):
        self.fault_around_bytes = kw.pop('fault_around_bytes', 65536)
        self.disk = kw.pop('disk', None) or DiskParams()
        self.mounts = kw.pop('mounts', [])          # [(host, guest, readonly)]
        # the host directory whose shared libraries and loader configuration the guest sees
        # read-only (--sysroot; '/': the host's own, None: none)
        self.sysroot = kw.pop('sysroot', '/')
        self.seed = kw.pop('seed', 0)
        self.stdout = kw.pop('stdout', None)        # callable(bytes) to capture, or None for fd 1
        self.stderr = kw.pop('stderr', None)
        self.warn = kw.pop('warn', None)            # callable(str) for one-line kernel warnings
        self.vdso = kw.pop('vdso', True)            # map the vDSO (and announce it in AT_SYSINFO_EHDR)
        self.swap_bytes = kw.pop('swap_bytes', 256 << 20)   # swap area on the simulated disk (0: none)
        # the host file holding the disk's contents, kept across runs (--disk-image; None: a temporary one)
        self.disk_image = kw.pop('disk_image', None)
        self.cpus = kw.pop('cpus', 1)               # simulated CPUs
        self.spf = kw.pop('spf', True)              # speculative page faults (multi-threaded processes)
        self.spf_file = kw.pop('spf_file', False)   # SPF also for file-backed VMAs (the 2018 variant)
        # munmap zaps with mmap_lock downgraded to read (Linux >= 4.20); off: held for write throughout,
        # as in the 4.15 kernel the SPF series was measured on
        self.munmap_downgrade = kw.pop('munmap_downgrade', False)
        # the CPU may resolve plain anonymous write faults natively (emu/core/fastfault.py); same results
        self.native_faults = kw.pop('native_faults', True)
        # bill user loads and stores their TLB and cache misses (kernel/mm/tlb_model.py), from the pages
        # the CPU reports touched; off by default: which pages a report keeps depends on the host's
        # timing of the emulator's software-TLB resizing, so runs would not repeat cycle for cycle
        self.tlb_model = kw.pop('tlb_model', False)
        self.nr_hugepages = kw.pop('nr_hugepages', 0)       # 2 MiB pages in the hugetlb pool at boot
        self.sysctls = kw.pop('sysctls', ())        # [(name, value)] written to /proc/sys at boot (--sysctl)
        self.cred = kw.pop('cred', None)            # the first process's credentials (--user; None: root)
        # --check: verify mm invariants after traps ('full': every one); default from FAULTLAB_CHECK=1|full
        self.check = kw.pop('check', {'': False, '0': False, 'full': 'full'}.get(os.environ.get('FAULTLAB_CHECK', ''),
                                                                                True))
        if kw:
            raise TypeError("unknown kernel options: %s" % ', '.join(kw))


class Kernel:
    """The mini Linux kernel of one machine."""

    def __init__(self, phys, cpu, costs, config=None):
        self.config = config = config or KernelConfig()
        self.phys = phys
        self.cpu = cpu
        self.costs = costs
        self._init_accounting()
        self._init_memory()
        self._init_block_and_pagecache()
        self._init_filesystems()
        self._init_mm_services()
        self._init_hugetlb()
        self._init_tasks()
        self.ksm = ksm_init(self)           # mm/ksm.c ksm_init: ksmd and /sys/kernel/mm/ksm
        register_procfs(self)
        register_sysfs(self)
        self.khugepaged = khugepaged_init(self)     # mm/khugepaged.c khugepaged_init, start_stop_khugepaged
        self._init_vdso()
        self.vm_checker = TrapChecker(self, config.check) if config.check else None
        do_sysctl_args(self, config.sysctls)

    def _init_accounting(self):
        """The clocks, the counters and the per-fault cost record; no tracer yet."""
        self.kcycles = 0
        self.idle_cycles = 0
        self.gbase = 0                  # this CPU's guest cycles = gbase + the core's counter
        self.ibase = 0
        self.boot_epoch_ns = 1_767_225_600 * 10**9     # 2026-01-01T00:00:00Z; simulated wall clock start
        self._tsc_mult = tsc_mult_for(self.costs.freq_hz)
        self.iowait_cycles = 0
        self.stats = collections.Counter()
        self.fault_breakdown = {}       # handler -> Counter of cost names (cycles) + 'count'
        self._fault_rec = None
        self.tracer = None              # kernel.tracepoints observer (None: no tracing, no cost)
        self.events = EventQueue()
        self.clock = KernelClock(self)

    def _init_memory(self):
        """Boot memory: the page frames and the LRU lists every frame user shares."""
        self.lru = LruLists()
        self.frames = FrameAllocator(self.phys, self.lru)

    def _init_block_and_pagecache(self):
        """The disk, the page cache on it, the swap area and cache, and reclaim over all of them."""
        config = self.config
        self.blockdev = BlockDevice(config.disk, self.costs.freq_hz, self.events)
        self.pagecache = PageCache(self.frames, self.lru, self.blockdev, self.clock, self.charge, self.stats)
        self.disk_store = DiskStore(config.disk_image)        # the disk's contents (a host file)
        nr_slots = max(2, config.swap_bytes // 4096)
        swap_first = max(SWAP_BLOCK_BASE, config.disk.size_mb << 8)
        self.disk_end_block = swap_first + nr_slots
        self.swap_area = SwapArea(nr_slots, self.disk_store.region(swap_first, nr_slots))
        self.swapcache = SwapCache(self.frames, self.swap_area, self.blockdev, self.clock, self.charge, self.stats)
        self.reclaim = Reclaim(self.frames, self.pagecache, self.swapcache, self.lru, self._all_mms, self.charge,
                               self.flush_tlb, self.stats, self.clock)
        self.pagecache.set_reclaim(self.reclaim)

    def _init_mm_services(self):
        """What mm code gets from the kernel (MmServices); allocates the zero page."""
        config = self.config
        self.mmsvc = MmServices(self.frames, self.pagecache, self.charge, self.flush_tlb, self.stats, MmSched(self),
                                config.fault_around_bytes, costs=self.costs.costs, charge_cycles=self.charge_cycles,
                                lru=self.lru, swapcache=self.swapcache, reclaim=self.reclaim,
                                llc=LlcModel(self.phys.nr_frames, self.costs.costs['llc_bytes']),
                                spf=config.spf, spf_file=config.spf_file, munmap_downgrade=config.munmap_downgrade)
        # the data TLBs and the user's cache misses, from the pages the CPU reports touched
        self.tlbmodel = None
        if config.tlb_model and self.cpu.reports_touched_pages:
            self.tlbmodel = TlbModel(self.costs, self.mmsvc, self.charge_user, self.stats)
            self.cpu.tlb_sink = self.tlbmodel.sample
            self.cpu.tlb_interval = TLB_SAMPLE_INTERVAL

    def _init_filesystems(self):
        """The root filesystem with the host's mounts and the sysroot; tmpfs gets half of RAM."""
        config = self.config
        root = open_root_fs(self.wall_clock_ns, config.disk.size_mb << 8, self.disk_store)
        self.vfs = make_root_fs(self.wall_clock_ns, config.seed, host_mounts=config.mounts,
                                tmpfs_pages=self.phys.nr_frames // 2,      # tmpfs size=50% of RAM
                                sysroot=config.sysroot, root=root)

    def save_disk_image(self):
        """Power-off with --disk-image: the root filesystem's dirty page-cache pages go to their blocks
        (untimed, the last sync of a shutdown) and its tree is recorded in the image."""
        if self.disk_store.path is None:
            return
        root = self.vfs.root_sb
        for m in list(self.pagecache.mappings.values()):
            inode = m.inode
            if inode.sb is not root or getattr(inode, 'evicted', False):
                continue
            for index in sorted(m.pages):
                page = m.pages[index]
                start = index * 4096
                if page.flags & PG_dirty and start < inode.size:
                    inode.write_page(index, bytes(self.phys.frame(page.pfn)[:min(4096, inode.size - start)]))
        save_root_fs(root, self.disk_store, self.disk_end_block)

    def _init_hugetlb(self):
        """hugetlb_init: the huge page pool of --hugepages and its hugetlbfs."""
        self.mmsvc.set_hstate(HState(self.mmsvc, self.config.nr_hugepages, self.vfs.root_sb.clock,
                                     self.vfs.alloc_anon_dev()))

    def _init_tasks(self):
        """The task table, the scheduler with its CPUs, futexes, fast faults; no task yet."""
        self.tasks = TaskTable()
        self.current = None
        self.sched = Scheduler(self, max(1, self.config.cpus))
        self.futex_queues = {}          # futex key -> [Waiter] (kernel/futex.py)
        self.debugger = None        # consulted on user page faults when a debugger is attached
        self.fastfaults = FastFaults(self)
        self.fastfaults.enabled = self.config.native_faults
        self.next_pid = 1
        self._warned = set()

    def _init_vdso(self):
        """The vDSO image and its vvar page, with the clocks published (None without --vdso)."""
        self.vdso = VdsoPages(self.frames) if self.config.vdso else None
        if self.vdso is not None:
            self.vdso.publish_clocks(self.boot_epoch_ns, self.costs.freq_hz)

    # ---- time and cost -------------------------------------------------------------------------
    def now(self):
        """Simulated time in cycles on this CPU."""
        return self.gbase + self.cpu.guest_cycles + self.kcycles + self.idle_cycles

    def now_ns(self):
        """Nanoseconds since boot, computed exactly as the vDSO does from the TSC."""
        return tsc_to_ns(int(self.now()), self._tsc_mult)

    def wall_clock_ns(self):
        """CLOCK_REALTIME in nanoseconds (file times)."""
        return self.boot_epoch_ns + int(self.now_ns())

    def blockdev_flush_wait(self):
        """Wait until every submitted disk request has completed (fsync)."""
        self.wait_until(self.blockdev.idle_time(), 'io')

    def charge(self, name, n=1):
        """Bill n units of a named kernel cost to the current CPU (and the fault being handled)."""
        c = self.costs.costs[name] * n
        self.kcycles += c
        rec = self._fault_rec
        if rec is not None:
            rec[name] = rec.get(name, 0) + c

    def charge_user(self, n):
        """Bill cycles of the user's own loads and stores (TLB and cache misses) as user time."""
        self.gbase += n

    def charge_cycles(self, n):
        """Bill raw cycles (wasted speculative work, spinning) to the current CPU."""
        self.kcycles += n

    def wait_until(self, when, why='io'):
        """The current task sleeps until simulated time `when`; the CPU idles meanwhile."""
        now = self.now()
        if when > now:
            if self.tracer is not None:
                self.tracer.wait(self, why, now, when)
            self.sched.this_rq.halt(now, when)
            self.idle_cycles += when - now
            if why == 'io':
                self.iowait_cycles += when - now
            if self._fault_rec is not None:
                key = 'wait_' + why
                self._fault_rec[key] = self._fault_rec.get(key, 0) + when - now
            self.sched.sleep_switches(self.current)
        self.events.run_due(self.now())

    def cpu_id(self):
        """The number of the CPU the kernel is running on (smp_processor_id)."""
        return self.sched.this_rq.index

    def lock_wait(self, until, what, spin=False):
        """This CPU waits for a kernel lock (mmap_lock) until `until`: asleep (idle time, then a
        wake-up), or spinning on the running owner (busy kernel cycles, no sleep or wake-up)."""
        now = self.now()
        if until <= now:
            return
        if self.tracer is not None:
            self.tracer.lock_wait(self, what, now, until)
        rq = self.sched.this_rq
        rq.lock_wait_cycles += until - now
        self.stats[what + '_wait_cycles'] += until - now
        if spin:
            self.kcycles += until - now
            return
        rec = self._fault_rec
        if rec is not None:
            rec['wait_' + what] = rec.get('wait_' + what, 0) + until - now
        self.sched.lock_sleep(self.current, now, until)

    def run_events(self):
        """Run the events (I/O completions) that are due by now."""
        if self.events.pending:     # skip computing now() when nothing is pending
            self.events.run_due(self.now())

    def set_tracer(self, tracer):
        """Attach a kernel.tracepoints observer to the kernel and its block device (None detaches)."""
        self.tracer = tracer
        self.blockdev.tracer = tracer

    def next_event_time(self):
        """When the next pending event (an I/O completion) happens; now if there is none."""
        t = self.events.next_time()
        return self.now() if t is None else t

    def _all_mms(self):
        """The address spaces of the live tasks, each once (what reclaim scans)."""
        mms = []
        for t in self.tasks.live():
            if t.mm not in mms:
                mms.append(t.mm)
        return mms

    def nr_live_tasks(self):
        """How many tasks have not exited."""
        return len(self.tasks.live())

    def warn(self, msg):
        """A one-line kernel warning, to the configured callable or stderr."""
        if self.config.warn is not None:
            self.config.warn(msg)
        else:
            sys.stderr.write('faultlab: warning: %s\n' % msg)

    def warn_once(self, key, msg):
        """warn, the first time for this key only."""
        if key not in self._warned:
            self._warned.add(key)
            self.warn(msg)

    # ---- CPU interface ----------------------------------------------------------------------------
    def flush_tlb(self, mm=None):
        """Flush this CPU's TLB; other CPUs running threads of mm get a shootdown IPI and wait for it."""
        self.charge('tlb_flush')
        self.stats['tlb_flushes'] += 1
        self.cpu.flush_tlb()
        if mm is not None and mm.users > 1:
            others, halted = self.sched.tlb_targets(mm, self.now())
            if others:
                self.charge('tlb_shootdown')
                self.charge('tlb_shootdown_cpu', others)
                self.stats['tlb_shootdowns'] += 1
                if halted:
                    # the IPIs go out together; the flush waits for the slowest: a halted CPU's wake-up
                    self.charge('ipi_wake_idle')
                    self.stats['tlb_shootdowns_idle'] += 1

    def read_code(self, va, n):
        """n bytes of the current task's code at va (the CPU's translator reads them), or None."""
        t = self.current
        return t.umem.read_code(va, n) if t is not None else None

    # ---- processes ------------------------------------------------------------------------------
    def _std_stream(self, host_fd, writer):
        """The open file of a standard stream: the host's fd, or a pipe-like capture when writer is set."""
        try:
            mode = os.fstat(host_fd).st_mode if host_fd >= 0 else pystat.S_IFCHR
        except OSError:
            mode = pystat.S_IFCHR
        kind = pystat.S_IFMT(mode)
        if writer is not None:
            kind = pystat.S_IFIFO            # captured output behaves like a pipe
        elif kind not in (pystat.S_IFCHR, pystat.S_IFIFO, pystat.S_IFREG, pystat.S_IFSOCK):
            kind = pystat.S_IFCHR
        return HostStream(host_fd, kind, writer)

    def resolve_program(self, path):
        """Guest path of the program: a path inside the guest tree, or a host file made visible
        (read-only) at /bin/NAME, or, when it is dynamically linked, at its own absolute path as
        QEMU's user mode runs it (the loader's $ORIGIN and programs that find their files next to
        themselves, like python3, see the path they have natively)."""
        if path.startswith('/') and not os.path.exists(path):
            return path
        if os.path.isfile(path):
            host = os.path.abspath(path)
            for h, g, _ro in self.config.mounts:
                h = os.path.abspath(h)
                if host.startswith(h.rstrip('/') + '/'):
                    return g.rstrip('/') + host[len(h.rstrip('/')):]
            guest = '/bin/' + os.path.basename(host)
            if has_interp(host):
                if self._shows_host_file(host):
                    return host                 # already visible there (e.g. under /usr/lib)
                guest = host
            self.vfs.mount(HostFs(host, True, self.wall_clock_ns), guest)
            return guest
        return path

    def _shows_host_file(self, host):
        """True if the guest path equal to host already names that same host file."""
        try:
            inode = self.vfs.lookup(host)
            st = os.stat(host)
        except (FsError, OSError):
            return False
        return getattr(inode, 'hkey', None) == (st.st_dev, st.st_ino)

    def exec_program(self, path, argv, envp):
        """Create the first task running the program at path (host or guest path)."""
        guest_path = self.resolve_program(path)
        image = self.load_image(guest_path, argv, envp, path)
        pid = self.next_pid
        self.next_pid += 1
        task = Task(pid, image.mm, FdTable(), image.umem, guest_path)
        if self.config.cred is not None:
            task.cred = self.config.cred
        task.files.install(self._std_stream(0, None))
        task.files.install(self._std_stream(1, self.config.stdout))
        task.files.install(self._std_stream(2, self.config.stderr))
        self.current = task
        task.symbols, task._sym_starts = image.symbols, [s[0] for s in image.symbols]
        self.tasks[pid] = task
        self.cpu.enter_user(image.mm.cr3, image.entry, image.sp)
        self.sched.adopt(task)
        return task

    def open_exec(self, guest_path, shown_path):
        """fs/exec.c open_exec: the regular, executable file at guest_path and its bytes (ExecError
        with ENOENT, EACCES, ... as execve returns them)."""
        try:
            inode = self.vfs.lookup(guest_path)
        except FsError as e:
            raise ExecError("%s: %s" % (shown_path, os.strerror(e.errno)), e.errno)
        if not pystat.S_ISREG(inode.mode):
            raise ExecError("%s: not a regular file" % shown_path, errno.EACCES)
        if not inode.mode & 0o111:
            raise ExecError("%s: not executable (mode %o)" % (shown_path, inode.mode & 0o7777), errno.EACCES)
        # kernel_read through the page cache: a file just written (tmpfs, a fresh copy) may hold its
        # bytes only in cached pages not yet written back to the inode's store
        mapping = self.pagecache.mapping_of(inode)
        pages = (mapping.pages.get(i) for i in range((inode.size + 4095) // 4096))
        data = b''.join(bytes(self.phys.frame(pg.pfn)) if pg is not None else inode.read_page(i)
                        for i, pg in enumerate(pages))
        return inode, data[:inode.size]

    def load_image(self, guest_path, argv, envp, shown_path=None):
        """The program at guest_path in a new address space with its initial stack (binfmt_elf's
        load_elf_binary): with a PT_INTERP, the interpreter is mapped too and runs first, with
        AT_BASE and AT_ENTRY telling it where it and the program are. Raises ExecError with the
        errno execve would return."""
        shown_path = shown_path or guest_path
        inode, data = self.open_exec(guest_path, shown_path)
        img = parse_elf(data, shown_path)
        interp = None
        if img.interp is not None:
            ipath = img.interp.decode('utf-8', 'surrogateescape')
            shown = '%s: interpreter %s' % (shown_path, printable(img.interp))
            interp_inode, idata = self.open_exec(ipath, shown)
            interp = (interp_inode, ipath, parse_interp(idata, shown))
        mm = MmStruct(self.mmsvc)
        umem = UserMemory(mm, self.phys, self.charge)
        inode.ihold()                           # the open file the address space keeps (exe_file)
        mm.exe_file = OpenFile(inode, O_RDONLY, guest_path, self.pagecache)
        try:
            bias = elf_et_dyn_bias(img) if img.is_pie else 0
            entry = start = load_elf_binary(mm, umem, mm.exe_file, img, bias)
            interp_base = 0
            if interp is not None:
                interp_inode, ipath, iimg = interp
                interp_inode.ihold()
                ifile = OpenFile(interp_inode, O_RDONLY, ipath, self.pagecache)
                try:
                    interp_base = load_elf_interp(mm, umem, ifile, iimg)
                finally:
                    ifile.put()                 # the mappings hold their own references
                start = iimg.entry + interp_base
            vdso_base = map_vdso(mm, self.vdso) if self.vdso is not None else 0
            if vdso_base < 0:
                raise ExecError("%s: no room for the vDSO" % shown_path, -vdso_base)
            rnd = bytes((self.config.seed * 131 + i * 17 + 7) & 0xFF for i in range(16))
            sp = create_elf_tables(mm, umem, [a.encode() if isinstance(a, str) else a for a in argv],
                                   [e.encode() if isinstance(e, str) else e for e in envp],
                                   guest_path.encode(), img, bias, entry, rnd, vdso_base, interp_base,
                                   self.current.cred if self.current is not None else self.config.cred)
        except ExecError:
            mm.users = 0
            mmput(mm)
            raise
        symbols = [(s + bias, size, name) for s, size, name in img.symbols]
        if interp is not None:
            symbols = sorted(symbols + [(s + interp_base, size, name) for s, size, name in interp[2].symbols])
        return LoadedImage(mm, umem, start, sp, symbols)

    def report_deadlock(self):
        """Every task sleeps and nothing can wake one: describe each thread and where it stopped."""
        lines = []
        for t in self.sched.blocked_tasks():
            rip = self.cpu.rip if t is self.sched.loaded_task else self.cpu.context_read(t.ctx, 'rip')
            lines.append('  %s[%d] state %s in %s at rip=%#x <%s>' % (t.comm, t.tid, t.state,
                                                                    t.waiting_on or '?', rip,
                                                                    self.symbolize(t, rip)))
        return 'deadlock: every thread sleeps and nothing can wake one:\n' + '\n'.join(lines)

    def symbolize(self, task, addr):
        """'name+0xoff' for an address in the program, or '??'."""
        syms = getattr(task, 'symbols', None)
        if not syms:
            return '??'
        i = bisect.bisect_right(task._sym_starts, addr) - 1
        if i < 0:
            return '??'
        start, size, name = syms[i]
        if addr - start < max(size, 1) or (size == 0 and addr - start < 4096):
            return '%s+%#x' % (name, addr - start)
        return '??'

    def do_exit(self, task, code):
        """One thread ends (exit): clear_child_tid is cleared and woken; the last one ends the process."""
        if task.exited:
            return
        self._exit_thread(task)
        group = task.group
        if group.exited and not group.group_exit:
            group.exit_code = code & 0xFF
            self._process_ended(group)

    def do_group_exit(self, task, code, killed_by=None):
        """Every thread of the process ends (exit_group, or a fatal signal when killed_by is set)."""
        group = task.group
        if group.group_exit:
            return
        group.group_exit = True
        group.exit_code = (128 + killed_by[0]) if killed_by else code & 0xFF
        group.killed_by = killed_by
        for t in group.live_threads():
            self._exit_thread(t)
        self._process_ended(group)

    def _exit_thread(self, task):
        """exit_mm/exit_notify for one thread: CLONE_CHILD_CLEARTID, leave the CPU."""
        if task is self.current:
            self.cpu.sample_tlb()               # its last touches are charged before the mm goes
            charge_first_touches(self.mmsvc)    # (without the TLB model: by the Accessed bits)
        task.exited = True
        task.state = 'Z'
        if self.tracer is not None:
            self.tracer.sched_process_exit(self, task)
        task.mm.users -= 1
        task.files.users -= 1
        if task.files.users == 0:
            task.files.close_all()
        exit_notify(self, task)
        if task.clear_child_tid and not task.group.group_exit:
            if task.umem.write(task.clear_child_tid, bytes(4)):
                futex_wake(self, task, task.clear_child_tid, 1, private=False)
        self.sched.task_exited(task)
        if task is self.current:
            self.cpu.stop()

    def _process_ended(self, group):
        """The last thread is gone: the exit status is on the leader; the parent may reap it."""
        leader = group.leader
        leader.exit_code = group.exit_code
        leader.killed_by = group.killed_by
        if group.parent is not None:
            exit_mmap(leader.mm)               # a child process gives its memory back
            notify_parent(self, group)

    def force_sig_fault(self, task, sig, si_code, addr, report):
        """A synchronous signal: its handler runs if the program has one (and does not block it);
        otherwise the process dies with a report of what and where."""
        if not force_sig_fault_handler(self, task, sig, si_code, addr):
            self.do_group_exit(task, 0, (sig, report))

    def oom_kill(self, task, report):
        """pagefault_out_of_memory: the OOM killer picks a victim; task retries its fault if it lives."""
        out_of_memory(self, task, report)

    # ---- traps --------------------------------------------------------------------------------------
    def page_fault(self, rip, address, error_code):
        """Trap interface: #PF from user mode (kernel/arch/traps.py exc_page_fault)."""
        exc_page_fault(self, rip, address, error_code)

    def fast_faults(self, entries):
        """Trap interface: the CPU's native hook resolved these faults (kernel/fastfault.py)."""
        self.fastfaults.fast_faults_done(entries)

    def exception(self, intno, rip):
        """Trap interface: a CPU exception other than #PF and #UD (do_error_trap)."""
        do_error_trap(self, intno, rip)

    def invalid_opcode(self, rip):
        """Trap interface: #UD (exc_invalid_op)."""
        exc_invalid_op(self, rip)

    def rdtsc(self):
        """The TSC: simulated cycles of this CPU (it ticks at the cost table's frequency)."""
        return int(self.now())

    def syscall(self):
        """Trap interface: the syscall instruction (do_syscall_64)."""
        do_syscall_64(self)

    def drop_stale_code(self):
        """A frame that held code was freed or rewritten by the kernel: translated blocks go before
        the program runs again."""
        if self.frames.stale_code:
            self.frames.stale_code = False
            self.cpu.flush_code()

    # ---- fault accounting ------------------------------------------------------------------------
    def begin_fault_record(self):
        """Start collecting the costs of one fault (cost name -> cycles; charge fills it)."""
        rec = self._fault_rec = {}
        return rec

    def end_fault_record(self):
        """Stop collecting the costs of the fault (charge bills the CPU only)."""
        self._fault_rec = None

    def account_fault(self, task, handler, ret, rec, t0, n=1):
        """mm_account_fault and the per-handler breakdown for n resolved faults that began at t0."""
        if not ret & VM_FAULT_RETRY:
            rq = self.sched.this_rq
            if ret & VM_FAULT_MAJOR:
                self.stats['major_faults'] += n
                task.majflt += n
                rq.major_faults += n
            else:
                self.stats['minor_faults'] += n
                task.minflt += n
                rq.minor_faults += n
        agg = self.fault_breakdown.get(handler)
        if agg is None:
            agg = self.fault_breakdown[handler] = collections.Counter()
        agg['count'] += n
        agg['cycles'] += self.kcycles + self.idle_cycles - t0
        for name, cycles in rec.items():
            agg[name] += cycles

    def account_fault_wait(self, handler, why, cycles):
        """A wait that belongs to faults of `handler` but ended after their trap (a userfaultfd fault's
        sleep until the handler wakes it): its cycles go to the handler's breakdown as wait_<why>."""
        agg = self.fault_breakdown.get(handler)
        if agg is None:
            agg = self.fault_breakdown[handler] = collections.Counter()
        agg['cycles'] += cycles
        agg['wait_' + why] += cycles

    # ---- stats ----------------------------------------------------------------------------------------
    def snapshot(self):
        """Counters for --stats and --stats-json (declared in kernel/counters.py)."""
        return snapshot(self)
