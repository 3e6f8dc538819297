"""`faultlab bench speed`: faultlab side by side with its peers, in one process and one run, then the
speed goals (emu/bench/speed_goals.py), each measured and judged met or NOT MET.

Two workloads, each run natively, under faultlab (cycle model on, exact instruction counting), under
QEMU user mode (`qemu-x86_64`) and under Qiling (no hooks of ours), whichever are installed
(`make bench-peers` installs both; a missing peer is skipped with a note):

* compute: userland/compute SCALE, no system calls in its loops. Reported as guest M instructions/s;
  the numerator is faultlab's exact instruction count of the same binary with the same arguments
  for every runner (they all run the same instructions).
* pagetouch: userland/pagetouch BIG and SMALL (mmap N MiB, write one byte per page). Reported as host
  microseconds per touched page: (time(BIG) - time(SMALL)) / (pages(BIG) - pages(SMALL)), which removes
  start-up and the fixed work. For faultlab every such page is one minor anonymous fault, taken end to
  end (trap, VMA lookup, page allocation, zeroing, PTE, accounting, resume), plus its share of munmap.

What is timed: native and qemu-x86_64, the whole child process; faultlab, exec to exit on a booted
machine (building the machine is not timed); Qiling, ql.run() (its constructor, which loads the ELF,
is not timed, so the comparison leans in Qiling's favour by its load time).

Every runner is repeated `reps` times, the runners taking turns, and the best run counts (the hosts are
shared and noisy).
Times are host CPU seconds (user + system) of the process doing the work, which other processes on
the host disturb less than wall-clock time; the wall-clock figures are printed too. Only ratios from
the same run should be compared across hosts. Every run's output is compared with the native one.
"""
import gc
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from unicorn import UC_HOOK_CODE

from faultlab.bench.report import bench_ready, write_rows
from faultlab.bench.speed_goals import run_goals
from faultlab.core.physmem import PhysMem
from faultlab.kernel.kernel import KernelConfig
from faultlab.machine import Machine
from faultlab.srctree import userland_build

BUILD = userland_build()
PAGE = 4096
INSTALL_HINT = 'make bench-peers'


class Timing:
    """Best CPU and wall seconds over repetitions, and what the run printed."""

    def __init__(self):
        self.cpu = float('inf')
        self.wall = float('inf')
        self.cpu_no_unmap = float('inf')      # faultlab: CPU time less the munmap system calls
        self.output = None
        self.error = None

    def add(self, cpu, wall, output, unmap_cpu=None):
        self.cpu = min(self.cpu, cpu)
        self.wall = min(self.wall, wall)
        if unmap_cpu is not None:
            self.cpu_no_unmap = min(self.cpu_no_unmap, cpu - unmap_cpu)
        if self.output is None:
            self.output = output


# ---- runners: each returns (cpu seconds, wall seconds, stdout bytes) for one run -----------------------
def run_native(prog, args):
    return _run_child([prog] + list(args))


def run_qemu(prog, args, qemu):
    return _run_child([qemu, prog] + list(args))


def _run_child(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=900)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        raise RuntimeError('%s exited with status %d' % (' '.join(cmd), p.returncode))
    return cpu, wall, p.stdout


NR_MUNMAP = 11


def run_faultlab(prog, args, want_stats=False):
    """One run on a fresh machine; the timed part is the run itself (exec to exit), not building it.

    (cpu, wall, output, CPU seconds spent in munmap system calls[, stats])
    """
    out = []
    m = Machine(ram=256 << 20, config=KernelConfig(stdout=out.append))
    kernel = m.kernel
    unmap = [0.0]

    def syscall(real=kernel.syscall):
        if kernel.cpu.gpr[0] != NR_MUNMAP:
            return real()
        t = time.process_time()
        real()
        unmap[0] += time.process_time() - t
    kernel.syscall = syscall          # the CPU calls traps.syscall(): time munmap only
    gc.collect()
    t0, w0 = time.process_time(), time.perf_counter()
    res = m.run(prog, [os.path.basename(prog)] + list(args), ['LANG=C'])
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    if res.exit_code != 0:
        raise RuntimeError('faultlab: %s exited with status %d (%s)' % (prog, res.exit_code, res.report))
    return (cpu, wall, b''.join(out), unmap[0]) + ((res.stats,) if want_stats else ())


