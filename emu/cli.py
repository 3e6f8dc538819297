"""The `faultlab` command line: parses the arguments and dispatches to the subcommand."""
import argparse
import importlib.metadata
import os
import sys
import textwrap
import time
import traceback

from faultlab.bench.thp import DEFAULT_MIB as THP_MIB
from faultlab.bench.thp import QUICK_MIB as THP_QUICK_MIB
from faultlab.bench.uffd import DEFAULT_LATENCY_US as UFFD_LATENCY_US
from faultlab.bench.uffd import DEFAULT_PAGES as UFFD_PAGES
from faultlab.bench.uffd import GAP_US as UFFD_GAP_US
from faultlab.bench.uffd import QUICK_PAGES as UFFD_QUICK_PAGES
from faultlab.bench.uffd import cpu_list as uffd_cpu_list
from faultlab.bench.report import add_report_options
from faultlab.commands import cmd_bench, cmd_calibrate, cmd_costs, cmd_run, cmd_stat, populate_sizes
from faultlab.gdb.command import add_gdb_parser, cmd_gdb
from faultlab.kernel.counters import EVENT_NAMES
from faultlab.observe.stat import parse_events
from faultlab.observe.strace import strace_equals_form
from faultlab.observe.tools import add_options as add_tool_options
from faultlab.options import (EXIT_USAGE, add_cost_options, add_machine_options, non_negative_int, positive_int,
                              readable_file)
from faultlab.plot import add_plot_parser, cmd_plot
from faultlab.selftests.runner import add_selftests_parser, cmd_selftests
from faultlab.sweep.command import add_sweep_parser, cmd_sweep

EXIT_INTERNAL = 70
DISTRIBUTION = 'faultlab'


class FaultlabParser(argparse.ArgumentParser):
    """argparse with faultlab's one-line errors: `faultlab: --OPTION: what is wrong`, exit status 2."""

    def error(self, message):
        """Print the one line (a message about no one option points to --help) and exit 2."""
        if message.startswith('argument '):
            line = message[len('argument '):]
        else:
            line = '%s (see %s --help)' % (message, self.prog)
        self.exit(EXIT_USAGE, 'faultlab: %s\n' % line)

    def parse_known_args(self, args=None, namespace=None):
        """As argparse's, but an argument no option takes is an error of the (sub)command it was given to,
        so that the hint names that command's --help (`bench populate --reps`: faultlab bench populate)."""
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error('unrecognized arguments: %s' % ' '.join(extras))
        return namespace, extras


def faultlab_version():
    """The installed distribution's version, from its metadata; 'unknown' in a tree that is not installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return 'unknown (not installed)'


def add_run_parser(sub):
    """`faultlab run`."""
    r = sub.add_parser('run', help='run a static x86-64 ELF program')
    add_machine_options(r)
    r.add_argument('--stats', action='store_true', help='print perf-stat-like counters to stderr at exit')
    r.add_argument('--stats-json', metavar='FILE', help='write the counters as JSON')
    add_tool_options(r, 'run')
    r.add_argument('--gdb', metavar='[HOST]:PORT', help='wait for gdb on this address (port 0: a free one) '
                   'and run under its control')
    r.add_argument('program')
    r.add_argument('args', nargs=argparse.REMAINDER)


def add_stat_parser(sub):
    """`faultlab stat`, with perf stat's -e, -r, -o and -x."""
    t = sub.add_parser('stat', help='run a program and print perf-stat-like counters of the simulated machine',
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=textwrap.fill('events (-e): ' + ', '.join(EVENT_NAMES), break_on_hyphens=False))
    add_machine_options(t)
    add_tool_options(t, 'stat')
    t.add_argument('-e', '--event', dest='events', action='extend', type=parse_events, metavar='EVENT[,EVENT...]',
                   help='print only these events, in this order (repeatable; the names are listed below)')
    t.add_argument('-r', '--repeat', type=positive_int, default=1, metavar='N',
                   help='run the program N times and print the mean of each counter and its spread, '
                        '( +- x.xx%% ): the standard error of the mean as a percentage of it, as perf stat -r. '
                        'Run i (counted from 0) uses --seed plus i, so the runs differ where randomness matters '
                        '(getrandom, AT_RANDOM); the exit status is the last run\'s')
    t.add_argument('program')
    t.add_argument('args', nargs=argparse.REMAINDER)


def add_profile_parser(sub):
    """`faultlab profile`."""
    t = sub.add_parser('profile', help='run a program and attribute cycles and page faults to its functions')
    add_machine_options(t)
    add_tool_options(t, 'profile')
    t.add_argument('program')
    t.add_argument('args', nargs=argparse.REMAINDER)


def _kind(kinds, name, what):
    """One `bench KIND` subparser, what it measures as its help and its description."""
    return kinds.add_parser(name, help=what, description='faultlab bench %s: %s' % (name, what))


def _quick(p, what):
    """A benchmark's --quick, with what it makes smaller."""
    p.add_argument('--quick', action='store_true', help='a smoke test: %s' % what)


def _count_and_seed(p, count, seed_of):
    """--count and --seed of the randomized benchmarks."""
    p.add_argument('--count', type=positive_int, default=10000, help='%s (default 10000)' % count)
    p.add_argument('--seed', type=non_negative_int, default=1, help='seed of %s (default 1)' % seed_of)


