"""Transparent huge pages for shmem and tmpfs (kernel/mm/shmem_huge.py, Linux 6.12 mm/shmem.c):
shmem_enabled and the tmpfs mount option huge= decide; a fault on an empty aligned 2 MiB of a file
allocates one 2 MiB folio (thp_file_alloc) and maps it with a PMD when the VMA covers it at the file's
alignment (do_set_pmd: one fault per 2 MiB, ShmemPmdMapped 2048 kB each), 4 KiB pages otherwise; a
partial munmap splits the PMD, a hole punched in the folio splits the folio. userland/src/shmthp.c
prints the faults and counters; the native run (with this host's shmem_enabled set to 'always' for it,
under test_thp's lock, and put back) gives the faults and smaps lines to compare with."""
import contextlib
import fcntl
import os
import re

import pytest

from conftest import run_guest, run_native
from test_thp import HOST_LOCK, THP, _knob

MB = 4


def _guest(userland, args, env=()):
    r = run_guest(os.path.join(userland, 'shmthp'), args, env=env, check=True)
    assert r.exit_code == 0, r.stderr
    return r


def _fields(out, line):
    """{name: value} of the report line that starts with `line`."""
    for text in out.decode().splitlines():
        if text.startswith(line + ':'):
            return {k: int(v) for k, v in re.findall(r'(\w+(?: \w+)?) (-?\d+)', text[len(line) + 1:])}
    raise AssertionError('no %r line in %r' % (line, out))


@contextlib.contextmanager
def host_shmem_enabled(value):
    """This host's shmem_enabled (and the PMD size's per-size knob at 'inherit') for the block, put back
    afterwards; None when they cannot be set (not root, no THP)."""
    names = ('shmem_enabled', 'hugepages-2048kB/shmem_enabled')
    if os.geteuid() != 0 or not all(os.path.exists(THP + n) for n in names):
        yield False
        return
    with open(HOST_LOCK, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = {n: _knob(n) for n in names}
        try:
            for n, v in zip(names, (value, 'inherit')):
                with open(THP + n, 'w') as f:
                    f.write(v)
            yield True
        finally:
            for n, v in old.items():
                with open(THP + n, 'w') as f:
                    f.write(v)


def test_tmpfs_huge_always_maps_one_pmd_per_2mib_and_splits(userland):
    """huge=always: writing 4 MiB of a fresh file mapped 2 MiB aligned takes 2 faults, 2 huge pages in
    the page cache, each PMD-mapped (ShmemPmdMapped 2048 kB each in meminfo and smaps); unmapping 1 MiB
    splits one PMD (its folio stays whole), punching 4 KiB splits the other folio."""
    r = _guest(userland, ['tmpfs', 'write', str(MB), '/mnt'], env=['TMPFS_HUGE=always'])
    t = _fields(r.stdout, 'touched')
    assert t['faults'] == MB // 2
    assert t['ShmemHugePages'] == t['ShmemPmdMapped'] == t['smaps ShmemPmdMapped'] == MB * 1024
    assert t['THPeligible'] == 1 and t['FilePmdMapped'] == 0
    assert t['thp_file_alloc'] == t['thp_file_mapped'] == MB // 2
    u = _fields(r.stdout, 'after munmap of 1 MiB')
    assert u['ShmemHugePages'] == MB * 1024 and u['ShmemPmdMapped'] == u['smaps ShmemPmdMapped'] == 2048
    p = _fields(r.stdout, 'after MADV_REMOVE of 4 KiB')
    assert p['ShmemHugePages'] == 2048 and p['ShmemPmdMapped'] == 0
    assert r.stats['pages_zeroed'] >= MB * 256
    assert r.machine.kernel.stats['thp_split_pmd'] == 2 and r.machine.kernel.stats['thp_split_page'] == 1


def test_unaligned_vma_falls_back_to_4k(userland):
    """A VMA 4 KiB off the file's 2 MiB alignment cannot hold a PMD: shmem_suitable_orders gives
    order 0, one write fault per page, no huge page."""
    r = _guest(userland, ['tmpfs', 'write', str(MB), '/mnt', 'unaligned'], env=['TMPFS_HUGE=always'])
    t = _fields(r.stdout, 'touched')
    assert t['faults'] == MB * 256
    assert t['ShmemHugePages'] == 0 and t['thp_file_alloc'] == 0 and t['THPeligible'] == 0


@pytest.mark.parametrize('knob, huge, expect', [(None, None, False), ('always', None, True),
                                                ('deny', 'always', False), ('force', 'never', True)])
def test_shmem_enabled_and_huge_option(userland, knob, huge, expect):
    """memfd follows shmem_enabled (default never); a tmpfs mount follows huge=, unless shmem_enabled
    is deny or force."""
    env = (['SHMEM_ENABLED=' + knob] if knob else []) + (['TMPFS_HUGE=' + huge] if huge else [])
    kind = 'tmpfs' if huge else 'memfd'
    r = _guest(userland, [kind, 'read', str(MB), '/mnt'], env=env)
    t = _fields(r.stdout, 'touched')
    assert (t['ShmemHugePages'] == MB * 1024) is expect
    assert t['faults'] == (MB // 2 if expect else MB * 256)


@pytest.mark.parametrize('kind, mode, knob', [('memfd', 'read', 'always'), ('anon', 'write', 'always'),
                                              ('memfd', 'write', 'always'), ('memfd', 'write', 'collapse')])
def test_shmem_thp_faults_and_smaps_match_native(userland, kind, mode, knob):
    """With shmem_enabled 'always' on both sides (or 'never', then MADV_COLLAPSE of the 4 KiB pages):
    the faults, smaps' ShmemPmdMapped/FilePmdMapped and THPeligible of each step are the host's."""
    prog = os.path.join(userland, 'shmthp')
    env = ['SHMEM_ENABLED=always'] if knob == 'always' else ['COLLAPSE=1']
    r = _guest(userland, [kind, mode, str(MB)], env=env)
    with host_shmem_enabled('always' if knob == 'always' else 'never') as ok:
        if not ok:
            pytest.skip('cannot set the host shmem_enabled (not root, or no THP)')
        code, out, err = run_native(prog, [kind, mode, str(MB)], env=[e for e in env if e.startswith('COLLAPSE')])
    assert code == 0, err
    keys = ('faults', 'smaps ShmemPmdMapped', 'FilePmdMapped', 'THPeligible')
    lines = ['touched', 'after munmap of 1 MiB', 'after MADV_REMOVE of 4 KiB']
    if knob == 'collapse':
        lines.insert(1, 'collapsed')
    for line in lines:
        native, guest = _fields(out, line), _fields(r.stdout, line)
        first_huge = 'touched' if knob == 'always' else 'collapsed'
        if line == first_huge and native['smaps ShmemPmdMapped'] < MB * 1024:
            pytest.skip('the host found no free 2 MiB blocks (%r)' % native)
        assert {k: guest[k] for k in keys} == {k: native[k] for k in keys}, line

