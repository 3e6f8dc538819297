"""Dynamically linked programs (PT_INTERP): the kernel maps the program and glibc's ld.so, which maps
libc and the rest through the guest's system calls from the host's library directories (or a
--sysroot). Each program's output and exit status are compared with the same program run natively."""
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, run_guest, run_native
from test_gdb import Client, Stub, gdb_session, symbols

HELLO = os.path.join(ROOT, 'userland', 'src', 'hello.c')
AUXV = os.path.join(ROOT, 'userland', 'src', 'auxv.c')
DYNEXEC = os.path.join(ROOT, 'userland', 'src', 'dynexec.c')
ELIBBAD = 80
GDB = shutil.which('gdb')


def gcc(tmp_path, name, src, *flags):
    """Build src with plain gcc (dynamically linked, PIE: the distribution's defaults)."""
    exe = tmp_path / name
    subprocess.run(['gcc', '-O1', '-g', str(src), '-o', str(exe)] + list(flags), check=True)
    return str(exe)


def faultlab(*args, timeout=300):
    return subprocess.run([sys.executable, '-m', 'faultlab.cli'] + list(args), capture_output=True, cwd=ROOT,
                          timeout=timeout)


def same_as_native(program, args=(), mounts=(), env=()):
    """Run program natively and under faultlab: both outputs and exit statuses must agree."""
    rc, out, _err = run_native(program, args, env)
    r = run_guest(program, args, mounts=mounts, env=env, ram=256 << 20)
    assert r.result.report is None, r.result.report
    assert (r.exit_code, r.stdout.decode()) == (rc, out.decode())
    return r


def test_gcc_hello_matches_native(tmp_path):
    prog = gcc(tmp_path, 'hello', HELLO)
    r = same_as_native(prog, ['one', 'two'], env=['FAULTLAB_TEST=dynamic'])
    # ld.so and libc are file mappings faulted in through the page cache, from the disk model
    assert r.stats['major_faults'] > 0 and r.stats['fault_breakdown']['do_read_fault']['count'] > 0
    assert not r.warnings, r.warnings


@pytest.mark.parametrize('program', ['/bin/true', '/bin/false'])
def test_coreutils_exit_status_matches_native(program):
    same_as_native(program)


def test_ls_of_a_mounted_directory_matches_native(tmp_path):
    tree = tmp_path / 'tree'
    (tree / 'sub').mkdir(parents=True)
    for name in ('b.txt', 'a.c', '.hidden', 'zeta'):
        (tree / name).write_text(name)
    same_as_native('/bin/ls', ['-a', '-p', '-1', str(tree)], mounts=[(str(tree), str(tree), True)])
    same_as_native('/bin/ls', [str(tree / 'missing')], mounts=[(str(tree), str(tree), True)])   # status 2


def test_python3_matches_native():
    """python3 finds its standard library under the host's /usr/lib (through `faultlab run`, whose
    default PATH=/bin:/usr/bin lets it find itself from argv[0] as natively)."""
    code = ('import sys, json, collections; '
            'print(json.dumps({"n": sum(range(100)), "c": collections.Counter("abracadabra").most_common(2)}));'
            'print(json.__file__, sys.executable, sys.version_info[:2]); sys.exit(3)')
    rc, out, _ = run_native('/usr/bin/python3', ['-c', code], env=['PATH=/bin:/usr/bin'])
    p = faultlab('run', '/usr/bin/python3', '-c', code)
    assert (p.returncode, p.stdout) == (rc, out) == (3, out), p.stderr
    assert b'/usr/lib/python3' in out


def test_instruction_count_is_exact_through_the_loader(tmp_path):
    """The native block counter equals a per-instruction count for a program that runs ld.so first."""
    from faultlab.bench.speed import single_step_check
    native, single = single_step_check(gcc(tmp_path, 'hello', HELLO))
    assert native == single and native > 50_000          # ld.so's relocation work is in the count


@pytest.mark.parametrize('link', [[], ['-static']], ids=['dynamic', 'static'])
def test_auxv_matches_native(tmp_path, link):
    """AT_BASE (the interpreter's base, 0 when static), AT_ENTRY, AT_PHDR and the list of entries as
    a program sees them, natively and under faultlab."""
    r = same_as_native(gcc(tmp_path, 'auxv', AUXV, *link))
    out = r.stdout.decode()
    if link:
        assert 'AT_BASE: none' in out
    else:
        assert 'AT_BASE is the interpreter\'s load address: yes' in out


