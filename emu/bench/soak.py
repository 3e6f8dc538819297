"""Option-combination soak: every userland program under random combinations of the run options.

Each program first runs with the default options; then every soak run picks a random combination of
--cpus 1-8, --spf/--no-spf/--spf-file, --no-native-faults, --stats-json, --trace, --check, small and large
--ram/--swap, --fault-around-bytes and --platform, and a random layout: the program's file name length and
whether it is run by a relative or an absolute path, the size of the host environment (it moves the host
heap) and of the guest environment, and a build of the program at -O0/-O1/-O2 or as a static PIE. A run
passes when it ends with the same guest output and exit status as the default run, or, with a RAM smaller
than the program needs, with the kernel's out-of-memory kill (SIGKILL and its report); it fails on a host
signal (the emulator itself crashed), an internal error, a traceback, a time-out or any other difference.

    faultlab bench soak --count N --seed S [--quick]

Programs run in a scratch directory each; the builds at other optimisation levels are cached under
$XDG_CACHE_HOME/faultlab/soak (or ~/.cache). Exit status 1 when any run failed.
"""
import concurrent.futures
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from faultlab.srctree import SOURCE_ROOT, cli_command, userland_build

ROOT = SOURCE_ROOT
USERLAND = os.path.join(ROOT, 'userland')
BUILD = userland_build()
DATA = os.path.join(BUILD, 'data')
RUN_TIMEOUT = 180              # host seconds one guest run may take before it counts as a hang
OOM_MARK = b'out of memory: killed'
SIGKILL_STATUS = 128 + 9


@dataclass(frozen=True)
class Program:
    """A userland program, its arguments and what the soak may vary for it."""
    name: str
    args: tuple = ()
    mounts: tuple = ()                # (host, guest) pairs, read-write
    prints_env: bool = False          # its output shows argv[0] and the environment: keep them fixed
    needs_swap: bool = False          # it pages memory out and checks it came back from swap
    shows_residency: bool = False     # it prints which pages are mapped: fault-around and RAM stay default
    output: str = 'exact'             # 'exact', or 'status' for programs that print simulated rates


def programs():
    """The programs the soak runs, with arguments whose output does not depend on the options."""
    return [
        Program('hello', ('a', 'b c'), prints_env=True),
        Program('compute'),
        Program('pagetouch', ('4',)),
        Program('pagetouch', ('4', 'r')),
        Program('stackgrow'),
        Program('mmtest', ('/tmp',)),
        Program('fileio', ('/tmp',)),
        Program('codereuse', ('/tmp',)),
        Program('filemap', ('/data/big.bin',), ((DATA, '/data'),)),
        Program('readahead', ('/data/big.bin',), ((DATA, '/data'),)),
        Program('forktest'),
        Program('pipes'),
        Program('sigchld'),
        Program('signals'),
        Program('altstack'),
        Program('populate_test', needs_swap=True),
        Program('prefetch_test'),
        Program('unixsock'),
        Program('epolltest'),
        Program('mmsys'),
        Program('cowpin', needs_swap=True),
        Program('pmscan', shows_residency=True),
        Program('uffdtest'),
        Program('procmem'),
        Program('mremapdontunmap'),
        Program('siginfo'),
        Program('sigwait'),
        Program('polltest'),
        Program('statxcheck'),
        Program('pf23', ('private', '2', '5', '512'), output='status'),
        Program('pf23', ('shared', '2', '5', '512'), output='status'),
    ]


@dataclass
class Variant:
    """One random combination of options and layout."""
    options: list = field(default_factory=list)
    name_len: int = 0
    absolute: bool = False
    host_pad: int = 0
    guest_pad: int = 0
    build: str = 'default'            # default | O0 | O1 | O2 | static-pie
    small_ram: bool = False

    def describe(self):
        return ' '.join(self.options + ['[name %d%s, host env +%d, guest env +%d, build %s]'
                                         % (self.name_len, ' abs' if self.absolute else '', self.host_pad,
                                            self.guest_pad, self.build)])


