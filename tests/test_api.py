"""The Python API (import faultlab): runs compared with native ones, the fault records against the counters,
captured and streamed output, limits, bad options, a user's tracer, and the README's example."""
import collections
import importlib
import io
import os
import pydoc
import re
import subprocess
import sys

import pytest

import faultlab
from conftest import BUILD, DATA, ROOT, assert_no_violation, run_native

HELLO = os.path.join(BUILD, 'hello')
READAHEAD = os.path.join(BUILD, 'readahead')
DATA_MOUNT = [DATA + ':/data']


def guest(*args, **kw):
    """faultlab.run, then (under FAULTLAB_CHECK) the invariant checker's verdict, as run_guest does."""
    run = faultlab.run(*args, **kw)
    assert_no_violation(run.machine)
    return run


def outcomes(run):
    """How many fault records have each outcome."""
    return collections.Counter(f.outcome for f in run.faults)


def assert_records_match_counters(run):
    """The minor/major fault records are exactly the faults the counters counted."""
    n = outcomes(run)
    assert n['minor'] == run.stats['minor_faults']
    assert n['major'] == run.stats['major_faults']
    assert sum(f.major for f in run.faults) == run.stats['major_faults']


def test_hello_matches_native(userland):
    code, out, err = run_native(HELLO, ['one', 'two words'], env=['FAULTLAB_TEST=api'])
    run = guest(HELLO, ['one', 'two words'], ram='64M', env={'FAULTLAB_TEST': 'api'})
    assert (run.exit_code, run.stdout, run.stderr) == (code, out, err)
    assert b'FAULTLAB_TEST=api' in run.stdout and run.report is None and run.stop_reason is None
    assert run.stats['instructions'] > 0 and run.stats['syscalls'] > 0


def test_output_is_captured_not_written_to_the_host(userland, capfd):
    run = guest(HELLO, ['quiet'])
    assert b'argv[1]=quiet' in run.stdout
    out, err = capfd.readouterr()
    assert out == '' and err == ''


def test_stderr_and_exit_status_match_native(userland):
    code, out, err = run_native(READAHEAD)
    run = guest(READAHEAD, [], faultlab.Options(ram='64M'))
    assert code == 2 and err.startswith(b'usage')
    assert (run.exit_code, run.stdout, run.stderr) == (code, out, err)


def test_mounted_file_major_faults_are_recorded(userland):
    code, out, _ = run_native(READAHEAD, [os.path.join(DATA, 'big.bin')])
    run = guest(READAHEAD, ['/data/big.bin'], faultlab.Options(ram='64M', mounts=DATA_MOUNT))
    assert (run.exit_code, run.stdout) == (code, out) and code == 0
    assert run.stats['major_faults'] > 0
    assert_records_match_counters(run)
    # a major fault waited for the disk; a fault record's time lies within the run
    major = [f for f in run.faults if f.major]
    assert all(f.cycles > 0 and f.handler for f in major)
    assert all(0 <= f.start <= f.end <= run.stats['cycles'] for f in run.faults)
    assert max(f.cycles for f in major) > max(f.cycles for f in run.faults if f.outcome == 'minor')


def test_anonymous_faults_are_recorded_one_per_page(userland):
    run = guest(os.path.join(BUILD, 'pagetouch'), ['2', 'w'], ram='64M')
    assert run.exit_code == 0 and b'pages 512' in run.stdout
    assert_records_match_counters(run)
    heap = [f for f in run.faults if f.handler == 'do_anonymous_page' and f.access == 'write']
    assert len({f.address >> 12 for f in heap}) >= 512


def test_records_without_the_native_fast_path_match_with_it(userland):
    """Recording faults turns off the CPU's native fast faults; the run and its counters do not change."""
    args = (os.path.join(BUILD, 'pagetouch'), ['1', 'w'])
    recorded = guest(*args, ram='64M')
    fast = guest(*args, ram='64M', faults=False)
    assert fast.faults is None
    assert recorded.stdout == fast.stdout
    for key in ('instructions', 'cycles', 'minor_faults', 'major_faults'):
        assert recorded.stats[key] == fast.stats[key], key


