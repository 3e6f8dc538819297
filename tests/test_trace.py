"""`faultlab run --trace`: the trace-event JSON obeys the format's rules, and its per-process and
per-thread tracks tell what the guest did: names (comm, PR_SET_NAME, execve), forks with flows from
the parent's call, exits with their codes, system calls with the same decoded arguments as
--strace, page faults flowing to their disk requests and back, userfaultfd waits, memory counters.

The rules checked (the Trace Event Format document, and what Perfetto's JSON importer needs):
ph is a known phase; pid and tid are ints; every B has an E on the same track, in order; X slices
on one track nest or are disjoint; every flow id has one `s` and one `f`, the `f` not before the
`s`, each inside a slice of its track (an `f` without bp=e: a slice begins at or after it);
counter values are numbers; metadata names are strings.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from faultlab.kernel.kernel import KernelConfig
from faultlab.machine import Machine
from faultlab.observe.trace import PID_CPUS, PID_DISK, PID_MAX_LIMIT, PID_MEMORY, ChromeTrace

BUILD = os.path.join(ROOT, 'userland', 'build')
PHASES = {'X', 'B', 'E', 'i', 'I', 'M', 'C', 's', 't', 'f'}
EPS = 2e-3                      # µs: the trace's times are rounded to 0.1 ns, flow points sit 1 ns inside


def validate(doc):
    """Raise AssertionError at the first rule the trace breaks; return its events."""
    evs = doc['traceEvents']
    assert isinstance(evs, list) and evs, 'no events'
    open_b, slices, flows = {}, {}, {}
    for e in evs:
        ph = e.get('ph')
        assert ph in PHASES, 'unknown ph %r' % (e,)
        assert isinstance(e.get('name'), str), e
        assert isinstance(e.get('pid'), int) and not isinstance(e['pid'], bool), 'pid not an int: %r' % (e,)
        if ph == 'M':
            if e['name'] in ('process_name', 'thread_name'):
                assert isinstance(e['args']['name'], str), e
            if e['name'] == 'thread_name':
                assert isinstance(e.get('tid'), int), e
            continue
        assert isinstance(e.get('ts'), (int, float)) and e['ts'] >= 0, 'bad ts: %r' % (e,)
        if ph == 'C':
            assert e.get('args') and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                         for v in e['args'].values()), 'counter not numeric: %r' % (e,)
            continue
        assert isinstance(e.get('tid'), int) and not isinstance(e['tid'], bool), 'tid not an int: %r' % (e,)
        track = (e['pid'], e['tid'])
        if ph == 'B':
            open_b.setdefault(track, []).append(e)
        elif ph == 'E':
            assert open_b.get(track), 'E without B on %r: %r' % (track, e)
            b = open_b[track].pop()
            assert e['ts'] >= b['ts'], 'E before its B: %r' % (e,)
            slices.setdefault(track, []).append((b['ts'], e['ts']))
        elif ph == 'X':
            assert isinstance(e.get('dur'), (int, float)) and e['dur'] >= 0, e
            slices.setdefault(track, []).append((e['ts'], e['ts'] + e['dur']))
        elif ph in ('i', 'I'):
            assert e.get('s', 't') in ('g', 'p', 't'), e
        elif ph in ('s', 't', 'f'):
            assert 'id' in e, 'flow without id: %r' % (e,)
            flows.setdefault((e.get('cat'), e['name'], e['id']), []).append(e)
    for track, left in open_b.items():
        assert not left, 'B without E on %r: %r' % (track, left[0])
    for track, spans in slices.items():
        stack = []
        for ts, neg, end in sorted((a, -(b - a), b) for a, b in spans):
            while stack and stack[-1] <= ts + EPS:
                stack.pop()
            assert not stack or end <= stack[-1] + EPS, 'slices cross on %r at %s' % (track, ts)
            stack.append(end)
    for key, group in flows.items():
        phs = sorted(e['ph'] for e in group)
        assert phs == ['f', 's'], 'flow %r has %s' % (key, phs)
        s = next(e for e in group if e['ph'] == 's')
        f = next(e for e in group if e['ph'] == 'f')
        assert f['ts'] >= s['ts'] - EPS, 'flow %r goes back in time' % (key,)
        assert _inside(slices, s), 'flow start outside any slice: %r' % (s,)
        if f.get('bp') == 'e':
            assert _inside(slices, f), 'flow end outside any slice: %r' % (f,)
        else:
            assert any(a >= f['ts'] - EPS for a, _ in slices.get((f['pid'], f['tid']), ())), \
                'no slice after flow end: %r' % (f,)
    return evs


def _inside(slices, e):
    return any(a - EPS <= e['ts'] <= b + EPS for a, b in slices.get((e['pid'], e['tid']), ()))


def run_traced(tmp_path, prog, *args, extra=(), mounts=True):
    """faultlab run --trace of a userland program: (process, trace document)."""
    out = tmp_path / 'trace.json'
    mount = ['--mount', '%s:/u' % os.path.join(ROOT, 'userland')] if mounts else []
    p = subprocess.run([sys.executable, '-m', 'faultlab', 'run', '--no-progress', '--trace', str(out)] + mount
                       + list(extra) + ['/u/build/%s' % prog if mounts else os.path.join(BUILD, prog)] + list(args),
                       cwd=ROOT, capture_output=True, timeout=300)
    with open(out) as f:
        return p, json.load(f)


def guest(evs):
    """The events of the guest's processes (pids below the CPUs', disk's and memory's)."""
    return [e for e in evs if e['pid'] <= PID_MAX_LIMIT]


def names(evs, what):
    return {(e['pid'], e.get('tid')): e['args']['name'] for e in evs if e['ph'] == 'M' and e['name'] == what}


def built(prog):
    if not os.path.exists(os.path.join(BUILD, prog)):
        pytest.skip('userland/build/%s is not built' % prog)


# ---- the validator can fail ---------------------------------------------------------------------------
def _doc(*evs):
    return {'traceEvents': list(evs)}


X = {'name': 'a', 'ph': 'X', 'pid': 1, 'tid': 1, 'ts': 10, 'dur': 5}


@pytest.mark.parametrize('bad,why', [
    (_doc({'name': 'a', 'ph': 'B', 'pid': 1, 'tid': 1, 'ts': 1}), 'B without E'),
    (_doc({'name': 'a', 'ph': 'E', 'pid': 1, 'tid': 1, 'ts': 1}), 'E without B'),
    (_doc({'name': 'a', 'ph': 'B', 'pid': 1, 'tid': 1, 'ts': 1}, {'name': 'a', 'ph': 'E', 'pid': 1, 'tid': 2, 'ts': 2}),
     'E without B'),
    (_doc(dict(X, ph='Q')), 'unknown ph'),
    (_doc(dict(X, pid='1')), 'pid not an int'),
    (_doc(dict(X, tid=1.5)), 'tid not an int'),
    (_doc({'name': 'RSS', 'ph': 'C', 'pid': 1, 'ts': 1, 'args': {'kB': '12'}}), 'counter not numeric'),
    (_doc(X, {'name': 'x', 'cat': 'flow', 'id': 1, 'ph': 's', 'pid': 1, 'tid': 1, 'ts': 11}), 'has'),
    (_doc(X, {'name': 'x', 'cat': 'flow', 'id': 1, 'ph': 's', 'pid': 1, 'tid': 1, 'ts': 12},
          {'name': 'x', 'cat': 'flow', 'id': 1, 'ph': 'f', 'bp': 'e', 'pid': 1, 'tid': 1, 'ts': 11}), 'back in time'),
    (_doc(X, {'name': 'x', 'cat': 'flow', 'id': 1, 'ph': 's', 'pid': 1, 'tid': 1, 'ts': 30},
          {'name': 'x', 'cat': 'flow', 'id': 1, 'ph': 'f', 'bp': 'e', 'pid': 1, 'tid': 1, 'ts': 31}), 'outside'),
    (_doc(X, dict(X, ts=12, dur=5)), 'slices cross'),
])
def test_validator_rejects_broken_traces(bad, why):
    with pytest.raises(AssertionError, match=why):
        validate(bad)
    validate(_doc(X, dict(X, ts=11, dur=2), dict(X, ts=20)))     # nested and disjoint slices are fine


# ---- processes and threads ---------------------------------------------------------------------------
def test_forktest_has_a_track_and_an_exit_per_process(tmp_path):
    """forktest: four processes (a plain child that exits 7, one killed by SIGSEGV, a vfork child that
    exits 3), each with its name, its track and its exit; the exit codes are those the parent's wait4
    calls decoded; each child has a flow from the parent's clone/vfork call."""
    built('forktest')
    p, doc = run_traced(tmp_path, 'forktest')
    assert p.returncode == 0, p.stderr
    err = p.stderr.decode()
    assert re.search(r'trace of \d+ events written to %s: open it in https://ui.perfetto.dev' % re.escape(
        str(tmp_path / 'trace.json')), err), err
    evs = guest(validate(doc))
    pnames = names(evs, 'process_name')
    assert sorted(pid for pid, _ in pnames) == [1, 2, 3, 4] and set(pnames.values()) == {'forktest'}
    exits = {e['pid']: e['args'] for e in evs if e['name'] == 'process exit'}
    assert sorted(exits) == [1, 2, 3, 4]
    parent = [e for e in evs if e['ph'] == 'X' and (e['pid'], e['tid']) == (1, 1) and e['cat'] == 'syscall']
    waited = {}
    for e in parent:
        if e['name'] == 'wait4' and e['args']['ret'].isdigit():
            m = re.search(r'WEXITSTATUS\(s\) == (\d+)|WTERMSIG\(s\) == (\w+)', e['args']['call'])
            waited[int(e['args']['ret'])] = {'exit_code': int(m.group(1))} if m.group(1) else {'killed_by': m.group(2)}
    assert waited and all(exits[pid] == how for pid, how in waited.items()), (waited, exits)
    assert {'killed_by': 'SIGSEGV'} in exits.values() and exits[1] == {'exit_code': 0}
    made = {int(e['args']['ret']): e for e in parent if e['name'] in ('clone', 'vfork', 'fork')}
    forks = [e for e in evs if e['ph'] == 's' and e['name'] == 'fork']
    assert len(forks) == 3
    for s in forks:
        f = next(e for e in evs if e['ph'] == 'f' and e['id'] == s['id'])
        call = made[f['pid']]                         # the call that returned the child's pid
        assert call['ts'] <= s['ts'] <= call['ts'] + call['dur'] and f['tid'] == f['pid']