def _shown_auxv(text):
    """LD_SHOW_AUXV output as [(name, value)], without the AT_RSEQ_* entries (faultlab has no rseq)."""
    pairs = [tuple(l.split(':', 1)) for l in text.splitlines() if l.startswith('AT_')]
    return [(k, v.strip()) for k, v in pairs if not k.startswith('AT_???')]


def test_the_loader_shows_the_same_auxv_entries():
    """glibc's loader prints the vector it was given (LD_SHOW_AUXV): the same entries in the same
    order; the values that do not depend on addresses or the CPU are equal."""
    rc, out, _ = run_native('/bin/true', env=['LD_SHOW_AUXV=1'])
    r = run_guest('/bin/true', env=['LD_SHOW_AUXV=1'])
    native, guest = _shown_auxv(out.decode()), _shown_auxv(r.stdout.decode())
    assert [k for k, _ in guest] == [k for k, _ in native] and r.exit_code == rc == 0
    for key in ('AT_PAGESZ', 'AT_PHENT', 'AT_PHNUM', 'AT_CLKTCK', 'AT_FLAGS', 'AT_EXECFN', 'AT_PLATFORM'):
        assert dict(guest)[key] == dict(native)[key], key
    g = dict(guest)
    base, entry = int(g['AT_BASE'], 16), int(g['AT_ENTRY'], 16)
    assert base % 4096 == 0 and base > entry > 0


def _sysroot(tmp_path):
    """A sysroot holding libc, ld.so and a libdemo.so the host does not have; Debian's layout
    (lib and lib64 as symlinks)."""
    root = tmp_path / 'sysroot'
    libdir = root / 'usr' / 'lib' / 'x86_64-linux-gnu'
    libdir.mkdir(parents=True)
    for lib in ('/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'):
        shutil.copy(os.path.realpath(lib), libdir / os.path.basename(lib))
    os.symlink('usr/lib', root / 'lib')
    os.symlink('usr/lib/x86_64-linux-gnu', root / 'lib64')
    (tmp_path / 'demo.c').write_text('const char *demo_origin(void) { return "libdemo of the sysroot"; }\n')
    subprocess.run(['gcc', '-shared', '-fPIC', '-o', str(libdir / 'libdemo.so'), str(tmp_path / 'demo.c')],
                   check=True)
    (tmp_path / 'usedemo.c').write_text('#include <stdio.h>\nconst char *demo_origin(void);\n'
                                        'int main(void) { puts(demo_origin()); return 0; }\n')
    prog = gcc(tmp_path, 'usedemo', tmp_path / 'usedemo.c', '-L' + str(libdir), '-ldemo')
    return root, str(libdir), prog


def _loader_error(stderr):
    """The loader's complaint without the program name it starts with (argv[0] differs)."""
    return stderr.decode().split(': ', 1)[-1]


def test_sysroot_supplies_the_libraries(tmp_path):
    """--sysroot DIR: the libraries come from DIR (as natively with LD_LIBRARY_PATH pointing into
    it); without it the host's are used, which lack libdemo.so: the loader fails as it does natively."""
    root, libdir, prog = _sysroot(tmp_path)
    rc, out, _ = run_native(prog, env=['LD_LIBRARY_PATH=' + libdir])
    p = faultlab('run', '--sysroot', str(root), prog)
    assert (p.returncode, p.stdout) == (rc, out) == (0, b'libdemo of the sysroot\n'), p.stderr
    rc, out, err = run_native(prog)
    p = faultlab('run', prog)
    assert p.returncode == rc == 127 and p.stdout == out == b''
    assert _loader_error(p.stderr) == _loader_error(err)


def test_sysroot_hides_the_host_libraries(tmp_path):
    """Only the sysroot's files are visible: a library the host has (libm) is not found."""
    root, _libdir, _prog = _sysroot(tmp_path)
    (tmp_path / 'usem.c').write_text('#include <math.h>\n#include <stdio.h>\n'
                                     'int main(int c, char **v) { printf("%g\\n", cos(c - 1.0)); return 0; }\n')
    prog = gcc(tmp_path, 'usem', tmp_path / 'usem.c', '-lm')
    assert faultlab('run', prog).stdout == b'1\n'
    p = faultlab('run', '--sysroot', str(root), prog)
    assert p.returncode == 127 and b'libm.so.6: cannot open shared object file' in p.stderr


