"""Bad programs and bad inputs get clean answers: errno for the guest, one-line errors, reports."""
import os
import shutil
import struct
import subprocess
import sys

import pytest

from conftest import run_guest, ROOT


def faultlab(*args, timeout=120):
    return subprocess.run([sys.executable, '-m', 'faultlab.cli'] + list(args), capture_output=True, cwd=ROOT,
                          timeout=timeout)


def _assert_one_line_error(p, *words):
    err = p.stderr.decode()
    assert 'Traceback' not in err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]


def _mutated(tmp_path, userland, name, mutate):
    data = bytearray(open(os.path.join(userland, 'hello'), 'rb').read())
    data = mutate(data)
    p = tmp_path / name
    p.write_bytes(bytes(data))
    p.chmod(0o755)
    return str(p)


def test_truncated_elf(userland, tmp_path):
    p = faultlab('run', _mutated(tmp_path, userland, 'trunc', lambda d: d[:100]))
    assert p.returncode == 126
    _assert_one_line_error(p, 'cannot run', 'past the end of the file')


def test_truncated_segment(userland, tmp_path):
    p = faultlab('run', _mutated(tmp_path, userland, 'trunc2', lambda d: d[:len(d) // 3]))
    assert p.returncode == 126
    _assert_one_line_error(p, 'PT_LOAD')


def test_32bit_elf(userland, tmp_path):
    def to32(d):
        d[4] = 1
        return d
    p = faultlab('run', _mutated(tmp_path, userland, 'elf32', to32))
    _assert_one_line_error(p, '32-bit ELF')
    assert p.returncode == 126


def test_wrong_machine(userland, tmp_path):
    def arm(d):
        struct.pack_into('<H', d, 18, 183)
        return d
    p = faultlab('run', _mutated(tmp_path, userland, 'arm', arm))
    _assert_one_line_error(p, 'machine 183')


def test_shell_script(tmp_path):
    s = tmp_path / 'script.sh'
    s.write_text('#!/bin/sh\necho hi\n')
    s.chmod(0o755)
    p = faultlab('run', str(s))
    _assert_one_line_error(p, 'is a script')
    assert p.returncode == 126


def test_dynamic_executable():
    """A dynamically linked program runs through its interpreter (tests/test_dynamic.py has more)."""
    true = shutil.which('true')
    p = faultlab('run', true)
    assert p.returncode == 0 and p.stderr == b'', p.stderr


def test_missing_program():
    p = faultlab('run', '/no/such/program')
    _assert_one_line_error(p, 'No such file')
    assert p.returncode == 127


def test_unknown_syscall_efault_ebadf_enoent(userland):
    r = run_guest(os.path.join(userland, 'badsys'))
    out = r.stdout.decode()
    assert 'syscall(999): ret=-1 errno=38' in out
    assert 'write(1, 16, 10): ret=-1 errno=14' in out
    assert 'read(-5): ret=-1 errno=9' in out
    assert 'errno=2' in out
    assert any('999' in w for w in r.warnings)
    assert len([w for w in r.warnings if '999' in w]) == 1


def test_wild_jump_reports_sigsegv(userland):
    p = faultlab('run', os.path.join(userland, 'wildjump'))
    assert p.returncode == 128 + 11
    assert p.stdout == b'before\n'
    err = p.stderr.decode()
    assert 'Traceback' not in err
    assert 'SIGSEGV (SEGV_MAPERR)' in err and 'rip=0xdead0000' in err and 'instruction fetch' in err


def test_out_of_memory_is_a_clean_oom_kill(userland):
    r = run_guest(os.path.join(userland, 'oom'), ram=32 << 20, swap_bytes=16 << 20)
    assert r.result.killed_by is not None
    assert r.stats['pswpout'] > 0               # it swapped before running out of swap too
    assert r.exit_code == 128 + 9
    assert 'out of memory' in r.result.killed_by[1]


def test_bad_cli_options():
    p = faultlab('run', '--mount', 'nocolon', '/bin/true')
    _assert_one_line_error(p, 'mount')
    assert p.returncode == 2
    p = faultlab('run', '--disk', 'bogus=1', '/bin/true')
    _assert_one_line_error(p, 'bogus')
    p = faultlab('run', '--mount', '/dev/null:/x', '/bin/true')     # a device is neither file nor directory
    _assert_one_line_error(p, '/dev/null')
    assert p.returncode == 2


def test_max_insns_stops_a_runaway(userland):
    r = run_guest(os.path.join(userland, 'compute'), max_insns=1_000_000)
    assert r.exit_code == 124
    assert 'instruction limit' in r.result.report
    assert 1_000_000 <= r.stats['instructions'] < 1_000_000 + 1000


def _build(tmp_path, name, source):
    """A small C program written for one test, built static in tmp_path; its path."""
    src = tmp_path / (name + '.c')
    src.write_text(source)
    exe = tmp_path / name
    subprocess.run(['gcc', '-O1', '-static', str(src), '-o', str(exe)], check=True)
    return exe


def test_runaway_guest_stops_at_sim_time_and_wall_clock_limits(tmp_path):
    exe = _build(tmp_path, 'spin', 'int main(void) { volatile unsigned long x = 0; for (;;) x++; }\n')
    p = faultlab('run', '--max-sim-time', '0.005', str(exe))
    assert p.returncode == 124 and b'simulated-time limit' in p.stderr and b'<main+' in p.stderr
    p = faultlab('run', '--timeout', '1', str(exe))
    assert p.returncode == 124 and b'host time limit' in p.stderr


def test_exception_in_a_syscall_handler_is_a_clear_oops(userland, monkeypatch):
    """A kernel bug inside a handler is not swallowed: the run ends with the syscall and its arguments."""
    from faultlab.kernel.debug.oops import KernelOops
    from faultlab.kernel.syscalls import SYSCALLS

    def broken(k, t, *args):
        raise ValueError('planted bug')
    broken.sysname = 'write'
    monkeypatch.setitem(SYSCALLS, 1, broken)
    with pytest.raises(KernelOops) as ei:
        run_guest(os.path.join(userland, 'hello'))
    msg = str(ei.value)
    assert msg.startswith('syscall write(0x1, ') and '[nr 1] at rip=' in msg
    assert 'raised ValueError: planted bug (at tests/test_badinput.py:' in msg and '\n' not in msg


def test_lone_futex_wait_is_reported_as_a_deadlock(tmp_path):
    exe = _build(tmp_path, 'lock',
                 '#include <linux/futex.h>\n#include <sys/syscall.h>\n#include <unistd.h>\n#include <stdio.h>\n'
                 'int main(void) { static int word; puts("waiting"); fflush(stdout);\n'
                 '  syscall(SYS_futex, &word, FUTEX_WAIT, 0, 0, 0, 0); puts("woken"); return 0; }\n')
    p = faultlab('run', str(exe))
    assert p.returncode == 128 + 9 and p.stdout == b'waiting\n'
    err = p.stderr.decode()
    assert 'Traceback' not in err and 'deadlock' in err and 'futex_wait(' in err


def test_populated_prot_none_memory_stays_inaccessible(tmp_path):
    """Found by review while fuzzing: MAP_POPULATE (or mlock) of PROT_NONE memory mapped user-readable
    pages. Linux does not populate it, and the read is a SIGSEGV, as natively."""
    exe = _build(tmp_path, 'pn',
                 '#include <stdio.h>\n#include <sys/mman.h>\nint main(void) {\n'
                 '  volatile char *p = mmap(0, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);\n'
                 '  mlock((void *)p, 8192); puts("mapped"); fflush(stdout); return p[4096]; }\n')
    native = subprocess.run([str(exe)], capture_output=True)
    p = faultlab('run', str(exe))
    assert native.returncode == -11 and p.returncode == 128 + 11
    assert p.stdout == native.stdout == b'mapped\n'
    assert b'SEGV_ACCERR' in p.stderr and b'(---p)' in p.stderr


@pytest.mark.parametrize('args, option', [
    (['bench', 'populate', '--size', 'abc'], '--size'),
    (['bench', 'populate', '--size', '0'], '--size'),
    (['bench', 'soak', '--count', '-5'], '--count'),
    (['bench', 'elf-fuzz', '--count', 'many'], '--count'),
    (['bench', 'speed', '--reps', '0'], '--reps'),
    (['run', '--max-insns', '-1', '/bin/true'], '--max-insns'),
    (['run', '--env', 'NOEQUALS', '/bin/true'], '--env'),
    (['run', '--env', '=x', '/bin/true'], '--env'),
    (['run', '--cpus', '65', '/bin/true'], '--cpus'),
    (['run', '--cpus', 'two', '/bin/true'], '--cpus'),
    (['run', '--hugepages', '-1', '/bin/true'], '--hugepages'),
    (['run', '--fault-around-bytes', '3000', '/bin/true'], '--fault-around-bytes'),
    (['run', '--ram', 'lots', '/bin/true'], '--ram'),
    (['run', '--timeout', '-1', '/bin/true'], '--timeout'),
    (['run', '--max-sim-time', 'nan', '/bin/true'], '--max-sim-time'),
    (['stat', '-r', '0', '/bin/true'], '--repeat'),
])
def test_bad_option_values_are_one_line_errors(args, option):
    """Every value is checked as it is parsed: one line naming the option, status 2, nothing run."""
    p = faultlab(*args)
    _assert_one_line_error(p, 'faultlab: ', option)
    assert p.returncode == 2 and p.stdout == b''
    assert 'internal error' not in p.stderr.decode() and 'usage:' not in p.stderr.decode()


def test_missing_costs_file_names_the_option_and_the_path():
    for args in (['run', '--costs', '/nonexistent', '/bin/true'], ['costs', '--costs', '/nonexistent']):
        p = faultlab(*args)
        assert p.returncode == 2
        assert p.stderr == b'faultlab: --costs: /nonexistent: No such file or directory\n'
