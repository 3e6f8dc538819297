"""The command-line options that describe a machine, and the machine they build."""
import argparse
import dataclasses
import math
import os
import re

from faultlab.api import DEFAULT_ENV, MAX_CPUS, Options
from faultlab.api import parse_size as check_size
from faultlab.core.cycles import CostTable, platform_profile
from faultlab.core.uarch.profiles import PROFILES
from faultlab.machine import DEFAULT_RAM, Machine

EXIT_USAGE = 2


def parse_size(text):
    """argparse type: '256M', '1G', '65536', '64k' -> bytes."""
    try:
        return check_size('size', text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).partition(': ')[2]) from None


def _integer(text):
    """The decimal integer text spells, or ArgumentTypeError."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('not an integer: %r' % text)


def positive_int(text):
    """argparse type: an integer of 1 or more."""
    n = _integer(text)
    if n < 1:
        raise argparse.ArgumentTypeError('expected a positive integer, got %r' % text)
    return n


def non_negative_int(text):
    """argparse type: an integer of 0 or more."""
    n = _integer(text)
    if n < 0:
        raise argparse.ArgumentTypeError('expected 0 or more, got %r' % text)
    return n


def cpu_count(text):
    """argparse type: a number of simulated CPUs, 1 to MAX_CPUS."""
    n = _integer(text)
    if not 1 <= n <= MAX_CPUS:
        raise argparse.ArgumentTypeError('expected 1 to %d CPUs, got %r' % (MAX_CPUS, text))
    return n


def positive_seconds(text):
    """argparse type: a finite number of seconds above 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('not a number of seconds: %r' % text)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError('expected a number of seconds above 0, got %r' % text)
    return v


def power_of_two_size(text):
    """argparse type: a size (parse_size) that is 0 or a power of two."""
    v = parse_size(text)
    if v & (v - 1):
        raise argparse.ArgumentTypeError('expected 0 or a power of two, got %r' % text)
    return v


def env_assignment(text):
    """argparse type: NAME=VALUE with a non-empty NAME (the value may be empty, as env(1) allows)."""
    name, eq, _value = text.partition('=')
    if not eq or not name:
        raise argparse.ArgumentTypeError('expected NAME=VALUE, got %r' % text)
    return text


def readable_file(path):
    """argparse type: a file that can be opened for reading (the error names the path and the reason)."""
    try:
        with open(path, 'rb'):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError('%s: %s' % (path, e.strerror))
    return path


