"""The observation tools of one run (trace, profile, progress), attached from command-line options.

`faultlab run`, `faultlab stat` and `faultlab profile` share this: build the tools before the run,
attach them as the kernel's tracer, and after the run close them and write their reports.
"""
import argparse
import sys

from faultlab.kernel.tracepoints import TracepointTee
from faultlab.observe import progress
from faultlab.observe.flamegraph import parse_folded, render_svg
from faultlab.observe.profile import Profiler, format_profile
from faultlab.observe.strace import open_strace
from faultlab.observe.trace import ChromeTrace


def add_options(p, cmd):
    """The options of `run`, `stat` and `profile` that drive these tools."""
    p.add_argument('--trace', metavar='FILE.json', help='write a Chrome/Perfetto trace (JSON trace events) '
                   'of faults, system calls, waits and disk requests in simulated time')
    # a flag, not --strace[=FILE]: argparse would take the program's name for an optional FILE, so
    # faultlab.cli rewrites --strace=FILE to --strace-file FILE first (strace.strace_equals_form)
    p.add_argument('--strace', action='store_true',
                   help='log the system calls in strace\'s format to stderr (as strace -f -s 32 prints them: '
                   'children and threads are always followed); --strace=FILE writes them to FILE')
    p.add_argument('--strace-file', metavar='FILE', help='--strace, written to FILE (the same as --strace=FILE)')
    p.add_argument('--strace-faults', action='store_true',
                   help='with --strace: also a line for each page fault between the calls')
    p.add_argument('--strace-time', choices=('t', 'tt', 'r'), metavar='t|tt|r',
                   help='with --strace: prefix each line with the simulated time of day (t, like '
                   'strace -t; tt with microseconds, like strace -tt) or the simulated time since the '
                   'previous line (r, like strace -r)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--progress', dest='progress', action='store_const', const=True, default=None,
                   help='show progress (default: only when stderr is a terminal)')
    g.add_argument('--no-progress', dest='progress', action='store_const', const=False)
    if cmd == 'stat':
        p.add_argument('-o', '--output', metavar='FILE',
                       help='write the counters to FILE instead of stderr ("-": standard output), as perf stat -o')
        p.add_argument('-x', '--field-separator', metavar='SEP', help='CSV-like output: value SEP unit SEP event')
    if cmd == 'profile':
        p.add_argument('-o', '--output', metavar='FILE', help='write the table to FILE instead of stderr')
        p.add_argument('--folded', metavar='FILE', default='faultlab.folded',
                       help='folded stacks of simulated cycles for flame graphs (default faultlab.folded; '
                       '"-" to skip)')
        p.add_argument('--folded-faults', metavar='FILE', help='folded stacks of page faults (counts)')
        p.add_argument('--top', type=_positive, default=30, help='rows of the table (default 30)')
        p.add_argument('--no-stacks', action='store_true', help='do not unwind guest stacks (traps and samples)')
        p.add_argument('--svg', metavar='FILE', help='render the flame graph of simulated cycles as SVG to FILE')
        p.add_argument('--sample-insns', type=_non_negative, default=None, metavar='N',
                       help='sample the user call stack every N guest instructions (0: never; default: adapt '
                       'to the run, every block at first and ever less often, up to every 100000)')


def _positive(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError('not a number: %r' % s)
    if v <= 0:
        raise argparse.ArgumentTypeError('must be positive')
    return v


def _non_negative(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError('not a number: %r' % s)
    if v < 0:
        raise argparse.ArgumentTypeError('must not be negative')
    return v


class RunTools:
    """What is attached to one Machine for one run."""

    def __init__(self, machine, a, command):
        self.machine = machine
        self.a = a
        self.command = command
        self.trace = self.profiler = self.progress = self.strace = None
        observers = []
        if getattr(a, 'strace', False) or getattr(a, 'strace_file', None) or getattr(a, 'strace_faults', False) \
                or getattr(a, 'strace_time', None):
            self.strace = open_strace(getattr(a, 'strace_file', None), getattr(a, 'strace_faults', False),
                                      getattr(a, 'strace_time', None))     # OSError for a bad path
            observers.append(self.strace)
        if getattr(a, 'cmd', None) == 'profile':
            self.profiler = Profiler(machine, stacks=not a.no_stacks, sample_insns=getattr(a, 'sample_insns', None))
            observers.append(self.profiler)
        if getattr(a, 'trace', None):
            self.trace = ChromeTrace(a.trace, machine, command, announce=sys.stderr)      # OSError for a bad path
            observers.append(self.trace)
        if progress.wanted(flag=getattr(a, 'progress', None)):
            self.progress = progress.Progress(machine)
            observers.append(self.progress)
            self.progress.start()
        if observers:
            machine.kernel.set_tracer(observers[0] if len(observers) == 1 else TracepointTee(observers))

    def close(self, result=None):
        """Stop the progress line, complete the trace file and the system-call log, collect the profile."""
        if self.progress is not None:
            self.progress.close()
        if self.strace is not None:
            self.strace.close(self.machine.kernel)
        if self.trace is not None:
            self.trace.close(result)
        if self.profiler is not None:
            self.profiler.finish()

    def report(self, result):
        """Write what `profile` prints once the run is over (`stat` prints its counters itself, after
        all its runs: faultlab.commands.cmd_stat)."""
        a = self.a
        if a.cmd == 'profile':
            text = format_profile(self.profiler, result.stats, self.command, a.top)
            notes = []
            for path, event in ((a.folded, 'cycles'), (a.folded_faults, 'faults')):
                if path and path != '-':
                    with open(path, 'w') as f:
                        f.write(self.profiler.folded(event))
                    notes.append('folded stacks of %s written to %s' % (event, path))
            if getattr(a, 'svg', None):
                svg = render_svg(parse_folded(self.profiler.folded('cycles')),
                                 'faultlab profile: %s (simulated cycles)' % self.command, 'cycles')
                with open(a.svg, 'w') as f:
                    f.write(svg)
                notes.append('flame graph written to %s (open it in a web browser)' % a.svg)
            _write(a.output, text + ''.join('  %s\n' % n for n in notes))


def _write(path, text):
    if path:
        with open(path, 'w') as f:
            f.write(text)
    else:
        sys.stderr.write(text)
