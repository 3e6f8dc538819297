"""faultlab stat / profile / run --trace / progress: the figures they print are the machine's own.

stat: every counter equals the kernel's own bookkeeping (per-task fault counts, the block device's
counters) and the instruction count equals a count by single-stepping (a per-instruction hook).
profile: per-instruction attribution equals single-stepping address by address; faults are charged
to the right functions with call stacks that reach _start. trace: valid trace-event JSON whose
intervals show prefetch I/O overlapping compute, and no overlap without prefetching.
"""
import collections
import io
import json
import os
import subprocess
import sys

import pytest
from unicorn import UC_HOOK_CODE

from conftest import ROOT, DATA
from faultlab.bench import prefetch as bp
from faultlab.observe import progress as progress_mod
from faultlab.machine import Machine
from faultlab.observe.profile import Profiler
from faultlab.observe.stat import format_stat, format_stat_csv, values
from faultlab.observe.trace import PID_CPUS, PID_DISK
from faultlab.kernel.kernel import KernelConfig

MOUNT = [(DATA, '/data', True)]
N = 32


def faultlab(*args, cwd=ROOT):
    return subprocess.run([sys.executable, '-m', 'faultlab.cli'] + list(args), capture_output=True, cwd=cwd,
                          timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))


def _machine(mounts=()):
    return Machine(ram=64 << 20, config=KernelConfig(stdout=lambda b: None, stderr=lambda b: None,
                                                     mounts=list(mounts)))


def _single_step(m):
    """Count retired instructions per address with a per-instruction hook (the reference count)."""
    per_ip = collections.Counter()
    m.cpu.uc.hook_add(UC_HOOK_CODE, lambda uc, a, s, u: per_ip.__setitem__(a, per_ip[a] + 1))
    orig = m.kernel.page_fault
    traps = [0]

    def page_fault(rip, addr, ec):
        traps[0] += 1
        if not ec & 0x10:          # the hook saw the faulting instruction, which did not retire
            per_ip[rip] -= 1
        return orig(rip, addr, ec)
    m.kernel.page_fault = page_fault
    return per_ip, traps


def _csv(text):
    out = {}
    for line in text.splitlines():
        value, unit, event = line.split(',')
        out[event] = float(value) if unit == 's' else int(value)
    return out


# ---- stat ------------------------------------------------------------------------------------------
def test_stat_counts_are_the_kernels_and_instructions_match_single_stepping(userland, tmp_path):
    prog = os.path.join(userland, 'readahead')
    p = faultlab('stat', '-x', ',', '-o', str(tmp_path / 's.csv'), '--ram', '64M', '--mount', '%s:/data' % DATA, prog,
                 '/data/big.bin')
    assert p.returncode == 0, p.stderr
    assert p.stderr == b''                       # -o: nothing on stderr, and no progress on a pipe
    s = _csv((tmp_path / 's.csv').read_text())

    m = _machine(MOUNT)
    per_ip, traps = _single_step(m)
    res = m.run(prog, ['readahead', '/data/big.bin'], list(('PATH=/bin:/usr/bin', 'HOME=/home', 'LANG=C',
                                                             'TERM=dumb')))
    assert res.exit_code == 0
    k = m.kernel
    task = k.tasks[1]
    stepped = sum(n for ip, n in per_ip.items() if ip >= 0x10000)     # not the sysretq that entered CPL 3
    assert s['instructions'] == stepped == m.cpu.insns
    assert s['minor-faults'] == task.minflt and s['major-faults'] == task.majflt
    assert s['page-faults'] == task.minflt + task.majflt > 0
    assert task.majflt > 0 and s['fault-around-pages'] == k.stats['fault_around_pages'] > 0
    bs = k.blockdev.stats
    assert (s['disk-reads'], s['disk-writes'], s['disk-read-bytes']) == (bs.reads, bs.writes, bs.read_bytes)
    assert s['disk-reads'] > 0
    assert s['disk-queue-wait-cycles'] == int(round(bs.queue_wait_cycles))
    assert s['tlb-flushes'] == k.stats['tlb_flushes']
    assert s['syscalls'] == k.stats['syscalls']
    assert s['cycles'] == int(round(k.now()))
    assert s['seconds-simulated'] == pytest.approx(k.costs.seconds(k.now()), abs=1e-9)
    assert s['speculative-faults'] == 0 and s['swap-in-pages'] == k.stats['pswpin']


def test_stat_human_output(userland):
    p = faultlab('stat', os.path.join(userland, 'hello'))
    assert p.returncode == 0 and p.stdout.startswith(b'hello, world\n')
    err = p.stderr.decode()
    assert "Performance counter stats for" in err
    for event in ('instructions', 'cycles', 'page-faults', 'minor-faults', 'major-faults', 'speculative-faults',
                  'nowait-faults', 'fault-around-pages', 'tlb-flushes', 'disk-requests', 'disk-queue-wait-cycles',
                  'swap-in-pages', 'swap-out-pages', 'mmap-lock-wait-cycles', 'seconds simulated time'):
        assert event in err, event
    assert 'insn per cycle' in err
    assert '\x1b[K' not in err                    # no progress line on a pipe