class QilingRunner:
    """Qiling on the same static binaries: a scratch rootfs holding copies of the programs."""

    def __init__(self, progs):
        # qiling is an optional peer, never a dependency of faultlab: imported here, where its absence
        # (ImportError) tells find_peers to skip it
        from qiling import Qiling
        from qiling.const import QL_VERBOSE
        self._Qiling, self._quiet = Qiling, QL_VERBOSE.DISABLED
        self.rootfs = tempfile.mkdtemp(prefix='faultlab-qiling-')
        os.mkdir(os.path.join(self.rootfs, 'bin'))
        for p in progs:
            shutil.copy2(p, os.path.join(self.rootfs, 'bin', os.path.basename(p)))

    def __call__(self, prog, args):
        path = os.path.join(self.rootfs, 'bin', os.path.basename(prog))
        ql = self._Qiling([path] + list(args), self.rootfs, verbose=self._quiet, console=False)
        sink = _Sink()
        ql.os.stdout = sink
        gc.collect()
        t0, w0 = time.process_time(), time.perf_counter()
        ql.run()
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        if ql.os.exit_code not in (None, 0):
            raise RuntimeError('qiling: %s exited with status %s' % (prog, ql.os.exit_code))
        return cpu, wall, bytes(sink.data)

    def close(self):
        shutil.rmtree(self.rootfs, ignore_errors=True)


class _Sink:
    """A stdout for Qiling's guest that keeps what it writes."""
    name = 'stdout'

    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b
        return len(b)

    def flush(self):
        pass

    def fileno(self):
        return -1


def find_peers(progs, qemu_path=None, qiling=True):
    """{name: runner or None} and {name: note} for the peers that are missing."""
    peers, notes = {}, {}
    qemu = qemu_path if qemu_path is not None else shutil.which('qemu-x86_64')
    if qemu:
        peers['qemu-x86_64'] = lambda prog, args: run_qemu(prog, args, qemu)
    else:
        notes['qemu-x86_64'] = 'qemu-x86_64 not installed: skipped (%s, or apt-get install qemu-user)' % INSTALL_HINT
    runner = None
    if qiling:
        try:
            runner = QilingRunner(progs)
        except ImportError:
            runner = None
    if runner is not None:
        peers['qiling'] = runner
    else:
        notes['qiling'] = 'qiling not installed: skipped (%s, or pip install .[peers])' % INSTALL_HINT
    return peers, notes


# ---- the benchmark -------------------------------------------------------------------------------------
def _once(timing, fn):
    if timing.error is not None:
        return
    try:
        timing.add(*fn())
    except Exception as e:          # a peer that fails is reported, not fatal
        timing.error = '%s: %s' % (type(e).__name__, e)


def single_step_check(prog, args=(), cpus=1):
    """(native-hook count, single-step count) for prog: the exact-counting check of tests/test_icount.py."""
    m = Machine(ram=64 << 20, config=KernelConfig(stdout=lambda b: None, cpus=cpus))
    seen = [0]
    m.cpu.uc.hook_add(UC_HOOK_CODE, lambda uc, a, s, u: seen.__setitem__(0, seen[0] + 1))
    data_faults = [0]
    orig = m.kernel.page_fault

    def page_fault(rip, addr, ec):
        if not ec & 0x10:          # the code hook saw the faulting instruction, which did not retire
            data_faults[0] += 1
        return orig(rip, addr, ec)
    m.kernel.page_fault = page_fault
    orig_fast = m.kernel.fast_faults

    def fast_faults(entries):
        # faults the CPU resolved natively: their instructions were seen before they faulted, too
        data_faults[0] += len(entries)
        return orig_fast(entries)
    m.kernel.fast_faults = fast_faults
    res = m.run(prog, [os.path.basename(prog)] + list(args), [])
    return res.stats['instructions'], seen[0] - data_faults[0] - 1      # -1: the sysretq into user mode


