"""What a debugger asks of the kernel: user memory without faulting, page faults as debug events,
a signal delivered on resume, the executable file mappings a symbolizer reads, the guest's files
read-only (gdb's Host I/O: the program, its libraries, /proc/PID/maps), and the `monitor` commands
(fault, fault-stop, vmas, pte, stats, pagecache). A fault handed to a userfaultfd is named with
the context's descriptor, the mode and where its message is (queued, being resolved, woken).

Reads never fault a page in, so attaching a debugger does not change what the program will fault
on: a present page is read from its frame, a missing page of a file mapping from the page cache
(or the file itself when it is not cached), a missing anonymous page reads as zeros (what its first
read fault would map). Writes go to present writable pages; a page that is not present or not
writable yet is made so through faultin_page, as ptrace's FOLL_FORCE write does.
"""
import errno
import re
from collections import namedtuple

from faultlab.kernel.arch.cpu_interface import PAGE_SIZE
from faultlab.kernel.arch.fault import (access_str, X86_PF_PROT, X86_PF_WRITE, X86_PF_USER, X86_PF_RSVD, X86_PF_INSTR,
                               X86_PF_PK)
from faultlab.kernel.arch.vdso import fixup_vdso_exception, EX_FLAG_ASYNC
from faultlab.kernel.fs import FsError, SynthFile
from faultlab.kernel.mm.gup import faultin_page
from faultlab.kernel.mm.mm_types import (TASK_SIZE, VM_FAULT_NAMES, VM_FAULT_MAJOR, VM_FAULT_RETRY, VM_FAULT_ERROR,
                                FAULT_FLAG_WRITE, FAULT_FLAG_MKWRITE, FAULT_FLAG_ALLOW_RETRY,
                                FAULT_FLAG_RETRY_NOWAIT, FAULT_FLAG_KILLABLE, FAULT_FLAG_TRIED, FAULT_FLAG_USER,
                                FAULT_FLAG_REMOTE, FAULT_FLAG_INSTRUCTION, FAULT_FLAG_INTERRUPTIBLE,
                                FAULT_FLAG_SPECULATIVE)
from faultlab.kernel.mm.page_alloc import FLAG_NAMES, PG_locked, PG_uptodate, PG_dirty
from faultlab.kernel.mm.pgtable import (_PAGE_PRESENT, _PAGE_RW, _PAGE_DIRTY, PTE_PFN_MASK, LEVEL_NAMES, is_swap_pte,
                               pte_to_swp_entry, pte_flags_str, pte_pfn)
from faultlab.kernel.mm.userfaultfd_k import (_PAGE_SWP_UFFD_WP, _PAGE_UFFD_WP, UFFD_FEATURE_SIGBUS,
                                              UFFD_FEATURE_WP_ASYNC, UFFD_PAGEFAULT_FLAG_MINOR, UFFD_PAGEFAULT_FLAG_WP,
                                              VM_UFFD_FLAGS, VM_UFFD_MINOR, VM_UFFD_MISSING, VM_UFFD_WP, WP_MARKER,
                                              hugetlb_cached_page, userfaultfd_ctx_of, vma_is_shmem)
from faultlab.kernel.mm.vma import VM_HUGETLB, VM_WRITE, VM_EXEC
from faultlab.kernel.procfs import show_map_vma
from faultlab.kernel.sigframe import do_signal
from faultlab.kernel.signal_send import send_signal

_PROC_PID = re.compile(r'/proc/(\d+)(?:/task/(\d+))?(/.*)?$')
FAULT_STOP_MODES = ('off', 'on', 'major', 'nowait', 'uffd')
_PF_BITS = ((X86_PF_PROT, 'PROT'), (X86_PF_WRITE, 'WRITE'), (X86_PF_USER, 'USER'), (X86_PF_RSVD, 'RSVD'),
            (X86_PF_INSTR, 'INSTR'), (X86_PF_PK, 'PK'))
_FLAG_BITS = ((FAULT_FLAG_WRITE, 'WRITE'), (FAULT_FLAG_MKWRITE, 'MKWRITE'), (FAULT_FLAG_ALLOW_RETRY, 'ALLOW_RETRY'),
              (FAULT_FLAG_RETRY_NOWAIT, 'RETRY_NOWAIT'), (FAULT_FLAG_KILLABLE, 'KILLABLE'),
              (FAULT_FLAG_TRIED, 'TRIED'), (FAULT_FLAG_USER, 'USER'), (FAULT_FLAG_REMOTE, 'REMOTE'),
              (FAULT_FLAG_INSTRUCTION, 'INSTRUCTION'), (FAULT_FLAG_INTERRUPTIBLE, 'INTERRUPTIBLE'),
              (FAULT_FLAG_SPECULATIVE, 'SPECULATIVE'))