def test_thread_names_exec_and_kill_match_the_program(tmp_path):
    """tracenames: the names in the trace are the ones the program's tasks read back with PR_GET_NAME
    (threads renamed, children renamed), the exec'd child is named after its new program, the child
    killed by SIGKILL ends so; the program's output is the native run's."""
    built('tracenames')
    native = subprocess.run([os.path.join(BUILD, 'tracenames')], capture_output=True, timeout=60)
    p, doc = run_traced(tmp_path, 'tracenames')
    assert p.returncode == native.returncode == 0, p.stderr
    assert sorted(p.stdout.splitlines()) == sorted(native.stdout.splitlines())
    evs = guest(validate(doc))
    printed = sorted(ln.split()[1] for ln in p.stdout.decode().splitlines() if ln.startswith('name '))
    tnames = names(evs, 'thread_name')
    assert sorted(tnames.values()) == sorted(printed + ['hello'])
    threads = [tid for (pid, tid) in tnames if pid == 1]
    assert len(threads) == 3                                          # main and two workers in one process
    execs = [e for e in evs if e['name'] == 'execve' and e['ph'] == 'i']
    assert len(execs) == 1 and execs[0]['args']['comm'] == 'hello'
    assert names(evs, 'process_name')[(execs[0]['pid'], None)] == 'hello'
    renames = {(e['pid'], e['tid']): e['args']['comm'] for e in evs if e['name'] == 'rename'}
    assert sorted(renames.values()) == sorted(n for n in printed if n != 'tracenames')
    assert all(tnames[k] == v for k, v in renames.items())
    exits = {e['pid']: e['args'] for e in evs if e['name'] == 'process exit'}
    assert sorted(exits.values(), key=str) == sorted([{'exit_code': 0}, {'exit_code': 0}, {'exit_code': 5},
                                                      {'killed_by': 'SIGKILL'}], key=str)
    assert len([e for e in evs if e['name'] == 'thread exit']) == 6
    clones = [e for e in evs if e['ph'] == 's' and e['name'] == 'clone']
    assert len(clones) == 2 and all(e['pid'] == 1 for e in clones)