def host_first_touch_us(mib):
    """Host CPU microseconds per page to fault in fresh anonymous host memory (MADV_POPULATE_WRITE in
    4 MiB steps): the floor under every runner's page-touch figure, since each of them (the native
    kernel, faultlab's guest RAM, QEMU's and Qiling's) backs a newly touched guest page with one."""
    ram = PhysMem(mib << 20)
    t = time.process_time()
    for off in range(0, ram.size, 4 << 20):
        if not ram.populate(off, min(4 << 20, ram.size - off)):
            return float('nan')
    t = time.process_time() - t
    return t / ram.nr_frames * 1e6


def run_bench(reps=3, scale=4, small=4, big=64, qemu_path=None, qiling=True, out=sys.stdout):
    """Run everything once (each runner `reps` times) and print the table; returns the figures."""
    compute = os.path.join(BUILD, 'compute')
    touch = os.path.join(BUILD, 'pagetouch')
    peers, notes = find_peers([compute, touch], qemu_path, qiling)
    runners = [('native', run_native), ('faultlab', run_faultlab)] + list(peers.items())
    figures = {'notes': notes, 'rows': {}, 'records': [], 'checks': []}
    try:
        # exact instruction count of the compute run (the numerator for everyone) and faults per page-touch run
        cstats = run_faultlab(compute, [str(scale)], want_stats=True)[-1]
        insns = cstats['instructions']
        s_small = run_faultlab(touch, [str(small)], want_stats=True)[-1]
        s_big = run_faultlab(touch, [str(big)], want_stats=True)[-1]
        faults = s_big['minor_faults'] - s_small['minor_faults']
        pages = (big - small) << 20 >> 12
        figures.update(insns=insns, faults=faults, pages=pages)
        for name, _fn in runners:
            figures['rows'][name] = (Timing(), Timing(), Timing())
        first_touch = []
        # the repetitions take turns, so that a busy spell of the host hits every runner alike
        for _ in range(reps):
            first_touch.append(host_first_touch_us(big - small))
            for name, fn in runners:
                tc, ts, tb = figures['rows'][name]
                _once(tc, lambda: fn(compute, [str(scale)]))
                _once(ts, lambda: fn(touch, [str(small)]))
                _once(tb, lambda: fn(touch, [str(big)]))
    finally:
        q = peers.get('qiling')
        if q is not None:
            q.close()
        figures['first_touch'] = min(first_touch) if first_touch else float('nan')
    _print(figures, scale, small, big, reps, out)
    return figures


def _mips(insns, t):
    return insns / t / 1e6


