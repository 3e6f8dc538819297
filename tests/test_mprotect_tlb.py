"""Protection changes take effect at once for pages whose translation the CPU has cached: a write after
mprotect(PROT_READ), an access after mprotect(PROT_NONE) or munmap faults with SIGSEGV even right after
the page was used (flush_tlb_range after change_protection and the unmap), the same as natively."""
import os

from conftest import run_guest, run_native


def test_access_after_mprotect_or_munmap_faults_even_when_hot(userland):
    prog = os.path.join(userland, 'mprotect_tlb')
    code, out, _ = run_native(prog)
    r = run_guest(prog)
    assert code == 0 and b'write after PROT_READ            ok 0  SEGV_MAPERR 0  SEGV_ACCERR 50' in out
    assert r.exit_code == code and r.stdout == out
