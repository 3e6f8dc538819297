"""`faultlab gdb PROGRAM [ARGS]`: run the program under the gdb stub and a real gdb attached to it."""
import os
import shutil
import signal
import subprocess
import sys

from faultlab.gdb.stub import GdbStub
from faultlab.kernel.loader import ExecError
from faultlab.options import DEFAULT_ENV, EXIT_USAGE, machine_from_options


def add_gdb_parser(sub, add_machine_options):
    g = sub.add_parser('gdb', help='debug a program with gdb (the stub on a free port, gdb attached with '
                       'the program\'s symbols)')
    add_machine_options(g)
    g.add_argument('--gdb-path', default=None, metavar='GDB',
                   help='the gdb to run (default: $FAULTLAB_GDB or gdb on PATH)')
    g.add_argument('--ex', action='append', default=[], metavar='CMD', help='a gdb command to run after '
                   'connecting (repeatable; passed as gdb -ex)')
    g.add_argument('--batch', action='store_true', help='run gdb in batch mode (exit after the --ex commands)')
    g.add_argument('--nx', action='store_true', help='do not read .gdbinit files')
    g.add_argument('program')
    g.add_argument('args', nargs='*')
    return g


def cmd_gdb(a):
    """Start the stub on 127.0.0.1 and a free port, exec gdb on it, run the program; gdb's exit status."""
    gdb = a.gdb_path or os.environ.get('FAULTLAB_GDB') or 'gdb'
    if shutil.which(gdb) is None:
        print('faultlab gdb: cannot find %s (install gdb or pass --gdb-path)' % gdb, file=sys.stderr)
        return 127
    try:
        m = machine_from_options(a)
    except (ValueError, OSError) as e:
        print('faultlab: %s' % e, file=sys.stderr)
        return EXIT_USAGE
    proc = None
    stub = GdbStub('127.0.0.1', 0, a.program, accept_check=lambda: proc is not None and proc.poll() is None)
    stub.attach(m)
    cmd = [gdb, '-q'] + (['-nx'] if a.nx else []) + (['-batch'] if a.batch else [])
    cmd += ['-ex', 'target remote 127.0.0.1:%d' % stub.port]
    for c in a.ex:
        cmd += ['-ex', c]
    cmd.append(a.program)
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is gdb's: it interrupts us over the wire
    try:
        proc = subprocess.Popen(cmd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        argv = [os.path.basename(a.program)] + a.args
        try:
            res = m.run(a.program, argv, DEFAULT_ENV + a.env, max_insns=a.max_insns,
                        max_sim_seconds=a.max_sim_time, wall_timeout=a.timeout)
        except ExecError as e:
            proc.terminate()
            proc.wait()
            print('faultlab: cannot run %s' % e, file=sys.stderr)
            return 126 if e.errno == 13 else 127 if e.errno == 2 else 126
        sys.stdout.flush()
        if res.report and not stub.killed:
            print('faultlab: %s[%d] %s' % (argv[0], 1, res.report), file=sys.stderr)
        return proc.wait()
    finally:
        signal.signal(signal.SIGINT, old)
