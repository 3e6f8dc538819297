"""The gdb remote stub, driven by a real gdb in batch mode (and by raw packets for bad input)."""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

import pytest
from capstone import Cs, CS_ARCH_X86, CS_MODE_64
from elftools.elf.elffile import ELFFile

from conftest import ROOT
from faultlab.gdb.rsp import unescape_binary

GDB = shutil.which('gdb')
needs_gdb = pytest.mark.skipif(GDB is None, reason='gdb is not installed')


# ---- helpers --------------------------------------------------------------------------------------------
class Stub:
    """`faultlab run --gdb 127.0.0.1:0 PROGRAM` in the background, with its port and outputs."""

    def __init__(self, tmp_path, program, args=(), opts=()):
        self.err_path = tmp_path / 'stub.err'
        self.out_path = tmp_path / 'stub.out'
        self.stats_path = tmp_path / 'stats.json'
        self.proc = subprocess.Popen([sys.executable, '-m', 'faultlab.cli', 'run', '--stats-json', str(self.stats_path),
                                      '--gdb', '127.0.0.1:0'] + list(opts) + [program] + list(args),
                                     stdout=open(self.out_path, 'wb'), stderr=open(self.err_path, 'wb'), cwd=ROOT)
        deadline = time.monotonic() + 60
        while True:
            m = re.search(r'listening on 127\.0\.0\.1:(\d+)', self.err_path.read_text())
            if m:
                self.port = int(m.group(1))
                break
            assert self.proc.poll() is None, self.err_path.read_text()
            assert time.monotonic() < deadline, 'the stub did not start'
            time.sleep(0.05)

    def finish(self, timeout=60):
        """Wait for faultlab to end: (exit status, stdout, stderr)."""
        rc = self.proc.wait(timeout=timeout)
        return rc, self.out_path.read_text(), self.err_path.read_text()

    @property
    def stats(self):
        return json.loads(self.stats_path.read_text())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def gdb_session(tmp_path, program, commands, args=(), opts=()):
    """gdb -batch against a fresh stub running program: (gdb output, faultlab status, stdout, stderr)."""
    stub = Stub(tmp_path, program, args, opts)
    try:
        out = gdb_batch(program, commands, port=stub.port)
        rc, stdout, stderr = stub.finish()
    finally:
        stub.kill()
    return out, rc, stdout, stderr


def gdb_batch(program, commands, port=None, run_native=False):
    """Run gdb -batch -nx with -ex commands (against the stub, or natively with `run`): its output."""
    cmd = [GDB, '-batch', '-nx']
    if port is not None:
        cmd += ['-ex', 'target remote 127.0.0.1:%d' % port]
    for c in commands:
        cmd += ['-ex', c]
    cmd.append(program)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT)
    return p.stdout + p.stderr


def symbols(program):
    with open(program, 'rb') as f:
        elf = ELFFile(f)
        return {s.name: s['st_value'] for s in elf.get_section_by_name('.symtab').iter_symbols() if s.name}


def decoder(program):
    """insn(addr) -> capstone instruction at addr in the program's .text."""
    with open(program, 'rb') as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name('.text')
        base, data = text['sh_addr'], text.data()
    cs = Cs(CS_ARCH_X86, CS_MODE_64)

    def insn(addr):
        return next(cs.disasm(data[addr - base:addr - base + 16], addr))
    return insn


def pcs(output):
    return [int(x, 16) for x in re.findall(r'^pc=(0x[0-9a-f]+)$', output, re.M)]


def plain_instructions(program, args=()):
    p = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'run', '--stats-json', '/dev/stdout', program] + list(args),
                       capture_output=True, cwd=ROOT, timeout=120)
    return json.loads(p.stdout[p.stdout.index(b'{'):])['instructions']


# ---- sessions with a real gdb -----------------------------------------------------------------------------
STEPS = 10