def test_stat_takes_new_counters_and_cpus_when_the_kernel_has_them():
    snap = dict(instructions=1000, cycles=4000, guest_cycles=2000, kernel_cycles=1000, idle_cycles=1000,
                freq_hz=2_000_000_000, sim_seconds=2e-6, page_faults=7, minor_faults=5, major_faults=2,
                spf=3, spf_abort=1, mmap_lock_wait_cycles=123456,
                cpus=[dict(cpu=0, instructions=600, cycles=4000, page_faults=4, major_faults=1),
                      dict(cpu=1, instructions=400, cycles=3900, page_faults=3, major_faults=1)])
    text = format_stat(snap, 'prog')
    assert '2 CPUs' in text
    line = next(ln for ln in text.splitlines() if 'speculative-faults' in ln)
    assert line.split()[0] == '3' and '1 aborted' in line
    assert next(ln for ln in text.splitlines() if 'mmap-lock-wait-cycles' in ln).split()[0] == '123,456'
    assert 'CPU0' in text and 'CPU1' in text and '0.15 IPC' in text
    csv = format_stat_csv(snap)
    assert '3,,speculative-faults' in csv and 'CPU1,400,,instructions' in csv
    # an older kernel without those keys: zeros, no per-CPU block
    old = values(dict(instructions=1))
    assert old['speculative-faults'] == 0 and old['mmap-lock-wait-cycles'] == 0
    assert 'per CPU' not in format_stat(dict(instructions=1, cycles=2, freq_hz=1), 'p')


# ---- profile ---------------------------------------------------------------------------------------
def test_profile_attribution_equals_single_stepping(userland):
    """Exact: per-instruction counts from the block counter equal the per-instruction hook's, address by
    address; every trap is charged once; the per-function sums are the machine's counters."""
    m = _machine(MOUNT)
    per_ip, traps = _single_step(m)
    prof = Profiler(m)
    m.kernel.set_tracer(prof)
    res = m.run(os.path.join(userland, 'readahead'), ['readahead', '/data/big.bin'], [])
    assert res.exit_code == 0
    prof.finish()
    stepped = {ip: n for ip, n in per_ip.items() if n and ip >= 0x10000}
    got = {ip: n for ip, n in prof.ip_insns.items() if n}
    assert got == stepped
    funcs = prof.functions()
    assert sum(f.insns for f in funcs.values()) == res.stats['instructions']
    assert sum(f.user_cycles for f in funcs.values()) == res.stats['guest_cycles']
    assert sum(f.faults for f in funcs.values()) == traps[0]
    assert sum(f.major for f in funcs.values()) == res.stats['major_faults']
    assert sum(f.syscalls for f in funcs.values()) == res.stats['syscalls']
    assert res.stats['major_faults'] > 0 and res.stats['minor_faults'] > 20 and len(funcs) > 50


def test_profile_cli_table_and_folded_stacks(userland, tmp_path):
    """prefetch_bench: the NOWAIT faults are charged to __vdso_prefetch_page, called from main (through a
    function pointer, found in the vDSO without CFI by scanning) with a stack down to _start."""
    folded, faults = tmp_path / 'cyc.folded', tmp_path / 'flt.folded'
    p = faultlab('profile', '--folded', str(folded), '--folded-faults', str(faults), '--top', '12',
                 os.path.join(userland, 'prefetch_bench'), bp.GUEST_FILE, str(N), '100', '4')
    assert p.returncode == 0, p.stderr
    err = p.stderr.decode()
    assert 'user-cycles' in err and '__vdso_prefetch_page' in err and err.count('\n') > 12
    lines = faults.read_text().splitlines()
    stacks = {ln.rsplit(' ', 1)[0]: int(ln.rsplit(' ', 1)[1]) for ln in lines}
    key = '_start;__libc_start_main_impl;__libc_start_call_main;main;__vdso_prefetch_page;' \
          'vdso_extable_fixup_[k]'
    assert stacks.get(key) == N                  # every prefetch of a cold page, fixed up
    rooted = sum(n for s, n in stacks.items() if s.startswith('_start;'))
    assert rooted >= 0.9 * sum(stacks.values())  # stacks reach the program's root
    cyc = dict(ln.rsplit(' ', 1) for ln in folded.read_text().splitlines())
    assert any(s.endswith(';main;ensure_file;fsync;sys_fsync_[k]') for s in cyc)
    assert sum(int(n) for s, n in cyc.items() if s.split(';')[-1] == 'compute') > 0   # the compute kernel's cycles
    assert any(s.endswith(';main;compute') for s in cyc)          # sampled under main