def random_variant(rng, prog):
    """Draw one combination of options and layout for prog."""
    o = ['--cpus', str(rng.randint(1, 8))]
    o += [rng.choice(['--spf', '--no-spf', '--spf-file'])]
    if rng.random() < 0.4:
        o.append('--no-native-faults')
    if rng.random() < 0.5:
        o += ['--stats-json', '{tmp}/stats.json']
    if rng.random() < 0.3:
        o += ['--trace', '{tmp}/trace.json']
    if rng.random() < 0.3:
        o.append('--check')
    ram = rng.choice(['256M', '1G'] if prog.shows_residency else ['24M', '64M', '256M', '1G'])
    o += ['--ram', ram, '--swap', rng.choice(['16M', '256M', '1G'] if prog.needs_swap else ['0', '16M', '256M', '1G'])]
    o += ['--fault-around-bytes', '65536' if prog.shows_residency else
          rng.choice(['4096', '16384', '65536', '1048576'])]
    o += ['--platform', rng.choice(['bare-metal', 'vm'])]
    return Variant(options=o, name_len=0 if prog.prints_env else rng.randint(1, 64),
                   absolute=not prog.prints_env and rng.random() < 0.5,
                   host_pad=rng.choice([0, rng.randint(1, 256), rng.randint(256, 32768)]),
                   guest_pad=0 if prog.prints_env else rng.choice([0, rng.randint(1, 8192)]),
                   build=rng.choice(['default', 'default', 'O0', 'O1', 'O2', 'static-pie']),
                   small_ram=ram == '24M')


def cache_dir():
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'faultlab', 'soak')