@needs_gdb
def test_break_step_registers_stack_finish_setvar_watch(userland, tmp_path):
    prog = os.path.join(userland, 'gdbtarget')
    sym = symbols(prog)
    insn = decoder(prog)
    step_cmds = []
    for _ in range(STEPS):
        step_cmds += ['stepi', 'printf "pc=%#lx\\n", $pc']
    cmds = (['break bump', 'continue', 'printf "pc=%#lx\\n", $pc', 'info registers rip', 'x/4gx $rsp']
            + step_cmds
            + ['continue', 'finish', 'delete', 'break set_watched', 'continue', 'set var counter = 40', 'set var scale = 3',
               'print counter', 'watch watched', 'continue', 'printf "pc=%#lx\\n", $pc', 'info threads',
               'info auxv', 'delete', 'continue'])
    out, rc, stdout, stderr = gdb_session(tmp_path, prog, cmds)
    assert 'Traceback' not in out + stderr
    # break at a function, continue
    assert 'Breakpoint 1, bump (by=by@entry=1)' in out, out
    trace = pcs(out)
    assert trace[0] == sym['bump']
    assert re.search(r'^rip\s+%#x\s+%#x <bump>$' % (sym['bump'], sym['bump']), out, re.M), out
    # x/4gx $rsp: the return address into main, right after the call
    m = re.search(r'^(0x[0-9a-f]+):\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)$', out, re.M)
    ret = int(m.group(2), 16)
    call = insn(ret - 5)
    assert call.mnemonic == 'call' and int(call.op_str, 16) == sym['bump']
    # stepi ten times: every pc follows from the previous instruction
    steps = trace[1:1 + STEPS]
    assert len(steps) == STEPS
    prev = trace[0]
    for pc in steps:
        i = insn(prev)
        if i.mnemonic == 'ret':
            assert pc == ret if prev == sym['bump'] + 0x1b else True
        elif i.mnemonic.startswith('j') or i.mnemonic == 'call':
            assert pc in (prev + i.size, int(i.op_str, 16)), (hex(prev), i.mnemonic, i.op_str, hex(pc))
        else:
            assert pc == prev + i.size, (hex(prev), i.mnemonic, hex(pc))
        prev = pc
    assert ret in steps                                  # the ret of bump went back to the caller
    # finish, set var, watchpoint
    # finish from the second call of bump: back in main, counter was 2 so bump returned 4
    assert re.search(r'%#018x in main \(.*\n.*r \+= bump\(1\);\nValue returned is \$1 = 4\n' % ret, out), out
    assert '$2 = 40' in out
    assert 'Hardware watchpoint 3: watched' in out
    assert re.search(r'Old value = 0\nNew value = 12\n', out), out
    watch_pc = trace[1 + STEPS]
    store = insn(sym['set_watched'])
    assert store.mnemonic == 'mov' and watch_pc == sym['set_watched'] + store.size   # trap-like: after the store
    assert re.search(r'\* 1\s+Thread 1', out), out
    assert re.search(r'AT_ENTRY\s+Entry point of program\s+%#x' % sym['_start'], out), out
    assert re.search(r'AT_PAGESZ\s+System page size\s+4096', out), out
    # the program saw what gdb wrote
    assert rc == 0, stderr
    assert stdout == 'counter=40 watched=12 sum=30\n'   # set after the last bump


@needs_gdb
def test_stepi_pcs_match_native_gdb(userland, tmp_path):
    """The same gdb script natively (ptrace) and against the stub: the same pcs and register values."""
    prog = os.path.join(userland, 'gdbtarget')
    cmds = ['break touch_pages', 'printf "go\\n"']
    for _ in range(STEPS):
        # (the buffer's address differs natively: mmap layouts are not the same; these registers do not.
        # AF is left undefined by shl, and the real CPU and QEMU leave different values in it.)
        cmds += ['stepi', 'printf "pc=%#lx rsi=%#lx rdx=%#lx eflags=%#x\\n", $pc, $rsi, $rdx, (int)$eflags & ~0x10']
    native = gdb_batch(prog, cmds[:1] + ['run'] + cmds[1:])
    if 'Breakpoint 1, touch_pages' not in native:
        pytest.skip('gdb cannot run programs natively here (no ptrace): %s' % native[-200:])
    out = gdb_session(tmp_path, prog, cmds[:1] + ['continue'] + cmds[1:])[0]
    want = re.findall(r'^pc=.*$', native, re.M)
    got = re.findall(r'^pc=.*$', out, re.M)
    assert len(want) == STEPS and got == want, (want, got)


