"""What the `faultlab` subcommands do: run a program with its tools, print the costs, run a benchmark."""
import json
import os
import sys

from faultlab.bench.fuzz_elf import main as elf_fuzz
from faultlab.bench.populate import main as bench_populate
from faultlab.bench.prefetch import main as bench_prefetch
from faultlab.bench.soak import main as bench_soak
from faultlab.bench.speed import main as bench_speed
from faultlab.bench.spf import main as bench_spf
from faultlab.gdb.stub import attach_gdb
from faultlab.kernel.loader import ExecError
from faultlab.observe.stat import format_stat
from faultlab.observe.tools import RunTools
from faultlab.options import DEFAULT_ENV, EXIT_USAGE, cost_table, machine_from_options


def cmd_run(a):
    """`faultlab run`, `stat` and `profile`: the program's exit status."""
    if not a.program:
        print('faultlab run: no program given', file=sys.stderr)
        return EXIT_USAGE
    try:
        m = machine_from_options(a)
    except (ValueError, OSError) as e:
        print('faultlab: %s' % e, file=sys.stderr)
        return EXIT_USAGE
    if getattr(a, "gdb", None):
        try:
            attach_gdb(m, a.gdb, a.program)
        except (ValueError, OSError) as e:
            print('faultlab: %s' % e, file=sys.stderr)
            return EXIT_USAGE
    env = DEFAULT_ENV + a.env
    argv = [os.path.basename(a.program)] + a.args
    try:
        tools = RunTools(m, a, ' '.join([a.program] + a.args))
    except OSError as e:
        print('faultlab: cannot write %s: %s' % (e.filename, e.strerror), file=sys.stderr)
        return EXIT_USAGE
    res = None
    try:
        res = m.run(a.program, argv, env, max_insns=a.max_insns, max_sim_seconds=a.max_sim_time,
                    wall_timeout=a.timeout, wall_start=getattr(a, 'wall_start', None))
    except ExecError as e:
        print('faultlab: cannot run %s' % e, file=sys.stderr)
        return 126 if e.errno in (13,) else 127 if e.errno == 2 else 126
    finally:
        tools.close(res)
    sys.stdout.flush()
    if res.report:
        print('faultlab: %s[%d] %s' % (argv[0], 1, res.report), file=sys.stderr)
    try:
        tools.report(res)
    except OSError as e:
        print('faultlab: cannot write %s: %s' % (e.filename, e.strerror), file=sys.stderr)
        return EXIT_USAGE
    if getattr(a, 'stats', False):
        sys.stderr.write(format_stat(res.stats, ' '.join([a.program] + a.args)))
    if getattr(a, 'stats_json', None):
        with open(a.stats_json, 'w') as f:
            json.dump(dict(res.stats, exit_code=res.exit_code,
                           killed_by=res.killed_by[1] if res.killed_by else None), f, indent=2)
    return res.exit_code


def cmd_costs(a):
    """`faultlab costs`: the cycle cost table with its sources."""
    costs = cost_table(a)
    print('freq_hz = %d' % costs.freq_hz)
    for name, cyc, src in costs.describe():
        print('%-20s = %-8s # %s' % (name, cyc, src))
    return 0


def cmd_bench(a):
    """`faultlab bench WHAT`: the benchmark's exit status."""
    if a.what == 'elf-fuzz':
        return elf_fuzz(count=a.count if not a.quick else 200, seed=a.seed)
    if a.what == 'soak':
        return bench_soak(count=a.count, seed=a.seed, quick=a.quick)
    if a.what == 'prefetch':
        return bench_prefetch(quick=a.quick)
    if a.what == 'spf':
        return bench_spf(quick=a.quick)
    if a.what == 'populate':
        return bench_populate(**({'size': a.size} if a.size else {}), quick=a.quick)
    return bench_speed(quick=a.quick, reps=a.reps)
