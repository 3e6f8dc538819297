"""ptrace, stopped processes and process_vm_readv/writev (kernel/ptrace.py, kernel/jobctl.py,
kernel/syscalls/ptrace.py, kernel/syscalls/process_vm.py): userland/src/ptracepeek.c (PTRACE_ATTACH
and the SIGSTOP stop its waitpid sees, PEEKDATA/POKEDATA, DETACH, PTRACE_CONT with a signal, SEIZE
and KILL, the EPERM/ESRCH/EIO cases; SIGSTOP and SIGCONT with WUNTRACED, WCONTINUED and waitid;
process_vm_readv/writev whole, partial and failing) must print what it prints natively."""
import os

import pytest

from conftest import assert_matches_native


@pytest.mark.parametrize('cpus', [1, 2])
def test_ptrace_matches_native(userland, cpus):
    assert_matches_native(os.path.join(userland, 'ptracepeek'), b'ptracepeek done', cpus=cpus)
