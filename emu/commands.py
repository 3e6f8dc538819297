"""What the `faultlab` subcommands do: run a program with its tools, count it (stat), print the costs,
run a benchmark."""
import argparse
import contextlib
import copy
import json
import os
import sys

from faultlab.bench.fuzz_elf import main as elf_fuzz
from faultlab.bench.populate import main as bench_populate
from faultlab.bench.populate import parse_size as populate_size
from faultlab.bench.prefetch import main as bench_prefetch
from faultlab.bench.report import report_options
from faultlab.bench.soak import main as bench_soak
from faultlab.bench.speed import main as bench_speed
from faultlab.bench.spf import main as bench_spf
from faultlab.bench.thp import main as bench_thp
from faultlab.bench.timing import main as bench_timing
from faultlab.bench.uffd import main as bench_uffd
from faultlab.calibrate import main as calibrate_main
from faultlab.gdb.stub import attach_gdb
from faultlab.kernel.loader import ExecError
from faultlab.observe.stat import format_stat, format_stat_csv, mean_snapshot, spreads, write_stat
from faultlab.observe.tools import RunTools
from faultlab.machine import interrupt_on_sigint
from faultlab.options import DEFAULT_ENV, EXIT_USAGE, cost_table, machine_from_options

EXIT_INTERRUPTED = 130          # 128 + SIGINT, as a shell reports a program Ctrl-C ended
ELF_FUZZ_QUICK_COUNT = 200


def _usage_error(message):
    """Print faultlab's one-line error; the usage exit status."""
    print('faultlab: %s' % message, file=sys.stderr)
    return EXIT_USAGE


def _command_line(a):
    """The guest's command line as the reports name it."""
    return ' '.join([a.program] + a.args)


def _prepare(a):
    """The machine and its tools for one run of a.program: (machine, tools), or an exit status."""
    try:
        m = machine_from_options(a)
    except (ValueError, OSError) as e:
        return _usage_error(e)
    if getattr(a, 'gdb', None):
        try:
            attach_gdb(m, a.gdb, a.program)
        except (ValueError, OSError) as e:
            return _usage_error(e)
    try:
        tools = RunTools(m, a, _command_line(a))
    except OSError as e:
        return _usage_error('cannot write %s: %s' % (e.filename, e.strerror))
    return m, tools


def _execute(a, m, tools):
    """Run a.program on m with its tools (closed afterwards, even when the run raises): the RunResult.
    A Ctrl-C ends it between two quanta as KeyboardInterrupt (a gdb stub, when attached, handles its own)."""
    argv = [os.path.basename(a.program)] + a.args
    res = None
    try:
        with interrupt_on_sigint(m) if m.debugger is None else contextlib.nullcontext():
            res = m.run(a.program, argv, DEFAULT_ENV + a.env, max_insns=a.max_insns,
                        max_sim_seconds=a.max_sim_time, wall_timeout=a.timeout,
                        wall_start=getattr(a, 'wall_start', None))
    finally:
        tools.close(res)
    sys.stdout.flush()
    if res.report:
        print('faultlab: %s[%d] %s' % (argv[0], 1, res.report), file=sys.stderr)
    return res


def _exec_failed(e):
    """execve's refusal, as a shell reports it: 127 for a missing program, 126 otherwise."""
    print('faultlab: cannot run %s' % e, file=sys.stderr)
    return 127 if e.errno == 2 else 126


def _write_stats_json(path, res):
    """run --stats-json: the counters with the exit status and the fatal report."""
    with open(path, 'w') as f:
        json.dump(dict(res.stats, exit_code=res.exit_code,
                       killed_by=res.killed_by[1] if res.killed_by else None), f, indent=2)


def cmd_run(a):
    """`faultlab run` and `profile`: the program's exit status."""
    if not a.program:
        print('faultlab run: no program given', file=sys.stderr)
        return EXIT_USAGE
    prepared = _prepare(a)
    if isinstance(prepared, int):
        return prepared
    m, tools = prepared
    try:
        res = _execute(a, m, tools)
    except ExecError as e:
        return _exec_failed(e)
    try:
        tools.report(res)
        if getattr(a, 'stats', False):
            sys.stderr.write(format_stat(res.stats, _command_line(a)))
        if getattr(a, 'stats_json', None):
            _write_stats_json(a.stats_json, res)
    except OSError as e:
        return _usage_error('cannot write %s: %s' % (e.filename, e.strerror))
    return res.exit_code


