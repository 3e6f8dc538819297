"""The `faultlab` command line: parses the arguments and dispatches to the subcommand."""
import argparse
import os
import sys
import time
import traceback

from faultlab.commands import cmd_bench, cmd_costs, cmd_run
from faultlab.gdb.command import add_gdb_parser, cmd_gdb
from faultlab.observe.tools import add_options as add_tool_options
from faultlab.options import add_cost_options, add_machine_options, positive_int
from faultlab.selftests.runner import add_selftests_parser, cmd_selftests

EXIT_INTERNAL = 70


def build_parser():
    """The parser of every subcommand."""
    ap = argparse.ArgumentParser(prog='faultlab', description='x86-64 emulator with a Linux-like kernel for '
                                 'studying page faults')
    sub = ap.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('run', help='run a static x86-64 ELF program')
    add_machine_options(r)
    r.add_argument('--stats', action='store_true', help='print perf-stat-like counters to stderr at exit')
    r.add_argument('--stats-json', metavar='FILE', help='write the counters as JSON')
    add_tool_options(r, 'run')
    r.add_argument('--gdb', metavar='[HOST]:PORT', help='wait for gdb on this address (port 0: a free one) '
                   'and run under its control')
    r.add_argument('program')
    r.add_argument('args', nargs=argparse.REMAINDER)
    for name, what in (('stat', 'run a program and print perf-stat-like counters of the simulated machine'),
                       ('profile', 'run a program and attribute cycles and page faults to its functions')):
        t = sub.add_parser(name, help=what)
        add_machine_options(t)
        add_tool_options(t, name)
        t.add_argument('program')
        t.add_argument('args', nargs=argparse.REMAINDER)
    c = sub.add_parser('costs', help='print the cycle cost table')
    add_cost_options(c)
    add_gdb_parser(sub, add_machine_options)
    add_selftests_parser(sub)
    b = sub.add_parser('bench', help='benchmarks')
    b.add_argument('what', choices=['speed', 'prefetch', 'populate', 'spf', 'elf-fuzz', 'soak'])
    b.add_argument('--quick', action='store_true', help='smaller sizes (for a smoke test)')
    b.add_argument('--size', default=None, help='populate: mapping size (e.g. 2M, 64M)')
    b.add_argument('--reps', type=positive_int, default=None,
                   help='speed: runs per runner and workload, the best counts (default 3; 1 with --quick)')
    b.add_argument('--count', type=int, default=10000, help='elf-fuzz: number of mutated executables; soak: number of runs')
    b.add_argument('--seed', type=int, default=1, help='elf-fuzz: seed of the mutations; soak: seed of the option combinations')
    return ap


def process_start():
    """When this process started, as a time.monotonic() value (from /proc/self/stat's starttime, so that
    --timeout also counts the interpreter's start and the machine's set-up); now if unknown."""
    now = time.monotonic()
    try:
        with open('/proc/self/stat') as f:
            starttime = int(f.read().rsplit(')', 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - starttime / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError):
        return now
    return now - max(0.0, age)


def main(argv=None):
    ap = build_parser()
    a = ap.parse_args(argv)
    a.wall_start = process_start() if argv is None else None     # --timeout counts from here
    try:
        return {'run': cmd_run, 'stat': cmd_run, 'profile': cmd_run, 'costs': cmd_costs,
                'bench': cmd_bench, 'gdb': cmd_gdb, 'selftests': cmd_selftests}[a.cmd](a)
    except KeyboardInterrupt:
        print('faultlab: interrupted', file=sys.stderr)
        return 130
    except Exception as e:     # the emulator's own failure: one clear line, no traceback
        tb = traceback.extract_tb(e.__traceback__)
        where = '%s:%d' % (os.path.relpath(tb[-1].filename), tb[-1].lineno) if tb else '?'
        print('faultlab: internal error: %s: %s (at %s; set FAULTLAB_DEBUG=1 for a traceback)'
              % (type(e).__name__, e, where), file=sys.stderr)
        if os.environ.get('FAULTLAB_DEBUG'):
            traceback.print_exc()
        return EXIT_INTERNAL


if __name__ == '__main__':
    sys.exit(main())