@needs_gdb
def test_fault_stop_then_monitor_fault_and_exact_instruction_count(userland, tmp_path):
    prog = os.path.join(userland, 'gdbtarget')
    sym = symbols(prog)
    cmds = ['break touch_pages', 'continue', 'printf "buf=%#lx\\n", buf', 'monitor fault-stop on', 'continue',
            'printf "pc=%#lx\\n", $pc', 'x/i $pc', 'printf "si_addr=%#lx\\n", $_siginfo._sifields._sigfault.si_addr',
            'monitor fault', 'stepi', 'printf "pc=%#lx\\n", $pc',
            'monitor fault', 'monitor pte $rdi+0x1000', 'monitor vmas', 'monitor pagecache /bin/gdbtarget',
            'monitor stats', 'monitor fault-stop off', 'watch -l buf[8192]', 'continue', 'delete',
            'monitor no-such-command', 'continue']
    stub = Stub(tmp_path, prog)          # not gdb_session: its --stats-json is read below
    try:
        out = gdb_batch(prog, cmds, port=stub.port)
        rc, stdout, stderr = stub.finish()
    finally:
        stub.kill()
    assert 'Traceback' not in out + stderr
    buf = int(re.search(r'^buf=(0x[0-9a-f]+)$', out, re.M).group(1), 16)
    fault_addr = buf + 0x1000            # page 0 of the buffer was written by malloc; page 1 faults first
    assert 'Program received signal SIGTRAP' in out
    stop_pc, after_pc = pcs(out)
    assert stop_pc == sym['touch_pages'] + 0x17                  # the store into buf[i * 4096]
    assert re.search(r'=> %#x <touch_pages\+23>:\s+mov\s+%%al,-0x1000\(%%rdi,%%rdx,1\)' % stop_pc, out), out
    pending, handled = out.split('pending fault', 1)[1].split('last handled fault #', 2)[0], \
        out.split('last handled fault #')[-1]
    assert 'address  %#x' % fault_addr in pending
    assert 'si_addr=%#x' % fault_addr in out             # $_siginfo of a fault stop carries the address
    assert 'access   write, page not present' in pending and 'error    0x6 [WRITE|USER]' in pending
    assert 'expect   empty PTE, anonymous: do_anonymous_page' in pending
    assert 'rip      %#x <touch_pages+0x17>' % stop_pc in pending
    # stepi let the kernel handle it: the store retired, the record says how
    assert after_pc == stop_pc + 7
    assert 'address  %#x' % fault_addr in handled
    assert '-> do_anonymous_page' in handled and 'result   minor fault' in handled
    assert re.search(r'page_zero\s+\d+', handled) and re.search(r'cycles   \d+ in the kernel', handled)
    # pte walk of the page just mapped, vmas, page cache, stats
    assert re.search(r'pte entry @ phys 0x[0-9a-f]+ = 0x[0-9a-f]+  P RW US A D', out), out
    assert re.search(r'\[stack\]\s+\[\d+/\d+ pages present\]', out)
    assert re.search(r'/bin/gdbtarget: \d+ of \d+ pages cached', out)
    # monitor stats: the perf-stat-like block of `faultlab stat`
    assert "Performance counter stats for 'gdbtarget'" in out
    assert re.search(r'^\s+[\d,]+\s+minor-faults\s', out, re.M), out
    assert "unknown monitor command 'no-such-command'" in out
    # a watchpoint on a page that was not present yet: armed once the fault maps it
    assert re.search(r"Old value = 0 '\\000'\nNew value = 3 '\\003'", out), out
    assert rc == 0 and stdout == 'counter=3 watched=12 sum=10\n'
    # breakpoints, steps, a fault stop and watchpoints did not change the instruction count
    assert stub.stats['instructions'] == plain_instructions(prog)


@needs_gdb
def test_fault_stop_major(userland, tmp_path):
    prog = os.path.join(userland, 'gdbtarget')
    out, rc, _stdout, stderr = gdb_session(tmp_path, prog, ['monitor fault-stop major', 'continue', 'monitor fault',
                                                            'stepi', 'monitor fault', 'kill'])
    pending = out.split('pending fault', 1)[1].split('last handled', 1)[0]
    assert 'not cached' in pending and '(major)' in pending, out
    handled = out.split('last handled fault #')[-1]
    assert 'result   major fault' in handled, out
    assert re.search(r'wait_io\s+\d+', handled)
    assert rc == 137 and 'killed by gdb' in stderr