def build_variant(name, build):
    """The program's binary for a build variant (compiled once, cached by source content)."""
    if build == 'default':
        return os.path.join(BUILD, name)
    src = os.path.join(USERLAND, 'src', name + '.c')
    with open(src, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    out = os.path.join(cache_dir(), '%s-%s-%s' % (name, build, digest))
    if not os.path.exists(out):
        os.makedirs(cache_dir(), exist_ok=True)
        flags = ['-fPIE', '-static-pie', '-O2'] if build == 'static-pie' else ['-static', '-' + build]
        tmp = out + '.%d.tmp' % os.getpid()
        subprocess.run(['gcc', '-std=gnu11', '-g', '-w'] + flags + ['-o', tmp, src, '-pthread'],
                       check=True, capture_output=True)
        os.replace(tmp, out)
    return out


@dataclass
class Outcome:
    status: int
    stdout: bytes
    stderr: bytes
    seconds: float
    timed_out: bool = False


def faultlab_command():
    """The CLI of this very source tree."""
    return cli_command(ROOT)


def run_one(prog, variant=None):
    """Run prog (with variant's options and layout, or the defaults) in a scratch directory."""
    variant = variant or Variant()
    with tempfile.TemporaryDirectory(prefix='faultlab-soak-') as tmp:
        binary = build_variant(prog.name, variant.build)
        shown = (prog.name + 'x' * 64)[:max(variant.name_len, len(prog.name))] if variant.name_len else prog.name
        local = os.path.join(tmp, shown)
        shutil.copyfile(binary, local)
        os.chmod(local, 0o755)
        cmd = faultlab_command() + ['run'] + [o.format(tmp=tmp) for o in variant.options]
        for host, guest in prog.mounts:
            cmd += ['--mount', '%s:%s:rw' % (host, guest)]
        if variant.guest_pad:
            cmd += ['--env', 'SOAK_PAD=' + 'g' * variant.guest_pad]
        cmd += [local if variant.absolute else './' + shown] + list(prog.args)
        env = dict(os.environ)
        env.pop('FAULTLAB_CHECK', None)
        if variant.host_pad:
            env['FAULTLAB_SOAK_PAD'] = 'h' * variant.host_pad
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, timeout=RUN_TIMEOUT,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            return Outcome(None, e.stdout or b'', e.stderr or b'', time.monotonic() - t0, timed_out=True)
        return Outcome(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


def normalise(prog, out):
    """What must match between runs: the exact output, or for rate printers its shape."""
    if prog.output == 'exact':
        return out
    return re.sub(rb'[0-9]+', b'N', out)


def judge(prog, base, got, variant):
    """None when the run is as good as the default one, else a one-line reason."""
    if got.timed_out:
        return 'no end within %d s' % RUN_TIMEOUT
    if got.status < 0:
        return 'the emulator died of host signal %d' % -got.status
    if b'Traceback' in got.stderr or b'internal error' in got.stderr or b'KernelOops' in got.stderr:
        line = [ln for ln in got.stderr.splitlines() if b'error' in ln or b'Oops' in ln or b'Error' in ln]
        return 'internal error: %s' % (line[-1] if line else got.stderr[-200:]).decode(errors='replace')
    if variant.small_ram and got.status == SIGKILL_STATUS and OOM_MARK in got.stderr:
        return None                     # documented: the OOM killer with a RAM below the program's need
    if got.status != base.status:
        tail = got.stderr.strip().splitlines()[-1:] or [b'']
        return 'exit status %s, default run %s (%s)' % (got.status, base.status,
                                                       tail[0].decode(errors='replace')[:160])
    want, have = normalise(prog, base.stdout).splitlines(), normalise(prog, got.stdout).splitlines()
    if want != have:
        i = next((i for i, (a, b) in enumerate(zip(want, have)) if a != b), min(len(want), len(have)))
        line = lambda lines: lines[i].decode(errors='replace')[:100] if i < len(lines) else '(end of output)'
        return 'output differs from the default run at line %d: %r, default %r' % (i + 1, line(have), line(want))
    return None


def soak(count, seed, progs=None, jobs=2, out=sys.stdout):
    """Run count random combinations; returns (runs, failures [(prog, variant, reason)])."""
    progs = progs or programs()
    progs = [p for p in progs if os.path.exists(os.path.join(BUILD, p.name))]
    rng = random.Random(seed)
    plan = []
    for i in range(count):
        prog = progs[i % len(progs)] if i < len(progs) else rng.choice(progs)
        plan.append((prog, random_variant(rng, prog)))
    for prog, variant in plan:               # compile the build variants before the pool starts
        build_variant(prog.name, variant.build)
    distinct = list(dict.fromkeys(p for p, _ in plan))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        bases = dict(zip(distinct, pool.map(run_one, distinct)))
        failures = []
        for prog, base in bases.items():          # a broken default run makes every comparison moot
            reason = judge(prog, base, base, Variant())
            if reason or base.status != 0:
                print('FAIL %s %s: the default run: %s' % (prog.name, ' '.join(prog.args),
                                                           reason or 'exit status %s' % base.status),
                      file=out, flush=True)
                failures.extend((prog, v, 'default run failed') for q, v in plan if q == prog)
        plan = [(p, v) for p, v in plan if not any(q == p for q, _v, _r in failures)]
        results = pool.map(lambda pv: (pv, run_one(*pv)), plan)
        for n, ((prog, variant), got) in enumerate(results, 1):
            reason = judge(prog, bases[prog], got, variant)
            if reason:
                failures.append((prog, variant, reason))
                print('FAIL %s %s: %s\n     %s' % (prog.name, ' '.join(prog.args), reason, variant.describe()),
                      file=out, flush=True)
            if n % 50 == 0:
                print('soak: %d/%d runs, %d failed' % (n, count, len(failures)), file=out, flush=True)
    return count, failures


def main(count=200, seed=1, quick=False):
    """`faultlab bench soak`: print the counts and every failure; exit 1 when anything failed."""
    if quick:
        count = min(count, 12)
    t0 = time.monotonic()
    runs, failures = soak(count, seed)
    per_prog = {}
    for prog, _v, _r in failures:
        per_prog[prog.name] = per_prog.get(prog.name, 0) + 1
    print('soak: seed %d, %d runs of %d programs in %.0f s: %d failed%s'
          % (seed, runs, len(programs()), time.monotonic() - t0, len(failures),
             (' (%s)' % ', '.join('%s %d' % kv for kv in sorted(per_prog.items()))) if per_prog else ''))
    print('%d passed, %d failed' % (runs - len(failures), len(failures)))
    return 1 if failures else 0
