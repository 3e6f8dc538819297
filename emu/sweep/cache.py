"""The sweep's cache: the outcome of each point that ran to its end, under a hash of everything that decides
it (the program's bytes, its arguments, the run options and faultlab's version), so that an interrupted
sweep resumes and an extended grid runs only its new points. One JSON file per point, written atomically."""
import hashlib
import importlib.metadata
import json
import os
import tempfile

import faultlab
import faultlab.kernel
import faultlab.vdso

DEFAULT_DIR = os.path.join('.cache', 'sweep')
VERSION_ENV = 'FAULTLAB_SWEEP_VERSION'
SOURCE_SUFFIXES = ('.py', '.S', '.c', '.h')


# what `faultlab run` never executes: the sweep itself, the plots, the benches and the selftest runner
NOT_IN_A_RUN = ('sweep', 'bench', 'selftests', '__pycache__', 'plot.py')


def _tree_digest():
    """A digest of faultlab's own sources (the emulator, the kernel, the vDSO) but NOT_IN_A_RUN: a change to
    any of them can change a run's counters, so it is part of the version a cached point was made by."""
    h = hashlib.sha256()
    for pkg in (faultlab, faultlab.kernel, faultlab.vdso):
        base = os.path.dirname(os.path.abspath(pkg.__file__))
        for dirpath, dirnames, filenames in os.walk(base):
            top = dirpath == base and pkg is faultlab
            dirnames[:] = sorted(d for d in dirnames if d != '__pycache__' and not (top and d in NOT_IN_A_RUN))
            for name in sorted(filenames):
                if name.endswith(SOURCE_SUFFIXES) and not (top and name in NOT_IN_A_RUN):
                    path = os.path.join(dirpath, name)
                    h.update(os.path.relpath(path, base).encode() + b'\0')
                    with open(path, 'rb') as f:
                        h.update(f.read())
    return h.hexdigest()[:16]


def faultlab_version():
    """faultlab's version for the cache: FAULTLAB_SWEEP_VERSION when set (to keep a cache across edits known
    not to change the counters), else the distribution's version and the digest of its sources."""
    if os.environ.get(VERSION_ENV):
        return os.environ[VERSION_ENV]
    try:
        version = importlib.metadata.version('faultlab')
    except importlib.metadata.PackageNotFoundError:
        version = 'unknown'
    return '%s+%s' % (version, _tree_digest())


def file_digest(path):
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def point_key(program_digest, args, options, version):
    """The cache key of one point."""
    text = json.dumps(dict(program=program_digest, args=list(args), options=list(options), version=version),
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class SweepCache:
    """Outcomes of points by key in a directory (None: no caching)."""

    def __init__(self, directory):
        self.directory = directory
        if directory:
            os.makedirs(directory, exist_ok=True)

    def _path(self, key):
        return os.path.join(self.directory, key[:2], key + '.json')

    def get(self, key):
        """The cached outcome of a point, or None."""
        if not self.directory:
            return None
        try:
            with open(self._path(key)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def put(self, key, outcome):
        """Keep the outcome of a point that ran to its end (a failed one is run again next time)."""
        if not self.directory or outcome.get('error'):
            return
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
        with os.fdopen(fd, 'w') as f:
            json.dump(outcome, f)
        os.replace(tmp, path)
