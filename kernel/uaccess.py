"""copy_from_user / copy_to_user: kernel access to user memory through the task's page tables.

A page that is not present is faulted in the way Linux's exception fixup path does (handle_mm_fault
under the VMA's rules); an address outside any VMA, against its rights, or in the kernel half gives
None (the caller returns -EFAULT).
"""
import struct

from faultlab.kernel.arch.cpu_interface import PAGE_SIZE
from faultlab.kernel.mm.gup import faultin_page
from faultlab.kernel.mm.mm_types import TASK_SIZE, VM_FAULT_ERROR
from faultlab.kernel.mm.vma import VM_READ, VM_WRITE, VM_EXEC, VM_GROWSDOWN
from faultlab.kernel.mm.mmap import expand_stack


def access_ok(va, n):
    """x86-64 access_ok(): [va, va + n) lies below the top of user space, without wrapping."""
    return 0 <= va and va + n <= TASK_SIZE


class UserMemory:
    """User-memory accessors bound to one address space."""

    def __init__(self, mm, phys, charge):
        self.mm = mm
        self.phys = phys
        self.charge = charge

    def _pa(self, va, write):
        mm = self.mm
        pte_pa = mm.pgtables.translate(va)
        if pte_pa is not None:
            if not write or mm.pgtables.get_pte(va) & 2:
                return pte_pa
        vma = mm.vmas.find_vma(va)
        if vma is None:
            return None
        if vma.vm_start > va:
            if not vma.vm_flags & VM_GROWSDOWN or expand_stack(mm, vma, va):
                return None
        if not vma.vm_flags & (VM_WRITE if write else VM_READ | VM_WRITE | VM_EXEC):
            return None                 # access_error: a read needs any access (exec-only reads on x86)
        if faultin_page(mm, vma, va & ~0xFFF, write, account=False) & VM_FAULT_ERROR:
            return None
        return mm.pgtables.translate(va)

    def accessible(self, va, n, write):
        """How many bytes from va (at most n) lie in VMAs that allow the access, without faulting:
        the most a copy can move before it faults (a read or write stops short there, as Linux's does)."""
        if n <= 0 or not 0 <= va < TASK_SIZE:
            return 0
        end = min(va + n, TASK_SIZE)
        need = VM_WRITE if write else VM_READ | VM_WRITE | VM_EXEC
        cur = va
        while cur < end:
            vma = self.mm.vmas.find_vma(cur)
            if vma is None or (vma.vm_start > cur and not vma.vm_flags & VM_GROWSDOWN):
                break
            if not vma.vm_flags & need:
                break
            cur = vma.vm_end
        return min(cur, end) - va

    def _valid(self, va, n):
        return 0 <= va and va + n <= TASK_SIZE

    def read(self, va, n):
        """copy_from_user: bytes, or None on a bad address."""
        if n == 0:
            return b''
        if not self._valid(va, n):
            return None
        out = bytearray()
        mv = self.phys.mv
        while n:
            pa = self._pa(va, False)
            if pa is None:
                return None
            m = min(n, PAGE_SIZE - (va & 0xFFF))
            out += mv[pa:pa + m]
            va += m
            n -= m
        self.charge('copy_user_byte', len(out))
        return bytes(out)

    def write(self, va, data):
        """copy_to_user: True, or False on a bad address (a prefix may have been written)."""
        n = len(data)
        if n == 0:
            return True
        if not self._valid(va, n):
            return False
        mv = self.phys.mv
        frames = self.mm.svc.frames
        off = 0
        while off < n:
            pa = self._pa(va + off, True)
            if pa is None:
                return False
            m = min(n - off, PAGE_SIZE - ((va + off) & 0xFFF))
            mv[pa:pa + m] = data[off:off + m]
            frames.note_kernel_write(frames.pages[pa >> 12])
            off += m
        self.charge('copy_user_byte', n)
        return True

    def read_cstr(self, va, maxlen=4096):
        """strncpy_from_user: bytes without the NUL; None on a bad address; ... longer -> ENAMETOOLONG."""
        out = bytearray()
        while len(out) < maxlen:
            chunk = min(PAGE_SIZE - (va & 0xFFF), maxlen - len(out))
            b = self.read(va, chunk)          # within one page: all of it or nothing
            if b is None:
                return None
            i = b.find(b'\0')
            if i >= 0:
                out += b[:i]
                return bytes(out)
            out += b
            va += chunk
        return bytes(out) + b'\xff'       # marker: too long (caller checks len > maxlen - 1)

    def read_u64(self, va):
        b = self.read(va, 8)
        return None if b is None else struct.unpack('<Q', b)[0]

    def write_u64(self, va, v):
        return self.write(va, struct.pack('<Q', v & 0xFFFFFFFFFFFFFFFF))

    def read_code(self, va, n):
        """Bytes at va if mapped, without faulting (for decoding executed blocks)."""
        out = bytearray()
        mv = self.phys.mv
        while n:
            pa = self.mm.pgtables.translate(va)
            if pa is None:
                return bytes(out) or None
            m = min(n, PAGE_SIZE - (va & 0xFFF))
            out += mv[pa:pa + m]
            va += m
            n -= m
        return bytes(out)
