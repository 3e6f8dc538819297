"""A native page-fault hook for the commonest fault: a user write to an unmapped page of anonymous memory.

Every #PF goes through Unicorn's interrupt hook. A Python hook costs a ctypes transition and the kernel's
Python path per fault; this hook is machine code (assembled and verified at start-up by emu/core/asm.py, like
the block counter) that handles one case itself and tail-calls the Python hook for everything else. The kernel
*arms* it with a policy, and only while nothing else can observe the difference:

* a virtual range [start, end) (one anonymous private writable VMA) and the leaf bits to map with;
* the page-table root (CR3), the vDSO range (faults there go to Python: the exception table), and
* a pool of frames the kernel allocated, in the order it would have allocated them.

For a write fault (error code: user, write, not present) in the range, outside the vDSO, whose walk
finds every upper level present (no huge pages) and the PTE empty, the hook takes the next pool frame,
zeroes it, writes the PTE, appends (address, PTE slot, pfn, rip, current block address and size) to a
log and resumes the guest; the instruction re-executes. Anything else, an exhausted pool or a full log
falls through to Python. Before the kernel handles any trap (or reads the counters after a run) the CPU
disarms the hook and hands the log to the kernel, which does the bookkeeping each fault would have
done (cycles, counters, rmap, LRU, the per-fault breakdown) in order, and takes back the unused frames.

State array (uint64), offsets in qwords:
  0 armed   1 &env.error_code   2 &env.cr2   3 range start   4 range end   5 &env.eip
  6 vDSO start   7 vDSO size   8 pool frames left   9 pool array   10 log entries   11 log capacity
  12 host address of guest-physical 0   13 CR3   14 pool frames used   15 PTE bits   16 log array
  17 block-counter state   18 &env.old_exception   19 the Python interrupt hook
"""
import ctypes

from faultlab.core.asm import NATIVE_CHECKS, NativeCode, NativeStateError, assemble
from faultlab.core.blockcount import ST_LAST_ADDR, ST_LAST_SIZE

LOG_FIELDS = 6              # address, PTE slot (guest-physical), pfn, rip, block address, block size
LOG_CAPACITY = 256
POOL_CAPACITY = 256
PF_USER_WRITE_NOT_PRESENT = 0x6      # error code bits 0-4: P=0, W=1, U=1, RSVD=0, I/D=0

S_ARMED, S_ERR, S_CR2, S_START, S_END, S_EIP, S_VDSO, S_VDSO_SIZE, S_LEFT, S_POOL, S_LOGN, S_LOGCAP, \
    S_HOST, S_CR3, S_USED, S_BITS, S_LOG, S_COUNTER, S_OLDEXC, S_PYCB = range(20)

# one upper level of the page walk: r8 = the table's guest-physical address -> the next table's; a
# missing entry (and, below the root, a huge-page entry) goes to the Python hook
_WALK_LEVEL = """    mov r10, rcx
    shr r10, %(shift)#x
    and r10, 0x1ff
    add r8, r11
    mov r8, [r8+r10*8]
    test r8, 1
    jz slow
%(leaf_check)s    and r8, rax
"""
_NOT_HUGE = """    test r8, 0x80
    jnz slow
"""

# void hook(uc_engine *uc /*rdi*/, uint32_t intno /*esi*/, uint64_t *st /*rdx*/)
_HOOK_ASM = """
    cmp esi, 0xe
    jne slow
    cmp qword ptr [rdx], 0
    je slow
    mov r8, [rdx+8]
    mov eax, dword ptr [r8]
    and eax, 0x1f
    cmp eax, %(code)#x
    jne slow
    mov r8, [rdx+0x10]
    mov rcx, [r8]
    cmp rcx, [rdx+0x18]
    jb slow
    cmp rcx, [rdx+0x20]
    jae slow
    mov r8, [rdx+0x28]
    mov r9, [r8]
    mov r10, r9
    sub r10, [rdx+0x30]
    cmp r10, [rdx+0x38]
    jb slow
    cmp qword ptr [rdx+0x40], 0
    je slow
    mov rax, [rdx+0x50]
    cmp rax, [rdx+0x58]
    jae slow
    mov r11, [rdx+0x60]
    mov rax, 0x000ffffffffff000
    mov r8, [rdx+0x68]
%(walk)s    mov r10, rcx
    shr r10, 0xc
    and r10, 0x1ff
    lea r8, [r8+r10*8]
    cmp qword ptr [r11+r8], 0
    jne slow
    mov r10, [rdx+0x48]
    mov rax, [rdx+0x70]
    mov r10, [r10+rax*8]
    inc qword ptr [rdx+0x70]
    dec qword ptr [rdx+0x40]
    push rdi
    push rcx
    mov rdi, r10
    shl rdi, 0xc
    add rdi, r11
    mov ecx, 0x200
    xor eax, eax
    rep stosq
    pop rcx
    pop rdi
    mov rax, r10
    shl rax, 0xc
    or rax, [rdx+0x78]
    mov [r11+r8], rax
    mov rax, [rdx+0x50]
    imul rax, rax, %(entry)#x
    add rax, [rdx+0x80]
    mov [rax], rcx
    mov [rax+8], r8
    mov [rax+0x10], r10
    mov [rax+0x18], r9
    mov r10, [rdx+0x88]
    mov r9, [r10+%(last_addr)#x]
    mov [rax+0x20], r9
    mov r9, [r10+%(last_size)#x]
    mov [rax+0x28], r9
    inc qword ptr [rdx+0x50]
    mov r8, [rdx+0x90]
    mov dword ptr [r8], -1
    ret
slow:
    jmp qword ptr [rdx+0x98]
""" % {'code': PF_USER_WRITE_NOT_PRESENT, 'entry': LOG_FIELDS * 8,
       'last_addr': ST_LAST_ADDR * 8, 'last_size': ST_LAST_SIZE * 8,
       'walk': ''.join(_WALK_LEVEL % {'shift': shift, 'leaf_check': _NOT_HUGE if shift < 39 else ''}
                       for shift in (39, 30, 21))}


