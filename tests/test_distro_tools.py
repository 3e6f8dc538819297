"""Distribution programs (dynamically linked, from the host's Debian packages) under faultlab: each case
runs the same command line natively and in the guest, on the same files, and compares stdout, stderr
and the exit status. The guest sees the data directory at its host path (read-only), the host's
/usr/bin (so `sh -c` pipelines find the other tools) and the default library view (with /etc/passwd,
/etc/group and the time zone files); each writes only below a /tmp directory of its own (the guest's
/tmp is its tmpfs). A case whose program is not installed is skipped.

Where the output depends on the kernel rather than the program (uname's names, df's filesystem names,
stat's device and inode numbers), the case says what Linux would print for faultlab's configuration."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, run_guest

FIXED_MTIME = 1583298367            # 2020-03-04 05:06:07 UTC: older than six months in both clocks
TEXT = ''.join('%s %d %s\n' % (w, (i * 37) % 11, w[::-1]) for i, w in
               enumerate('alpha beta gamma delta alpha epsilon zeta beta eta theta alpha iota'.split()))
ENV = ['TZ=UTC', 'HOME=/root']             # and PATH=/bin, LANG=C, as run_guest gives every guest


def _write(path, data, mtime=FIXED_MTIME):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.utime(path, (mtime, mtime))


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """The input tree: text files, a nested directory, a 3 KiB file and a binary one, fixed mtimes."""
    d = str(tmp_path_factory.mktemp('distro'))
    _write(d + '/words.txt', TEXT)
    _write(d + '/nums.txt', ''.join('%d\n' % ((i * 7919) % 101) for i in range(40)))
    _write(d + '/table.csv', 'name:uid:shell\nroot:0:/bin/sh\nbin:2:/usr/sbin/nologin\nsync:4:/bin/sync\n')
    _write(d + '/tree/a.txt', 'first line\nneedle here\nlast line\n')
    _write(d + '/tree/b.c', 'int main(void) { return 0; }  /* needle */\n')
    _write(d + '/tree/sub/deep.txt', 'deep needle\n' * 300)
    _write(d + '/tree/sub/blob.bin', bytes(range(256)) * 8)
    _write(d + '/tree/sub/empty', b'')
    for sub in ('/tree/sub', '/tree', ''):
        os.utime(d + sub, (FIXED_MTIME, FIXED_MTIME))
    return d


def _tool(name):
    return shutil.which(name, path='/usr/bin:/bin')


def run_both(argv, data_dir, env=()):
    """(native, guest) as (status, stdout, stderr) for argv[0] (a tool name) with argv[1:]."""
    program = _tool(argv[0])
    env = ENV + list(env)
    p = subprocess.run(argv, executable=program, capture_output=True, timeout=60,
                       env=dict(kv.split('=', 1) for kv in ['PATH=/bin', 'LANG=C'] + env), cwd='/')
    r = run_guest(program, argv[1:], env=env, ram=256 << 20, mounts=MOUNTS + [(data_dir, data_dir, True)])
    assert r.result.report is None, r.result.report
    assert not [w for w in r.warnings if 'system call' in w], r.warnings
    return (p.returncode, p.stdout, p.stderr), (r.exit_code, r.stdout, r.stderr)


# the host's programs at /usr/bin and, as Debian's /bin -> usr/bin symlink shows them, at /bin
MOUNTS = [('/usr/bin', '/usr/bin', True), ('/usr/bin', '/bin', True)]


def sh(script):
    return ['sh', '-c', script]


# (id, argv with {d} for the data directory and {t} for a private /tmp directory)
CASES = [
    ('ls-l', ['ls', '-l', '{d}/tree']),
    ('ls-la', ['ls', '-la', '--time-style=long-iso', '{d}/tree/sub']),
    ('ls-lR', ['ls', '-lR', '{d}/tree']),
    ('ls-missing', ['ls', '-l', '{d}/nope']),
    ('cat', ['cat', '{d}/words.txt', '{d}/tree/a.txt']),
    ('cat-stdin', sh('cat < {d}/table.csv | cat -n')),
    ('head', ['head', '-n', '3', '{d}/words.txt']),
    ('head-c', ['head', '-c', '17', '{d}/tree/sub/deep.txt']),
    ('tail', ['tail', '-n', '2', '{d}/nums.txt']),
    ('tail-c', ['tail', '-c', '+3000', '{d}/tree/sub/deep.txt']),
    ('wc', ['wc', '{d}/words.txt', '{d}/nums.txt', '{d}/tree/sub/deep.txt']),
    ('sort', ['sort', '{d}/words.txt']),
    ('sort-nru', ['sort', '-n', '-r', '-u', '{d}/nums.txt']),
    ('sort-k', ['sort', '-t', ' ', '-k2,2n', '-k1,1', '{d}/words.txt']),
    ('uniq', sh('cut -d" " -f1 {d}/words.txt | sort | uniq -c')),
    ('cut', ['cut', '-d:', '-f1,3', '{d}/table.csv']),
    ('tr', sh('tr a-z A-Z < {d}/words.txt | tr -d 0-9 | tr -s " "')),
    ('grep-r', sh('grep -rn needle {d}/tree --include="*.txt" --include="*.c" | sort -t: -k1,1 -k2,2n')),
    ('grep-c', ['grep', '-c', 'needle', '{d}/tree/a.txt', '{d}/tree/sub/deep.txt']),
    ('grep-none', ['grep', 'absent', '{d}/words.txt']),
    ('sed', ['sed', '-n', '-e', '2,4p', '-e', 's/alpha/ALPHA/gp', '{d}/words.txt']),
    ('sed-i', sh('mkdir -p {t} && cp {d}/words.txt {t}/w && sed -i "s/a/4/g" {t}/w && cat {t}/w; rm -r {t}')),
    ('awk', ['awk', '{ s += $2; n[$1]++ } END { print s, length(n); for (k in n) c += n[k]; print c }',
             '{d}/words.txt']),
    ('mawk', ['mawk', '-F:', 'NR > 1 { printf "%-6s %3d\\n", $1, $2 * 3 }', '{d}/table.csv']),
    ('gawk', ['gawk', 'BEGIN { printf "%.3f\\n", atan2(0, -1) } { print toupper($3) }', '{d}/words.txt']),
    ('find-name', sh('find {d}/tree -name "*.txt" | sort')),
    ('find-type', sh('find {d}/tree -type d | sort; find {d}/tree -type f -empty')),
    ('find-size', sh('find {d}/tree -size +1k | sort')),
    ('xargs', sh('find {d}/tree -type f -name "*.txt" | sort | xargs wc -l')),
    ('xargs-n', sh('seq 1 7 | xargs -n 3 echo')),
    ('md5sum', ['md5sum', '{d}/words.txt', '{d}/tree/sub/blob.bin']),
    ('sha256sum', ['sha256sum', '{d}/tree/sub/deep.txt', '{d}/tree/sub/empty']),
    ('md5sum-check', sh('cd {d} && md5sum words.txt nums.txt > /tmp/sums.$$ && md5sum -c /tmp/sums.$$;'
                        ' rm /tmp/sums.$$')),
    ('tar', sh('mkdir -p {t}/out && tar cf {t}/a.tar -C {d} tree && tar tvf {t}/a.tar | sort -k6'
               ' && tar xf {t}/a.tar -C {t}/out && diff -r {d}/tree {t}/out/tree && echo same; rm -r {t}')),
    ('gzip', sh('mkdir -p {t} && gzip -9 -n -c {d}/tree/sub/deep.txt > {t}/d.gz && md5sum < {t}/d.gz'
                ' && gunzip -c {t}/d.gz | md5sum && gzip -l {t}/d.gz; rm -r {t}')),
    ('gzip-bad', sh('mkdir -p {t} && echo notgzip > {t}/x.gz && gunzip {t}/x.gz; echo status $?; rm -r {t}')),
    ('cp-mv-rm', sh('mkdir -p {t}/a/b && cp {d}/words.txt {t}/a/w && cp -r {d}/tree {t}/a/b/ && '
                    'mv {t}/a/w {t}/a/b/moved && rm {t}/a/b/tree/b.c && mkdir {t}/a/c && rmdir {t}/a/c && '
                    'cd {t} && ls -R a | sed "s/^/> /" && cmp a/b/moved {d}/words.txt && echo ok; '
                    'rm -rf {t}; ls {t}')),
    ('date', ['date', '-d', '@0']),
    ('date-fmt', ['date', '-u', '-d', '2020-02-29 12:34:56', '+%s %A %j %F %T %Z']),
    ('env', ['env', '-i', 'A=1', 'B=two', 'env']),
    ('env-u', sh('env -u HOME | sort')),
    ('id', ['id']),
    ('id-name', sh('id -un; id -gn; id -G')),
    ('stat-c', ['stat', '-c', '%n %s %b %a %A %U %G %F %h %Y %y', '{d}/words.txt', '{d}/tree/sub']),
    ('stat-new', sh('f={t}; : > $f; stat -c "%F %s %h %a %U %G" $f; test "$(stat -c %W $f)" -gt 0 &&'
                    ' echo has a birth time; rm $f; stat $f')),
    ('du', sh('du -a {d}/tree | sort -k2')),
    ('du-sh', ['du', '-sh', '{d}/tree/sub']),
    ('seq', ['seq', '-w', '1', '3', '20']),
    ('seq-f', ['seq', '-f', '%.2f', '0.5', '0.25', '1.5']),
    ('printf', ['printf', '%05.2f|%x|%-4s|%c|%b\\n', '3.14159', '255', 'ab', 'xyz', 'tab\\there']),
    ('expr', sh('expr 3 \\* 7 + 1; expr length abcdef; expr abc : "a\\(.\\)"; expr 0; echo status $?')),
    ('test', sh('test -f {d}/words.txt; echo $?; test -d {d}/words.txt; echo $?; '
                '[ -s {d}/tree/sub/empty ]; echo $?; /usr/bin/test 3 -lt 4; echo $?')),
    ('sh-pipeline', sh('cat {d}/words.txt | cut -d" " -f1 | sort | uniq -c | sort -k1,1nr -k2 | head -3')),
    ('sh-fork-exec', sh('for f in {d}/tree/a.txt {d}/tree/b.c; do wc -c < $f; done; '
                        '(ls {d}/tree | wc -l) && x=$(basename {d}/tree/a.txt .txt) && echo $x; '
                        'false || echo "false: $?"; exit 3')),
    ('sh-error', sh('nosuchcommand; cat {d}/missing; echo $?')),
    ('proc-fd', sh('exec 3<{d}/words.txt 4>{t}; readlink /proc/self/fd/3 /proc/self/fd/4; rm {t}; '
                   'readlink /proc/self/fd/4; echo to-stderr > /dev/stderr; echo to-stdout > /dev/stdout; '
                   'head -c 5 /dev/stdin < {d}/words.txt; echo; wc -l < /proc/self/fd/3; echo x >&4; '
                   'ls -l /proc/self/fd/ | cut -c1-10 | sort | uniq -c; ls /dev/fd/3 /dev/fd/4')),
    ('python3', ['python3', '-c', 'PYPROG']),
    ('perl', ['perl', '-e', 'my %h; $h{$_}++ for split //, "mississippi"; '
                            'print join(",", map { "$_=$h{$_}" } sort keys %h), "\\n"; '
                            'printf "%.4f %s\\n", sqrt(2), scalar reverse "abc"; exit 5']),
]

PYPROG = r'''
import mmap, os, subprocess, sys, threading
d = sys.argv[1]
print(sorted(os.listdir(d + '/tree')), os.stat(d + '/words.txt').st_size, os.path.getmtime(d + '/tree'))
out = subprocess.run(['sort', '-n', d + '/nums.txt'], capture_output=True, text=True)
print(out.returncode, out.stdout.split()[:5], subprocess.call(['false']))
res = []
ts = [threading.Thread(target=lambda i=i: res.append(sum(range(i * 1000)))) for i in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
print(sorted(res))
with open(d + '/tree/sub/deep.txt', 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    print(len(m), m[:11], m.find(b'needle', 1000))
m = mmap.mmap(-1, 8192)
m[4096:4100] = b'abcd'
print(m[4094:4102])
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.write(w, b'from the child')
    os._exit(7)
os.close(w)
print(os.read(r, 100), os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(os.getcwd(), os.getuid(), os.environ['TZ'])
'''


def _argv(argv, data_dir, private):
    out = [a.replace('{d}', data_dir).replace('{t}', private) for a in argv]
    if out[:2] == ['python3', '-c']:
        out = ['python3', '-c', PYPROG, data_dir]
    return out


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_tool_matches_native(case, data):
    name, argv = case
    for tool in [argv[0]] + (['awk', 'sort', 'gzip', 'tar', 'seq', 'xargs'] if argv[0] == 'sh' else []):
        if _tool(tool) is None:
            pytest.skip('%s is not installed' % tool)
    argv = _argv(argv, data, '/tmp/faultlab-distro-%s-%d' % (name, os.getpid()))
    native, guest = run_both(argv, data)
    assert guest == native


def test_stdin_through_the_cli(data):
    """`faultlab run` hands its own standard input to the guest (sort reads it, cat -A shows it)."""
    text = open(data + '/words.txt', 'rb').read()
    for argv in (['sort', '-k2,2n', '-s'], ['cat', '-A', '-', data + '/tree/a.txt']):
        native = subprocess.run(argv, executable=_tool(argv[0]), input=text, capture_output=True, cwd='/')
        p = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'run', '--mount', '%s:%s' % (data, data),
                            _tool(argv[0])] + argv[1:], input=text, capture_output=True, cwd=ROOT, timeout=120)
        assert (p.returncode, p.stdout) == (native.returncode, native.stdout), p.stderr


def _guest_out(argv, data_dir):
    r = run_guest(_tool(argv[0]), argv[1:], env=ENV, mounts=MOUNTS + [(data_dir, data_dir, True)])
    assert r.exit_code == 0, r.stderr
    return r.stdout.decode()


def test_uname_prints_our_kernel():
    """uname -a names faultlab's kernel: the native line with each of the host's utsname fields
    replaced by the one the guest's uname(2) gives (each printed alone by uname -s/-n/-r/-v/-m), and
    the node name is /etc/hostname's."""
    native = subprocess.run(['uname', '-a'], capture_output=True, text=True).stdout
    host = os.uname()
    fields = [_guest_out(['uname', opt], '/tmp').strip() for opt in ('-s', '-n', '-r', '-v', '-m')]
    expected = native
    for old, new in zip((host.sysname, host.nodename, host.release, host.version, host.machine), fields):
        expected = expected.replace(old, new, 1)
    assert _guest_out(['uname', '-a'], '/tmp') == expected
    assert fields[1] == 'faultlab' and fields[0] == 'Linux' and fields[4] == 'x86_64'