def test_handled_signals_are_fault_records(userland):
    code, out, _ = run_native(os.path.join(BUILD, 'sigsegv'))
    run = guest(os.path.join(BUILD, 'sigsegv'), ram='64M')
    assert (run.exit_code, run.stdout) == (code, out)
    assert_records_match_counters(run)
    assert outcomes(run)['signal'] >= 3


def test_threads_on_two_cpus(userland):
    run = guest(os.path.join(BUILD, 'spfrace'), ['race', '50'], ram='64M', cpus=2)
    assert run.exit_code == 0
    assert_records_match_counters(run)
    assert {f.cpu for f in run.faults} == {0, 1}
    assert len({f.tid for f in run.faults}) > 1


def test_streaming_gives_the_captured_bytes(userland):
    args = (READAHEAD, ['/data/big.bin'])
    opts = faultlab.Options(ram='64M', mounts=DATA_MOUNT)
    captured = guest(*args, opts, faults=False)
    chunks = []
    called = guest(*args, opts, stdout=chunks.append, faults=False)
    binary = io.BytesIO()
    to_binary = guest(*args, opts, stdout=binary, faults=False)
    text = io.StringIO()
    to_text = guest(*args, opts, stdout=text, faults=False)
    assert captured.stdout and captured.stdout.startswith(b'size 1048699')
    assert called.stdout is None and to_binary.stdout is None and to_text.stdout is None
    assert b''.join(chunks) == binary.getvalue() == text.getvalue().encode() == captured.stdout
    assert called.stats['cycles'] == captured.stats['cycles']


def test_stdout_and_stderr_to_one_file_keep_their_order(userland, tmp_path):
    path = tmp_path / 'out'
    with open(path, 'wb') as f:
        run = guest(READAHEAD, ['/nonexistent'], stdout=f, stderr=f)
    code, out, err = run_native(READAHEAD, ['/nonexistent'])
    assert run.exit_code == code and path.read_bytes() == out + err


def test_instruction_limit_stops_the_run(userland):
    run = guest(os.path.join(BUILD, 'compute'), max_insns=200_000)
    assert run.exit_code == 124
    assert run.stop_reason.startswith('instruction limit reached') and run.report == run.stop_reason
    assert 200_000 <= run.stats['instructions'] < 200_000 + 1000


def test_simulated_time_limit_stops_the_run(userland):
    run = guest(os.path.join(BUILD, 'compute'), max_sim_seconds=0.001)
    assert run.exit_code == 124 and run.stop_reason.startswith('simulated-time limit reached')
    assert 0.001 <= run.stats['sim_seconds'] < 0.01


def test_host_timeout_stops_the_run(userland):
    run = guest(os.path.join(BUILD, 'compute'), ['50'], timeout=0.5, faults=False)
    assert run.exit_code == 124 and run.stop_reason.startswith('host time limit reached')


def test_a_program_that_cannot_run(userland):
    with pytest.raises(faultlab.ExecError):
        guest(os.path.join(DATA, 'small.txt'))


class SyscallCounter(faultlab.Tracepoints):
    def __init__(self):
        self.entries = self.exits = self.fault_exits = 0

    def syscall_entry(self, kernel, task, nr):
        self.entries += 1

    def syscall_exit(self, kernel, task, nr, ret):
        self.exits += 1

    def page_fault_exit(self, kernel, rip, address, error_code, info):
        assert isinstance(info, faultlab.FaultInfo)
        self.fault_exits += 1


def test_a_tracer_of_ones_own(userland):
    counter = SyscallCounter()
    run = guest(HELLO, tracer=counter)
    assert counter.entries == run.stats['syscalls'] > 0
    assert counter.exits >= counter.entries - 1         # exit_group does not return
    assert counter.fault_exits == len(run.faults)


