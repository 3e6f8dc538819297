"""What a sweep runs: the program, its arguments, the fixed and the swept `faultlab run` options, and the
regexes that read fields from the guest's output. From a TOML file (tomllib) or from the command line.

    program = "userland/build/pagetouch"        # a path, as `faultlab run` takes it
    args = ["{mib}", "{mode}"]                  # {name}: a placeholder the grid fills
    parse = ['(?P<pages>\\d+) pages']           # named groups become fields of each record
    [options]                                   # fixed `faultlab run` options (name = value)
    ram = "64M"
    [grid]                                      # swept values, in this order (the last varies fastest)
    cpus = [1, 2]
    mib = [1, 2]
    mode = ["r", "w"]

A grid or options name is a machine option of `faultlab run` (cpus, ram, fault-around-bytes or
fault_around_bytes, spf = true/false, sysctl = "vm.x=1" ...) or, for the grid, a placeholder of the
arguments; a name may be both (`cpus` as --cpus and as a thread count). Anything else is a SpecError
with one line saying what is wrong.
"""
import argparse
import itertools
import os
import re
import tomllib
from dataclasses import dataclass, field

from faultlab.options import add_machine_options

SPEC_KEYS = ('program', 'args', 'options', 'grid', 'parse')
PLACEHOLDER = re.compile(r'\{([A-Za-z_][A-Za-z0-9_-]*)\}')
# the run options that say how a point runs rather than what it computes: set by the sweep itself
RESERVED = ('stats', 'stats-json', 'gdb')


class SpecError(ValueError):
    """A sweep specification that cannot be run; its message is one line."""


class _OptionParser(argparse.ArgumentParser):
    """argparse that raises SpecError instead of printing usage and exiting."""

    def error(self, message):
        raise SpecError(message)


def _run_option_parser():
    """An argparse parser with exactly `faultlab run`'s machine options, to look them up and check values."""
    p = _OptionParser(add_help=False, exit_on_error=False)
    add_machine_options(p)
    return p


def _options_table():
    """{dest: argparse action} of the machine options, by dest (fault_around_bytes)."""
    return {a.dest: a for a in _run_option_parser()._actions if a.option_strings}


OPTIONS = _options_table()


def option_dest(name):
    """The argparse dest of a run option spelled NAME, --NAME, name_with_underscores or with hyphens; None."""
    dest = name.lstrip('-').replace('-', '_')
    return dest if dest in OPTIONS else None


def _scalar_text(value):
    """A TOML or command-line scalar as the text of a command-line argument."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def _bool_value(name, value):
    """True/False from a TOML boolean or the words true/false/on/off/yes/no/1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('true', 'on', 'yes', '1'):
        return True
    if text in ('false', 'off', 'no', '0'):
        return False
    raise SpecError('%s: expected true or false, got %r' % (name, value))


def option_argv(dest, value):
    """The `faultlab run` arguments that set option DEST to VALUE ([] for an unset flag)."""
    action = OPTIONS[dest]
    flag = action.option_strings[0]
    if isinstance(action, argparse.BooleanOptionalAction):
        return [flag] if _bool_value(flag[2:], value) else ['--no-' + flag[2:]]
    if action.nargs == 0:          # store_true / store_const flags
        return [flag] if _bool_value(flag[2:], value) else []
    values = value if isinstance(value, list) and isinstance(action, argparse._AppendAction) else [value]
    out = []
    for v in values:
        out += [flag, _scalar_text(v)]
    return out


def check_option(dest, value):
    """SpecError unless `faultlab run` accepts VALUE for option DEST (its own argparse type decides)."""
    argv = option_argv(dest, value)
    try:
        _run_option_parser().parse_args(argv)
    except (argparse.ArgumentError, SpecError) as e:
        raise SpecError('%s = %r: %s' % (dest.replace('_', '-'), value, e)) from None


@dataclass
class Point:
    """One configuration of the grid: its number, the values by grid name, the command line it runs."""
    index: int
    config: dict
    args: list
    options: list           # `faultlab run` arguments before the program


