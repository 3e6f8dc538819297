"""The speed goals of faultlab, each measured in one run of `faultlab bench speed` and judged met or not.

1. ebizzy -mTRp (userland/ebizzy, 2 threads per CPU, one page per record) on 16 simulated CPUs: simulated
   seconds per host CPU second >= 1/30 (1 s simulated in at most 30 s), exact instruction counting.
2. `faultlab bench populate --size 4096M` (every MAP_PRIVATE and MAP_SHARED row) in under 10 minutes of host
   time (a child process, stopped at 110% of the goal; not run with --quick).
3. swaptouch 2 x RAM MiB, touched twice: host CPU per swap-out + swap-in pair <= 10 us; with the breakdown
   beside it (the same run with RAM enough not to swap, and the host's own file I/O per pair).
4. (from the compute and pagetouch table above) a minor anonymous fault no slower than QEMU user mode's
   page touch, and compute at >= 0.5x QEMU user mode's instructions per second; skipped without QEMU.
5. start-up: host CPU time of `faultlab run hello` (static hello, exec to exit, as a shell starts it)
   < 0.3 s; Python's own start-up, the native run, QEMU and Qiling beside it.
6. host memory: peak RSS of `faultlab run --ram 256M --swap 10G swaptouch N 1` (N MiB >> RAM; most of it
   goes to swap, in the disk's host file) < 1 GiB; a hello run with the same options and QEMU's run of
   the same program beside it.

Host times are CPU seconds (user + system) of the process doing the work; the best of the repetitions
counts where there are several.
"""
import os
import subprocess
import sys
import tempfile
import time

from faultlab.bench.spf import EBIZZY_CHUNK, EBIZZY_THREADS_PER_CPU
from faultlab.kernel.kernel import KernelConfig
from faultlab.machine import Machine
from faultlab.srctree import userland_build

BUILD = userland_build()
PAGE = 4096
EBIZZY_CPUS = 16
EBIZZY_RATIO = 1 / 30
POPULATE_LIMIT_S = 600
SWAP_PAIR_US = 10.0
STARTUP_S = 0.3
RSS_LIMIT_KIB = 1 << 20


class Sizes:
    """What each goal runs: the goals' own sizes, or small ones for --quick."""

    def __init__(self, quick):
        self.quick = quick
        self.ebizzy_ms = 20 if quick else 1000
        self.swap_ram_mib = 16 if quick else 128
        self.mem_ram, self.mem_mib = ('32M', 96) if quick else ('256M', 1536)
        self.reps = 2 if quick else 3


# A small process that starts the command and reports the command's own rusage (wait4): a child forked
# from this process would report at least this process's peak RSS (Linux carries the forking mm's high
# water mark into the child's ru_maxrss), so the command is a grandchild.
RUSAGE_PROBE = ('import os, sys\n'
                'pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)\n'
                '_pid, status, ru = os.wait4(pid, 0)\n'
                'sys.stderr.write("%d %d %.6f\\n" % (os.waitstatus_to_exitcode(status), ru.ru_maxrss,\n'
                '                                     ru.ru_utime + ru.ru_stime))\n')


def run_child(cmd, timeout=None):
    """(status or None after a timeout, stdout, host CPU seconds, peak RSS in KiB) of one command, from
    wait4's rusage of that command alone (see RUSAGE_PROBE)."""
    p = subprocess.Popen([sys.executable, '-c', RUSAGE_PROBE] + list(cmd), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)             # the probe's session: the probe and the command
        p.communicate()
        return None, b'', None, 0
    try:
        status, rss, cpu = err.splitlines()[-1].split()
        return int(status), out, float(cpu), int(rss)
    except (IndexError, ValueError):
        raise RuntimeError('could not run %s: %s' % (cmd[0], err.decode(errors='replace').strip()[-200:])) from None


def faultlab_cmd():
    """How a shell starts faultlab: the console script next to this Python, else python -m faultlab.cli."""
    script = os.path.join(os.path.dirname(sys.executable), 'faultlab')
    return [script] if os.access(script, os.X_OK) else [sys.executable, '-m', 'faultlab.cli']


# ---- the goals -----------------------------------------------------------------------------------------
def goal_ebizzy(sz):
    """1: simulated seconds per host CPU second of ebizzy on 16 CPUs."""
    out = []
    m = Machine(ram=512 << 20, config=KernelConfig(cpus=EBIZZY_CPUS, stdout=out.append, warn=lambda w: None))
    args = [str(EBIZZY_THREADS_PER_CPU * EBIZZY_CPUS), str(sz.ebizzy_ms), EBIZZY_CHUNK, '0']
    t = time.process_time()
    res = m.run(os.path.join(BUILD, 'ebizzy'), ['ebizzy'] + args, ['LANG=C'])
    host = time.process_time() - t
    if res.exit_code != 0:
        return None, 'ebizzy failed: %s' % (res.report or res.exit_code)
    sim = res.stats['sim_seconds']
    ratio = sim / host
    text = ('ebizzy -mTRp, %d CPUs, %d ms: %.3f s simulated in %.2f s host, %d instructions, %d page faults; '
            'simulated/host 1/%.1f (goal >= 1/30)' % (EBIZZY_CPUS, sz.ebizzy_ms, sim, host, res.stats['instructions'],
                                                       res.stats['page_faults'], 1 / ratio))
    return ratio >= EBIZZY_RATIO, text


