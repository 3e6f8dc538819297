"""`monitor fault-stop uffd` and `monitor fault` on faults handed to a userfaultfd, driven by a real gdb
against userland/src/uffdgdb.c (a MISSING, a WP and a MINOR fault, each resolved by a handler thread);
the program's output is compared with its native run."""
import os
import re

from conftest import run_native
from test_gdb import decoder, gdb_session, needs_gdb, pcs


def _blocks(out, title):
    """The `monitor fault` blocks with this title ('pending fault' or 'last handled fault'), in order."""
    return re.findall(r'^%s[^\n]*#\d+:\n((?:  [^\n]*\n)+)' % re.escape(title), out, re.M)


def _native_fd(prog):
    code, out, _err = run_native(prog)
    assert code == 0
    return int(re.search(rb'^uffd fd (\d+)$', out, re.M).group(1)), out.decode()


@needs_gdb
def test_fault_stop_uffd_names_the_descriptor_the_mode_and_the_message(userland, tmp_path):
    prog = os.path.join(userland, 'uffdgdb')
    fd, native_out = _native_fd(prog)
    cmds = ['monitor fault-stop uffd', 'continue', 'monitor fault',
            'break uffd_got_message', 'break uffd_resolving', 'continue', 'monitor fault', 'continue', 'monitor fault',
            'delete', 'continue', 'monitor fault', 'continue', 'monitor fault', 'monitor fault-stop',
            'monitor fault-stop off', 'continue']
    out, rc, stdout, stderr = gdb_session(tmp_path, prog, cmds)
    assert 'Traceback' not in out + stderr
    assert rc == 0 and stdout == native_out, (stdout, native_out)
    who = 'fd %d of pid 1 (anon_inode:[userfaultfd])' % fd
    pending = _blocks(out, 'pending fault')
    handled = _blocks(out, 'last handled fault')
    # the three stops are the three userfaultfd faults, nothing before them (the program's other faults
    # are in ranges no userfaultfd registered)
    assert [re.search(r'mode (\w+)', p).group(1) for p in pending] == ['MISSING', 'WP', 'MINOR'], out
    assert 'fault-stop is uffd (3 stops so far)' in out
    for p, registered in zip(pending, ('MISSING', 'WP', 'MINOR')):
        assert '  uffd     %s, registered for %s; mode %s' % (who, registered, registered) in p
        assert 'handler state: no message yet' in p and 'expect   handle_userfault: a %s message' % registered in p
    assert 'rw-p [anon]' in pending[0] and 'pte      none' in pending[0] and 'access   write' in pending[0]
    assert 'access   write, protection violation' in pending[1]        # the uffd-wp PTE: present, read-only
    assert '/memfd:uffdgdb' in pending[2] and 'access   read, page not present' in pending[2]
    # the MISSING fault once the kernel handled it: at the handler's first breakpoint (poll said a
    # message is there) it is queued, at the second (read) it is being resolved; later it is woken
    uffd_handled = [h for h in handled if 'handler  handle_userfault' in h]
    states = [re.search(r'handler state: ([a-z ]+)', h).group(1) for h in uffd_handled]
    assert states == ['message queued', 'being resolved', 'woken'], out
    assert all('result   not counted (RETRY' in h for h in uffd_handled)
    assert 'mode MISSING' in uffd_handled[0] and 'mode MISSING' in uffd_handled[1]
    assert 'mode WP' in uffd_handled[2]
    assert re.search(r'hit Breakpoint 2, uffd_resolving \(address=[^,]*, flags=flags@entry=1\)', out), out


@needs_gdb
def test_stepi_over_a_uffd_fault_retires_the_instruction_once_resolved(userland, tmp_path):
    """stepi at a fault stop: the kernel hands the fault to the userfaultfd and the thread sleeps; the
    step ends, as a native stepi does, when the handler resolved it and the store retired (the thread
    does not fault again and again while its message waits)."""
    prog = os.path.join(userland, 'uffdgdb')
    insn = decoder(prog)
    cmds = ['monitor fault-stop uffd', 'continue', 'printf "pc=%#lx\\n", $pc', 'stepi', 'printf "pc=%#lx\\n", $pc',
            'monitor fault-stop', 'monitor fault-stop bogus', 'monitor fault-stop off', 'continue']
    out, rc, stdout, _stderr = gdb_session(tmp_path, prog, cmds)
    stop_pc, after_pc = pcs(out)
    i = insn(stop_pc)
    assert i.mnemonic == 'mov' and i.op_str.startswith('byte ptr ['), i      # the store (Intel syntax)
    assert after_pc == stop_pc + i.size
    assert 'fault-stop is uffd (1 stops so far)' in out
    assert 'fault-stop: expected one of off|on|major|nowait|uffd' in out
    assert rc == 0 and 'fault 1 MISSING byte 0x11' in stdout
