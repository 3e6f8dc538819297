"""Progress of a long run on a terminal: guest instructions and simulated time, about once a second.

Shown only when stderr is a terminal (never on a pipe, a file or under pytest's capture) and the run
lasts longer than a second. A daemon thread draws it: Unicorn runs guest code without the GIL, so
the line keeps moving during long stretches of user code and needs no call from the run loop. The
line is erased before the guest writes to its terminal (write system calls on fd 1 and 2) and at
the end, so it never mixes with the program's output.
"""
import os
import sys
import threading
import time

from faultlab.kernel.tracepoints import Tracepoints

INTERVAL = 1.0
_WRITES = {1: 'write', 20: 'writev', 18: 'pwrite64', 296: 'pwritev'}


def wanted(stream=None, flag=None):
    """Show progress? flag True/False forces it; None: only on a terminal, not when FAULTLAB_PROGRESS=0."""
    if flag is not None:
        return flag
    stream = stream or sys.stderr
    if os.environ.get('FAULTLAB_PROGRESS', '') == '0':
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _human(n):
    for unit, div in (('G', 1e9), ('M', 1e6), ('k', 1e3)):
        if n >= div:
            return '%.2f%s' % (n / div, unit)
    return '%d' % n


class Progress(Tracepoints):
    """A status line on stderr, redrawn from a background thread."""

    def __init__(self, machine, stream=None, interval=INTERVAL):
        self.machine = machine
        self.stream = stream or sys.stderr
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._shown = False
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name='faultlab-progress', daemon=True)

    def start(self):
        self._thread.start()
        return self

    def line(self):
        """The status text (instructions, simulated time, host speed)."""
        m = self.machine
        cpus = getattr(m, 'cpus', None) or [m.cpu]
        insns = sum(c.insns for c in cpus)
        k = m.kernel
        sim = k.costs.seconds(k.now())
        wall = time.monotonic() - self._t0
        return ('faultlab: %s instructions, %.6f s simulated, %.0f s host (%s insn/s)'
                % (_human(insns), sim, wall, _human(insns / wall if wall > 0 else 0)))

    def _loop(self):
        while not self._stop.wait(self.interval):
            try:
                text = self.line()
            except Exception:         # a counter read mid-update: skip this tick
                continue
            with self._lock:
                if self._stop.is_set():
                    return
                self.stream.write('\r' + text + '\x1b[K')
                self.stream.flush()
                self._shown = True

    def erase(self):
        with self._lock:
            if self._shown:
                self.stream.write('\r\x1b[K')
                self.stream.flush()
                self._shown = False

    def syscall_entry(self, kernel, task, nr):
        if self._shown and nr in _WRITES and kernel.cpu.gpr[7] in (1, 2):
            self.erase()

    def close(self):
        self._stop.set()
        self.erase()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * self.interval)