def test_sysroot_must_be_a_directory(tmp_path):
    p = faultlab('run', '--sysroot', str(tmp_path / 'none'), '/bin/true')
    assert p.returncode == 2 and p.stderr.decode().count('\n') == 1 and 'not a directory' in p.stderr.decode()


def _bad_interpreters(tmp_path):
    """Programs whose interpreter is missing, a text file (not ELF: ELIBBAD) and a dynamic hello."""
    missing = gcc(tmp_path, 'nointerp', HELLO, '-Wl,--dynamic-linker=' + str(tmp_path / 'no-such-ld.so'))
    text = tmp_path / 'text-ld.so'
    text.write_text('this is not an ELF interpreter, but it is long enough for an ELF header: ' * 2)
    text.chmod(0o755)
    notelf = gcc(tmp_path, 'textinterp', HELLO, '-Wl,--dynamic-linker=' + str(text))
    return missing, notelf, gcc(tmp_path, 'hello', HELLO)


def test_bad_interpreters_are_one_line_errors(tmp_path):
    missing, notelf, _ = _bad_interpreters(tmp_path)
    visible = '--mount=%s:%s' % (tmp_path, tmp_path)
    p = faultlab('run', visible, missing)
    err = p.stderr.decode()
    assert p.returncode == 127 and err.count('\n') == 1 and 'interpreter' in err and 'No such file' in err, err
    p = faultlab('run', visible, notelf)
    err = p.stderr.decode()
    assert p.returncode == 126 and err.count('\n') == 1 and 'bad ELF interpreter' in err, err
    assert 'Traceback' not in err


def test_execve_of_dynamic_programs_from_a_guest_matches_native(tmp_path):
    """A dynamically linked program forks and execs a dynamic hello (fine), programs with a missing
    interpreter (ENOENT) and a non-ELF one (ELIBBAD), and /bin/true: as natively."""
    missing, notelf, hello = _bad_interpreters(tmp_path)
    dynexec = gcc(tmp_path, 'dynexec', DYNEXEC)
    r = same_as_native(dynexec, [hello, missing, notelf, '/bin/true'],
                       mounts=[(str(tmp_path), str(tmp_path), True), ('/bin/true', '/bin/true', True)])
    out = r.stdout.decode()
    assert 'nointerp: execve failed: errno 2' in out and 'textinterp: execve failed: errno %d' % ELIBBAD in out
    assert 'hello: exit status 0' in out and 'argv[1]=from-dynexec' in out


def test_stats_and_profile_see_the_shared_objects(tmp_path):
    """faultlab stat counts the loader's faults; faultlab profile names functions of libc and ld.so."""
    prog = gcc(tmp_path, 'hello', HELLO)
    p = faultlab('stat', '-x', ',', prog)
    assert p.returncode == 0 and p.stdout.startswith(b'hello, world\n')
    events = {l.split(',')[2]: int(l.split(',')[0]) for l in p.stderr.decode().splitlines()
              if l.count(',') >= 2 and l.split(',')[0].isdigit()}
    assert events.get('major-faults', 0) > 0 and events.get('page-faults', 0) > 50, p.stderr
    folded = tmp_path / 'out.folded'
    p = faultlab('profile', '--folded', str(folded), prog)
    assert p.returncode == 0, p.stderr
    table = p.stderr.decode() + p.stdout.decode()
    assert re.search(r'\b_dl_\w+|\b__libc_start_main\b|\bprintf\b|\b_IO_\w+', table), table[-2000:]
    assert any('__libc_start_main' in l or 'printf' in l for l in folded.read_text().splitlines())


def test_trace_shows_the_loader_faults(tmp_path):
    prog = gcc(tmp_path, 'hello', HELLO)
    trace = tmp_path / 'trace.json'
    p = faultlab('run', '--trace', str(trace), prog)
    assert p.returncode == 0, p.stderr
    events = json.loads(trace.read_text())
    events = events['traceEvents'] if isinstance(events, dict) else events
    faults = [e for e in events if 'fault' in str(e.get('name', '')).lower()]
    assert len(faults) > 50