def _bits(value, table):
    return '|'.join(n for b, n in table if value & b) or '0'


# ---- memory ---------------------------------------------------------------------------------------
def _peek_page(kernel, mm, va):
    """The bytes of the page holding va as the program would see them, without faulting; or None."""
    page_va = va & ~(PAGE_SIZE - 1)
    pte = mm.pgtables.get_pte(page_va)
    if pte & _PAGE_PRESENT:
        pa = pte & PTE_PFN_MASK
        return bytes(kernel.phys.mv[pa:pa + PAGE_SIZE])
    vma = mm.vmas.vma_lookup(page_va)
    if vma is None:
        return None
    if is_swap_pte(pte):
        _t, offset = pte_to_swp_entry(pte)
        page = kernel.swapcache.pages.get(offset)
        if page is None or page.flags & PG_locked:
            return None          # only on the swap device: reading it would be I/O
        return bytes(kernel.phys.mv[page.pfn * PAGE_SIZE:(page.pfn + 1) * PAGE_SIZE])
    if vma.anon or vma.vm_file is None:
        return bytes(PAGE_SIZE) if vma.anon else None
    f = vma.vm_file
    index = vma.linear_page_index(page_va)
    page = f.mapping.pages.get(index) if f.mapping is not None else None
    if page is not None and page.flags & PG_uptodate and not page.flags & PG_locked:
        return bytes(kernel.phys.mv[page.pfn * PAGE_SIZE:(page.pfn + 1) * PAGE_SIZE])
    try:
        data = f.inode.read_page(index)
    except (OSError, ValueError, AttributeError):
        return None
    if not data:
        return None              # past the end of the file: an access would be SIGBUS
    return data + bytes(PAGE_SIZE - len(data))


def peek_user(kernel, task, va, n):
    """Up to n bytes at user address va (fewer if a page on the way cannot be read); None if none can."""
    if va < 0 or va >= TASK_SIZE or n <= 0:
        return None if n > 0 else b''
    out = bytearray()
    while n > 0 and va < TASK_SIZE:
        page = _peek_page(kernel, task.mm, va)
        if page is None:
            break
        off = va & (PAGE_SIZE - 1)
        m = min(n, PAGE_SIZE - off)
        out += page[off:off + m]
        va += m
        n -= m
    return bytes(out) if out else None


def poke_user(kernel, task, va, data):
    """Write data at user address va like ptrace(POKEDATA); True if every byte was written."""
    mm = task.mm
    if va < 0 or va + len(data) > TASK_SIZE:
        return False
    off = 0
    while off < len(data):
        addr = va + off
        vma = mm.vmas.vma_lookup(addr)
        if vma is None:
            return False
        slot = mm.pgtables.pte_slot(addr & ~(PAGE_SIZE - 1), create=False)
        pte = kernel.phys.read64(slot) if slot is not None else 0
        if not (pte & _PAGE_PRESENT and pte & _PAGE_RW):
            if not vma.vm_flags & VM_WRITE:
                return False     # text and read-only data: breakpoints use Z0, not memory writes
            if faultin_page(mm, vma, addr & ~(PAGE_SIZE - 1), True) & VM_FAULT_ERROR:
                return False
            slot = mm.pgtables.pte_slot(addr & ~(PAGE_SIZE - 1), create=False)
            pte = kernel.phys.read64(slot)
            if not (pte & _PAGE_PRESENT and pte & _PAGE_RW):
                return False
        kernel.phys.write64(slot, pte | _PAGE_DIRTY)        # what the CPU's own store would do
        m = min(len(data) - off, PAGE_SIZE - (addr & (PAGE_SIZE - 1)))
        pa = (pte & PTE_PFN_MASK) | (addr & (PAGE_SIZE - 1))
        kernel.phys.mv[pa:pa + m] = data[off:off + m]
        if vma.vm_flags & VM_EXEC:
            kernel.cpu.invalidate_code(addr, addr + m)
        off += m
    return True


def translate_user(task, va):
    """Physical address of user address va if its page is present (no faulting), else None."""
    return task.mm.pgtables.translate(va) if 0 <= va < TASK_SIZE else None


# ---- signals --------------------------------------------------------------------------------------------
def ptrace_signal(kernel, task, sig):
    """The signal a debugger resumes a stopped thread with: sent to it and acted on at once."""
    send_signal(kernel, task, task, sig)
    if not task.exited:
        do_signal(kernel, task, False)


# ---- the files mapped executable, for symbolizers ------------------------------------------------------
# one file-backed VMA: its span, its first page's offset in the file (pages), the file's path, VM_EXEC
FileMapping = namedtuple('FileMapping', 'start end pgoff path executable')


