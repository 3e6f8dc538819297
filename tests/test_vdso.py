"""The vDSO in the guest: clocks from simulated time, prefetch_page() with NOWAIT faults, protection."""
import os
import subprocess
import sys

from conftest import run_guest, ROOT

MASK = (1 << 64) - 1


def _values(out):
    return dict(line.split(' ', 1) for line in out.decode().splitlines() if ' ' in line)


def test_vdso_clocks_follow_simulated_time_without_syscalls(userland):
    r = run_guest(os.path.join(userland, 'clocks'))
    v = _values(r.stdout)
    tsc, mono = int(v['tsc_delta']), int(v['mono_delta_ns'])
    # the monotonic clock moved with the cycle clock (3 GHz): within the few instructions around it
    assert 0 < mono <= tsc / 3 and tsc / 3 - mono < 200
    assert v['realtime'].startswith('1767225600.')          # simulated boot: 2026-01-01 00:00:00 UTC
    assert v['time'] == '1767225600'
    assert int(v['gettimeofday'].split('.')[1]) == int(v['realtime'].split('.')[1]) // 1000
    # glibc found the vDSO through AT_SYSINFO_EHDR: no clock_gettime/gettimeofday/time system calls
    assert r.stats['syscalls'] < 25


def test_clocks_are_deterministic(userland):
    a = run_guest(os.path.join(userland, 'clocks'))
    b = run_guest(os.path.join(userland, 'clocks'))
    assert a.stdout == b.stdout


def test_vdso_is_read_only(userland):
    p = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'run', os.path.join(userland, 'clocks'), 'poke'],
                       capture_output=True, cwd=ROOT, timeout=120)
    assert p.returncode == 128 + 11
    assert b'wrote into the vDSO' not in p.stdout
    assert b'SEGV_ACCERR' in p.stderr and b'write' in p.stderr


def test_prefetch_page_selftest_passes(userland):
    r = run_guest(os.path.join(userland, 'prefetch_test'))
    out = r.stdout.decode()
    assert r.exit_code == 0, out
    assert out.count('\nok ') == 8 and 'not ok' not in out and 'SKIP' not in out
    assert r.stats['vdso_fixups'] >= 3       # NULL, cold file page, PROT_NONE
    assert r.stats['nowait_faults'] >= 4


def test_prefetch_of_cold_page_starts_io_without_waiting(userland):
    """Switching the NOWAIT rule off (a plain fault that waits) makes the cold-page case fail."""
    import faultlab.kernel.arch.traps as kk
    r = run_guest(os.path.join(userland, 'prefetch_test'))
    assert 'ok 4 cold file page' in r.stdout.decode()
    orig = kk.FAULT_FLAG_RETRY_NOWAIT
    try:
        kk.FAULT_FLAG_RETRY_NOWAIT = 0          # the kernel rule switched off
        bad = run_guest(os.path.join(userland, 'prefetch_test'))
    finally:
        kk.FAULT_FLAG_RETRY_NOWAIT = orig
    assert 'not ok 4 cold file page' in bad.stdout.decode()
    assert 'not ok 7 swapped-out page' in bad.stdout.decode()
    assert bad.exit_code == 1


def test_without_the_extable_fixup_null_prefetch_is_a_sigsegv(userland, monkeypatch):
    import faultlab.kernel.arch.traps as kk
    monkeypatch.setattr(kk, 'fixup_vdso_exception', lambda *a: None)     # the kernel rule switched off
    bad = run_guest(os.path.join(userland, 'prefetch_test'))
    assert bad.exit_code == 128 + 11
    assert 'SIGSEGV' in bad.result.report and '__vdso' not in bad.stdout.decode()


def test_vdso_in_maps_and_auxv(userland, tmp_path):
    import struct
    r = run_guest(os.path.join(userland, 'prefetch_test'))
    mm = r.machine.kernel.current.mm
    names = [v.name for v in mm.vmas]
    assert '[vdso]' in names and '[vvar]' in names
    auxv = dict(mm.saved_auxv)
    assert auxv[33] == mm.vdso_base


def test_an_ordinary_major_fault_waits_for_its_io(userland):
    """NOWAIT is for faults at the vDSO's exception-table IPs only: a program that never calls
    prefetch_page() takes every fault the ordinary way, a cold file page's fault sleeps until the disk
    completes its read (at least one whole read latency of I/O wait) and no fault is retried."""
    from conftest import DATA
    from faultlab.kernel.block.params import DiskParams
    r = run_guest(os.path.join(userland, 'filemap'), ['/data/big.bin'], mounts=[(DATA, '/data', False)])
    assert r.exit_code == 0 and r.stdout.endswith(b'ok\n')
    s = r.stats
    assert s['nowait_faults'] == 0 and s['vdso_fixups'] == 0
    assert s['major_faults'] >= 1 and s['page_faults'] == s['minor_faults'] + s['major_faults']
    latency = DiskParams().read_latency_us * 1e-6 * s['freq_hz']
    reads = s['fault_breakdown']['do_read_fault']
    assert reads['count'] >= s['major_faults'] and reads.get('wait_io', 0) >= latency
    assert s['iowait_cycles'] >= latency
