"""struct mm_struct, the fault record (struct vm_fault) and the fault/result flags."""
from faultlab.kernel.locking import RwSemaphore, SpinLock, SeqCount
from faultlab.kernel.mm.pgtable import PageTables
from faultlab.kernel.mm.vma import VmaTree
from faultlab.kernel.mm.vm_sysctl import VmSysctl

TASK_SIZE = 0x7FFFFFFFF000            # top of user space (47-bit)
STACK_TOP = 0x7FFFFFFDE000            # deterministic (no ASLR): like a non-randomized layout
MMAP_BASE = 0x7FFFF7FFF000            # top-down mmap area starts below the stack gap

# enum fault_flag
FAULT_FLAG_WRITE = 1 << 0
FAULT_FLAG_MKWRITE = 1 << 1
FAULT_FLAG_ALLOW_RETRY = 1 << 2
FAULT_FLAG_RETRY_NOWAIT = 1 << 3
FAULT_FLAG_KILLABLE = 1 << 4
FAULT_FLAG_TRIED = 1 << 5
FAULT_FLAG_USER = 1 << 6
FAULT_FLAG_REMOTE = 1 << 7
FAULT_FLAG_INSTRUCTION = 1 << 8
FAULT_FLAG_INTERRUPTIBLE = 1 << 9
FAULT_FLAG_SPECULATIVE = 1 << 10
FAULT_FLAG_UNSHARE = 1 << 12       # a R/O pin of a shared anonymous page: copy it, map it R/O

# vm_fault_t
VM_FAULT_OOM = 0x000001
VM_FAULT_SIGBUS = 0x000002
VM_FAULT_MAJOR = 0x000004
VM_FAULT_WRITE = 0x000008
VM_FAULT_HWPOISON = 0x000010
VM_FAULT_SIGSEGV = 0x000040
VM_FAULT_NOPAGE = 0x000100
VM_FAULT_LOCKED = 0x000200
VM_FAULT_RETRY = 0x000400
VM_FAULT_FALLBACK = 0x000800
VM_FAULT_DONE_COW = 0x001000
VM_FAULT_COMPLETED = 0x004000
VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON

VM_FAULT_NAMES = [(VM_FAULT_OOM, 'OOM'), (VM_FAULT_SIGBUS, 'SIGBUS'), (VM_FAULT_MAJOR, 'MAJOR'),
                  (VM_FAULT_WRITE, 'WRITE'), (VM_FAULT_HWPOISON, 'HWPOISON'), (VM_FAULT_SIGSEGV, 'SIGSEGV'),
                  (VM_FAULT_NOPAGE, 'NOPAGE'), (VM_FAULT_RETRY, 'RETRY'), (VM_FAULT_COMPLETED, 'COMPLETED')]


class VmFault:
    """struct vm_fault: one fault being handled, plus what we record about how it went."""
    __slots__ = ('vma', 'address', 'flags', 'pgoff', 'slot', 'orig_pte', 'page', 'handler', 'around')

    def __init__(self, vma, address, flags):
        self.vma = vma
        self.address = address & ~0xFFF
        self.flags = flags
        # linear_page_index, inlined: this runs on every fault
        self.pgoff = ((address - vma.vm_start) >> 12) + vma.vm_pgoff if vma is not None else 0
        self.slot = None
        self.orig_pte = 0
        self.page = None
        self.handler = None      # name of the handler that resolved it (do_anonymous_page, ...)
        self.around = 0          # pages mapped by fault-around