@pytest.mark.parametrize('kw, error, words', [
    ({'ram': 'lots'}, ValueError, 'ram'),
    ({'ram': -1}, ValueError, 'ram'),
    ({'ram': 1.5}, TypeError, 'ram'),
    ({'cpus': 0}, ValueError, 'cpus'),
    ({'cpus': '2'}, TypeError, 'cpus'),
    ({'hugepages': -1}, ValueError, 'hugepages'),
    ({'fault_around_bytes': 3000}, ValueError, 'fault_around_bytes'),
    ({'platform': 'cloud'}, ValueError, 'platform'),
    ({'costs': {'no_such_cost': 1}}, ValueError, 'no_such_cost'),
    ({'costs': 5}, TypeError, 'costs'),
    ({'disk': 'queue_depth=0'}, ValueError, 'queue_depth'),
    ({'disk': {'speed': 1}}, ValueError, 'speed'),
    ({'mounts': ['/no/such/dir:/data']}, ValueError, '/no/such/dir'),
    ({'mounts': ['relative']}, ValueError, 'relative'),
    ({'mounts': '/tmp:/data'}, TypeError, 'mounts'),
    ({'sysroot': '/no/such/root'}, ValueError, 'sysroot'),
    ({'user': 'nobody'}, ValueError, 'nobody'),
    ({'sysctls': ['vm.overcommit_memory']}, ValueError, 'overcommit'),
    ({'spf': 'yes'}, TypeError, 'spf'),
    ({'check': 'sometimes'}, ValueError, 'check'),
    ({'colour': 'blue'}, TypeError, 'colour'),
])
def test_a_bad_option_is_a_one_line_error(kw, error, words):
    with pytest.raises(error) as e:
        faultlab.Options(**kw)
    assert words in str(e.value) and '\n' not in str(e.value)


@pytest.mark.parametrize('kw, error, words', [
    ({'max_insns': 0}, ValueError, 'max_insns'),
    ({'max_insns': 1.5}, TypeError, 'max_insns'),
    ({'max_sim_seconds': -1}, ValueError, 'max_sim_seconds'),
    ({'timeout': 'soon'}, TypeError, 'timeout'),
    ({'stdout': 42}, TypeError, 'stdout'),
    ({'env': 'A=B'}, TypeError, 'env'),
    ({'args': 'one'}, TypeError, 'args'),
    ({'tracer': object()}, TypeError, 'tracer'),
    ({'faults': 'all'}, TypeError, 'faults'),
    ({'cpus': 99}, ValueError, 'cpus'),
    ({'options': {'ram': '64M'}}, TypeError, 'options'),
])
def test_a_bad_run_argument_is_a_one_line_error(userland, kw, error, words):
    with pytest.raises(error) as e:
        guest(HELLO, **kw)
    assert words in str(e.value) and '\n' not in str(e.value)


def test_options_are_normalised_and_replaced():
    opts = faultlab.Options(ram='64M', swap='1g', fault_around_bytes='16k', sysctls={'vm.overcommit_memory': 1},
                            mounts=[(DATA, '/data')], disk={'read_latency_us': 100})
    assert (opts.ram, opts.swap, opts.fault_around_bytes) == (64 << 20, 1 << 30, 16 << 10)
    assert opts.mounts == ((DATA, '/data', True),) and opts.sysctls == (('vm.overcommit_memory', '1'),)
    assert opts.disk.read_latency_us == 100.0
    two = opts.replace(cpus=2)
    assert two.cpus == 2 and two.ram == opts.ram and opts.cpus == 1
    with pytest.raises(ValueError):
        opts.replace(cpus=65)


def test_a_machine_needs_somewhere_for_its_output():
    """Options.machine never leaves the guest's output on the host's stdout (KernelConfig's None)."""
    with pytest.raises(TypeError, match='stdout'):
        faultlab.Options().machine(None, print, print)