def _print(fig, scale, small, big, reps, out):
    w = out.write
    insns, pages, rows = fig['insns'], fig['pages'], fig['rows']
    native_out = (rows['native'][0].output, rows['native'][2].output)
    w('faultlab bench speed: one run, best of %d per runner; times are host CPU (user+sys), wall in brackets\n'
      % reps)
    w('  compute %d: %d guest instructions (faultlab exact count, used for every runner)\n' % (scale, insns))
    w('  pagetouch %d MiB - %d MiB: %d pages touched, %d minor faults under faultlab\n\n'
      % (big, small, pages, fig['faults']))
    w('  %-12s %24s %30s   %s\n' % ('runner', 'compute M insn/s', 'pagetouch us/page', 'output'))
    per_page, mips = {}, {}
    for name, (tc, ts, tb) in rows.items():
        err = tc.error or ts.error or tb.error
        if err:
            w('  %-12s failed: %s\n' % (name, err))
            continue
        mips[name] = (_mips(insns, tc.cpu), _mips(insns, tc.wall))
        per_page[name] = ((tb.cpu - ts.cpu) / pages * 1e6, (tb.wall - ts.wall) / pages * 1e6)
        same = 'same as native' if (tc.output, tb.output) == native_out else 'DIFFERS from native'
        fig['records'].append({'runner': name, 'compute_minsn_per_s_cpu': mips[name][0],
                               'compute_minsn_per_s_wall': mips[name][1], 'pagetouch_us_per_page_cpu': per_page[name][0],
                               'pagetouch_us_per_page_wall': per_page[name][1], 'output_same_as_native': same == 'same as native'})
        if same != 'same as native':
            fig['checks'].append(('%s output same as native' % name, False))
        w('  %-12s %10.1f [%9.1f] M/s %12.2f [%9.2f] us/page   %s\n'
          % (name, mips[name][0], mips[name][1], per_page[name][0], per_page[name][1], same))
    for note in fig['notes'].values():
        w('  %s\n' % note)
    if 'faultlab' not in mips:
        return
    fl_mips, fl_page = mips['faultlab'][0], per_page['faultlab'][0]
    ts, tb = rows['faultlab'][1], rows['faultlab'][2]
    fl_fault = (tb.cpu_no_unmap - ts.cpu_no_unmap) / fig['faults'] * 1e6 if fig['faults'] else float('nan')
    fig.update(per_page=per_page, mips=mips, fl_fault_us=fl_fault)
    w('  faultlab per minor fault without its share of munmap: %.2f us (trap to resume)\n' % fl_fault)
    w('  host floor: faulting in fresh host memory costs %.2f us/page here (every runner pays it once per '
      'new page)\n' % fig.get('first_touch', float('nan')))
    w('\nratios (same run, CPU time):\n')
    for name in mips:
        if name == 'faultlab':
            continue
        w('  faultlab / %-12s compute speed %6.2fx   page-touch: faultlab %s\n'
          % (name, fl_mips / mips[name][0], _faster(per_page[name][0], fl_page)))
    w('\ncriteria:\n')
    checks = fig['checks']

    def check(text, ok):
        checks.append((text, ok))
        w('  %s %s\n' % (text, _ok(ok)))
    check('compute >= 100 M insn/s with exact counting: %.1f M/s' % fl_mips, fl_mips >= 100)
    if 'qiling' in mips:
        r = fl_mips / mips['qiling'][0]
        check('compute at least as fast as Qiling (ratio >= 1.0): %.2f' % r, r >= 1.0)
    check('minor fault <= 10 us host (trap to resume; with munmap in brackets): %.2f us [%.2f]' % (fl_fault, fl_page),
          fl_fault <= 10)
    if 'qiling' in per_page:
        r = per_page['qiling'][0] / fl_page if fl_page > 0 else float('inf')        # both with munmap
        check('minor fault >= 3x faster than Qiling mmap+touch per page: %.2fx' % r, r >= 3)


def _faster(peer, ours):
    if ours <= 0:
        return 'n/a'
    r = peer / ours
    return '%.2fx faster' % r if r >= 1 else '%.2fx slower' % (1 / r)


def _ok(cond):
    return 'ok' if cond else 'NOT MET'


def main(quick=False, reps=None, csv=None, json=None):
    """`faultlab bench speed`: the table, the rows to --csv/--json; 1 when a printed check fails."""
    status = bench_ready('speed', tuple(os.path.join(BUILD, p) for p in ('compute', 'pagetouch', 'hello', 'ebizzy',
                                                                          'swaptouch')), csv, json)
    if status is not None:
        return status
    if quick:
        fig = run_bench(reps=reps or 1, scale=1, small=2, big=10)
    else:
        fig = run_bench(reps=reps or 3)
    hook, single = single_step_check(os.path.join(BUILD, 'hello'))
    print('  exact counting: hello counted %d instructions with the native block hook, %d single-stepping %s'
          % (hook, single, _ok(hook == single)))
    fig['checks'].append(('exact counting', hook == single))
    peers = {'qemu': shutil.which('qemu-x86_64'), 'qiling': 'qiling' in fig.get('rows', {})}
    fig['checks'] += run_goals(fig, quick, peers)
    write_rows(fig['records'], csv, json)
    failed = [text for text, ok in fig['checks'] if not ok]
    if failed:
        print('faultlab bench speed: %d check(s) not met' % len(failed), file=sys.stderr)
    return 1 if failed else 0