# ---- trace -----------------------------------------------------------------------------------------
def _load_trace(path):
    with open(path) as f:
        doc = json.load(f)
    evs = doc['traceEvents']
    assert isinstance(evs, list) and evs
    for e in evs:
        assert isinstance(e['name'], str) and isinstance(e['pid'], int)
        assert e['ph'] in ('X', 'B', 'E', 'i', 'M', 'C', 's', 'f'), e
        if e['ph'] not in ('M', 'C'):
            assert isinstance(e['tid'], int) and isinstance(e['ts'], (int, float)) and e['ts'] >= 0
        if e['ph'] == 'X':
            assert isinstance(e['dur'], (int, float)) and e['dur'] >= 0
        if e['ph'] == 'i':
            assert e['s'] in ('g', 'p', 't')
        assert isinstance(e.get('args', {}), dict)
    return doc, evs


def _overlap(intervals, others):
    total = 0.0
    for a, b in intervals:
        for c, d in others:
            total += max(0.0, min(b, d) - max(a, c))
    return total


def _iters():
    s_cycles = bp.service_cycles(bp.disk_params(), 3_000_000_000)
    return int(round(s_cycles / 12))            # compute per page ~ one disk read (12 cycles per iteration)


@pytest.mark.parametrize('distance', [4, 0])
def test_trace_of_prefetch_bench_shows_io_overlapping_compute(userland, tmp_path, distance):
    out = tmp_path / 't.json'
    js = tmp_path / 's.json'
    p = faultlab('run', '--trace', str(out), '--stats-json', str(js), os.path.join(userland, 'prefetch_bench'),
                 bp.GUEST_FILE, str(N), str(_iters()), str(distance))
    assert p.returncode == 0, p.stderr
    stats = json.loads(js.read_text())
    doc, evs = _load_trace(out)
    assert doc['otherData']['clock'] == 'simulated'
    names = {(e['pid'], e.get('tid'), e['name']): e['args']['name'] for e in evs if e['ph'] == 'M' and 'name' in e['args']}
    assert names[(PID_CPUS, None, 'process_name')] == 'CPUs' and names[(PID_CPUS, 0, 'thread_name')] == 'CPU 0'
    assert names[(PID_DISK, None, 'process_name')] == 'disk'
    assert names[(1, None, 'process_name')] == 'prefetch_bench'       # the guest's first process, pid 1
    xs = [e for e in evs if e['ph'] == 'X']
    cpu = [e for e in xs if e['pid'] == PID_CPUS and e['tid'] == 0]
    disk = [e for e in xs if e['pid'] == PID_DISK]
    assert len(disk) == stats['disk_reads'] + stats['disk_writes']
    faults = [e for e in cpu if e['cat'] == 'fault']
    assert sum(e['args']['outcome'] in ('minor', 'major') for e in faults) == stats['page_faults']
    assert sum(e['args']['outcome'] == 'major' for e in faults) == stats['major_faults']
    assert sum(e['cat'] == 'syscall' for e in cpu) == stats['syscalls']
    end_us = stats['cycles'] * 1e6 / stats['freq_hz']
    assert max(e['ts'] + e['dur'] for e in cpu) <= end_us + 1e-3
    # slices on the CPU track nest or are disjoint (what the trace viewers require)
    spans = sorted((e['ts'], -e['dur'], e['ts'] + e['dur']) for e in cpu)
    stack = []
    for ts, neg, end in spans:
        while stack and stack[-1] <= ts + 1e-6:
            stack.pop()
        assert not stack or end <= stack[-1] + 1e-6, (ts, end, stack[-1])
        stack.append(end)
    user = [(e['ts'], e['ts'] + e['dur']) for e in cpu if e['name'] == 'user']
    kern = [(e['ts'], e['ts'] + e['dur']) for e in cpu if e['cat'] in ('fault', 'syscall')]
    assert _overlap(user, kern) < 1e-3
    prefetched = [(e['ts'], e['ts'] + e['dur']) for e in disk
                  if e['args'].get('by_symbol') == '__vdso_prefetch_page']
    loop = [(e['ts'], e['ts'] + e['dur']) for e in disk if e['name'] == 'read' and e['ts'] > user[0][0]]
    if distance:
        assert len(prefetched) == N
        busy = sum(b - a for a, b in prefetched)
        assert _overlap(prefetched, user) >= 0.6 * busy      # the disk works while the CPU computes
        waits = [(e['ts'], e['ts'] + e['dur']) for e in cpu if e['name'] == 'wait: io']
        assert _overlap(prefetched, waits) < 0.4 * busy
    else:
        assert prefetched == [] and len(loop) >= N
        assert _overlap(loop, user) < 0.01 * sum(b - a for a, b in loop)   # the CPU waits for each read