def _stat_runs(a):
    """Run a.program a.repeat times, run i with --seed plus i: (snapshots of the runs that ended, exit
    status, the note a Ctrl-C leaves); the status is an int instead of the tuple when a run could not start."""
    snaps, status = [], 0
    for i in range(a.repeat):
        b = copy.copy(a)
        b.seed = a.seed + i
        prepared = _prepare(b)
        if isinstance(prepared, int):
            return prepared
        m, tools = prepared
        try:
            res = _execute(b, m, tools)
        except ExecError as e:
            return _exec_failed(e)
        except KeyboardInterrupt:
            return _interrupted(snaps, m, i, a.repeat)
        snaps.append(res.stats)
        status = res.exit_code
    return snaps, status, None


def _interrupted(snaps, m, i, repeat):
    """Ctrl-C in run i: the runs that ended, or this run's counters so far when none did (as perf stat
    prints what it counted); the interrupted status and the note saying which."""
    if snaps:
        return snaps, EXIT_INTERRUPTED, 'interrupted in run %d of %d: the mean of the %d runs that ended' \
            % (i + 1, repeat, len(snaps))
    note = 'interrupted: the counters up to Ctrl-C' + (' (run 1 of %d)' % repeat if repeat > 1 else '')
    return [m.kernel.snapshot()], EXIT_INTERRUPTED, note


def _stat_text(a, snaps, note):
    """The counters of the runs as -x, -e and -r ask: the mean, with the spread when several ran."""
    s = snaps[0] if len(snaps) == 1 else mean_snapshot(snaps)
    spread = spreads(snaps) if len(snaps) > 1 else None
    if a.field_separator:
        return format_stat_csv(s, a.field_separator, events=a.events, spread=spread)
    return format_stat(s, _command_line(a), events=a.events, runs=len(snaps), spread=spread, note=note)


def cmd_stat(a):
    """`faultlab stat`: run the program (-r times), print its counters; the last run's exit status, or
    130 after a Ctrl-C (the counters so far are printed first)."""
    if not a.program:
        print('faultlab stat: no program given', file=sys.stderr)
        return EXIT_USAGE
    done = _stat_runs(a)
    if isinstance(done, int):
        return done
    snaps, status, note = done
    try:
        write_stat(a.output, _stat_text(a, snaps, note))
    except OSError as e:
        return _usage_error('cannot write %s: %s' % (e.filename, e.strerror))
    return status


def cmd_calibrate(a):
    """`faultlab calibrate`: measure this host's core and write its profile (emu/calibrate.py)."""
    return calibrate_main(output=a.output, quick=a.quick)


def cmd_costs(a):
    """`faultlab costs`: the cycle cost table with its sources."""
    costs = cost_table(a)
    print('freq_hz = %d' % costs.freq_hz)
    for name, cyc, src in costs.describe():
        print('%-20s = %-8s # %s' % (name, cyc, src))
    return 0


# `faultlab bench KIND`: each kind's options (emu/cli.py gives each kind only its own) to its main()
BENCHES = {
    'speed': lambda a: bench_speed(quick=a.quick, reps=a.reps, csv=a.csv, json=a.json),
    'prefetch': lambda a: bench_prefetch(quick=a.quick, **report_options(a)),
    'populate': lambda a: bench_populate(**({'size': a.size} if a.size else {}), quick=a.quick, **report_options(a)),
    'spf': lambda a: bench_spf(quick=a.quick, **report_options(a)),
    'elf-fuzz': lambda a: elf_fuzz(count=ELF_FUZZ_QUICK_COUNT if a.quick else a.count, seed=a.seed),
    'soak': lambda a: bench_soak(count=a.count, seed=a.seed, quick=a.quick),
    'uffd': lambda a: bench_uffd(pages=a.pages, latency_us=a.latency_us, compute_us=a.compute_us, cpus=a.cpus,
                                 quick=a.quick, gap_us=a.gap_us, **report_options(a)),
    'thp': lambda a: bench_thp(mib=a.mib, quick=a.quick),
    'timing': lambda a: bench_timing(quick=a.quick, profile=a.profile, csv=a.csv, json=a.json),
}


def populate_sizes(text):
    """argparse type of `bench populate --size`: comma-separated sizes above 0 (2M, 64M, 1G, 4096K), as
    populate_bench reads them; the text itself."""
    sizes = [size for size in text.split(',') if size] or ['']
    for size in sizes:
        try:
            ok = populate_size(size) > 0
        except ValueError:
            ok = False
        if not ok:
            raise argparse.ArgumentTypeError('not a size above 0: %r (examples: 2M, 64M, 2M,64M)' % size)
    return text


def cmd_bench(a):
    """`faultlab bench KIND`: the benchmark's exit status."""
    return BENCHES[a.what](a)
