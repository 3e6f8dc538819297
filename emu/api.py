"""The Python API: describe a machine (Options), run one program on it (run) and read how it went (Run).

    import faultlab
    run = faultlab.run('userland/build/hello', ['world'], faultlab.Options(ram='64M'))
    run.exit_code, run.stdout, run.stats['minor_faults'], run.faults[0]

Each call boots a new machine (faultlab.machine.Machine: physical memory, the CPU, the kernel), runs the
program as its first process until it exits or a limit stops it, and returns a Run. The guest's output is
captured unless a callable or a file object is given to stream it; it never goes to the host's stdout
unless that is the file object given.
"""
import dataclasses
import io
import os
from dataclasses import dataclass

from faultlab.core.cycles import CostTable, platform_profile
from faultlab.faults import FaultRecorder
from faultlab.kernel.block.params import DiskParams
from faultlab.kernel.fs import parse_mount_spec
from faultlab.kernel.kernel import KernelConfig
from faultlab.kernel.sysctl_args import parse_sysctl_arg
from faultlab.kernel.tracepoints import Tracepoints, TracepointTee
from faultlab.kernel.usercred import parse_user_spec, user_cred
from faultlab.machine import DEFAULT_RAM, Machine, interrupt_on_sigint

__all__ = ['Options', 'Run', 'run']

_SIZE_UNITS = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}
MAX_CPUS = 64
# The guest's environment when the caller gives none (added to when it gives some).
DEFAULT_ENV = ['PATH=/bin:/usr/bin', 'HOME=/home', 'LANG=C', 'TERM=dumb']


def parse_size(name, value):
    """Bytes from an int or a string like '256M', '1G', '64k', '65536' (TypeError/ValueError naming the option)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError('%s: expected a size in bytes (int) or a string like "256M", got %r' % (name, value))
    if isinstance(value, str):
        text = value.strip().upper().removesuffix('B').removesuffix('I')
        mult = _SIZE_UNITS.get(text[-1:], 1)
        text = text[:-1] if text[-1:] in _SIZE_UNITS else text
        try:
            value = int(text, 0) * mult
        except ValueError:
            raise ValueError('%s: not a size: %r (examples: 256M, 1G, 65536)' % (name, value)) from None
    if value < 0:
        raise ValueError('%s: a size must not be negative, got %d' % (name, value))
    return value


def check_int(name, value, lo=None, hi=None):
    """value itself if it is an int within [lo, hi] (TypeError/ValueError naming the option)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError('%s: expected an int, got %r' % (name, value))
    if hi is not None and not lo <= value <= hi:
        raise ValueError('%s must be between %d and %d, got %d' % (name, lo, hi, value))
    if lo is not None and value < lo:
        raise ValueError('%s must be %d or more, got %d' % (name, lo, value))
    return value


def check_bool(name, value):
    """value itself if it is a bool (TypeError naming the option)."""
    if not isinstance(value, bool):
        raise TypeError('%s: expected True or False, got %r' % (name, value))
    return value


