"""`faultlab sweep SPEC` and `faultlab sweep --grid NAME=V1,V2 ... -- PROGRAM ARGS`: every point of the
grid as its own `faultlab run --stats-json`, on a local pool or Dask, each point's outcome cached; one record
per point to CSV, JSON lines or Parquet (-o), CSV on stdout without -o.

Exit status: 0 when every point ran, 1 when one failed (faultlab gave no counters for it: its record says
why, and it is run again next time), 2 for a bad specification (one line), 130 after Ctrl-C (the points that
ended are cached: the same command resumes)."""
import argparse
import os
import sys
import time

from faultlab.options import EXIT_USAGE, positive_int, positive_seconds
from faultlab.sweep.cache import DEFAULT_DIR, SweepCache, faultlab_version, file_digest, point_key
from faultlab.sweep.engines import ENGINES, EngineError, Task, make_engine
from faultlab.sweep.progress import SweepProgress
from faultlab.sweep.records import format_of, make_record, write_records
from faultlab.sweep.spec import SpecError, compile_parse, from_command_line, load_toml

EXIT_FAILED_POINT = 1
EXIT_INTERRUPTED = 130


def add_sweep_parser(sub):
    """`faultlab sweep`."""
    p = sub.add_parser('sweep', help='run a program over a grid of run options and arguments, one record a point',
                       description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog='examples:\n  faultlab sweep study.toml -o results.csv\n'
                              '  faultlab sweep --grid cpus=1,2,4 --grid mib=1,4 -j 2 -o r.csv -- '
                              'userland/build/pagetouch {mib}')
    p.add_argument('--grid', action='append', metavar='NAME=V1,V2,...',
                   help='values of a run option (cpus, ram, fault-around-bytes, ...) or of an {NAME} placeholder '
                        'of the arguments (repeatable; with a SPEC file, replaces or adds to its grid)')
    p.add_argument('--set', action='append', metavar='NAME=VALUE',
                   help='a run option every point gets (repeatable)')
    p.add_argument('--parse', action='append', metavar='REGEX',
                   help='a regular expression with named groups (?P<name>...): each becomes a field of the '
                        'record, from its last match in the guest\'s output (repeatable)')
    p.add_argument('-j', '--jobs', type=positive_int, default=os.cpu_count() or 1, metavar='N',
                   help='points run at once (default: the number of cores; Dask LocalCluster: its workers)')
    p.add_argument('--engine', choices=ENGINES, default='local',
                   help='local: a pool of processes on this machine (default); dask: Dask distributed')
    p.add_argument('--scheduler', metavar='tcp://HOST:PORT',
                   help='the Dask scheduler (default: a LocalCluster of -j workers)')
    p.add_argument('--cache', metavar='DIR', default=DEFAULT_DIR,
                   help='where each point\'s outcome is kept (default %s)' % DEFAULT_DIR)
    p.add_argument('--no-cache', dest='cache', action='store_const', const=None, help='run every point')
    p.add_argument('-o', '--output', action='append', metavar='FILE',
                   help='write the records to FILE: .csv, .jsonl (or .json) or .parquet (repeatable; '
                        'default: CSV on stdout)')
    p.add_argument('--point-timeout', type=positive_seconds, metavar='SECONDS',
                   help='a point that has not ended after this much host time fails')
    p.add_argument('--progress', action=argparse.BooleanOptionalAction, default=None,
                   help='the progress bar on stderr (default: when stderr is a terminal)')
    p.add_argument('spec', nargs='?', metavar='SPEC | PROGRAM',
                   help='a TOML specification (see faultlab.sweep.spec), or after -- the program')
    p.add_argument('args', nargs='*', metavar='ARG',
                   help='the program\'s arguments, with {NAME} placeholders (after --, so that they may start with -)')


def build_spec(a):
    """The SweepSpec the command line describes (SpecError)."""
    args = a.args
    if a.spec and a.spec.endswith('.toml') and not args:
        return load_toml(a.spec, a.grid or (), a.set or (), a.parse or ())
    if not a.spec:
        raise SpecError('no SPEC file or program (faultlab sweep SPEC.toml, or --grid ... -- PROGRAM ARGS)')
    return from_command_line(a.grid, a.set, a.parse, a.spec, args)


def _check_outputs(paths):
    """SpecError for an output whose format is unknown or whose folder does not exist."""
    for path in paths:
        if path == '-':
            continue
        try:
            format_of(path)
        except ValueError as e:
            raise SpecError('-o %s' % e) from None
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise SpecError('-o %s: no such directory %s' % (path, folder))


def run_sweep(spec, engine, cache, progress=None, point_timeout=None, out=sys.stderr):
    """Run every point not in the cache: (records in point order, number from the cache, number run, failed)."""
    regexes = [compile_parse(rx) for rx in spec.parse]
    version = faultlab_version()
    program_digest = file_digest(spec.program)
    points = spec.points()
    outcomes, tasks = {}, []
    for p in points:
        key = point_key(program_digest, p.args, p.options, version)
        cached = cache.get(key)
        if cached is not None:
            outcomes[p.index] = cached
        else:
            tasks.append(Task(p.index, key, spec.program, p.args, p.options, point_timeout))
    n_cached = len(outcomes)
    bar = SweepProgress(len(points), n_cached, engine.workers, stream=out, show=progress)
    failed = 0

    def started(task):
        bar.started()

    def finished(task, outcome):
        nonlocal failed
        outcomes[task.index] = outcome
        cache.put(task.key, outcome)
        failed += bool(outcome.get('error'))
        bar.finished(outcome.get('error'))

    try:
        engine.run(tasks, started, finished)
    finally:
        bar.close()
    records = [make_record(p, outcomes[p.index], regexes) for p in points]
    return records, n_cached, len(tasks), failed


def cmd_sweep(a):
    """`faultlab sweep`: 0, 1 (a point failed), 2 (a bad specification) or 130 (interrupted)."""
    t0 = time.monotonic()
    try:
        spec = build_spec(a)
        _check_outputs(a.output or [])
        if a.cache:
            try:
                cache = SweepCache(a.cache)
            except OSError as e:
                raise SpecError('--cache %s: %s' % (a.cache, e.strerror)) from None
        else:
            cache = SweepCache(None)
        engine = make_engine(a.engine, a.jobs, a.scheduler)
    except (SpecError, EngineError) as e:
        print('faultlab sweep: %s' % e, file=sys.stderr)
        return EXIT_USAGE
    try:
        records, n_cached, n_run, failed = run_sweep(spec, engine, cache, a.progress, a.point_timeout)
    except KeyboardInterrupt:
        print('faultlab sweep: interrupted; the points that ended are cached in %s: the same command resumes'
              % (a.cache or '(no cache)'), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        engine.close()
    try:
        for path in a.output or ['-']:
            write_records(path, records)
    except (OSError, ValueError) as e:
        print('faultlab sweep: cannot write: %s' % e, file=sys.stderr)
        return EXIT_USAGE
    print('faultlab sweep: %d points: %d from the cache, %d run, %d failed (%s engine, %.1f s)%s'
          % (len(records), n_cached, n_run, failed, engine.name, time.monotonic() - t0,
             '; wrote ' + ', '.join(a.output) if a.output else ''), file=sys.stderr)
    for r in records:
        if r['status'] == 'failed':
            print('faultlab sweep: point %d (%s) failed: %s'
                  % (r['point'], ', '.join('%s=%s' % (k, r[k]) for k in spec.grid), r['error']), file=sys.stderr)
    return EXIT_FAILED_POINT if failed else 0