def add_bench_parser(sub):
    """`faultlab bench KIND`, each kind with its own options."""
    b = sub.add_parser('bench', help='benchmarks (faultlab bench KIND --help for each)',
                       description='benchmarks of the simulated machine; each KIND has its own options')
    kinds = b.add_subparsers(dest='what', required=True, metavar='KIND')
    k = _kind(kinds, 'speed', 'host speed of faultlab beside native runs, qemu-user and Qiling (compute, pagetouch)')
    _quick(k, 'small workloads, one run each')
    k.add_argument('--reps', type=positive_int, default=None,
                   help='runs per runner and workload, the best counts (default 3; 1 with --quick)')
    add_report_options(k, jobs=False, plot=False)       # timings: one run at a time, never in parallel
    k = _kind(kinds, 'prefetch', "software prefetching of a cold mmap'ed file with the vDSO's prefetch_page()")
    _quick(k, 'one disk latency, three distances, a 64-page file')
    add_report_options(k)
    k = _kind(kinds, 'populate', 'prefaulting a mapping by touching it vs MADV_POPULATE_(READ|WRITE) vs fallocate')
    _quick(k, 'the 2M size only (when --size is not given)')
    k.add_argument('--size', type=populate_sizes, default=None, metavar='SIZE[,SIZE...]',
                   help='mapping sizes (e.g. 2M, 64M; default 2M,64M)')
    add_report_options(k)
    k = _kind(kinds, 'spf', 'speculative page faults: ebizzy -mTRp on 1 to 16 simulated CPUs')
    _quick(k, '1, 2 and 4 CPUs, shorter runs')
    add_report_options(k)
    k = _kind(kinds, 'elf-fuzz', 'mutated executables through the ELF loader')
    _quick(k, '200 executables instead of --count')
    _count_and_seed(k, 'number of mutated executables', 'the mutations')
    k = _kind(kinds, 'soak', 'every userland program under random combinations of the run options')
    _quick(k, 'at most 12 runs')
    _count_and_seed(k, 'number of runs', 'the option combinations')
    k = _kind(kinds, 'uffd', 'a page fault resolved by a userfaultfd handler thread vs by the kernel, and a '
              'post-copy-like pull of pages')
    _quick(k, '%d pages (when --pages is not given)' % UFFD_QUICK_PAGES)
    k.add_argument('--pages', type=positive_int, default=None, metavar='N',
                   help='pages per run (default %d): fault rows set up 2N and write N and 2N' % UFFD_PAGES)
    k.add_argument('--latency-us', type=non_negative_int, default=None, metavar='US',
                   help='post-copy: the handler\'s wait per page pulled from the remote (default %d)' % UFFD_LATENCY_US)
    k.add_argument('--compute-us', type=non_negative_int, default=None, metavar='US',
                   help='post-copy: the reader\'s compute per page (default: --latency-us)')
    k.add_argument('--cpus', type=uffd_cpu_list, default=None, metavar='N[,N...]',
                   help='simulated CPU counts to run on (default 1,2)')
    k.add_argument('--gap-us', type=non_negative_int, default=None, metavar='US',
                   help='fault rows: the writer\'s pause before each write (default %d)' % UFFD_GAP_US)
    add_report_options(k)
    k = _kind(kinds, 'thp', 'touching N MiB with transparent huge pages never / madvise / always, and a '
              'khugepaged collapse of N MiB faulted with 4 KiB pages')
    _quick(k, '%d MiB (when --mib is not given)' % THP_QUICK_MIB)
    k.add_argument('--mib', type=positive_int, default=None, metavar='N',
                   help='MiB to touch and collapse, a multiple of 2 (default %d)' % THP_MIB)
    k = _kind(kinds, 'timing', 'simulated user-mode time of small kernels beside native time, with the flat '
              'prices, the generic core model and a calibrated host profile')
    _quick(k, 'fewer kernels and native runs, a shorter calibration')
    k.add_argument('--profile', type=readable_file, default=None, metavar='FILE',
                   help='the host profile (from faultlab calibrate; default: calibrate now)')
    add_report_options(k, jobs=False, plot=False)


def build_parser():
    """The parser of every subcommand."""
    ap = FaultlabParser(prog='faultlab', description='x86-64 emulator with a Linux-like kernel for '
                        'studying page faults')
    ap.add_argument('--version', action='version', version='faultlab %s' % faultlab_version())
    sub = ap.add_subparsers(dest='cmd', required=True, metavar='COMMAND')
    add_run_parser(sub)
    add_stat_parser(sub)
    add_profile_parser(sub)
    c = sub.add_parser('costs', help='print the cycle cost table')
    add_cost_options(c)
    c = sub.add_parser('calibrate', help='measure this host\'s core and write a profile for --platform FILE')
    c.add_argument('-o', '--output', default='faultlab-host.json', metavar='FILE',
                   help='where to write the profile (default faultlab-host.json)')
    c.add_argument('--quick', action='store_true', help='shorter measurements (less precise)')
    add_gdb_parser(sub, add_machine_options)
    add_selftests_parser(sub)
    add_bench_parser(sub)
    add_sweep_parser(sub)
    add_plot_parser(sub)
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
    """Parse argv (default sys.argv) and run the subcommand: its exit status."""
    ap = build_parser()
    a = ap.parse_args(strace_equals_form(sys.argv[1:] if argv is None else argv))
    a.wall_start = process_start() if argv is None else None     # --timeout counts from here
    try:
        return {'run': cmd_run, 'stat': cmd_stat, 'profile': cmd_run, 'costs': cmd_costs, 'calibrate': cmd_calibrate,
                'bench': cmd_bench, 'gdb': cmd_gdb, 'selftests': cmd_selftests, 'sweep': cmd_sweep,
                'plot': cmd_plot}[a.cmd](a)
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