def goal_populate(sz):
    """2: the 4096 MiB populate table in a child process, stopped at 110% of the limit."""
    if sz.quick:
        return None, 'populate table at 4096 MiB: not run with --quick (minutes of host time)'
    limit = POPULATE_LIMIT_S * 1.1
    status, _out, cpu, _rss = run_child(faultlab_cmd() + ['bench', 'populate', '--size', '4096M'], timeout=limit)
    if status is None:
        return False, ('populate table at 4096 MiB (MAP_PRIVATE and MAP_SHARED): not done after %.0f s, stopped; '
                       'goal < %d s' % (limit, POPULATE_LIMIT_S))
    return cpu < POPULATE_LIMIT_S, ('populate table at 4096 MiB (MAP_PRIVATE and MAP_SHARED): %.1f s host CPU '
                                    '(status %d), goal < %d s' % (cpu, status, POPULATE_LIMIT_S))


def _swaptouch(ram_mib, mib, swap_mib):
    """(host CPU seconds, stats, stdout) of swaptouch MIB 2 on a fresh machine."""
    out = []
    m = Machine(ram=ram_mib << 20, config=KernelConfig(stdout=out.append, swap_bytes=swap_mib << 20))
    t = time.process_time()
    res = m.run(os.path.join(BUILD, 'swaptouch'), ['swaptouch', str(mib), '2'], ['LANG=C'])
    cpu = time.process_time() - t
    if res.exit_code != 0:
        raise RuntimeError('swaptouch %d failed: %s' % (mib, res.report or res.exit_code))
    return cpu, res.stats, b''.join(out)


def host_io_us_per_pair(n=4096):
    """Host CPU microseconds to write a page to a fresh block of a sparse temporary file and read it back,
    with the system calls the disk's host file uses (kernel/block/store.py: pwrite, preadv), one page at a
    time, 64 GiB into the file (where the swap area starts)."""
    page = bytearray(b'\x5a') * PAGE
    base = 1 << 36
    with tempfile.TemporaryFile(prefix='faultlab-io-') as f:
        fd = f.fileno()
        t = time.process_time()
        for b in range(n):
            os.pwrite(fd, page, base + b * PAGE)
        for b in range(n):
            os.preadv(fd, [page], base + b * PAGE)
        t = time.process_time() - t
    return t / n * 1e6


def goal_swap(sz):
    """3: host CPU per swap-out + swap-in pair of swaptouch 2 x RAM, touched twice."""
    ram = sz.swap_ram_mib
    mib = 2 * ram
    cpu, stats, out = _swaptouch(ram, mib, 4 * ram)
    native = subprocess.run([os.path.join(BUILD, 'swaptouch'), str(mib), '2'], capture_output=True).stdout
    base_cpu, base_stats, _ = _swaptouch(3 * ram, mib, 4 * ram)
    pairs = stats['pswpin']
    per_pair = cpu / pairs * 1e6 if pairs else float('inf')
    swap_only = (cpu - base_cpu) / pairs * 1e6 if pairs else float('inf')
    io = host_io_us_per_pair()
    text = ('swaptouch %d MiB twice on %d MiB RAM: %d swap-outs, %d swap-ins in %.2f s host: %.1f us per pair '
            '(goal <= %.0f); breakdown per pair: %.1f us beyond the same run without swapping (%.2f s, %d swap-ins), '
            'of which the host file I/O alone is %.1f us (pwrite of a new block + pread); output %s'
            % (mib, ram, stats['pswpout'], pairs, cpu, per_pair, SWAP_PAIR_US, swap_only, base_cpu,
               base_stats['pswpin'], io, 'same as native' if out == native else 'DIFFERS from native'))
    return per_pair <= SWAP_PAIR_US and out == native, text


def goal_fault_compute(fig):
    """4: faultlab's minor fault against QEMU's page touch, compute against 0.5x QEMU's."""
    qemu = fig.get('per_page', {}).get('qemu-x86_64')
    if qemu is None or 'faultlab' not in fig.get('per_page', {}):
        return None, 'minor fault and compute against QEMU user mode: skipped (qemu-x86_64 not installed or failed)'
    fl_page = fig['fl_fault_us']
    q_page = qemu[0]
    fl_mips, q_mips = fig['mips']['faultlab'][0], fig['mips']['qemu-x86_64'][0]
    ok = fl_page <= q_page and fl_mips >= 0.5 * q_mips
    return ok, ('minor anonymous fault %.2f us vs QEMU user mode page touch %.2f us (goal: no slower); compute '
                '%.1f vs QEMU %.1f M insn/s = %.2fx (goal >= 0.5x)' % (fl_page, q_page, fl_mips, q_mips, fl_mips / q_mips))


