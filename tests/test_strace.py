"""`faultlab run --strace` against the real strace: the same programs run natively under `strace -f -s 32`
and under faultlab, their logs compared line by line, task by task.

Normalised on both sides: hex numbers (addresses) to 0xADDR, pids to P0, P1... (numbered in the order
their parents' clone/fork/vfork calls returned them), the padding before ` = `, and strace's
`<unfinished ...>` / `<... resumed>` pairs joined into one line (faultlab writes a call once it returns).
The lines are compared per task, in order, since which task runs first differs between a host and the
simulated scheduler.

Where the two sets of calls differ for a reason, and how the test accounts for it:
- the first execve: strace sees the program's execve; faultlab's loader starts it without a call.
- rseq: faultlab does not implement restartable sequences (-ENOSYS), so glibc carries on without
  them and its new threads do not register one either: rseq lines are left out on both sides.
- readlink("/proc/self/exe"): the path of the program inside the guest (/bin/NAME) is not the host's.
- getrandom: its bytes are random, and whether glibc's mkstemp asks for random bits (a getrandom call)
  or makes do with the clock varies from run to run natively: getrandom lines are left out; the
  /tmp names mkstemp makes are random.
- newfstatat(1, "", ...): the guest's stdout is its console (a character device with its own mode),
  the native run's /dev/null.
- `--- SIGCHLD ... ---`: where it comes in the parent's lines depends on whether the parent ran
  before its child ended (the scheduler's choice): a task's SIGCHLD lines are compared as a set, after
  its other lines; si_pid is a pid (P0, P1...), si_utime and si_stime are the host's ticks (N).
- a sleeping call a signal interrupted: strace shows the kernel's restart code (`= ? ERESTARTNOHAND`,
  `= ? ERESTART_RESTARTBLOCK`) where a handler then makes it -EINTR, which faultlab's kernel returns
  directly: those two are read as `-1 EINTR` on both sides. A call SIGKILL ended (` = ?`) is left out:
  strace may leave it `<unfinished ...>` for good.
- futex calls: whether a thread waits for a lock or for another's end (pthread_join) depends on timing,
  on a host and in the simulation alike; they are left out.
- rt_sigreturn's result is the interrupted code's RAX: where a signal lands depends on timing.
- clone3's `=> {parent_tid=[N]}` is read when the call returns from the word that glibc also gives as
  child_tid (CLONE_CHILD_CLEARTID): a thread that already ended shows 0 there, so N is not compared.
- in DIR (a directory mounted at the same path in the guest) the paths are the same on both sides.

Not compared: `signals` (pthread_kill to a thread that natively has already started and in the
simulation has not: its signal comes before its first call) and restarted calls (SA_RESTART), where
strace shows `= ? ERESTARTSYS` and the call again and faultlab one line.
"""
import os
import re
import shutil
import struct
import subprocess
import sys

import pytest

from faultlab.observe.strace import strace_equals_form
from faultlab.observe.strace_decode import MASK64, format_call, format_exit, format_siginfo, format_signal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, 'userland', 'build')
# (program, its arguments); DIR is a fresh directory, at the same path on the host and (mounted) in the guest
PROGRAMS = [('hello', []), ('readahead', []), ('readahead', ['DIR/data']), ('sigsegv', []), ('forktest', []),
            ('threads', []), ('pipes', []), ('fileio', ['DIR']), ('sigchld', []), ('siginfo', []), ('tracesig', [])]

_PID = re.compile(r'^(?:\[pid\s+(\d+)\] |(\d+) +)')     # strace -f's prefix on a terminal, or with -o
_HEX = re.compile(r'0x[0-9a-fA-F]+')
_RETURNS_PID = re.compile(r'^(clone|clone3|fork|vfork|set_tid_address|wait4|getpid|gettid|getppid)\(')
_FORKS = re.compile(r'^(clone|clone3|fork|vfork)\(.*\)\s+= (\d+)$')


def _strace_works():
    """None when strace can trace here, else why not."""
    if shutil.which('strace') is None:
        return 'strace is not installed'
    r = subprocess.run(['strace', '-f', '-o', os.devnull, 'true'], capture_output=True, text=True)
    if r.returncode != 0:
        return 'strace cannot trace in this sandbox: %s' % r.stderr.strip()[:200]
    return None