def check_limit(name, value):
    """None, or a positive number (a run limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError('%s: expected a number, got %r' % (name, value))
    if not value > 0:
        raise ValueError('%s must be positive, got %r' % (name, value))
    return value


def parse_mount(spec):
    """(host, guest, readonly) from 'HOST:GUEST[:rw|:ro]', (host, guest) or (host, guest, readonly)."""
    if isinstance(spec, str):
        host, guest, readonly = parse_mount_spec(spec)
    elif isinstance(spec, (tuple, list)) and len(spec) in (2, 3):
        host, guest, readonly = (tuple(spec) + (True,))[:3]
        if not all(isinstance(p, (str, os.PathLike)) for p in (host, guest)):
            raise TypeError('mounts: expected (host path, guest path[, readonly]), got %r' % (spec,))
        host, guest, _ = parse_mount_spec('%s:%s' % (os.fspath(host), os.fspath(guest)))
        readonly = check_bool('mounts: readonly', readonly)
    else:
        raise TypeError('mounts: expected "HOST:GUEST[:rw]" or (host, guest[, readonly]), got %r' % (spec,))
    if not os.path.exists(host):
        raise ValueError('mounts: host path %s does not exist' % host)
    if not (os.path.isdir(host) or os.path.isfile(host)):
        raise ValueError('mounts: host path %s is neither a directory nor a regular file' % host)
    return host, guest, readonly


def check_fault_around(value):
    """fault_around_bytes in bytes: a power of two (0 and 4096 turn fault-around off)."""
    size = parse_size('fault_around_bytes', value)
    if size & (size - 1):
        raise ValueError('fault_around_bytes must be a power of two, got %d' % size)
    return size


def check_sysroot(path):
    """The sysroot as a str: an existing directory."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError('sysroot: expected a directory path, got %r' % (path,))
    if not os.path.isdir(path):
        raise ValueError('sysroot: %s is not a directory' % os.fspath(path))
    return os.fspath(path)


def parse_mounts(mounts):
    """A tuple of (host, guest, readonly) from a list of mounts (each as parse_mount takes it)."""
    if isinstance(mounts, str):
        raise TypeError('mounts: expected a list of mounts, got the string %r (put it in a list)' % mounts)
    return tuple(parse_mount(m) for m in mounts)


def parse_sysctls(sysctls):
    """((name, value), ...) from {name: value}, 'NAME=VALUE' strings (as --sysctl) or (name, value) pairs."""
    if isinstance(sysctls, dict):
        sysctls = sysctls.items()
    if isinstance(sysctls, str):
        raise TypeError('sysctls: expected {name: value} or a list of "NAME=VALUE" strings, got %r' % sysctls)
    return tuple(parse_sysctl_arg(s if isinstance(s, str) else _sysctl_text(s)) for s in sysctls)


def _sysctl_text(pair):
    """'NAME=VALUE' of a (name, value) pair."""
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[0], str)):
        raise TypeError('sysctls: expected "NAME=VALUE" or (name, value), got %r' % (pair,))
    return '%s=%s' % tuple(pair)


def parse_disk(disk):
    """DiskParams from None (the default NVMe disk), a DiskParams, {name: value} or 'name=value,...'."""
    if disk is None:
        return DiskParams()
    if isinstance(disk, DiskParams):
        return disk
    if isinstance(disk, dict):
        return DiskParams.from_dict(disk)
    if isinstance(disk, str):
        return DiskParams.parse(disk)
    raise TypeError('disk: expected {name: value} or "name=value,...", got %r' % (disk,))


def cost_table(costs, platform):
    """The CostTable of a platform with overrides from {name: cycles} or a file (JSON or name = value lines)."""
    try:
        platform_profile(platform)
    except ValueError as e:
        raise ValueError('platform: %s' % e) from None
    if costs is None or isinstance(costs, dict):
        return CostTable(costs, platform=platform)
    if isinstance(costs, (str, os.PathLike)):
        return CostTable.from_file(os.fspath(costs), platform)
    raise TypeError('costs: expected {name: cycles} or the path of a cost file, got %r' % (costs,))


def parse_user(user):
    """The first process's credentials from None (root), a uid or 'UID[:GID[,GROUP...]]' (as --user)."""
    if user is None:
        return None
    if isinstance(user, int) and not isinstance(user, bool):
        user = str(user)
    if not isinstance(user, str):
        raise TypeError('user: expected a uid or "UID[:GID[,GROUP...]]", got %r' % (user,))
    return user_cred(*parse_user_spec(user))