def _best_cpu(cmd, reps):
    """The smallest host CPU seconds of reps runs of cmd (None if it failed)."""
    best = None
    for _ in range(reps):
        status, _out, cpu, _rss = run_child(cmd, timeout=120)
        if status != 0:
            return None
        best = cpu if best is None else min(best, cpu)
    return best


def goal_startup(sz, peers):
    """5: host CPU of `faultlab run hello`, with Python's own start-up and the peers beside it."""
    hello = os.path.join(BUILD, 'hello')
    fl = _best_cpu(faultlab_cmd() + ['run', hello], sz.reps)
    if fl is None:
        return False, 'faultlab run hello failed'
    parts = ['python -c pass %.3f s' % (_best_cpu([sys.executable, '-c', 'pass'], sz.reps) or float('nan')),
             'native %.4f s' % (_best_cpu([hello], sz.reps) or float('nan'))]
    if peers.get('qemu'):
        parts.append('qemu-x86_64 %.3f s' % (_best_cpu([peers['qemu'], hello], sz.reps) or float('nan')))
    if peers.get('qiling'):
        parts.append('Qiling %.3f s' % (_best_cpu([sys.executable, '-c', QILING_HELLO, hello], sz.reps)
                                       or float('nan')))
    imp = _best_cpu([sys.executable, '-c', 'import faultlab.cli'], sz.reps)
    return fl < STARTUP_S, ('start-up, faultlab run hello: %.3f s host CPU (goal < %.1f s), of which importing '
                            'faultlab.cli (with Python\'s start-up) %.3f s; beside it: %s%s'
                            % (fl, STARTUP_S, imp or float('nan'), ', '.join(parts), _bytecode_note()))


QILING_HELLO = ('import os, shutil, sys, tempfile\n'
                'from qiling import Qiling\nfrom qiling.const import QL_VERBOSE\n'
                'root = tempfile.mkdtemp(); os.mkdir(root + "/bin"); shutil.copy(sys.argv[1], root + "/bin/hello")\n'
                'Qiling([root + "/bin/hello"], root, verbose=QL_VERBOSE.DISABLED, console=False).run()\n'
                'shutil.rmtree(root)\n')


def _bytecode_note():
    """A note when Python may not write its bytecode cache (every start compiles faultlab's modules)."""
    if sys.flags.dont_write_bytecode:
        return ('; PYTHONDONTWRITEBYTECODE is set here: modules without a compiled copy in __pycache__ are '
                'compiled at every start (`python -m compileall emu kernel vdso` once makes them)')
    return ''


def goal_memory(sz, peers):
    """6: peak RSS of a run whose swap holds far more than its RAM."""
    base = faultlab_cmd() + ['run', '--ram', sz.mem_ram, '--swap', '10G']
    st, _o, _c, hello_rss = run_child(base + [os.path.join(BUILD, 'hello')], timeout=120)
    prog = [os.path.join(BUILD, 'swaptouch'), str(sz.mem_mib), '1']
    st, out, cpu, rss = run_child(base + prog, timeout=3600)
    native = subprocess.run(prog, capture_output=True).stdout
    if st != 0:
        return False, 'swaptouch under faultlab failed (status %s)' % st
    extra = ''
    if peers.get('qemu'):
        _s, _o, _c, q_rss = run_child([peers['qemu']] + prog, timeout=600)
        extra = '; QEMU user mode, same program: %d MiB' % (q_rss >> 10)
    return rss < RSS_LIMIT_KIB and out == native, (
        'host memory, swaptouch %d MiB on --ram %s --swap 10G: peak RSS %d MiB (goal < 1024), a hello run with the '
        'same options %d MiB, %.1f s host; output %s%s'
        % (sz.mem_mib, sz.mem_ram, rss >> 10, hello_rss >> 10, cpu,
           'same as native' if out == native else 'DIFFERS from native', extra))


def run_goals(fig, quick, peers, out=sys.stdout):
    """Measure and print every goal; returns [(text, met)] of the goals that were judged."""
    sz = Sizes(quick)
    w = out.write
    w('\ngoals (this run%s):\n' % (', --quick sizes' if quick else ''))
    judged = []
    steps = ((1, lambda: goal_ebizzy(sz)), (2, lambda: goal_populate(sz)), (3, lambda: goal_swap(sz)),
             (4, lambda: goal_fault_compute(fig)), (5, lambda: goal_startup(sz, peers)),
             (6, lambda: goal_memory(sz, peers)))
    for n, fn in steps:
        try:
            ok, text = fn()
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            ok, text = False, 'failed: %s: %s' % (type(e).__name__, e)
        verdict = 'skipped' if ok is None else ('met' if ok else 'NOT MET')
        w('  %d. %s  %s\n' % (n, text, verdict))
        out.flush()
        if ok is not None:
            judged.append(('goal %d' % n, ok))
    return judged

