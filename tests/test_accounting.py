"""Capabilities and memory accounting as Linux keeps them: one capable() behind every privileged
operation (kernel/capability.c, security/commoncap.c), commit accounting (mm/util.c
__vm_enough_memory, mm/shmem.c shmem_acct_size) with CommitLimit/Committed_AS in /proc/meminfo
(fs/proc/meminfo.c), and shmem pages going to swap under memory pressure (mm/shmem.c
shmem_writepage, shmem_swapin_folio). Guest programs are compared with native runs where the host
can show the same thing."""
import os

from conftest import run_guest, run_native


def _native_and_guest(userland, name, args=(), guest_args=None, **kw):
    prog = os.path.join(userland, name)
    rc, out, _err = run_native(prog, args, cwd='/tmp')
    g = run_guest(prog, args if guest_args is None else guest_args, **kw)
    return (rc, out.decode()), (g.exit_code, g.stdout.decode())


def test_dropping_to_nobody_loses_every_privilege_as_natively(userland):
    """After setuid(65534) the child has no capabilities: mmap below mmap_min_addr, sysctl writes,
    rlimits, mount, set*id, kill, mlock, nice, the bounding set, chown, System V shm and
    SCM_CREDENTIALS are refused with the errno Linux gives; root's parent may do them."""
    if os.geteuid() != 0:
        import pytest
        pytest.skip('the native run must start as root')
    native, guest = _native_and_guest(userland, 'capdrop')
    assert guest == native
    out = guest[1]
    assert 'root: mmap at 0: ok' in out and 'CapEff:\t0000000000000000' in out
    assert '\nmmap at 0: Operation not permitted' in out
    assert 'SCM_CREDENTIALS uid 0: Operation not permitted' in out