@dataclass(frozen=True)
class Options:
    """The machine a program runs on; every option of `faultlab run` that describes the machine.

    Sizes are bytes or strings like '64M'. Checked when made: a bad value is a ValueError, a value of
    the wrong type a TypeError, each with a one-line message naming the option.

    ram, swap: guest RAM (default 256M) and the swap area on the simulated disk (default 256M, 0: none)
    cpus: simulated CPUs (1-64); hugepages: 2 MiB pages in the hugetlb pool at boot
    disk: the disk model, {name: value} or 'read_latency_us=100,queue_depth=8' (DiskParams' fields)
    fault_around_bytes: fault-around window of file read faults (a power of two; 4096 or 0 disables)
    platform, costs: the cost table ('bare-metal' or 'vm') and overrides ({name: cycles} or a file)
    mounts: host files or directories the guest sees: 'HOST:GUEST[:rw]' or (host, guest[, readonly])
    sysroot: where dynamically linked programs' libraries come from (default '/', the host's)
    user: the first process's ids, 'UID[:GID[,GROUP...]]' (default root); sysctls: {name: value} at boot
    seed: getrandom and AT_RANDOM; spf, spf_file, munmap_downgrade, native_faults: as the CLI flags
    check: verify the kernel's mm invariants (True, 'full' after every trap; None: FAULTLAB_CHECK)
    disk_image: a host file that holds the simulated disk and keeps its root filesystem across runs
      (None: a temporary file, deleted at exit)
    """
    ram: object = DEFAULT_RAM
    swap: object = 256 << 20
    cpus: int = 1
    hugepages: int = 0
    disk: object = None
    fault_around_bytes: object = 65536
    platform: str = 'bare-metal'
    costs: object = None
    mounts: tuple = ()
    sysroot: object = '/'
    user: object = None
    sysctls: object = ()
    seed: int = 0
    spf: bool = True
    spf_file: bool = False
    munmap_downgrade: bool = False
    native_faults: bool = True
    check: object = None
    disk_image: object = None

    def __post_init__(self):
        """Check every option and store it in its normal form (sizes in bytes, tuples, DiskParams)."""
        for name, value in self._normal_forms():
            object.__setattr__(self, name, value)
        self.cost_table()
        parse_user(self.user)

    def _normal_forms(self):
        """[(name, value)] of the options that have a normal form, each checked."""
        check_int('cpus', self.cpus, 1, MAX_CPUS)
        check_int('hugepages', self.hugepages, 0)
        check_int('seed', self.seed)
        for name in ('spf', 'spf_file', 'munmap_downgrade', 'native_faults'):
            check_bool(name, getattr(self, name))
        if self.check not in (None, False, True, 'full'):
            raise ValueError("check: expected None, False, True or 'full', got %r" % (self.check,))
        if self.disk_image is not None and (not isinstance(self.disk_image, (str, os.PathLike))
                                            or not os.fspath(self.disk_image)):
            raise ValueError('disk_image: expected a file name, got %r' % (self.disk_image,))
        return [('ram', parse_size('ram', self.ram)), ('swap', parse_size('swap', self.swap)),
                ('fault_around_bytes', check_fault_around(self.fault_around_bytes)),
                ('disk', parse_disk(self.disk)), ('mounts', parse_mounts(self.mounts)),
                ('sysctls', parse_sysctls(self.sysctls)), ('sysroot', check_sysroot(self.sysroot))]

    def replace(self, **changes):
        """A copy with some options changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def cost_table(self):
        """The cycle costs of this machine (faultlab.core.cycles.CostTable)."""
        return cost_table(self.costs, self.platform)

    def kernel_config(self, stdout, stderr, warn):
        """The KernelConfig of this machine; stdout, stderr: callable(bytes), warn: callable(str)."""
        extra = {} if self.check is None else {'check': self.check}
        return KernelConfig(sysctls=list(self.sysctls), cred=parse_user(self.user), disk=self.disk,
                            fault_around_bytes=self.fault_around_bytes, mounts=list(self.mounts),
                            seed=self.seed, stdout=stdout, stderr=stderr, warn=warn, swap_bytes=self.swap,
                            cpus=self.cpus, spf=self.spf, spf_file=self.spf_file, nr_hugepages=self.hugepages,
                            munmap_downgrade=self.munmap_downgrade, native_faults=self.native_faults,
                            sysroot=self.sysroot, disk_image=self.disk_image, **extra)

    def machine(self, stdout, stderr, warn):
        """A new faultlab.machine.Machine (RAM, CPU, kernel) with these options; stdout and stderr are
        callables that receive the guest's output as bytes, warn one that receives kernel warnings."""
        for name, sink in (('stdout', stdout), ('stderr', stderr), ('warn', warn)):
            if not callable(sink):
                raise TypeError('%s: expected a callable, got %r' % (name, sink))
        return Machine(ram=self.ram, costs=self.cost_table(), config=self.kernel_config(stdout, stderr, warn))