def native_log(prog, args, tmp_path):
    """The program's log under the real strace -f -s 32."""
    out = tmp_path / ('%s.native' % prog)
    fresh_dir(tmp_path)
    subprocess.run(['strace', '-f', '-s', '32', '-o', str(out), './' + prog] + program_args(args, tmp_path),
                   cwd=BUILD,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return out.read_text().splitlines()


def faultlab_log(prog, args, tmp_path):
    """The program's log under faultlab run --strace-file."""
    out = tmp_path / ('%s.faultlab' % prog)
    data = fresh_dir(tmp_path)
    argv = [os.path.join(BUILD, prog)] + program_args(args, tmp_path)
    subprocess.run([sys.executable, '-m', 'faultlab', 'run', '--no-progress', '--strace-file', str(out),
                    '--mount', '%s:%s:rw' % (data, data)] + argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=300)
    return out.read_text().splitlines()


def fresh_dir(tmp_path):
    """DIR: an empty directory but for a 20000-byte file `data` of fixed bytes."""
    d = tmp_path / 'dir'
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    (d / 'data').write_bytes(bytes(range(256)) * 78 + bytes(32))
    return d


def program_args(args, tmp_path):
    """The arguments with DIR replaced."""
    return [a.replace('DIR', str(tmp_path / 'dir')) for a in args]


def split_pids(lines):
    """[(pid or None, text)], strace's unfinished/resumed pairs joined, its attach notes dropped."""
    out, open_calls = [], {}
    for line in lines:
        m = _PID.match(line)
        pid = int(m.group(1) or m.group(2)) if m else None
        text = line[m.end():] if m else line
        if text.endswith(' <unfinished ...>'):
            open_calls[pid] = (len(out), text[:-len(' <unfinished ...>')])
            out.append(None)
            continue
        r = re.match(r'^<\.\.\. \w+ resumed>(.*)$', text)
        if r and pid in open_calls:
            at, head = open_calls.pop(pid)
            out[at] = (pid, head + r.group(1))
            continue
        out.append((pid, text))
    return [x for x in out if x is not None]


def per_task(lines):
    """{logical pid: [normalised lines]}: P0 the first task, the others numbered as their parents made them."""
    entries = split_pids(lines)
    # lines without a prefix come while one task lives: the program's first, whose tid set_tid_address returns
    main = next((int(m.group(1)) for _, t in entries for m in [re.match(r'^set_tid_address\(.*\)\s+= (\d+)$', t)]
                 if m), 0)
    rows = {}
    for pid, text in entries:
        rows.setdefault(main if pid is None else pid, []).append(re.sub(r'\s+= ', ' = ', text))
    names, queue = {main: 'P0'}, [main]
    while queue:
        for text in rows.get(queue.pop(0), []):
            m = _FORKS.match(text)
            if m and int(m.group(2)) in rows and int(m.group(2)) not in names:
                names[int(m.group(2))] = 'P%d' % len(names)
                queue.append(int(m.group(2)))
    result = {}
    for pid, texts in rows.items():
        label = names.get(pid, 'P?%d' % pid)
        result[label] = [normalise(t, names) for t in texts]
    return result


def normalise(text, names):
    """One line with the known, legitimate differences taken out (see the module's docstring)."""
    def label(m):
        return m.group(1) + names.get(int(m.group(2)), 'P?') + m.group(3)
    # pids only where a call returns or takes one
    if _RETURNS_PID.match(text):
        text = re.sub(r'( = )(\d+)($)', label, text)
    text = re.sub(r'^((?:wait4|kill|tgkill|tkill|rt_sigqueueinfo|rt_tgsigqueueinfo)\()(\d+)(,)', label, text)
    text = re.sub(r'^((?:tgkill|rt_tgsigqueueinfo)\(P\d+, )(\d+)(,)', label, text)
    # strace shows the kernel's restart codes where the call then returns EINTR to a handler
    text = re.sub(r' = \? (ERESTARTNOHAND|ERESTART_RESTARTBLOCK) \(.*\)$', ' = -1 EINTR (Interrupted system call)',
                  text)
    text = re.sub(r'^(rt_sigreturn\(.*\)) = .*$', r'\1 = RAX', text)
    text = re.sub(r'(parent_tid=\[)\d+(\])', r'\1TID\2', text)
    text = re.sub(r'(si_pid=)(\d+)(,)', label, text)
    text = re.sub(r'(si_[us]time=)\d+', r'\1N', text)
    text = _HEX.sub('0xADDR', text)
    text = re.sub(r'^readlink\("/proc/self/exe", ".*?"(\.\.\.)?, (\d+)\) = \d+$',
                  r'readlink("/proc/self/exe", EXE, \2) = N', text)
    text = re.sub(r'"/tmp/(\w+?)\w{6}"', r'"/tmp/\1XXXXXX"', text)
    text = re.sub(r'^newfstatat\(1, "", \{.*?\}, ', 'newfstatat(1, "", STDOUT, ', text)
    return text


def comparable(prog, tasks):
    """What is compared: no first execve, no rseq, no futex or getrandom; a child's SIGCHLD is compared
    as one of the process's SIGCHLD lines, not where it comes (whether the parent ran before its
    child ended is the scheduler's choice, on a host and in the simulation alike)."""
    out = {}
    for label, texts in tasks.items():
        keep, sigchld = [], []
        for t in texts:
            if t.startswith('--- SIGCHLD '):
                sigchld.append(t)
                continue
            if t.startswith('execve(') and label == 'P0' and not keep:
                continue
            if t.startswith('rseq('):
                continue
            if t.startswith(('futex(', 'getrandom(')):
                continue
            if t == '+++ killed by SIGKILL +++' and keep and keep[-1].endswith(' = ?'):
                keep.pop()      # the call SIGKILL ended: strace may leave it <unfinished ...> for good
            keep.append(t)
        out[label] = keep + sorted(sigchld)
    return out


def same_line(x, y):
    """The two lines are equal."""
    return x == y


def diff_report(prog, native, emulated):
    """The first differing line of each task, or '' when the logs agree."""
    problems = []
    for label in sorted(set(native) | set(emulated)):
        a, b = native.get(label, []), emulated.get(label, [])
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else '<none>'
            y = b[i] if i < len(b) else '<none>'
            if not same_line(x, y):
                problems.append('%s %s line %d:\n  strace:   %s\n  faultlab: %s' % (prog, label, i + 1, x, y))
                break
    return '\n'.join(problems)


@pytest.fixture(scope='module')
def strace_ok():
    why = _strace_works()
    if why:
        pytest.skip(why)


@pytest.mark.parametrize('prog,args', PROGRAMS, ids=[' '.join([p] + a) for p, a in PROGRAMS])
def test_strace_matches_native(prog, args, tmp_path, strace_ok):
    if not os.path.exists(os.path.join(BUILD, prog)):
        pytest.skip('userland/build/%s is not built' % prog)
    native = comparable(prog, per_task(native_log(prog, args, tmp_path)))
    emulated = comparable(prog, per_task(faultlab_log(prog, args, tmp_path)))
    assert native and emulated
    report = diff_report(prog, native, emulated)
    assert not report, report


def test_compare_fails_on_a_different_line():
    """The comparison is not vacuous: one changed argument is reported."""
    a = per_task(['write(1, "hi", 2) = 2', 'exit_group(0) = ?', '+++ exited with 0 +++'])
    b = per_task(['write(1, "ho", 2) = 2', 'exit_group(0) = ?', '+++ exited with 0 +++'])
    assert 'line 1' in diff_report('x', comparable('x', a), comparable('x', b))
    assert diff_report('x', comparable('x', a), comparable('x', a)) == ''


def test_decoders():
    """The decoders on their own: strings cut at 32, flags, errors, NULL, AT_FDCWD, struct stat."""
    mem = {0x1000: b'/etc/passwd\0', 0x2000: b'x' * 40, 0x3000: struct.pack('<QQQIIIIQqqq', 0, 0, 1, 0o100644,
                                                                          0, 0, 0, 0, 123, 4096, 8)}

    def read(addr, n):
        for base, data in mem.items():
            if base <= addr < base + len(data):
                return data[addr - base:addr - base + n].ljust(n, b'\0')
        return None
    assert format_call('openat', (MASK64 - 99, 0x1000, 0o2000000, 0, 0, 0), -2, read) == \
        ('openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC)', '-1 ENOENT (No such file or directory)')
    assert format_call('write', (1, 0x2000, 40, 0, 0, 0), 40, read)[0] == \
        'write(1, "%s"..., 40)' % ('x' * 32)
    assert format_call('mmap', (0, 4096, 3, 0x22, MASK64, 0), 0x7f0000000000, read) == \
        ('mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)', '0x7f0000000000')
    assert format_call('fstat', (3, 0x3000, 0, 0, 0, 0), 0, read)[0] == \
        'fstat(3, {st_mode=S_IFREG|0644, st_size=123, ...})'
    assert format_call('getppid', (0,) * 6, 1, read) == ('getppid()', '1')
    assert format_call('syscall_0x1ff', (1, 0, 0x10, 0, 0, 0), -38, read, nargs=3)[0] == \
        'syscall_0x1ff(0x1, 0, 0x10)'
    assert format_signal(11, 1, 0x10) == '--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---'
    assert format_exit(11, 0) == '+++ killed by SIGSEGV +++'
    assert format_exit(0, 3) == '+++ exited with 3 +++'


def run_faultlab(*argv):
    """faultlab run with argv: (exit status, stderr)."""
    r = subprocess.run([sys.executable, '-m', 'faultlab', 'run', '--no-progress'] + list(argv), cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)
    return r.returncode, r.stderr


def test_strace_to_stderr_with_faults_and_time():
    """--strace writes to stderr; --strace-faults adds the page faults; --strace-time r the relative times."""
    rc, err = run_faultlab('--strace', '--strace-faults', '--strace-time', 'r', os.path.join(BUILD, 'hello'))
    assert rc == 0
    lines = err.splitlines()
    stamp = re.compile(r'^ *\d+\.\d{6} ')
    assert lines and all(stamp.match(x) for x in lines), lines[:5]
    body = [stamp.sub('', x) for x in lines]
    faults = [x for x in body if x.startswith('--- page fault at ')]
    shape = re.compile(r'^--- page fault at 0x[0-9a-f]+ \((read|write|instruction fetch), '
                       r'(minor|major|retry|fixup|signal)(, [\w() -]+)*\) ---$')
    assert faults and all(shape.match(x) for x in faults), faults[:3]
    assert re.match(r'^write\(1, "hello, world\\nargc=1\\nargv\[0\]=hell"\.\.\., \d+\) += \d+$',
                    next(x for x in body if x.startswith('write(1,')))
    assert [re.sub(r' +=', ' =', x) for x in body[-2:]] == ['exit_group(0) = ?', '+++ exited with 0 +++']


def test_strace_time_of_day():
    """--strace-time t and tt: the simulated time of day, as strace -t and -tt print the real one."""
    for mode, pattern in (('t', r'^\d\d:\d\d:\d\d '), ('tt', r'^\d\d:\d\d:\d\d\.\d{6} ')):
        rc, err = run_faultlab('--strace-time', mode, os.path.join(BUILD, 'hello'))
        assert rc == 0 and err and all(re.match(pattern, x) for x in err.splitlines()), err[:300]


def test_strace_killed_by_signal():
    """A fault's signal and the death it causes: --- SIGSEGV {...} --- and +++ killed by SIGSEGV +++."""
    rc, err = run_faultlab('--strace', os.path.join(BUILD, 'forktest'))
    assert rc == 0
    assert re.search(r'^\[pid +\d+\] --- SIGSEGV \{si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=NULL\} ---\n'
                     r'\[pid +\d+\] \+\+\+ killed by SIGSEGV \+\+\+$', err, re.M), err


def test_strace_equals_file_spelling(tmp_path):
    """--strace=FILE writes the log to FILE, as --strace-file FILE does; `--strace PROGRAM` still takes
    PROGRAM as the program; a guest argument after `--` is left alone."""
    assert strace_equals_form(['run', '--strace=x.log', 'p']) == ['run', '--strace-file', 'x.log', 'p']
    assert strace_equals_form(['run', '--', 'p', '--strace=y']) == ['run', '--', 'p', '--strace=y']
    a, b = tmp_path / 'a.log', tmp_path / 'b.log'
    rc1, err1 = run_faultlab('--strace=%s' % a, os.path.join(BUILD, 'hello'))
    rc2, err2 = run_faultlab('--strace-file', str(b), os.path.join(BUILD, 'hello'))
    assert rc1 == rc2 == 0 and a.read_text() == b.read_text() and 'exit_group(0)' in a.read_text()
    assert 'write(1' not in err1
    rc3, err3 = run_faultlab('--strace', os.path.join(BUILD, 'hello'))
    assert rc3 == 0 and err3.splitlines()[-1] == '+++ exited with 0 +++'


def test_signal_lines():
    """The siginfo of each kind of sender as strace writes it."""
    kill = struct.pack('<iiiiii', 10, 0, 0, 0, 7, 0).ljust(128, b'\0')
    assert format_siginfo(kill) == '--- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_USER, si_pid=7, si_uid=0} ---'
    chld = struct.pack('<iiiiiiqq', 17, 0, 2, 0, 9, 0, 9, 0).ljust(128, b'\0')
    assert format_siginfo(chld) == ('--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_KILLED, si_pid=9, si_uid=0, '
                                    'si_status=SIGKILL, si_utime=0, si_stime=0} ---')
    queued = struct.pack('<iiiiiiq', 36, 0, -1, 0, 5, 0, 42).ljust(128, b'\0')
    assert format_siginfo(queued) == ('--- SIGRT_4 {si_signo=SIGRT_4, si_code=SI_QUEUE, si_pid=5, si_uid=0, '
                                      'si_int=42, si_ptr=0x2a} ---')
    assert format_siginfo(struct.pack('<iii', 14, 0, 0x80).ljust(128, b'\0')) == \
        '--- SIGALRM {si_signo=SIGALRM, si_code=SI_KERNEL} ---'