@needs_gdb
def test_fault_stop_nowait_in_the_vdso(userland, tmp_path):
    prog = os.path.join(userland, 'prefetch_test')
    out, rc, stdout, stderr = gdb_session(tmp_path, prog, ['monitor fault-stop nowait', 'continue', 'monitor fault',
                                                           'stepi', 'monitor fault', 'monitor fault-stop off',
                                                           'continue'])
    pending = out.split('pending fault', 1)[1].split('last handled', 1)[0]
    assert re.search(r'rip      0x[0-9a-f]+ <\[vdso\] __vdso_prefetch_page\+0x[0-9a-f]+>', pending), out
    assert 'RETRY_NOWAIT (vDSO exception table)' in pending
    handled = out.split('last handled fault #')[-1]
    assert 'nowait   yes' in handled and 'flags' in handled
    # prefetch_test's first NOWAIT fault is prefetch_page(NULL): no VMA, so the fixup returns -1
    assert 'address  0x0 ' in handled and 'extable  fixup taken' in handled
    assert rc == 0 and 'not ok' not in stdout and 'Traceback' not in stderr


@needs_gdb
def test_fatal_signal_is_reported_before_the_program_dies(userland, tmp_path):
    prog = os.path.join(userland, 'wildjump')
    out, rc, stdout, stderr = gdb_session(tmp_path, prog, ['continue', 'printf "pc=%#lx\\n", $pc',
                                                           'printf "si=%d %d %#lx\\n", $_siginfo.si_signo, '
                                                           '$_siginfo.si_code, $_siginfo._sifields._sigfault.si_addr',
                                                           'continue'])
    assert 'Program received signal SIGSEGV, Segmentation fault.' in out
    assert pcs(out) == [0xdead0000]
    assert 'si=11 1 0xdead0000' in out                   # SIGSEGV, SEGV_MAPERR, the address
    assert 'Program terminated with signal SIGSEGV' in out
    assert rc == 139 and stdout == 'before\n' and 'SIGSEGV' in stderr


@needs_gdb
def test_faultlab_gdb_command_and_static_pie(userland, tmp_path):
    prog = os.path.join(userland, 'hello-pie')
    p = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'gdb', '--batch', '--nx', '--ex', 'break main',
                        '--ex', 'continue', '--ex', 'printf "pc=%#lx\\n", $pc', '--ex', 'next', '--ex', 'continue',
                        prog, 'A'], capture_output=True, text=True, cwd=ROOT, timeout=180)
    main = symbols(prog)['main'] + 0x555555554000
    assert 'Breakpoint 1, main (argc=2' in p.stdout, p.stdout + p.stderr
    assert pcs(p.stdout) == [main]
    assert 'hello, world\n' in p.stdout and 'argv[1]=A\n' in p.stdout
    assert 'exited normally' in p.stdout
    assert p.returncode == 0 and 'Traceback' not in p.stderr


def test_bad_gdb_options_are_one_line_errors(userland):
    prog = os.path.join(userland, 'hello')
    busy = socket.socket()
    busy.bind(('127.0.0.1', 0))
    busy.listen(1)
    try:
        for spec, words in (('nonsense', 'expected [HOST]:PORT'), (':70000', 'out of range'),
                            ('127.0.0.1:%d' % busy.getsockname()[1], 'cannot listen on')):
            p = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'run', '--gdb', spec, prog], capture_output=True,
                               text=True, cwd=ROOT, timeout=60)
            lines = [l for l in p.stderr.splitlines() if l.strip()]
            assert p.returncode == 2 and len(lines) == 1 and words in lines[0], p.stderr
    finally:
        busy.close()
    p = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'gdb', '--gdb-path', '/no/such/gdb', prog],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 127 and 'cannot find /no/such/gdb' in p.stderr and 'Traceback' not in p.stderr


# ---- raw packets: bad input, Ctrl-C, disconnect ----------------------------------------------------------
class Client:
    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=60)
        self.buf = b''

    def raw(self, data):
        self.s.sendall(data)

    def send(self, payload):
        if isinstance(payload, str):
            payload = payload.encode('latin-1')
        self.raw(b'$' + payload + b'#%02x' % (sum(payload) & 0xFF))

    def read(self):
        """The next reply packet's payload (acks skipped)."""
        while True:
            i = self.buf.find(b'$')
            j = self.buf.find(b'#', i + 1) if i >= 0 else -1
            if i >= 0 and j >= 0 and len(self.buf) >= j + 3:
                payload = self.buf[i + 1:j]
                self.buf = self.buf[j + 3:]
                return payload.decode('latin-1')
            data = self.s.recv(65536)
            if not data:
                raise EOFError
            self.buf += data

    def ask(self, payload):
        self.send(payload)
        return self.read()

    def acks(self):
        data = self.buf
        self.buf = b''
        return data