@pytest.mark.skipif(GDB is None, reason='gdb is not installed')
def test_gdb_breaks_in_libc_and_backtraces_through_it(tmp_path):
    """gdb learns the shared libraries from qXfer:libraries-svr4 (the loader's link_map list):
    a breakpoint on libc's puts is hit, bt goes through libc into the program, finish returns."""
    prog = _gdbdyn(tmp_path)
    out, rc, stdout, _stderr = gdb_session(tmp_path, prog, ['break puts', 'continue', 'bt', 'info sharedlibrary',
                                                            'finish', 'continue'])
    assert re.search(r'Breakpoint 1, .*puts', out), out
    bt = [l for l in out.splitlines() if l.startswith('#')]
    assert 'puts' in bt[0] and ' work ' in bt[1] and ' main ' in bt[2], bt
    assert re.search(r'0x0*7fff[0-9a-f]+\s+0x0*7fff[0-9a-f]+\s+Yes\s+(?:target:)?/lib/x86_64-linux-gnu/libc\.so\.6', out), out
    assert 'Value returned is $1 = 10' in out and 'exited normally' in out, out
    assert rc == 0 and stdout == 'from libc\n'


def _gdbdyn(tmp_path):
    """A dynamically linked program calling puts from work (built with -O0 for exact frames)."""
    src = tmp_path / 'gdbdyn.c'
    src.write_text('#include <stdio.h>\n#include <string.h>\n'
                   'int work(const char *s) { return (int)strlen(s) + puts(s); }\n'
                   'int main(void) { return work("from libc") == 19 ? 0 : 1; }\n')
    return gcc(tmp_path, 'gdbdyn', src, '-O0')


def test_stub_lists_the_loaders_link_map(tmp_path):
    """qXfer:libraries-svr4:read: empty before ld.so ran; at main, ld.so and libc with their link_map,
    l_addr (an ELF header there) and l_ld, and the program's link_map as main-lm."""
    prog = _gdbdyn(tmp_path)
    main = 0x555555554000 + symbols(prog)['main']            # the PIE at ELF_ET_DYN_BASE
    stub = Stub(tmp_path, prog)
    try:
        c = Client(stub.port)
        assert 'qXfer:libraries-svr4:read+' in c.ask('qSupported:multiprocess+;swbreak+')
        assert c.ask('qXfer:libraries-svr4:read::0,fff') == 'l<library-list-svr4 version="1.0"/>'
        assert c.ask('Z0,%x,1' % main) == 'OK' and c.ask('c').startswith('T05')
        reply = c.ask('qXfer:libraries-svr4:read::0,fff')
        assert reply.startswith('l'), reply
        doc = ET.fromstring(reply[1:])
        libs = {os.path.basename(e.get('name')): e for e in doc.findall('library')}
        assert {'libc.so.6', 'ld-linux-x86-64.so.2'} <= set(libs) and int(doc.get('main-lm'), 16)
        for lib in libs.values():
            if lib.get('name').startswith('/'):
                l_addr = int(lib.get('l_addr'), 16)
                assert l_addr % 4096 == 0 and c.ask('m%x,4' % l_addr) == '7f454c46', lib.attrib
                assert int(lib.get('l_ld'), 16) > l_addr
        assert c.ask('qXfer:libraries-svr4:read::10,8') == 'm' + reply[1 + 0x10:1 + 0x18]
        c.send('k')
    finally:
        stub.kill()


def test_library_view_is_read_only_and_shows_nothing_else():
    """The host's library directories (and the name-service and time-zone files) are visible
    read-only (EROFS), the rest of the host is not."""
    if not os.path.islink('/lib'):
        pytest.skip('this host has no /lib -> usr/lib symlink')
    code = ('import os\n'
            'try:\n    open("/usr/lib/faultlab-probe", "w")\nexcept OSError as e:\n    print("write", e.errno)\n'
            'print("shadow", os.path.exists("/etc/shadow"), "ld.so.cache", os.path.exists("/etc/ld.so.cache"))\n'
            'print("lib", os.readlink("/lib"), sorted(os.listdir("/usr")), os.listdir("/usr/share"))\n')
    p = faultlab('run', '/usr/bin/python3', '-c', code)
    lines = p.stdout.decode().splitlines()
    assert p.returncode == 0 and lines[0] == 'write 30', p.stderr           # EROFS
    assert lines[1] == 'shadow False ld.so.cache %s' % os.path.exists('/etc/ld.so.cache')
    assert lines[2] == 'lib %s %s %s' % (os.readlink('/lib'), sorted(n for n in ('bin', 'lib', 'lib64', 'share')
                                                                      if os.path.exists('/usr/' + n)),
                                         ['zoneinfo'] if os.path.isdir('/usr/share/zoneinfo') else [])
