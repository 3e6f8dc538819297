"""One point of a sweep, run exactly as a user would run it: `faultlab run --stats-json FILE OPTIONS PROGRAM
ARGS` in its own process. The function runs wherever the engine puts it (a local worker thread or a Dask
worker) and returns plain data, so that the same outcome comes back from either."""
import json
import os
import subprocess
import tempfile

from faultlab.srctree import cli_command

OUTPUT_LIMIT = 4 << 20          # bytes of the guest's stdout kept (and parsed) per point
STDERR_TAIL = 2000              # characters of faultlab's stderr kept for a failed point's message


def run_point(program, args, options, timeout=None):
    """Run one point: {'stats': the --stats-json dict or None, 'stdout', 'stderr', 'returncode', 'error'}.
    'error' is None when faultlab ran the guest to its end (whatever the guest's exit status), else one line
    saying why there are no counters."""
    with tempfile.TemporaryDirectory(prefix='faultlab-sweep-') as tmp:
        stats_path = os.path.join(tmp, 'stats.json')
        argv = cli_command() + ['run', '--stats-json', stats_path] + list(options) + [program] + list(args)
        env = dict(os.environ, FAULTLAB_PROGRESS='0')
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return dict(stats=None, stdout='', stderr='', returncode=None,
                        error='no result within %g s of host time' % timeout)
        stdout = p.stdout[:OUTPUT_LIMIT].decode(errors='replace')
        stderr = p.stderr.decode(errors='replace')
        stats, error = None, None
        try:
            with open(stats_path) as f:
                stats = json.load(f)
        except (OSError, ValueError):
            lines = [ln for ln in stderr.splitlines() if ln.strip()]
            error = 'faultlab run exited with status %d%s' % (p.returncode, ': ' + lines[-1] if lines else '')
        return dict(stats=stats, stdout=stdout, stderr=stderr[-STDERR_TAIL:], returncode=p.returncode, error=error)