class MmServices:
    """What mm code needs from the rest of the kernel, passed in at construction (no reaching into internals).

    frames, pagecache, lru, swapcache, reclaim, llc: the memory subsystems; charge(name, n) and
    charge_cycles(n) bill kernel cycles; costs: the cost table (cost name -> cycles); flush_tlb(mm);
    stats: the kernel's named event counts; sched: the scheduling context mm code calls for time and
    tasks: now(), wait_until(t, why), next_event_time(), cpu_id(), lock_wait(until, what, spin), and
    for userfaultfd and the vm sysctls current_task(), block(task, state), wake(task, ret) and
    mounted_superblocks() (kernel/kernel.py MmSched). hstate, the hugetlb pool, comes later
    (set_hstate).
    """

    def __init__(self, frames, pagecache, charge, flush_tlb, stats, sched, fault_around_bytes=65536, *,
                 costs, charge_cycles, lru, swapcache, reclaim, llc=None,
                 spf=False, spf_file=False, munmap_downgrade=False):
        self.frames = frames
        self.pagecache = pagecache
        self.charge = charge
        self.charge_cycles = charge_cycles    # bill raw cycles (wasted speculative work, spinning)
        self.costs = costs
        self.flush_tlb = flush_tlb
        self.stats = stats
        self.sched = sched
        self.fault_around_bytes = fault_around_bytes
        self.spf = spf                  # speculative page faults enabled
        self.spf_file = spf_file        # ... also for file-backed VMAs
        self.munmap_downgrade = munmap_downgrade    # munmap zaps under mmap_lock held for read (Linux >= 4.20)
        self.gup_refs = {}          # pfn -> references kernel users hold through GUP (pipes, pins)
        self.lru = lru              # LruLists
        self.swapcache = swapcache  # SwapCache
        self.reclaim = reclaim      # Reclaim
        self.llc = llc              # LlcModel
        self.hstate = None          # HState (set_hstate)
        self.sysctl = VmSysctl()    # the /proc/sys/vm knobs mm code obeys
        if hasattr(pagecache, 'set_vm_sysctl'):
            pagecache.set_vm_sysctl(self.sysctl)    # the dirty limits and the flusher follow them
        self.zero_page = alloc_zero_page(frames)

    def set_hstate(self, hstate):
        """hugetlb_init's pool: the HState is built on these services (it charges and zeroes through
        them), so it is handed over once they exist; mm code finds the pool here."""
        self.hstate = hstate

    def cost(self, name):
        """The cycle cost of a named kernel action (without charging it)."""
        return self.costs[name]


def alloc_zero_page(frames):
    """The shared zero page (empty_zero_page): reserved, never freed."""
    zp = frames.alloc_page(zero=True)
    if zp is None:
        raise MemoryError("no memory for the zero page")
    zp.flags |= 1 << 6       # PG_reserved: never freed
    return zp


class MmLocks:
    """The locks of one mm: mmap_lock, the VMA-tree lock, PTE locks by table, PMD change history."""

    def __init__(self):
        self.mmap_lock = RwSemaphore('mmap_lock')
        self.mm_rb = RwSemaphore('mm_rb_lock')
        self.ptl = {}                  # physical address of a PTE table -> SpinLock
        self.pmd_seq = {}              # va >> 21 -> SeqCount of that PMD entry (tables freed/installed)

    def pte_lock(self, slot):
        """The spinlock of the PTE table that holds slot."""
        table = slot & ~0xFFF
        lock = self.ptl.get(table)
        if lock is None:
            lock = self.ptl[table] = SpinLock()
        return lock

    def pmd_changes(self, va):
        """The SeqCount of the PMD entry that maps va."""
        key = va >> 21
        s = self.pmd_seq.get(key)
        if s is None:
            s = self.pmd_seq[key] = SeqCount()
        return s


class MmStruct:
    """struct mm_struct: page tables, the VMA tree, and the layout of the address space."""

    def __init__(self, svc):
        self.svc = svc
        self.pgtables = PageTables(svc.frames.phys, svc.frames.alloc_table)
        self.vmas = VmaTree()
        self.start_code = self.end_code = self.start_data = self.end_data = 0
        self.start_brk = self.brk = 0
        self.start_stack = 0
        self.mmap_base = MMAP_BASE
        self.stack_rlimit = 8 << 20
        self.rss_anon = 0
        self.rss_file = 0
        self.hiwater_rss = 0
        self.total_vm = 0
        self.def_flags = 0             # VM_LOCKED | VM_LOCKONFAULT after mlockall(MCL_FUTURE)
        self.users = 1                 # mm_users: threads sharing it (speculative faults need > 1)
        self.locks = MmLocks()

    @property
    def cr3(self):
        return self.pgtables.pgd

    def find_vma(self, addr):
        self.svc.charge('vma_lookup')
        return self.vmas.find_vma(addr)

    def rss_add(self, anon=0, file=0):
        self.rss_anon += anon
        self.rss_file += file
        rss = self.rss_anon + self.rss_file
        if rss > self.hiwater_rss:
            self.hiwater_rss = rss