def test_options_reach_the_machine(userland):
    run = guest(HELLO, ram='32M', cpus=3, platform='vm', costs={'freq_hz': 2_000_000_000},
                       user='1000:1000', hugepages=2)
    kernel = run.machine.kernel
    assert run.exit_code == 0 and run.stats['nr_cpus'] == 3 and run.stats['freq_hz'] == 2_000_000_000
    assert run.machine.phys.nr_frames * 4096 == 32 << 20
    assert kernel.costs.platform == 'vm' and kernel.config.cred.uid == 1000
    assert kernel.config.nr_hugepages == 2


def test_help_shows_the_api():
    text = pydoc.render_doc(faultlab, renderer=pydoc.plaintext)
    for name in ('Options', 'run(', 'Run', 'Fault', 'Tracepoints', 'ExecError', 'max_insns', 'stdout'):
        assert name in text, name
    assert set(faultlab.__all__) <= set(dir(faultlab))


def test_import_loads_neither_the_cli_nor_the_tools():
    code = ('import sys, faultlab; print(" ".join(m for m in sys.modules if m.split(".")[:2] in '
            '(["faultlab", p] for p in ("cli", "commands", "gdb", "observe", "bench", "selftests"))))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ''


def readme_example():
    """The first python code block of the README's "Python API" section."""
    text = open(os.path.join(ROOT, 'README.md')).read()
    section = text.split('\n## Python API\n', 1)[1].split('\n## ', 1)[0]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)


def test_readme_example_runs(userland, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    exec(compile(readme_example(), 'README.md', 'exec'), {})
    out = capsys.readouterr().out
    code, native, _ = run_native(READAHEAD, [os.path.join(DATA, 'big.bin')])
    assert out.startswith('exit 0\n' + native.decode())
    faults = re.search(r'minor (\d+), major (\d+)', out)
    assert int(faults.group(2)) > 0
    assert re.search(r"^exec 0x[0-9a-f]+ rip=0x[0-9a-f]+: major do_read_fault, \d+ cycles$", out, re.M)


def architecture_section():
    text = open(os.path.join(ROOT, 'README.md')).read()
    return text.split('\n## Architecture\n', 1)[1].split('\n## ', 1)[0]


def source_text():
    """Every Python source of the package, concatenated, and the names of its modules (dotted from
    their package folder)."""
    parts, modules = [], set()
    for folder in ('emu', 'kernel', 'vdso'):
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, folder)):
            rel = os.path.relpath(dirpath, os.path.join(ROOT, folder)).replace(os.sep, '.')
            for f in files:
                if f.endswith('.py'):
                    parts.append(open(os.path.join(dirpath, f)).read())
                    modules.add(f[:-3] if rel == '.' else rel + '.' + f[:-3])
    return '\n'.join(parts), modules


def resolves(dotted):
    """True if dotted names a module of faultlab or an attribute of one."""
    try:
        importlib.import_module(dotted)
        return True
    except ModuleNotFoundError:
        module, _, attr = dotted.rpartition('.')
        return hasattr(importlib.import_module(module), attr)


def test_architecture_names_what_is_there():
    """Every path and every function, class or cost the README's Architecture section names exists."""
    section = architecture_section()
    src, modules = source_text()
    missing = []
    for token in re.findall(r'`([^`\s]+)`', section):
        if '/' in token or re.search(r'\.(py|S|toml)$', token):
            if not any(os.path.exists(os.path.join(ROOT, base, token)) for base in ('', 'emu', 'emu/core', 'kernel',
                                                                                    'kernel/arch', 'kernel/mm',
                                                                                    'kernel/block', 'vdso')):
                missing.append(token)
            continue
        name = token.rsplit('.', 1)[-1]
        if not re.fullmatch(r'[A-Za-z_]\w*', name):
            continue
        if token.startswith('faultlab'):
            if not resolves(token):
                missing.append(token)
            continue
        if token in modules:
            continue
        if not re.search(r'(def|class) %s\b|\b%s = |[\'"]%s[\'"]' % ((re.escape(name),) * 3), src):
            missing.append(token)
    assert not missing, missing