def exec_file_mappings(mm, known=()):
    """{inode: [FileMapping] of all its mappings} of each file mm maps executable, except the inodes in known."""
    groups = {}
    for v in mm.vmas:
        f = v.vm_file
        if f is not None and f.inode not in known:
            groups.setdefault(f.inode, []).append(v)
    return {inode: [FileMapping(v.vm_start, v.vm_end, v.vm_pgoff, v.vm_file.path, bool(v.vm_flags & VM_EXEC))
                    for v in vmas]
            for inode, vmas in groups.items() if any(v.vm_flags & VM_EXEC for v in vmas)}


def exec_file_at(mm, addr):
    """The inode of the file mapped executable at addr, or None."""
    v = mm.vmas.vma_lookup(addr)
    if v is None or v.vm_file is None or not v.vm_flags & VM_EXEC:
        return None
    return v.vm_file.inode


# ---- files, for a debugger's Host I/O (gdb's vFile packets) ------------------------------------------
class DebugFile:
    """A guest file a debugger opened: read without touching the page cache (a page the cache holds
    is read from its frame, any other from the file), so attaching does not change which faults are
    major. A /proc file's text is taken once, at the open, as seq_file's first read does."""

    def __init__(self, kernel, inode, text=None):
        self.kernel = kernel
        self.inode = inode
        self.text = text

    @property
    def size(self):
        """The file's size in bytes (the text's for a /proc file)."""
        return len(self.text) if self.text is not None else getattr(self.inode, 'size', 0)

    def pread(self, offset, count):
        """Up to count bytes at offset (b'' at or past the end)."""
        if self.text is not None:
            return self.text[offset:offset + count]
        out = bytearray()
        end = min(offset + count, self.size)
        while offset < end:
            page = self._read_page(offset // PAGE_SIZE)
            if not page:
                break
            chunk = page[offset % PAGE_SIZE:offset % PAGE_SIZE + end - offset]
            if not chunk:
                break
            out += chunk
            offset += len(chunk)
        return bytes(out)

    def _read_page(self, index):
        """One page of the file: the page cache's copy when it holds an up-to-date one, else the file's."""
        k = self.kernel
        mapping = k.pagecache.mappings.get(id(self.inode))
        page = mapping.pages.get(index) if mapping is not None else None
        if page is not None and page.flags & PG_uptodate and not page.flags & PG_locked:
            n = max(0, min(PAGE_SIZE, self.size - index * PAGE_SIZE))
            return bytes(k.phys.mv[page.pfn * PAGE_SIZE:page.pfn * PAGE_SIZE + n])
        return self.inode.read_page(index)


def _debug_proc_path(kernel, task, path):
    """/proc/PID/rest and /proc/PID/task/TID/rest of the debugged process as /proc/self/rest (the
    guest's procfs shows only self; its threads share the address space): (path, None); another
    process's maps: (None, its text); its other files, or no such task: FsError ENOENT."""
    m = _PROC_PID.match(path)
    if m is None:
        return path, None
    other = kernel.tasks.get(int(m.group(2) or m.group(1)))
    if other is None or other.exited or other.tgid != int(m.group(1)):
        raise FsError(errno.ENOENT)
    rest = m.group(3) or ''
    if other.tgid == task.tgid:
        return '/proc/self' + rest, None
    if rest == '/maps':
        return None, ''.join(show_map_vma(kernel, other, v) for v in other.mm.vmas).encode()
    raise FsError(errno.ENOENT)


def debug_file_open(kernel, task, path):
    """A regular guest file opened read-only for a debugger, resolved from task's cwd (FsError if it
    cannot be: ENOENT, EISDIR for a directory, EACCES for devices and the like)."""
    path, text = _debug_proc_path(kernel, task, path)
    if text is not None:
        return DebugFile(kernel, None, text)
    inode = kernel.vfs.lookup(path, task.cwd)
    if inode.is_dir():
        raise FsError(errno.EISDIR)
    if not inode.is_reg():
        raise FsError(errno.EACCES)
    if isinstance(inode, SynthFile):
        if inode.read_fn is None:
            raise FsError(errno.EACCES)
        return DebugFile(kernel, inode, inode.read_content())
    if not hasattr(inode, 'read_page'):
        raise FsError(errno.EACCES)
    return DebugFile(kernel, inode)


def debug_readlink(kernel, task, path):
    """readlink(2) of a guest path for a debugger (FsError EINVAL if it is no symlink)."""
    path, text = _debug_proc_path(kernel, task, path)
    if text is not None:
        raise FsError(errno.EINVAL)
    return kernel.vfs.readlink(path, task.cwd)


# ---- faults as debug events -------------------------------------------------------------------------
class FaultEvent:
    """One user page fault as the debugger saw it: before the kernel handled it, and after."""

    def __init__(self, seq, task, rip, address, error_code):
        self.seq = seq
        self.pid = task.pid
        self.rip = rip
        self.address = address
        self.error_code = error_code
        self.state = 'pending'
        self.handler = None
        self.ret = 0
        self.flags = 0
        self.around = 0
        self.nowait = False
        self.fixup = False
        self.signal = 0
        self.reason = ''
        self.si_code = 0
        self.cycles = 0
        self.costs = {}
        self.prediction = ''
        self.uffd = None           # UffdFault when the fault goes (or went) to a userfaultfd


def symbolize(kernel, task, addr):
    """'name+0xoff' in the program, '[vdso] name+0xoff' in the vDSO, else '??'."""
    base = getattr(task.mm, 'vdso_base', 0)
    vp = kernel.vdso
    if vp is not None and base and base <= addr < base + len(vp.text_pfns) * PAGE_SIZE:
        off = addr - base
        # the nearest symbol below; of aliases, the exported __vdso_ name
        best = max(((o, n.startswith('__vdso_'), n) for n, o in vp.image.symbols.items() if o <= off), default=None)
        return '[vdso] %s+%#x' % (best[2], off - best[0]) if best else '[vdso]+%#x' % off
    return kernel.symbolize(task, addr)


def _vma_line(vma):
    if vma is None:
        return 'none (no mapping at this address)'
    name = vma.name or (vma.vm_file.path if vma.vm_file is not None else '[anon]')
    off = ' offset %#x' % (vma.vm_pgoff << 12) if vma.vm_file is not None else ''
    return '%#x-%#x %s %s%s' % (vma.vm_start, vma.vm_end, vma.prot_str(), name, off)


# ---- faults handed to a userfaultfd ---------------------------------------------------------------
class UffdFault:
    """The userfaultfd side of one fault: the context, the mode (MISSING, WP, MINOR) and, once the
    kernel handled the fault, the wait-queue entry handle_userfault queued (None in SIGBUS mode)."""

    def __init__(self, ctx, mode, uwq=None):
        self.ctx = ctx
        self.mode = mode
        self.uwq = uwq


_UFFD_MODE_NAMES = {VM_UFFD_MISSING: 'MISSING', VM_UFFD_WP: 'WP', VM_UFFD_MINOR: 'MINOR'}


def uffd_fault_mode(mm, address, write):
    """The mode a user fault at address goes to userfaultfd with, read without side effects as
    userfaultfd_fault, hugetlb_userfault and pte_marker_handle_uffd_wp decide it: (ctx, VM_UFFD_*),
    or None when the kernel handles the fault itself."""
    vma = mm.vmas.vma_lookup(address)
    if vma is None or not vma.vm_flags & VM_UFFD_FLAGS:
        return None
    ctx = userfaultfd_ctx_of(mm, address)
    if ctx is None or ctx.released:
        return None
    f = vma.vm_flags
    pte = mm.pgtables.get_pte(address)
    wp = bool(write and f & VM_UFFD_WP and not ctx.features & UFFD_FEATURE_WP_ASYNC)   # async: no message
    mode = 0
    if f & VM_HUGETLB:
        if pte == 0:
            inode = vma.vm_file.inode
            idx = ((address - vma.vm_start) >> 21) + (vma.vm_pgoff >> 9)
            if idx < (inode.size + (1 << 21) - 1) >> 21:
                cached = hugetlb_cached_page(vma, address) is not None
                mode = VM_UFFD_MINOR if cached else VM_UFFD_MISSING
        elif pte & _PAGE_PRESENT and pte & _PAGE_UFFD_WP and wp:
            mode = VM_UFFD_WP
    elif pte == 0 or pte == WP_MARKER:
        if vma.anon:
            mode = VM_UFFD_MISSING
        elif vma_is_shmem(vma):
            cached = mm.svc.pagecache.peek(vma.vm_file.inode, vma.linear_page_index(address)) is not None
            mode = VM_UFFD_MINOR if cached else VM_UFFD_MISSING
        if not mode & f and pte == WP_MARKER and wp:
            mode = VM_UFFD_WP
    elif pte & _PAGE_PRESENT and pte & _PAGE_UFFD_WP and wp:
        mode = VM_UFFD_WP
    elif is_swap_pte(pte) and pte & _PAGE_SWP_UFFD_WP and wp:
        mode = VM_UFFD_WP
    return (ctx, mode) if mode & f else None


def uffd_queued(ctx, task):
    """The wait-queue entry of task's fault on ctx (read or not), or None."""
    for uwq in ctx.fault_pending + ctx.fault_wqh:
        if uwq.task is task:
            return uwq
    return None


def uffd_mode_of_msg(msg):
    """MISSING, WP or MINOR from a uffd_msg's pagefault flags."""
    flags = int.from_bytes(msg[8:16], 'little')
    return VM_UFFD_WP if flags & UFFD_PAGEFAULT_FLAG_WP else VM_UFFD_MINOR if flags & UFFD_PAGEFAULT_FLAG_MINOR \
        else VM_UFFD_MISSING


def uffd_descriptors(kernel, ctx):
    """[(pid, fd)] of every descriptor open on the context, the registering process's first."""
    out, seen = [], set()
    for t in sorted(kernel.tasks.values(), key=lambda t: (t.mm is not ctx.mm, t.tgid)):
        files = getattr(t, 'files', None)
        if t.exited or files is None or id(files) in seen:
            continue
        seen.add(id(files))
        out += [(t.tgid, fd) for fd, f in sorted(files.fds.items()) if getattr(f, 'inode', None) is ctx]
    return out


def uffd_state(ctx, uwq, task):
    """Where the fault's message is: queued, being resolved (read, the thread asleep), woken."""
    if ctx.released:
        return 'released (the last descriptor closed; the thread was woken and faults as if unregistered)'
    if uwq is None:
        return 'no message yet (handle_userfault queues one when the kernel handles this fault)'
    if uwq in ctx.fault_pending:
        return 'message queued: not read yet, the faulting thread asleep in handle_userfault'
    if uwq in ctx.fault_wqh:
        return 'being resolved: the handler read the message, the faulting thread still asleep'
    return 'woken: resolved (or woken by UFFDIO_WAKE), the thread runs the faulting instruction again'


class FaultMonitor:
    """The `monitor fault-stop` policy, and the pending and last fault for `monitor fault`."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.mode = 'off'
        self.pending = None        # a fault the program stopped at, not yet handled
        self.resuming = None       # the pending fault once the program resumed (the kernel handles it next)
        self.last = None           # the last fault the kernel handled (while a debugger was attached)
        self.seq = 0
        self.stops = 0

    def set_mode(self, mode):
        if mode not in FAULT_STOP_MODES:
            raise ValueError('fault-stop: expected one of %s' % '|'.join(FAULT_STOP_MODES))
        self.mode = mode

    def would_be_nowait(self, task, rip):
        """True if the kernel will handle a fault at rip with FAULT_FLAG_RETRY_NOWAIT (vDSO extable)."""
        k = self.kernel
        hit = fixup_vdso_exception(task.mm, k.vdso, rip, 14)
        return bool(hit and hit.flags & EX_FLAG_ASYNC)

    def predict(self, task, address, error_code):
        """What handling the fault will involve, read from the PTE, the VMA and the caches (no side effects)."""
        k = self.kernel
        mm = task.mm
        vma = mm.vmas.find_vma(address)
        if vma is None or vma.vm_start > address:
            if vma is not None and vma.name == '[stack]':
                return 'stack expansion, then a minor fault', False
            return 'no VMA: SIGSEGV', False
        pte = mm.pgtables.get_pte(address)
        if pte & _PAGE_PRESENT:
            if error_code & X86_PF_WRITE and not pte & _PAGE_RW:
                return 'write to a read-only PTE: do_wp_page (copy-on-write or reuse)', False
            return 'present PTE: access check / spurious', False
        if is_swap_pte(pte):
            _t, offset = pte_to_swp_entry(pte)
            page = k.swapcache.pages.get(offset)
            if page is None:
                return 'swap entry %#x not in the swap cache: do_swap_page reads the disk (major)' % offset, True
            if page.flags & PG_locked:
                return 'swap entry %#x: swap-in I/O in flight (major)' % offset, True
            return 'swap entry %#x in the swap cache: do_swap_page (minor)' % offset, False
        if vma.anon:
            if error_code & X86_PF_WRITE:
                return 'empty PTE, anonymous: do_anonymous_page (zeroed page)', False
            return 'empty PTE, anonymous read: do_anonymous_page maps the zero page', False
        if vma.vm_file is None or vma.vm_file.mapping is None:
            return 'special mapping', False
        index = vma.linear_page_index(address)
        page = vma.vm_file.mapping.pages.get(index)
        kind = 'do_cow_fault' if error_code & X86_PF_WRITE else 'do_read_fault'
        if page is None:
            return 'file page %d not cached: %s reads the disk (major)' % (index, kind), True
        if page.flags & PG_locked:
            return 'file page %d: read I/O in flight (major)' % index, True
        return 'file page %d cached: %s (minor)' % (index, kind), False

    def should_stop(self, task, rip, address, error_code):
        """Consulted before the kernel handles a user fault: True to stop the program first."""
        mode = self.mode
        if mode == 'off':
            return False
        nowait = self.would_be_nowait(task, rip)
        uffd = None if nowait else uffd_fault_mode(task.mm, address, error_code & X86_PF_WRITE)
        if mode == 'uffd' and uffd is None:
            return False            # (a RETRY_NOWAIT fault queues no message: handle_userfault returns first)
        prediction, major = self.predict(task, address, error_code)
        if mode == 'major' and not major:
            return False
        if mode == 'nowait' and not nowait:
            return False
        self.seq += 1
        ev = FaultEvent(self.seq, task, rip, address, error_code)
        if uffd is not None:
            ctx, umode = uffd
            ev.uffd = UffdFault(ctx, umode)
            prediction = 'handle_userfault: %s' % ('SIGBUS (UFFD_FEATURE_SIGBUS)' if ctx.features & UFFD_FEATURE_SIGBUS
                                                   else 'a %s message for the handler, the thread sleeps until it is '
                                                   'resolved' % _UFFD_MODE_NAMES[umode])
        ev.prediction = prediction + ('; RETRY_NOWAIT (vDSO exception table)' if nowait else '')
        ev.nowait = nowait
        self.pending = ev
        self.stops += 1
        return True

    def record(self, task, rip, address, error_code, res, costs, fixed, extra, cycles):
        """The kernel handled a fault: keep what it did for `monitor fault`."""
        pend = self.resuming or self.pending
        if pend is not None and pend.pid == task.pid and pend.rip == rip and pend.address == address:
            ev = pend
        else:
            self.seq += 1
            ev = FaultEvent(self.seq, task, rip, address, error_code)
        self.pending = self.resuming = None
        ev.state = 'handled'
        ev.error_code = error_code
        ev.ret = res.ret
        vmf = res.vmf
        ev.handler = 'vdso extable fixup' if fixed else (vmf.handler if vmf is not None else None)
        ev.flags = vmf.flags if vmf is not None else 0
        ev.around = vmf.around if vmf is not None else 0
        ev.nowait = bool(extra & FAULT_FLAG_RETRY_NOWAIT)
        ev.fixup = bool(fixed)
        ev.signal = 0 if fixed else res.signal
        ev.si_code = res.si_code
        ev.reason = res.reason
        ev.cycles = int(cycles)
        ev.costs = {k: int(v) for k, v in costs.items()}
        if ev.handler == 'handle_userfault' and not fixed:
            ctx = userfaultfd_ctx_of(task.mm, address)
            uwq = uffd_queued(ctx, task) if ctx is not None else None
            if uwq is not None:
                ev.uffd = UffdFault(ctx, uffd_mode_of_msg(uwq.msg), uwq)
            elif ev.uffd is None or ev.uffd.ctx is not ctx:
                ev.uffd = None      # (SIGBUS mode keeps the prediction's context and mode)
        else:
            ev.uffd = None
        self.last = ev

    def resume(self, rip):
        """The program resumes: (rip, address) of the pending fault it will take again, or None."""
        pend, self.pending = self.pending, None
        self.resuming = pend if pend is not None and pend.rip == rip else None
        return (pend.rip, pend.address) if self.resuming is not None else None

    def describe(self):
        """The text of `monitor fault`."""
        out = []
        for title, ev in (('pending fault (the program stopped before the kernel handled it)', self.pending),
                          ('last handled fault', self.last)):
            if ev is None:
                continue
            out.append('%s #%d:' % (title, ev.seq))
            out += self._describe_event(ev)
        if not out:
            out.append('no page fault seen yet (fault-stop is %s)' % self.mode)
        else:
            out.append('fault-stop: %s' % self.mode)
        return '\n'.join(out) + '\n'

    def _describe_event(self, ev):
        k = self.kernel
        task = k.tasks.get(ev.pid) or k.current
        mm = task.mm
        vma = mm.vmas.find_vma(ev.address)
        if vma is not None and vma.vm_start > ev.address and vma.name != '[stack]':
            vma = None
        lines = ['  rip      %#x <%s>' % (ev.rip, symbolize(k, task, ev.rip)),
                 '  address  %#x (page %#x)' % (ev.address, ev.address & ~(PAGE_SIZE - 1)),
                 '  access   %s, %s' % (access_str(ev.error_code),
                                        'protection violation' if ev.error_code & X86_PF_PROT else 'page not present'),
                 '  error    %#x [%s]' % (ev.error_code, _bits(ev.error_code | X86_PF_USER, _PF_BITS)),
                 '  vma      %s' % _vma_line(vma),
                 '  pte      %s' % pte_flags_str(mm.pgtables.get_pte(ev.address))]
        if ev.uffd is not None:
            lines += self._describe_uffd(ev, task)
        if ev.state == 'pending':
            lines.append('  expect   %s' % ev.prediction)
            lines.append('  (not handled yet: stepi or continue lets the kernel handle it)')
            return lines
        if ev.fixup:
            path = 'vdso extable fixup (the fault returned -1 through the fixup, no retry)'
        elif ev.signal:
            path = 'signal %d: %s' % (ev.signal, ev.reason)
        else:
            path = 'classic (handle_mm_fault under mmap_lock; no speculative path in this kernel) -> %s' \
                   % (ev.handler or 'none')
        counted = 'major fault' if ev.ret & VM_FAULT_MAJOR else 'minor fault'
        if ev.signal:
            counted = 'not counted (the fault ends in a signal)'
        elif ev.ret & VM_FAULT_RETRY or ev.fixup:
            counted = 'not counted (RETRY or extable fixup: neither minor nor major)'
        lines += ['  path     %s' % path,
                  '  handler  %s' % (ev.handler or 'none'),
                  '  result   %s; VM_FAULT %s' % (counted, _bits(ev.ret, VM_FAULT_NAMES)),
                  '  flags    FAULT_FLAG %s' % _bits(ev.flags, _FLAG_BITS),
                  '  nowait   %s' % ('yes (FAULT_FLAG_RETRY_NOWAIT from the vDSO exception table)' if ev.nowait
                                     else 'no'),
                  '  extable  %s' % ('fixup taken' if ev.fixup else 'no fixup'),
                  '  around   %d pages mapped by fault-around' % ev.around,
                  '  cycles   %d in the kernel' % ev.cycles]
        for name, c in sorted(ev.costs.items(), key=lambda kv: -kv[1]):
            if c:
                lines.append('    %-22s %d' % (name, c))
        return lines


    def _describe_uffd(self, ev, task):
        """The userfaultfd lines of `monitor fault`: the context's descriptors, the mode, the handler state."""
        u = ev.uffd
        fds = uffd_descriptors(self.kernel, u.ctx)
        where = ', '.join('fd %d of pid %d' % (fd, pid) for pid, fd in fds) or 'no descriptor open'
        sigbus = u.ctx.features & UFFD_FEATURE_SIGBUS
        state = 'SIGBUS mode (UFFD_FEATURE_SIGBUS): no message, the fault is a SIGBUS' if sigbus else \
            uffd_state(u.ctx, u.uwq, task)
        return ['  uffd     %s (anon_inode:[userfaultfd]), registered for %s; mode %s'
                % (where, '|'.join(n for b, n in sorted(_UFFD_MODE_NAMES.items()) if self._registered(ev, b)) or '?',
                   _UFFD_MODE_NAMES[u.mode]),
                '  uffd     handler state: %s' % state]

    def _registered(self, ev, bit):
        """True if the VMA at the fault's address is registered for the VM_UFFD_* bit."""
        k = self.kernel
        task = k.tasks.get(ev.pid) or k.current
        vma = task.mm.vmas.vma_lookup(ev.address)
        return vma is not None and bool(vma.vm_flags & bit)


# ---- monitor commands ----------------------------------------------------------------------------------
def _parse_addr(s):
    try:
        return int(s, 0)
    except ValueError:
        raise ValueError('not an address: %r' % s)


def monitor_vmas(kernel, task):
    """`monitor vmas`: the VMAs as /proc/PID/maps prints them, plus resident pages."""
    out = []
    for vma in task.mm.vmas:
        resident = sum(1 for _va, _s, pte in task.mm.pgtables.present_ptes(vma.vm_start, vma.vm_end)
                       if pte & _PAGE_PRESENT)
        out.append(show_map_vma(kernel, task, vma).rstrip('\n') + '   [%d/%d pages present]'
                   % (resident, (vma.vm_end - vma.vm_start) // PAGE_SIZE))
    return '\n'.join(out) + '\n'


def monitor_pte(kernel, task, arg):
    """`monitor pte ADDR`: the page walk for ADDR, each level's entry and its bits, and the page."""
    va = _parse_addr(arg)
    if not 0 <= va < 1 << 64:
        raise ValueError('address out of range')
    mm = task.mm
    out = ['page walk for %#x (cr3 %#x), indexes pgd %d pud %d pmd %d pte %d:'
           % (va, mm.cr3, (va >> 39) & 511, (va >> 30) & 511, (va >> 21) & 511, (va >> 12) & 511)]
    walk = mm.pgtables.walk(va) if va < TASK_SIZE else []
    for name, ea, e in walk:
        out.append('  %-3s entry @ phys %#x = %#018x  %s' % (name, ea, e, pte_flags_str(e)))
    if len(walk) < len(LEVEL_NAMES):
        missing = LEVEL_NAMES[len(walk)] if walk and walk[-1][2] & _PAGE_PRESENT else None
        out.append('  walk ends: %s' % ('no %s table' % missing if missing else 'entry not present'))
    vma = mm.vmas.vma_lookup(va)
    out.append('  vma: %s' % _vma_line(vma))
    if walk and walk[-1][0] == 'pte' and walk[-1][2] & _PAGE_PRESENT:
        page = kernel.frames.pages[pte_pfn(walk[-1][2])]
        out.append('  page: pfn %#x refcount %d mapcount %d flags %s' % (
            page.pfn, page.refcount, page.mapcount, '|'.join(n for b, n in FLAG_NAMES if page.flags & b) or '0'))
        out.append('  phys: %#x' % ((walk[-1][2] & PTE_PFN_MASK) | (va & (PAGE_SIZE - 1))))
    return '\n'.join(out) + '\n'


def monitor_pagecache(kernel, task, path):
    """`monitor pagecache FILE`: which pages of a guest file are in the page cache, and their state."""
    try:
        inode = kernel.vfs.lookup(path, task.cwd)
    except FsError as e:
        raise ValueError('%s: cannot look it up (errno %d)' % (path, e.errno))
    mapping = kernel.pagecache.mappings.get(id(inode))
    npages = (getattr(inode, 'size', 0) + PAGE_SIZE - 1) // PAGE_SIZE
    pages = mapping.pages if mapping is not None else {}
    out = ['%s: %d of %d pages cached (%d bytes)' % (path, len(pages), npages, getattr(inode, 'size', 0))]
    ranges = []
    for idx in sorted(pages):
        p = pages[idx]
        state = ('locked(I/O)' if p.flags & PG_locked else 'uptodate' if p.flags & PG_uptodate else 'empty') + \
            (' dirty' if p.flags & PG_dirty else '') + (' mapped' if p.mapcount else '')
        if ranges and ranges[-1][1] == idx - 1 and ranges[-1][2] == state:
            ranges[-1][1] = idx
        else:
            ranges.append([idx, idx, state])
    for a, b, state in ranges:
        out.append('  pages %d-%d: %s' % (a, b, state) if a != b else '  page %d: %s' % (a, state))
    return '\n'.join(out) + '\n'


MONITOR_HELP = """faultlab monitor commands:
  fault-stop on|off|major|nowait|uffd  stop at the next (matching) page fault, before the kernel handles
                                   it (uffd: one the kernel will hand to a userfaultfd)
  fault                            the pending and the last page fault: where, what, the path taken, cycles,
                                   and for a userfaultfd fault its descriptor, mode and handler state
  vmas                             the address space (as /proc/PID/maps) with resident pages
  pte ADDR                         the page-table walk for ADDR, each level's entry and bits
  stats                            the machine's counters, as `faultlab stat` prints them
  pagecache FILE                   page-cache state of a guest file
"""


def monitor_command(kernel, fmon, task, line, stats=None):
    """Run one `monitor` command line; returns its output (ValueError with a message for bad input).
    stats(task) -> text is the debugger's `monitor stats` (the counters formatted by the tools)."""
    words = line.split()
    if not words or words[0] in ('help', '?'):
        return MONITOR_HELP
    cmd, args = words[0], words[1:]
    if cmd == 'fault-stop':
        if len(args) != 1:
            return 'fault-stop is %s (%d stops so far)\n' % (fmon.mode, fmon.stops)
        fmon.set_mode(args[0])
        return 'fault-stop %s\n' % fmon.mode
    if cmd == 'fault':
        return fmon.describe()
    if cmd == 'vmas':
        return monitor_vmas(kernel, task)
    if cmd == 'pte':
        if len(args) != 1:
            raise ValueError('usage: monitor pte ADDR')
        return monitor_pte(kernel, task, args[0])
    if cmd == 'stats':
        if stats is None:
            raise ValueError('stats: no counter formatter given')
        return stats(task)
    if cmd == 'pagecache':
        if len(args) != 1:
            raise ValueError('usage: monitor pagecache FILE')
        return monitor_pagecache(kernel, task, args[0])
    raise ValueError('unknown monitor command %r (try "monitor help")' % cmd)


__all__ = ['peek_user', 'poke_user', 'translate_user', 'ptrace_signal', 'FileMapping', 'exec_file_mappings',
           'exec_file_at', 'DebugFile', 'debug_file_open', 'debug_readlink', 'FaultMonitor', 'FaultEvent', 'monitor_command',
           'FAULT_STOP_MODES', 'UffdFault', 'uffd_fault_mode']