def test_syscall_args_are_the_strace_lines(tmp_path):
    """Each thread's system-call slices carry the call and result --strace prints, in the same order
    (one run writes both: --strace=FILE and --trace)."""
    built('forktest')
    log = tmp_path / 'strace.log'
    p, doc = run_traced(tmp_path, 'forktest', extra=['--strace=%s' % log], mounts=False)
    assert p.returncode == 0, p.stderr
    per_tid = {}
    for line in log.read_text().splitlines():
        m = re.match(r'^(?:\[pid +(\d+)\] )?(\w+\(.*\)) += (.*)$', line)
        if m:
            per_tid.setdefault(int(m.group(1) or 1), []).append((m.group(2), m.group(3)))
    evs = guest(validate(doc))
    traced = {}
    for e in sorted((e for e in evs if e['ph'] == 'X' and e['cat'] == 'syscall'), key=lambda e: e['ts']):
        traced.setdefault(e['tid'], []).append((e['args']['call'], e['args']['ret']))
    assert sorted(traced) == sorted(per_tid) == [1, 2, 3, 4]
    for tid in traced:
        assert traced[tid] == per_tid[tid], tid
    assert sum(len(v) for v in traced.values()) > 20


def test_faults_flow_to_their_disk_requests_and_back(tmp_path):
    """readahead: each major fault has a flow to the disk read it issued, and each I/O wait inside it a
    flow from the read whose completion ended it; the memory counters are numbers that move."""
    built('readahead')
    p, doc = run_traced(tmp_path, 'readahead', '/u/build/data/big.bin')
    assert p.returncode == 0, p.stderr
    evs = validate(doc)
    majors = [e for e in evs if e['ph'] == 'X' and e['pid'] == 1 and e['cat'] == 'fault'
              and e['args']['outcome'] == 'major']
    assert majors
    out = {e['id']: e for e in evs if e['ph'] == 's' and e['name'] == 'disk request'}
    back = {e['id']: e for e in evs if e['ph'] == 'f' and e['name'] == 'disk completion'}
    waits = [e for e in evs if e['ph'] == 'X' and e['pid'] == 1 and e['name'] == 'wait: io']
    waited = 0
    for fault in majors:
        lo, hi = fault['ts'], fault['ts'] + fault['dur']
        assert any(lo - EPS <= s['ts'] <= hi + EPS and s['tid'] == fault['tid'] for s in out.values()), fault
        for w in waits:          # an I/O wait in the fault ends with a flow from the read it waited for
            a, b = w['ts'], w['ts'] + w['dur']
            if lo <= a and b <= hi + EPS:
                waited += 1
                assert any(a <= f['ts'] <= b + EPS and f['tid'] == fault['tid'] for f in back.values()), w
    assert waited > 0
    dests = [e for e in evs if e['ph'] == 'f' and e['name'] == 'disk request']
    assert dests and all(e['pid'] == PID_DISK for e in dests)
    free = [e['args']['kB'] for e in evs if e['ph'] == 'C' and e['pid'] == PID_MEMORY and e['name'] == 'MemFree']
    cached = [e['args']['kB'] for e in evs if e['ph'] == 'C' and e['pid'] == PID_MEMORY and e['name'] == 'Cached']
    rss = [e['args']['kB'] for e in evs if e['ph'] == 'C' and e['pid'] == 1 and e['name'] == 'RSS']
    assert len(set(free)) > 2 and max(cached) > min(cached) and max(rss) > 0