def test_bad_packets_get_error_replies_never_a_traceback(userland, tmp_path):
    prog = os.path.join(userland, 'gdbtarget')
    sym = symbols(prog)
    stub = Stub(tmp_path, prog)
    try:
        c = Client(stub.port)
        assert c.ask('?').startswith('T05thread:')
        # a bad checksum is NAKed and not executed; the next good packet works
        c.raw(b'$g#00')
        time.sleep(0.2)
        assert c.s.recv(16) == b'-'
        c.raw(b'$m4016c0,zz#' + b'%02x' % (sum(b'm4016c0,zz') & 0xFF))
        assert c.read() == 'E01'
        c.raw(b'garbage+\x00\xff')           # outside packets: skipped (a '-' would ask for a resend)
        assert c.ask('m%x,6' % sym['bump']) == open(prog, 'rb').read()[sym['bump'] - 0x400000:][:6].hex()
        # reads of unmapped memory, huge lengths, kernel addresses
        assert c.ask('m0,8') == 'E14'
        assert c.ask('mffff800000000000,8') == 'E14'
        big = c.ask('m%x,ffffffffffff' % sym['bump'])
        assert 0 < len(big) <= 0x4000 and len(big) % 2 == 0
        assert c.ask('m%x,100000000000000000000' % sym['bump']) == big
        assert c.ask('M0,2:abcd') == 'E14'
        assert c.ask('M%x,2:ab' % sym['counter']) == 'E01'           # length mismatch
        assert c.ask('Mzz') == 'E01'
        assert c.ask('X0,1:\x7d') == 'E01'                          # a dangling escape
        # bad register numbers and sizes, bad breakpoints, unknown packets
        assert c.ask('p999') == 'E00'
        assert c.ask('P10=12') == 'E01'
        assert c.ask('Pzz=00') == 'E01'
        assert c.ask('G00') == 'OK'                                  # short G: only complete registers
        assert c.ask('Z0,notanaddress,1') == 'E01'
        assert c.ask('Z2,%x,0' % sym['counter']) == 'E22'
        assert c.ask('Z9,0,1') == ''
        assert c.ask('vCont;x') == 'E01'
        assert c.ask('vCont;s:zz') == 'E01'
        assert c.ask('qXfer:features:read:nosuch.xml:0,100') == 'E00'
        assert c.ask('qXfer:features:read:target.xml:zz') == 'E01'
        assert c.ask('qXfer:nosuch:read::0,10') == ''
        assert c.ask('qRcmd,zz') == 'E01'
        assert c.ask('Hgzz') == 'E01'
        assert c.ask('T99') == 'E01'
        assert c.ask('J-unknown') == ''
        assert c.ask('c-not-an-address') == 'E01'
        assert c.ask('') == ''
        # a packet that never ends is dropped once too large, then the session goes on
        c.raw(b'$' + b'A' * ((1 << 20) + 10))
        assert c.ask('qC') == 'QC1'
        c.send('k')
        rc, _out, err = stub.finish()
    finally:
        stub.kill()
    assert 'Traceback' not in err
    assert rc == 137 and 'killed by gdb' in err


def _monitor(c, line):
    c.send('qRcmd,' + line.encode().hex())
    out = ''
    while True:
        r = c.read()
        if not r.startswith('O') or r == 'OK':
            assert r == 'OK', r
            return out
        out += bytes.fromhex(r[1:]).decode()


def _rip(c):
    return int.from_bytes(bytes.fromhex(c.ask('p10')), 'little')


def _fio(reply):
    """A vFile reply 'Fresult[,errno][;data]' -> (result, errno, data bytes)."""
    head, _, data = reply.partition(';')
    res, _, err = head[1:].partition(',')
    return int(res, 16), int(err, 16) if err else 0, unescape_binary(data.encode('latin-1'))


