"""The /proc files the mm selftests read and write: /proc/sys/vm/* (Linux's defaults, ranges and
side effects), /proc/kpageflags and /proc/kpagecount against native, and --mount of a host file
over a /proc file."""
import os
import subprocess

from conftest import run_guest, run_native

SYSCTL_DEFAULTS = ['overcommit_memory', 'overcommit_ratio', 'overcommit_kbytes', 'max_map_count', 'mmap_min_addr',
                   'swappiness', 'compact_unevictable_allowed', 'dirty_ratio', 'dirty_background_ratio',
                   'dirty_bytes', 'dirty_background_bytes', 'dirty_expire_centisecs', 'dirty_writeback_centisecs']


def _sysctl(userland, *args, **kw):
    g = run_guest(os.path.join(userland, 'sysctlrw'), list(args), **kw)
    assert g.exit_code == 0
    return g.stdout.decode()


def test_vm_sysctl_defaults_are_linux_defaults(userland):
    out = _sysctl(userland, *SYSCTL_DEFAULTS)
    assert out.splitlines() == ['read %s: %s' % kv for kv in zip(SYSCTL_DEFAULTS, [
        '0', '50', '0', '65530', '65536', '60', '1', '20', '10', '0', '0', '3000', '500'])]


def test_vm_sysctl_ranges_and_exclusive_pairs(userland):
    """proc_dointvec_minmax ranges (EINVAL outside), overcommit_ratio/kbytes and dirty_ratio/bytes
    zero each other, compact_memory is write-only and takes only 1."""
    out = _sysctl(userland, 'overcommit_memory=3', 'overcommit_memory=2', 'swappiness=201', 'swappiness=200',
                  'overcommit_kbytes=1024', 'overcommit_ratio', 'dirty_bytes=4096', 'dirty_bytes=8192',
                  'dirty_ratio', 'max_map_count=-1', 'max_map_count=abc', 'compact_memory=2',
                  'compact_memory=1', 'mmap_min_addr=4096').splitlines()
    assert out == [
        'write overcommit_memory=3: Invalid argument', 'read overcommit_memory: 0',
        'write overcommit_memory=2: ok', 'read overcommit_memory: 2',
        'write swappiness=201: Invalid argument', 'read swappiness: 60',
        'write swappiness=200: ok', 'read swappiness: 200',
        'write overcommit_kbytes=1024: ok', 'read overcommit_kbytes: 1024', 'read overcommit_ratio: 0',
        'write dirty_bytes=4096: Invalid argument', 'read dirty_bytes: 0',
        'write dirty_bytes=8192: ok', 'read dirty_bytes: 8192', 'read dirty_ratio: 0',
        'write max_map_count=-1: Invalid argument', 'read max_map_count: 65530',
        'write max_map_count=abc: Invalid argument', 'read max_map_count: 65530',
        'write compact_memory=2: Invalid argument', 'read compact_memory: Permission denied',
        'write compact_memory=1: ok', 'read compact_memory: Permission denied',
        'write mmap_min_addr=4096: ok', 'read mmap_min_addr: 4096']


def test_kpageflags_and_kpagecount_match_native(userland):
    """The PFNs of /proc/self/pagemap index /proc/kpageflags and /proc/kpagecount: written and
    zero-page anonymous memory, a page shared with a child, a page-cache page, misaligned reads."""
    prog = os.path.join(userland, 'kpageflags')
    rc, out, _ = run_native(prog)
    g = run_guest(prog)
    assert (g.exit_code, g.stdout.decode()) == (rc, out.decode())
    assert 'read anon: count=0 ZERO_PAGE' in out.decode()


def test_mount_a_host_file_over_a_proc_file(userland, tmp_path):
    """--mount HOST:/proc/...: the host file replaces the kernel's file (existing or not); the
    kernel's knob behind it is untouched."""
    stub = tmp_path / 'stub'
    stub.write_text('42\n')
    g = run_guest(os.path.join(userland, 'sysctlrw'), ['swappiness', 'nosuchknob', 'max_map_count'],
                  mounts=[(str(stub), '/proc/sys/vm/swappiness', True), (str(stub), '/proc/sys/vm/nosuchknob', True)])
    assert g.exit_code == 0
    assert g.stdout.decode().splitlines() == ['read swappiness: 42', 'read nosuchknob: 42', 'read max_map_count: 65530']
    assert g.machine.kernel.mmsvc.sysctl.swappiness == 60


def test_mount_a_host_directory_inside_proc_is_refused():
    """The kernel fills /proc's directories: mounting one over them is a one-line CLI error."""
    import pytest
    from faultlab.kernel.fs.mountspec import parse_mount_spec
    with pytest.raises(ValueError, match='only a file can be mounted inside /proc'):
        parse_mount_spec('/tmp:/proc/sys/vm')


def test_proc_file_read_again_from_the_start_shows_the_present(userland):
    """seq_file regenerates from the first record on a read at offset 0: /proc/self/maps opened once and
    read again after rewind() shows the mappings made since the open (mremap_test's is_range_mapped)."""
    prog = os.path.join(userland, 'mapsrewind')
    native = subprocess.run([prog], capture_output=True, timeout=60)
    g = run_guest(prog)
    assert g.exit_code == 0 and native.returncode == 0
    assert g.stdout == native.stdout == b'maps after rewind grew by 2\n'


def test_proc_cmdline_and_environ_match_native(userland):
    """/proc/self/cmdline and environ are the strings execve put on the stack, read at any offset; after
    setproctitle overwrote the NUL that ends the arguments, cmdline runs on to the first NUL, which it
    includes (get_mm_proctitle). argv[0] and the environment are the guest's, natively too."""
    prog = os.path.join(userland, 'proccmd')
    args = ['one', 'two', 'three four']
    native = subprocess.run(['proccmd'] + args, executable=prog, env={'PATH': '/bin', 'LANG': 'C'},
                            capture_output=True, timeout=60)
    g = run_guest(prog, args)
    assert native.returncode == 0 and b'cmdline: 27 bytes:proccmd|one|two|three four|' in native.stdout
    assert (g.exit_code, g.stdout) == (0, native.stdout)