def test_userfaultfd_waits_are_slices_woken_by_the_handler(tmp_path):
    """uffdtest: a fault that handle_userfault put to sleep is a `userfaultfd wait` slice on the
    faulting thread, and the thread that resolved it (UFFDIO_COPY ...) has a flow to it."""
    built('uffdtest')
    p, doc = run_traced(tmp_path, 'uffdtest', mounts=False)
    assert p.returncode == 0, p.stderr
    evs = guest(validate(doc))
    waits = [e for e in evs if e['ph'] == 'X' and e['name'] == 'userfaultfd wait']
    assert len(waits) > 10
    faults = [e for e in evs if e['ph'] == 'X' and e['name'] == 'page fault: handle_userfault']
    assert len(faults) >= len(waits)
    for w in waits[:20]:     # each starts where a handle_userfault fault on its thread ended
        assert any(f['tid'] == w['tid'] and abs(f['ts'] + f['dur'] - w['ts']) < EPS for f in faults), w
    wakes = [e for e in evs if e['name'] == 'uffd wake']
    assert wakes and all(e['tid'] != f['tid'] for e in wakes if e['ph'] == 's'
                         for f in wakes if f['ph'] == 'f' and f['id'] == e['id'])


def _trace_processor():
    """The perfetto package's TraceProcessor, or why it cannot run here."""
    try:
        from perfetto.trace_processor import TraceProcessor, TraceProcessorConfig
    except ImportError:
        return None, 'the perfetto package is not installed (pip install faultlab[trace])'
    return (TraceProcessor, TraceProcessorConfig), None