def test_raw_vfile_host_io(userland, tmp_path):
    """vFile packets by hand: the program by its host path (what qXfer:exec-file names), /proc/1/maps as
    the kernel prints it, fstat, readlink, and the errors in the protocol's numbering."""
    prog = os.path.join(userland, 'gdbtarget')
    stub = Stub(tmp_path, prog)
    hexname = lambda p: p.encode().hex()          # noqa: E731
    try:
        c = Client(stub.port)
        assert c.ask('vFile:setfs:0') == 'F0'
        fd, err, _ = _fio(c.ask('vFile:open:%s,0,0' % hexname(prog)))
        assert err == 0
        with open(prog, 'rb') as f:
            want = f.read()
        got = b''
        while True:
            n, err, data = _fio(c.ask('vFile:pread:%x,%x,%x' % (fd, 0x3000, len(got))))
            assert err == 0 and n == len(data)
            if not n:
                break
            got += data
        assert got == want
        size, err, st = _fio(c.ask('vFile:fstat:%x' % fd))
        assert size == len(st) == 64
        mode, = struct.unpack_from('>I', st, 8)
        assert mode & 0o170000 == 0o100000 and struct.unpack_from('>Q', st, 28)[0] == len(want)
        assert c.ask('vFile:close:%x' % fd) == 'F0'
        assert _fio(c.ask('vFile:close:%x' % fd))[:2] == (-1, 9)                      # EBADF
        fd, err, _ = _fio(c.ask('vFile:open:%s,0,0' % hexname('/proc/1/maps')))
        n, err, maps = _fio(c.ask('vFile:pread:%x,4000,0' % fd))
        assert re.match(r'00400000-[0-9a-f]+ r--p 00000000 ', maps.decode()) and b'[stack]' in maps, maps
        assert _fio(c.ask('vFile:open:%s,0,0' % hexname('/no/such')))[:2] == (-1, 2)   # ENOENT
        assert _fio(c.ask('vFile:open:%s,0,0' % hexname('/proc')))[:2] == (-1, 21)     # EISDIR
        assert _fio(c.ask('vFile:open:%s,201,1a4' % hexname('/tmp/x')))[:2] == (-1, 30)  # EROFS
        assert _fio(c.ask('vFile:open:%s,0,0' % hexname('/proc/77/maps')))[:2] == (-1, 2)
        n, err, target = _fio(c.ask('vFile:readlink:%s' % hexname('/proc/1/exe')))
        assert target == b'/bin/gdbtarget' and n == len(target)
        assert _fio(c.ask('vFile:unlink:%s' % hexname('/bin/gdbtarget')))[:2] == (-1, 30)
        assert c.ask('vFile:nosuchop:0') == ''
        c.send('k')
        stub.finish()
    finally:
        stub.kill()


def test_raw_stop_replies_breakpoint_on_next_instruction_and_watch(userland, tmp_path):
    prog = os.path.join(userland, 'gdbtarget')
    sym = symbols(prog)
    insn = decoder(prog)
    bump, second = sym['bump'], sym['bump'] + insn(sym['bump']).size
    stub = Stub(tmp_path, prog)
    try:
        c = Client(stub.port)
        # gdb offers multiprocess: thread ids in replies are then pPID.TID
        assert 'multiprocess+' in c.ask('qSupported:multiprocess+;swbreak+;hwbreak+').split(';')
        assert c.ask('Z0,%x,1' % bump) == 'OK' and c.ask('Z0,%x,1' % second) == 'OK'
        assert c.ask('vCont;c') == 'T05thread:p1.1;swbreak:;' and _rip(c) == bump
        # continuing from a breakpoint with another on the very next instruction stops there
        assert c.ask('vCont;c:1') == 'T05thread:p1.1;swbreak:;' and _rip(c) == second
        assert c.ask('s') == 'T05thread:p1.1;' and _rip(c) == second + insn(second).size
        assert c.ask('z0,%x,1' % bump) == 'OK' and c.ask('z0,%x,1' % second) == 'OK'
        # a read watchpoint on a page that maps the zero page: reads of the other two zero-mapped pages
        # (same frame, same offset) are not hits; the program reads zeros[2][100] once in each of 2 rounds
        zload = sym['read_zeros'] + 0x29
        assert insn(zload).op_str.endswith('[rip + 0x%x]' % (sym['zeros'] + 0x2064 - zload - insn(zload).size))
        assert c.ask('Z3,%x,1' % (sym['zeros'] + 0x2064)) == 'OK'
        for _ in range(2):
            assert c.ask('c') == 'T05thread:p1.1;rwatch:%x;' % (sym['zeros'] + 0x2064)
            assert _rip(c) == zload + insn(zload).size
        assert c.ask('z3,%x,1' % (sym['zeros'] + 0x2064)) == 'OK'
        # a write watchpoint reports after the store: rip past it, memory already changed
        assert c.ask('Z2,%x,8' % sym['watched']) == 'OK'
        assert c.ask('c') == 'T05thread:p1.1;watch:%x;' % sym['watched']
        store = insn(sym['set_watched'])
        assert _rip(c) == sym['set_watched'] + store.size
        assert c.ask('m%x,8' % sym['watched']) == (12).to_bytes(8, 'little').hex()   # 6 from bump, 0 zeros
        assert c.ask('z2,%x,8' % sym['watched']) == 'OK'
        # a read watchpoint on scale: the load at touch_pages+0x1e
        assert c.ask('Z3,%x,8' % sym['scale']) == 'OK'
        assert c.ask('c') == 'T05thread:p1.1;rwatch:%x;' % sym['scale']
        load = sym['touch_pages'] + 0x1e
        assert insn(load).op_str.endswith('[rip + 0x%x]' % (sym['scale'] - load - insn(load).size))
        assert _rip(c) == load + insn(load).size
        assert c.ask('z3,%x,8' % sym['scale']) == 'OK'
        # single-stepping into a fault with fault-stop on: the step stops before the kernel handles it
        assert 'fault-stop on' in _monitor(c, 'fault-stop on')
        store = sym['touch_pages'] + 0x17
        for _ in range(20):
            before = _rip(c)
            assert c.ask('s') == 'T05thread:p1.1;'
            if _rip(c) == before:
                break
        assert before == store and 'pending fault' in _monitor(c, 'fault')
        assert c.ask('s') == 'T05thread:p1.1;' and _rip(c) == store + insn(store).size
        assert 'do_anonymous_page' in _monitor(c, 'fault').split('last handled')[1]
        assert 'fault-stop off' in _monitor(c, 'fault-stop off')
        assert c.ask('D') == 'OK'        # detach: the program runs on to its end
        rc, out, err = stub.finish()
    finally:
        stub.kill()
    assert rc == 0 and out == 'counter=3 watched=12 sum=10\n' and 'Traceback' not in err
    assert stub.stats['instructions'] == plain_instructions(prog)


