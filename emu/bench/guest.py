"""A bench's userland program run under faultlab in this process, and the `name value` lines it prints."""
from faultlab.core.cycles import CostTable
from faultlab.kernel.kernel import KernelConfig
from faultlab.machine import Machine


class GuestRun:
    """One run of a bench program: its `name value` lines, the machine's counters (stats), the kernel's
    own counters (kstats), its output, exit status and fatal report."""

    def __init__(self, values, stats, kstats, stdout, stderr, exit_code, report):
        self.values = values
        self.stats = stats
        self.kstats = kstats
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.report = report

    def __getitem__(self, name):
        return self.values[name]


def parse_values(text):
    """{'name': int or str} from `name value` lines (non-integer values are kept as strings)."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(' ')
        if not sep:
            continue
        try:
            out[name] = int(value)
        except ValueError:
            out[name] = value
    return out


def run_guest(program, args, ram, costs=None, check=True, **config):
    """Run program (argv[0] its base name) with args on a new machine of `ram` bytes and KernelConfig
    fields `config`; a GuestRun, or RuntimeError when check is set and the program fails."""
    out, err = [], []
    config.setdefault('warn', lambda msg: None)
    m = Machine(ram=ram, costs=costs or CostTable(), config=KernelConfig(stdout=out.append, stderr=err.append,
                                                                         **config))
    name = program.rsplit('/', 1)[-1]
    args = [str(a) for a in args]
    res = m.run(program, [name] + args, ['PATH=/bin', 'LANG=C'])
    stdout, stderr = b''.join(out).decode(errors='replace'), b''.join(err).decode(errors='replace')
    if check and (res.exit_code != 0 or res.killed_by or res.report):
        raise RuntimeError('%s %s failed (status %s): %s%s' % (name, ' '.join(args), res.exit_code, stderr,
                                                               res.report or ''))
    return GuestRun(parse_values(stdout), res.stats, dict(m.kernel.stats), stdout, stderr, res.exit_code,
                    res.report)