class Run:
    """How one run ended.

    exit_code: the guest's exit status (128+N after a fatal signal N, 124 when a limit stopped it)
    stdout, stderr: the captured output (bytes), or None where it was streamed
    stats: the counters (what `faultlab run --stats-json` writes: instructions, cycles, minor_faults,
      major_faults, disk_reads, fault_breakdown, ...)
    faults: the page faults in order (faultlab.Fault records), or None when not recorded
    stop_reason: why a limit stopped the run (None when the program ended by itself)
    report: the one-line report of a fatal signal, a deadlock or a limit (None after a normal exit)
    signal: the number of the signal that killed the program, or None
    warnings: the kernel's one-line warnings (a system call it does not implement, ...)
    machine: the faultlab.machine.Machine after the run, to look into its kernel (it holds the
      guest's memory as long as the Run is kept)
    """
    __slots__ = ('exit_code', 'stdout', 'stderr', 'stats', 'faults', 'stop_reason', 'report', 'signal',
                 'warnings', 'machine')

    def __init__(self, result, stdout, stderr, faults, warnings, machine):
        self.exit_code = result.exit_code
        self.stdout, self.stderr = stdout, stderr
        self.stats = result.stats
        self.faults = faults
        self.stop_reason = result.stop_reason
        self.report = result.report
        self.signal = result.killed_by[0] if result.killed_by else None
        self.warnings = warnings
        self.machine = machine

    def __repr__(self):
        parts = ['exit_code=%d' % self.exit_code]
        for name in ('stdout', 'stderr'):
            data = getattr(self, name)
            if data is not None:
                parts.append('%s=<%d bytes>' % (name, len(data)))
        if self.faults is not None:
            parts.append('faults=<%d>' % len(self.faults))
        if self.report is not None:
            parts.append('report=%r' % self.report)
        return 'Run(%s)' % ', '.join(parts)


class _Sink:
    """Where one output stream goes: captured, a callable, or a file object."""

    def __init__(self, name, target):
        self.chunks = None
        self.file = None
        if target is None:
            self.chunks = []
            self.write = self.chunks.append
        elif callable(target):
            self.write = target
        elif callable(getattr(target, 'write', None)):
            self.file = target
            self.write = _file_writer(target)
        else:
            raise TypeError('%s: expected None (capture), a callable or a file object, got %r' % (name, target))

    def captured(self):
        """The captured bytes, or None when streamed."""
        return b''.join(self.chunks) if self.chunks is not None else None

    def flush(self):
        if self.file is not None and callable(getattr(self.file, 'flush', None)):
            self.file.flush()


def _file_writer(f):
    """callable(bytes) writing to f: a binary file as is, a text file's binary buffer (after its own
    pending text), or a text file without one (io.StringIO) decoded as UTF-8 with invalid bytes replaced."""
    if not isinstance(f, io.TextIOBase) and not hasattr(f, 'encoding'):
        return f.write
    buffer = getattr(f, 'buffer', None)
    if buffer is None:
        return lambda data: f.write(data.decode('utf-8', 'replace'))

    def write(data):
        f.flush()
        buffer.write(data)
    return write