def test_perfetto_trace_processor_reads_thread_names(tmp_path):
    """Perfetto's own trace processor loads the file and finds the threads by name."""
    built('tracenames')
    tp, why = _trace_processor()
    if tp is None:
        pytest.skip(why)
    p, doc = run_traced(tmp_path, 'tracenames')
    TraceProcessor, TraceProcessorConfig = tp
    try:
        proc = TraceProcessor(trace=str(tmp_path / 'trace.json'), config=TraceProcessorConfig(load_timeout=20))
    except Exception as e:       # it fetches trace_processor_shell on first use: offline it cannot
        pytest.skip('the trace processor binary is not available here: %s' % str(e).splitlines()[0][:200])
    try:
        rows = list(proc.query('select thread.tid as tid, thread.name as name from thread'))
        got = {r.tid: r.name for r in rows}
    finally:
        proc.close()
    want = names(guest(doc['traceEvents']), 'thread_name')
    for (pid, tid), name in want.items():
        assert got.get(tid) == name


def test_tracing_tasks_changes_no_counter(tmp_path):
    """tracenames traced (its syscall arguments decoded from memory, counters sampled) counts the same
    instructions, cycles and faults as untraced: the tracer only looks."""
    built('tracenames')

    def run(trace):
        m = Machine(ram=64 << 20, config=KernelConfig(stdout=lambda b: None, stderr=lambda b: None,
                                                      mounts=[(os.path.join(ROOT, 'userland'), '/u', True)]))
        tr = None
        if trace:
            tr = ChromeTrace(str(tmp_path / 't.json'), m)
            m.kernel.set_tracer(tr)
        res = m.run('/u/build/tracenames', ['tracenames'], [])
        if tr is not None:
            tr.close(res)
        return res
    plain, traced = run(False), run(True)
    assert plain.exit_code == traced.exit_code == 0
    assert traced.stats == plain.stats
    evs = validate(json.load(open(tmp_path / 't.json')))
    assert any(e['ph'] == 'X' and e.get('cat') == 'syscall' and e['pid'] == 1 for e in evs)


def test_two_cpus(tmp_path):
    """On 2 CPUs the trace still follows the rules (threads run at once, each CPU's clock its own) and
    names the same tasks; both CPU tracks have slices."""
    built('tracenames')
    p, doc = run_traced(tmp_path, 'tracenames', extra=['--cpus', '2'])
    assert p.returncode == 0, p.stderr
    evs = validate(doc)
    assert {e['tid'] for e in evs if e['ph'] == 'X' and e['pid'] == PID_CPUS} == {0, 1}
    assert sorted(names(guest(evs), 'thread_name').values()) == sorted(
        ['tracenames', 'tn-worker-0', 'tn-worker-1', 'hello', 'tn-child', 'tn-victim'])
