"""Small gaps that made Linux 6.12 mm selftests fare worse here than natively, each checked by a
guest program whose output must equal the same program's on this host.

process_mrelease (mm/oom_kill.c; the mm selftest mrelease_test): userland/src/mrelease.c. A process
sent SIGKILL is marked as dying and ends only when it next runs, so a process_mrelease that comes
first reaps its memory and returns 0 (EINVAL for a live process, ESRCH for a zombie or a reaped one).

/proc/self/smaps VmFlags and FIONREAD (fs/proc/task_mmu.c show_smap_vma_flags, fs/ioctl.c
do_vfs_ioctl): userland/src/smapflags.c prints the letters of MADV_WIPEONFORK ("wf"), DONTFORK,
DONTDUMP, mlock and userfaultfd registrations ("um", "uw", "ui"), and FIONREAD of /proc/self/pagemap
(a regular file of size 0: answered before its PAGEMAP_SCAN ioctl), a memfd, a tmpfs file, a pipe
and a directory (ENOTTY).

io_uring fixed buffers (the gup_longterm case "io_uring fixed buffer with MAP_SHARED file mapping ...
with local tmpfile"): userland/src/uringpin.c; FOLL_LONGTERM|FOLL_WRITE on a shared mapping of a
file that is written back is EFAULT, the other mappings pin.
"""
import os
import re

import pytest

from conftest import assert_matches_native, run_guest, run_native


@pytest.mark.parametrize('cpus', [1, 2])
def test_process_mrelease_matches_native(userland, cpus):
    assert_matches_native(os.path.join(userland, 'mrelease'), b'killed and reaped: yes', cpus=cpus)


def test_process_mrelease_frees_the_memory(userland):
    # MemFree of the whole machine is too noisy to compare natively; the guest machine is quiet
    r = run_guest(os.path.join(userland, 'mrelease'), ['-f'])
    assert r.exit_code == 0
    assert b"the reap freed most of the child's 1 MiB: yes" in r.stdout, r.stdout


def test_smaps_vmflags_and_fionread_match_native(userland):
    prog = os.path.join(userland, 'smapflags')
    code, out, _ = run_native(prog)
    assert code == 0 and b'wipeonfork: VmFlags: rd wr mr mw me ac wf' in out
    r = run_guest(prog)
    assert r.result.report is None, r.result.report
    # the guest's kernel has CONFIG_MEM_SOFT_DIRTY as Debian's 6.12 (every VMA "sd" until
    # clear_refs), this host's kernel does not show it
    assert b' wf sd ' in r.stdout
    assert r.exit_code == 0 and re.sub(rb' sd ', b' ', r.stdout) == out


def test_io_uring_longterm_pin_of_a_shared_file_mapping_matches_native(userland):
    # natively the file is made next to the program (a disk filesystem, not tmpfs), in the guest on
    # its simulated disk
    prog = os.path.join(userland, 'uringpin')
    code, out, _ = run_native(prog, cwd=userland)
    assert code == 0 and b'local file MAP_SHARED: EFAULT' in out
    r = run_guest(prog)
    assert r.result.report is None, r.result.report
    assert r.exit_code == 0 and r.stdout == out