def _environment(env):
    """The guest environment: the CLI's default one plus env ({name: value} or 'NAME=VALUE' strings)."""
    if env is None:
        return list(DEFAULT_ENV)
    if isinstance(env, dict):
        env = ['%s=%s' % item for item in env.items()]
    if isinstance(env, str) or not all(isinstance(e, str) and '=' in e for e in env):
        raise TypeError('env: expected {name: value} or a list of "NAME=VALUE" strings, got %r' % (env,))
    return list(DEFAULT_ENV) + list(env)


def _arguments(program, args):
    """argv: the program's base name, then args (a list of strings)."""
    if not isinstance(program, (str, os.PathLike)):
        raise TypeError('program: expected a path, got %r' % (program,))
    if isinstance(args, str) or not all(isinstance(a, str) for a in args):
        raise TypeError('args: expected a list of strings, got %r' % (args,))
    return [os.path.basename(os.fspath(program))] + list(args)


def _tracer(recorder, tracer):
    """The observer to attach: the fault recorder, the user's tracer, both, or None."""
    if tracer is not None and not isinstance(tracer, Tracepoints):
        raise TypeError('tracer: expected a faultlab.Tracepoints subclass instance, got %r' % (tracer,))
    observers = [o for o in (recorder, tracer) if o is not None]
    if len(observers) > 1:
        return TracepointTee(observers)
    return observers[0] if observers else None


def _options(options, option_values):
    """The Options of a run: options, with the keyword options applied (or only those)."""
    if options is None:
        return Options(**option_values)
    if not isinstance(options, Options):
        raise TypeError('options: expected a faultlab.Options, got %r' % (options,))
    return options.replace(**option_values) if option_values else options


def _limits(max_insns, max_sim_seconds, timeout):
    """The run's limits, checked: [max_insns, max_sim_seconds, timeout], None where there is none."""
    if max_insns is not None:
        check_int('max_insns', max_insns, 1)
    return [max_insns, check_limit('max_sim_seconds', max_sim_seconds), check_limit('timeout', timeout)]


def run(program, args=(), options=None, *, env=None, stdout=None, stderr=None, faults=True, tracer=None,
        max_insns=None, max_sim_seconds=None, timeout=None, **option_values):
    """Boot a machine and run program (a host path, or a path inside the guest) with args until it ends.

    options: an Options, or give its fields as keywords (run(prog, ram='64M', cpus=2)).
    env: added to the default environment (PATH, HOME, LANG, TERM): {name: value} or 'NAME=VALUE' strings.
    stdout, stderr: None captures the output into Run.stdout/Run.stderr (bytes); a callable receives it
      as bytes as the guest writes; a file object (binary or text, e.g. sys.stdout) gets it written.
    faults: record every page fault (Run.faults); this turns off the CPU's native fast faults, which
      changes no result. tracer: your own faultlab.Tracepoints observer, attached to the kernel.
    max_insns, max_sim_seconds, timeout (host seconds): limits; one that is reached stops the run
      with exit code 124 and Run.stop_reason saying which.
    The guest's stdin is the host's (fd 0), as under `faultlab run`.
    Raises TypeError/ValueError for a bad argument, faultlab.ExecError for a program that cannot run.
    """
    options = _options(options, option_values)
    argv, envp = _arguments(program, args), _environment(env)
    limits = _limits(max_insns, max_sim_seconds, timeout)
    out, err, warnings = _Sink('stdout', stdout), _Sink('stderr', stderr), []
    recorder = FaultRecorder() if check_bool('faults', faults) else None
    observer = _tracer(recorder, tracer)
    machine = options.machine(out.write, err.write, warnings.append)
    machine.kernel.set_tracer(observer)
    try:
        with interrupt_on_sigint(machine):       # Ctrl-C: KeyboardInterrupt between two quanta
            res = machine.run(os.fspath(program), argv, envp, max_insns=limits[0], max_sim_seconds=limits[1],
                              wall_timeout=limits[2])
    finally:
        out.flush()
        err.flush()
    return Run(res, out.captured(), err.captured(), recorder.faults if recorder is not None else None,
               warnings, machine)