def test_trace_and_profile_bad_output_paths_are_one_line_errors(userland, tmp_path):
    hello = os.path.join(userland, 'hello')
    p = faultlab('run', '--trace', str(tmp_path / 'no' / 'dir' / 't.json'), hello)
    assert p.returncode == 2 and p.stderr.decode().count('\n') == 1 and b'cannot write' in p.stderr
    p = faultlab('profile', '--folded', str(tmp_path / 'no' / 'x.folded'), hello)
    assert p.returncode == 2 and b'cannot write' in p.stderr and b'Traceback' not in p.stderr
    p = faultlab('profile', '--top', '0', hello)
    assert p.returncode == 2 and b'Traceback' not in p.stderr


def test_tracing_and_sampling_change_no_counter(userland, tmp_path):
    """Attaching the profiler (sampling every 50000 instructions) and the trace writer leaves every
    counter of the run as it was; the sampled call paths split each function's exact cycles."""
    prog = os.path.join(userland, 'compute')
    plain = _machine()
    a = plain.run(prog, ['compute', '1'], []).stats
    m = _machine()
    from faultlab.observe.tools import RunTools
    import argparse
    tools = RunTools(m, argparse.Namespace(cmd='profile', trace=str(tmp_path / 't.json'), progress=False,
                                           no_stacks=False, sample_insns=50_000), 'compute')
    assert m.kernel.tracer is not None and m.kernel.blockdev.tracer is m.kernel.tracer
    res = m.run(prog, ['compute', '1'], [])
    tools.close(res)
    assert res.stats == a
    assert plain.kernel.tracer is None and plain.kernel.blockdev.tracer is None
    prof = tools.profiler
    assert sum(prof.samples.values()) >= a['instructions'] // 50_000 - 2
    user = prof.user_stacks()
    assert sum(user.values()) == a['guest_cycles']
    funcs = prof.functions()
    crc = 'crc32_update.constprop.0'
    assert sum(n for s, n in user.items() if s[-1] == crc) == funcs[crc].user_cycles > 0
    main_path = ('_start', '__libc_start_main_impl', '__libc_start_call_main', 'main')
    assert user[main_path + (crc,)] == funcs[crc].user_cycles      # compute's crc loop runs under main only
    assert 'main' not in [s[-1] for s in user if len(s) == 1]        # main was sampled: it has its path


# ---- progress --------------------------------------------------------------------------------------
class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal(userland, monkeypatch):
    monkeypatch.delenv('FAULTLAB_PROGRESS', raising=False)
    assert not progress_mod.wanted(io.StringIO())
    assert progress_mod.wanted(_Tty())
    assert not progress_mod.wanted(_Tty(), flag=False) and progress_mod.wanted(io.StringIO(), flag=True)
    monkeypatch.setenv('FAULTLAB_PROGRESS', '0')
    assert not progress_mod.wanted(_Tty())


def test_progress_line_advances_and_is_erased(userland):
    m = _machine()
    tty = _Tty()
    prog = progress_mod.Progress(m, stream=tty, interval=0.02)
    m.kernel.set_tracer(prog)
    prog.start()
    try:
        m.run(os.path.join(userland, 'compute'), ['compute', '1'], [])
    finally:
        prog.close()
    text = tty.getvalue()
    shots = [s for s in text.split('\r') if 'instructions' in s]
    assert len(shots) >= 2, text
    insns = [float(s.split()[1].rstrip('kMG')) * {'k': 1e3, 'M': 1e6, 'G': 1e9}.get(s.split()[1][-1], 1)
             for s in shots]
    assert insns == sorted(insns) and insns[-1] > insns[0]
    assert 's simulated' in shots[-1]
    assert text.endswith('\r\x1b[K')                 # erased at the end


def test_threads_share_one_symbolizer_per_address_space():
    """Traces and profiles name addresses through one Symbolizer per mm: threads switching on a CPU
    must not rebuild it (each rebuild re-reads every mapped ELF file)."""
    from types import SimpleNamespace
    from faultlab.observe.symbols import SymbolizerCache

    mm_a, mm_b = SimpleNamespace(vmas=[], vdso_base=0), SimpleNamespace(vmas=[], vdso_base=0)
    t1, t2 = SimpleNamespace(mm=mm_a, symbols=[]), SimpleNamespace(mm=mm_a, symbols=[])
    t3 = SimpleNamespace(mm=mm_b, symbols=[])
    kernel = SimpleNamespace(current=None, vdso=None)
    cache = SymbolizerCache(kernel)
    assert cache.current() is None
    kernel.current = t1
    first = cache.current()
    kernel.current = t2
    assert cache.current() is first              # another thread of the same process
    kernel.current = t3
    other = cache.current()
    assert other is not first                    # another process
    kernel.current = t1
    assert cache.current() is first