def platform_name(text):
    """argparse type: a platform or core profile name, or a profile file (checked)."""
    try:
        platform_profile(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_cost_options(p):
    """--platform and --costs."""
    p.add_argument('--platform', type=platform_name, default='bare-metal', metavar='NAME|FILE',
                   help='the simulated machine: bare-metal (default) or vm (a KVM guest: vCPU wake-ups, as in the '
                        'SPF series\' 16-vCPU VM), flat prices per instruction class; or a core model that prices '
                        'each block out of order: %s, or a profile FILE from `faultlab calibrate`'
                        % ', '.join(PROFILES))
    p.add_argument('--costs', metavar='FILE', type=readable_file,
                   help='override cycle costs (JSON or name = value lines)')


def cost_table(a):
    """The cost table --platform and --costs select."""
    return CostTable.from_file(a.costs, a.platform) if a.costs else CostTable(platform=a.platform)


def add_machine_options(p):
    """The options that build a machine (run, stat, profile, gdb)."""
    p.add_argument('--ram', type=parse_size, default=DEFAULT_RAM, help='guest RAM (default 256M)')
    p.add_argument('--swap', type=parse_size, default=256 << 20, help='swap area on the simulated disk '
                   '(default 256M; 0 disables swap)')
    p.add_argument('--hugepages', type=non_negative_int, default=0, metavar='N',
                   help='2 MiB pages in the hugetlb pool at boot (/proc/sys/vm/nr_hugepages; default 0)')
    add_cost_options(p)
    p.add_argument('--disk', metavar='K=V,...', help='disk model, e.g. read_latency_us=100,queue_depth=8')
    p.add_argument('--disk-image', metavar='FILE', help='keep the simulated disk in FILE (created if missing) '
                   'and its root filesystem across runs (default: a temporary file, deleted at exit)')
    p.add_argument('--fault-around-bytes', type=power_of_two_size, default=65536,
                   help='fault-around window for file read faults (0 or 4096 disables)')
    p.add_argument('--mount', action='append', default=[], metavar='HOST:GUEST[:rw]',
                   help='make a host file or directory visible in the guest (read-only unless :rw)')
    p.add_argument('--sysroot', metavar='DIR', help='the shared libraries and dynamic-loader configuration '
                   '(lib, lib64, usr/lib, usr/lib64, etc/ld.so.*) of dynamically linked programs come from DIR '
                   'instead of the host, as with qemu-x86_64 -L')
    p.add_argument('--env', action='append', type=env_assignment, default=[], metavar='NAME=VALUE',
                   help='add to the guest environment')
    p.add_argument('--sysctl', action='append', default=[], metavar='NAME=VALUE',
                   help='set a /proc/sys value at boot through its write handler, as Linux\'s sysctl.NAME=VALUE '
                        'boot parameter (e.g. vm.overcommit_memory=1; repeatable)')
    p.add_argument('--user', metavar='UID[:GID[,GROUP...]]',
                   help='run the first process with these ids and no capabilities, as sudo -u would '
                        '(GID defaults to UID, the groups to GID)')
    p.add_argument('--seed', type=int, default=0, help='seed for getrandom and AT_RANDOM')
    p.add_argument('--cpus', type=cpu_count, default=1, help='simulated CPUs (1 to %d; default 1)' % MAX_CPUS)
    p.add_argument('--spf', action=argparse.BooleanOptionalAction, default=True,
                   help='speculative page faults for multi-threaded processes (default on)')
    p.add_argument('--spf-file', action='store_true',
                   help='speculative faults also on file-backed VMAs (the 2018 series; default: anonymous only)')
    p.add_argument('--munmap-downgrade', action='store_true',
                   help='munmap zaps with mmap_lock downgraded to read (Linux >= 4.20; default: held for '
                        'write, as in the 4.15 kernel of the SPF series)')
    p.add_argument('--native-faults', action=argparse.BooleanOptionalAction, default=True,
                   help='let the CPU resolve plain anonymous write faults in machine code (same results, '
                        'faster; default on)')
    p.add_argument('--max-insns', type=positive_int, default=None, help='stop the guest after this many instructions')
    p.add_argument('--max-sim-time', type=positive_seconds, default=None, metavar='SECONDS',
                   help='stop the guest after this much simulated time')
    p.add_argument('--timeout', type=positive_seconds, default=None, metavar='SECONDS',
                   help='stop the guest after this much host (wall-clock) time, counted from the start of '
                        'faultlab (status 124)')
    p.add_argument('--check', action='store_const', const=True,
                   default={'': False, '0': False, 'full': 'full'}.get(os.environ.get('FAULTLAB_CHECK', ''), True),
                   help='verify kernel mm invariants after faults and syscalls, within a time budget '
                   '(also FAULTLAB_CHECK=1)')
    p.add_argument('--check-all', dest='check', action='store_const', const='full',
                   help='verify them after every fault and syscall (slow; also FAULTLAB_CHECK=full)')


# The Options fields the command line fills, each from the flag of the same name (underscores as
# hyphens) but for the two repeatable flags, whose fields take the plural.
OPTION_FIELDS = tuple(f.name for f in dataclasses.fields(Options))
_ATTRIBUTES = {'mounts': 'mount', 'sysctls': 'sysctl'}


def option_flag(field):
    """The command-line flag of an Options field (mounts -> --mount)."""
    return '--' + _ATTRIBUTES.get(field, field).replace('_', '-')


def options_from_args(a):
    """faultlab.Options from parsed options: the one place machine options are checked (ValueError
    naming the command-line flag for a bad value)."""
    values = {name: getattr(a, _ATTRIBUTES.get(name, name)) for name in OPTION_FIELDS}
    values['sysroot'] = values['sysroot'] or '/'
    try:
        return Options(**values)
    except (ValueError, TypeError) as e:
        name = re.match(r'\w*', str(e)).group(0)
        raise ValueError(option_flag(name) + str(e)[len(name):] if name in OPTION_FIELDS else str(e)) from None


def machine_from_options(a, stdout=None, stderr=None):
    """Build a Machine from parsed options (ValueError for a bad option value); stdout, stderr: callables
    that receive the guest's output, or None for faultlab's own."""
    o = options_from_args(a)
    return Machine(ram=o.ram, costs=o.cost_table(), config=o.kernel_config(stdout, stderr, None))