class NativeFaultHook:
    """The machine-code interrupt hook, its state, its frame pool and its log."""

    def __init__(self, env, host_base, counter_state, python_hook_address):
        """env: the CPU state views; host_base: host address of guest-physical 0; counter_state: the
        block counter's state array; python_hook_address: the interrupt hook for every other case.
        The owner keeps env's engine, guest memory and the Python hook alive while this hook is
        installed; the code, state, pool and log (and a reference to counter_state) are kept here."""
        self._code = NativeCode(assemble(_HOOK_ASM, 0, 'the native fault hook (emu/core/fastfault.py)'))
        self.address = self._code.address
        self._pool = (ctypes.c_uint64 * POOL_CAPACITY)()
        self._log = (ctypes.c_uint64 * (LOG_FIELDS * LOG_CAPACITY))()
        self.st = st = (ctypes.c_uint64 * 24)()
        st[S_ERR] = env.addr_of('error_code')
        st[S_CR2] = env.addr_of('cr2')
        st[S_EIP] = env.addr_of('rip')
        st[S_OLDEXC] = env.addr_of('old_exception')
        st[S_POOL] = ctypes.addressof(self._pool)
        st[S_LOG] = ctypes.addressof(self._log)
        st[S_LOGCAP] = LOG_CAPACITY
        st[S_HOST] = host_base
        st[S_COUNTER] = ctypes.addressof(counter_state)
        st[S_PYCB] = python_hook_address
        self._counter_state = counter_state
        self._pool_size = 0

    @property
    def state_address(self):
        return ctypes.addressof(self.st)

    @property
    def armed(self):
        return bool(self.st[S_ARMED])

    def arm(self, start, end, pte_bits, cr3, vdso_start, vdso_size, pfns):
        """Handle write faults in [start, end) natively, mapping the frames `pfns` in order."""
        pfns = list(pfns)[:POOL_CAPACITY]
        st = self.st
        if st[S_ARMED]:
            raise NativeStateError('native fault hook armed twice: the faults it logged would be lost')
        self._pool_size = len(pfns)
        for i, pfn in enumerate(pfns):
            self._pool[i] = pfn
        st[S_START], st[S_END], st[S_BITS], st[S_CR3] = start, end, pte_bits, cr3
        st[S_VDSO], st[S_VDSO_SIZE] = vdso_start, vdso_size
        st[S_LEFT], st[S_USED], st[S_LOGN] = len(pfns), 0, 0
        st[S_ARMED] = 1

    def disarm(self):
        """Stop handling faults; returns the log entries as tuples. Each entry used one pool frame, in
        pool order, so the first len(entries) frames of the pool are the ones mapped."""
        st = self.st
        if not st[S_ARMED]:
            return []
        st[S_ARMED] = 0
        if NATIVE_CHECKS:
            self.check()
        n = st[S_LOGN]
        q = memoryview(self._log).cast('B').cast('Q')[:n * LOG_FIELDS].tolist()
        entries = list(zip(*[iter(q)] * LOG_FIELDS))
        st[S_LOGN] = st[S_USED] = st[S_LEFT] = 0
        self._pool_size = 0
        return entries

    def check(self):
        """Debug check (FAULTLAB_NATIVE_CHECKS=1): the state the hook reads points at the live pool,
        log and block-counter state, its code is intact, and pool and log agree (one frame per
        logged fault, taken in pool order)."""
        st = self.st
        want = {S_POOL: ctypes.addressof(self._pool), S_LOG: ctypes.addressof(self._log),
                S_LOGCAP: LOG_CAPACITY, S_COUNTER: ctypes.addressof(self._counter_state)}
        bad = ['st[%d]' % i for i, v in want.items() if st[i] != v]
        n = st[S_LOGN]
        if not self._code.intact():
            bad.append('code')
        if n > LOG_CAPACITY or st[S_USED] != n or st[S_USED] + st[S_LEFT] != self._pool_size:
            bad.append('counts (log %d, used %d, left %d, pool %d)' % (n, st[S_USED], st[S_LEFT],
                                                                       self._pool_size))
        elif any(self._log[i * LOG_FIELDS + 2] != self._pool[i] for i in range(n)):
            bad.append('log frames differ from the pool order')
        if bad:
            raise NativeStateError('native fault hook state is inconsistent: %s' % ', '.join(bad))