def test_ctrl_c_interrupts_and_disconnect_mid_run_kills_cleanly(userland, tmp_path):
    prog = os.path.join(userland, 'compute')
    stub = Stub(tmp_path, prog, ['50'])
    try:
        c = Client(stub.port)
        c.ask('?')
        c.send('c')
        time.sleep(0.5)
        c.raw(b'\x03')
        reply = c.read()
        assert reply.startswith('T02thread:'), reply
        rip = int.from_bytes(bytes.fromhex(c.ask('p10')), 'little')
        assert 0x400000 <= rip < 0x500000
        c.send('vCont;c')
        time.sleep(0.3)
        c.s.close()                      # the client goes away while the program runs
        rc, _out, err = stub.finish(timeout=120)
    finally:
        stub.kill()
    assert 'Traceback' not in err
    assert rc == 137
    assert re.search(r'gdb connection closed: program killed at rip=0x[0-9a-f]+ <', err), err


def test_rsp_framing_unit():
    from faultlab.gdb.rsp import RspConnection, Disconnected, escape_binary, unescape_binary
    data = bytes(range(256))
    assert unescape_binary(escape_binary(data)) == data
    assert b'#' not in escape_binary(data) and b'$' not in escape_binary(data)
    a, b = socket.socketpair()
    conn = RspConnection(a)
    b.sendall(b'+junk$qC#b4')
    assert conn.read_packet() == b'qC'
    assert b.recv(1) == b'+'
    b.sendall(b'$qC#00$qC#b4')
    assert conn.read_packet() == b'qC'
    assert b.recv(2) == b'-+'
    conn.send('OK')
    assert b.recv(16) == b'$OK#9a'
    b.sendall(b'-$qC#b4')                 # NAK: the last packet is sent again
    assert conn.read_packet() == b'qC'
    assert b.recv(16) == b'$OK#9a+'
    assert conn.poll_interrupt() is False
    b.sendall(b'\x03')
    time.sleep(0.05)
    assert conn.poll_interrupt() is True
    b.sendall(b'$broken off$qC#b4')       # a '$' inside a packet: the first one broke off
    assert conn.read_packet() == b'qC'
    assert b.recv(2) == b'-+'
    b.close()
    with pytest.raises(Disconnected):
        conn.read_packet()
    assert conn.bad_packets == 2         # the bad checksum and the broken-off packet