@dataclass
class SweepSpec:
    """A checked specification: everything a point needs to be run and read."""
    program: str
    args: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    parse: list = field(default_factory=list)

    def __post_init__(self):
        self.check()

    def check(self):
        """SpecError for anything a run would refuse or a grid that names nothing."""
        if not isinstance(self.program, str) or not self.program:
            raise SpecError('program: expected the path of a program')
        self.program = os.path.abspath(self.program)
        if not os.path.isfile(self.program):
            raise SpecError('program: %s: no such file' % self.program)
        if not isinstance(self.args, list):
            raise SpecError('args: expected a list of strings, got %r' % (self.args,))
        self.args = [_scalar_text(a) for a in self.args]
        if not isinstance(self.options, dict) or not isinstance(self.grid, dict):
            raise SpecError('options and grid: expected tables of name = value')
        for name, value in self.options.items():
            self._check_run_option(name, value, 'options')
        placeholders = set(PLACEHOLDER.findall(' '.join(self.args)))
        for name, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise SpecError('grid.%s: expected a non-empty list of values, got %r' % (name, values))
            if len(set(map(repr, values))) != len(values):
                raise SpecError('grid.%s: a value is listed twice: %r' % (name, values))
            dest = option_dest(name)
            if dest is None and name not in placeholders:
                raise SpecError('grid.%s: neither a faultlab run option nor an {%s} placeholder of the arguments'
                                % (name, name))
            if dest is not None:
                if option_dest(name) in map(option_dest, self.options):
                    raise SpecError('grid.%s: also set in options' % name)
                for v in values:
                    self._check_run_option(name, v, 'grid')
        missing = sorted(placeholders - set(self.grid))
        if missing:
            raise SpecError('args: {%s} has no values in the grid' % missing[0])
        if isinstance(self.parse, str):
            self.parse = [self.parse]
        if not isinstance(self.parse, list):
            raise SpecError('parse: expected a list of regular expressions')
        for rx in self.parse:
            compile_parse(rx)

    @staticmethod
    def _check_run_option(name, value, where):
        """SpecError unless NAME is a machine option of faultlab run and VALUE one of its values."""
        if name.lstrip('-').replace('_', '-') in RESERVED:
            raise SpecError('%s.%s: set by faultlab sweep itself' % (where, name))
        dest = option_dest(name)
        if dest is None:
            raise SpecError('%s.%s: not a machine option of faultlab run' % (where, name))
        if not isinstance(value, (str, int, float, bool, list)):
            raise SpecError('%s.%s: expected a string, number or boolean, got %r' % (where, name, value))
        check_option(dest, value)

    def points(self):
        """Every Point of the grid, in order: the product of the grid's values, the last name fastest."""
        names = list(self.grid)
        out = []
        for i, combo in enumerate(itertools.product(*(self.grid[n] for n in names))):
            config = dict(zip(names, combo))
            text = {n: _scalar_text(v) for n, v in config.items()}
            args = [PLACEHOLDER.sub(lambda m: text[m.group(1)], a) for a in self.args]
            opts = []
            for name, value in list(self.options.items()) + [(n, v) for n, v in config.items() if option_dest(n)]:
                opts += option_argv(option_dest(name), value)
            out.append(Point(i, config, args, opts))
        return out


def compile_parse(rx):
    """A parse regex, compiled (multi-line); SpecError if it is not one or has no named group."""
    if not isinstance(rx, str):
        raise SpecError('parse: expected a regular expression string, got %r' % (rx,))
    try:
        c = re.compile(rx, re.MULTILINE)
    except re.error as e:
        raise SpecError('parse: %r: %s' % (rx, e)) from None
    if not c.groupindex:
        raise SpecError('parse: %r has no named group (?P<name>...)' % rx)
    return c


def load_toml(path, grid=(), sets=(), parse=()):
    """The SweepSpec of a TOML file, with command-line --grid and --set assignments replacing or adding to its
    grid and options and --parse regexes added (SpecError naming the file for a bad one)."""
    try:
        with open(path, 'rb') as f:
            data = tomllib.load(f)
    except OSError as e:
        raise SpecError('%s: %s' % (path, e.strerror)) from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError('%s: not TOML: %s' % (path, e)) from None
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise SpecError('%s: unknown key %r (the keys are %s)' % (path, unknown[0], ', '.join(SPEC_KEYS)))
    if 'program' not in data:
        raise SpecError('%s: no program' % path)
    try:
        g, opts = assignments(grid, sets)
        extra = list(parse or ())
        rxs = data.get('parse', [])
        rxs = ([rxs] if isinstance(rxs, str) else rxs) + extra if isinstance(rxs, (str, list)) else rxs
        return SweepSpec(data['program'], data.get('args', []), dict(data.get('options', {}), **opts),
                         dict(data.get('grid', {}), **g), rxs)
    except SpecError as e:
        raise SpecError('%s: %s' % (path, e)) from None


def _split_values(text):
    """The values of `name=v1,v2`: ints stay ints, anything else text."""
    out = []
    for v in text.split(','):
        v = v.strip()
        try:
            out.append(int(v))
        except ValueError:
            out.append(v)
    return out


def parse_assignment(text, what):
    """(name, values) of a command-line `name=v1,v2`."""
    name, eq, values = text.partition('=')
    if not eq or not name.strip() or not values.strip():
        raise SpecError('%s: expected NAME=VALUE[,VALUE...], got %r' % (what, text))
    return name.strip(), _split_values(values)


def assignments(grid, sets):
    """({name: values} of --grid NAME=V1,V2, {name: value} of --set NAME=VALUE)."""
    g, opts = {}, {}
    for text in grid or ():
        name, values = parse_assignment(text, '--grid')
        if name in g:
            raise SpecError('--grid: %s given twice' % name)
        g[name] = values
    for text in sets or ():
        name, eq, value = text.partition('=')
        if not eq or not name.strip():
            raise SpecError('--set: expected NAME=VALUE, got %r' % text)
        value = value.strip()
        opts[name.strip()] = int(value) if value.lstrip('-').isdigit() else value
    return g, opts


def from_command_line(grid, sets, parse, program, args):
    """The SweepSpec of `faultlab sweep --grid name=v1,v2 --set name=v --parse RX -- PROGRAM ARGS`."""
    g, opts = assignments(grid, sets)
    return SweepSpec(program, list(args), opts, g, list(parse or ()))