def test_df_shows_the_9p_mount_with_the_host_numbers(data):
    """df of a mounted host directory: the mount (source hostfs, type 9p, at its guest path) with the
    host filesystem's size and inode count, which statfs passes through (the used and free counts
    move with the host's other activity, so they are not compared)."""
    native = subprocess.run(['df', '--output=size,itotal', data], capture_output=True, text=True).stdout
    size, itotal = native.splitlines()[1].split()
    guest = _guest_out(['df', '--output=source,fstype,size,itotal,target', data], data).splitlines()
    assert guest[1].split() == ['hostfs', '9p', size, itotal, data]
    tmp = _guest_out(['df', '--output=source,fstype,target', '/tmp', '/'], data).splitlines()[1:]
    assert [l.split() for l in tmp] == [['tmpfs', 'tmpfs', '/tmp'], ['/dev/nvme0n1p1', 'ext4', '/']]


def test_stat_of_a_mounted_file(data):
    """stat(1) of a host file: every line as natively except the device and inode numbers (the
    guest's 9p mount has its own anonymous device and inode numbers) and the birth time, which
    Linux's 9p client does not report ('-')."""
    path = data + '/words.txt'
    native = subprocess.run(['stat', path], capture_output=True, text=True, env={'TZ': 'UTC'}).stdout.splitlines()
    guest = _guest_out(['stat', path], data).splitlines()
    assert len(guest) == len(native) == 8
    for g, n in zip(guest, native):
        if n.startswith('Device:'):
            assert re.fullmatch(r'Device: 0,\d+\tInode: \d+ +Links: 1', g), g
        elif n.startswith(' Birth:'):
            assert g == ' Birth: -'
        else:
            assert g == n