def test_threads_are_listed_and_their_registers_read(userland, tmp_path):
    """Stop in a second thread on 2 CPUs: gdb lists every thread and reads each one's registers."""
    prog = os.path.join(userland, 'threads')
    out = gdb_session(tmp_path, prog, ['break adder', 'continue', 'info threads',
                                       'thread apply all printf "rip=%#lx\\n", $pc', 'kill'],
                      ['2', '50'], opts=['--cpus', '2'])[0]
    assert 'Breakpoint 1, adder' in out, out
    threads = re.findall(r'^\*?\s+\d+\s+Thread (?:\d+\.)?(\d+)', out, re.M)
    assert len(set(threads)) >= 2, out
    rips = [int(x, 16) for x in re.findall(r'rip=(0x[0-9a-f]+)', out)]
    assert len(rips) == len(set(threads))
    syms = symbols(prog)
    assert syms['adder'] in rips                    # the thread that hit the breakpoint
    assert len(set(rips)) >= 2                      # the other thread's saved registers, not a copy


def test_random_packets_fuzz_never_kill_the_stub(userland, tmp_path):
    """Seeded random packets (known letters with random arguments, binary payloads, bad checksums,
    stray bytes between packets): every well-framed packet gets a reply and the session stays usable."""
    import random
    rng = random.Random(2026)
    prog = os.path.join(userland, 'gdbtarget')
    stub = Stub(tmp_path, prog)
    alphabet = [bytes([b]) for b in range(256) if b not in b'$#}*']
    letters = ['m', 'M', 'X', 'p', 'P', 'g', 'G', 'Z0', 'z0', 'Z2', 'z2', 'Z3', 'Z4', 'H', 'Hg', 'Hc', 'T', 'q',
               'qXfer:features:read:', 'qXfer:auxv:read:', 'qXfer:exec-file:read:', 'qRcmd,', 'qSupported:',
               'qfThreadInfo', 'qsThreadInfo', 'qC', 'qAttached', 'vCont?', 'vMustReplyEmpty', '?', 'v', 'Q', '!',
               'vFile:setfs:', 'vFile:open:', 'vFile:pread:', 'vFile:fstat:', 'vFile:close:', 'vFile:readlink:',
               'vFile:open:2f70726f632f312f6d617073,0,0']
    sent = 0
    try:
        c = Client(stub.port)
        assert c.ask('?').startswith('T05')
        for _ in range(400):
            cmd = rng.choice(letters)
            tail = b''.join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
            if rng.random() < 0.5:              # plausible arguments: hex numbers, commas and colons
                tail = ','.join('%x' % rng.getrandbits(rng.choice((4, 16, 48, 64, 80)))
                                for _ in range(rng.randrange(1, 4))).encode()
                if rng.random() < 0.3:
                    tail += b':' + bytes(rng.randrange(256) for _ in range(8)).hex().encode()
            payload = cmd.encode() + tail
            if rng.random() < 0.1:
                c.raw(b'$' + payload + b'#%02x' % ((sum(payload) + 1) & 0xFF))    # bad checksum: NAK only
                continue
            if rng.random() < 0.1:
                c.raw(b'stray+')                  # bytes outside any packet are skipped
            c.send(payload)
            r = c.read()
            while cmd == 'qRcmd,' and r.startswith('O') and r != 'OK':
                r = c.read()                      # monitor output comes as O packets before the reply
            sent += 1
        assert c.ask('qC').startswith('QC')          # still in sync
        c.send('k')
        rc, _out, err = stub.finish()
    finally:
        stub.kill()
    assert sent > 300 and 'Traceback' not in err and 'internal error' not in err
    assert rc == 137


@needs_gdb
def test_signal_command_delivers_the_signal_to_the_handler(userland, tmp_path):
    """gdb's `signal SIGUSR1` at a breakpoint (vCont;S with GDB's number 30 for Linux's 10): the handler
    runs, returns to the breakpoint, which hits again, as with native gdb; then the program ends."""
    prog = os.path.join(userland, 'gdbsig')
    cmds = ['break checkpoint', 'signal SIGUSR1', 'continue']
    out, rc, stdout, stderr = gdb_session(tmp_path, prog, cmds[:1] + ['continue'] + cmds[1:])
    native = gdb_batch(prog, cmds[:1] + ['run'] + cmds[1:], run_native=True)
    assert native.count('Breakpoint 1, checkpoint') == out.count('Breakpoint 1, checkpoint') == 2
    assert stdout == 'handler ran\nafter: got 10\n' and 'handler ran' in native
    assert rc == 0
