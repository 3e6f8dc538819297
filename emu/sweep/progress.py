"""The sweep's progress bar: points done / running / failed and the time left, on stderr when it is a
terminal (faultlab.observe.progress.wanted decides, as for a run's own progress line). tqdm draws it when
installed; otherwise one line redrawn in place."""
import sys
import time

from faultlab.observe.progress import wanted


def _clock(seconds):
    """Seconds as [H:]MM:SS."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return ('%d:%02d:%02d' % (h, rest // 60, rest % 60)) if h else '%02d:%02d' % (rest // 60, rest % 60)


class SweepProgress:
    """Counts of a sweep's points, drawn as they change."""

    def __init__(self, total, cached, workers, stream=None, show=None):
        self.total = total
        self.cached = cached
        self.workers = workers
        self.stream = stream or sys.stderr
        self.show = wanted(self.stream, show)
        self.done = cached
        self.running = 0
        self.failed = 0
        self.t0 = time.monotonic()
        self._bar = None
        self._width = 0
        if self.show:
            try:
                import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm.tqdm(total=total, initial=cached, file=self.stream, unit='point',
                                      desc='faultlab sweep', dynamic_ncols=True)
        self._draw()

    def time_left(self):
        """Seconds left, from the rate of the points run so far (None before the first ends)."""
        ran = self.done - self.cached
        if ran <= 0:
            return None
        return (time.monotonic() - self.t0) / ran * (self.total - self.done)

    def text(self):
        """The status line."""
        left = self.time_left()
        return ('faultlab sweep: %d/%d done, %d running, %d failed, %s left'
                % (self.done, self.total, min(self.running, self.workers), self.failed,
                   '?' if left is None else _clock(left)))

    def _draw(self):
        if not self.show:
            return
        if self._bar is not None:
            self._bar.set_postfix(running=min(self.running, self.workers), failed=self.failed, refresh=True)
            return
        line = self.text()
        self.stream.write('\r' + line + ' ' * max(0, self._width - len(line)))
        self._width = len(line)
        self.stream.flush()

    def started(self):
        self.running += 1
        self._draw()

    def finished(self, failed):
        self.running = max(0, self.running - 1)
        self.done += 1
        self.failed += bool(failed)
        if self._bar is not None:
            self._bar.update(1)
        self._draw()

    def close(self):
        if not self.show:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self.stream.write('\r' + ' ' * self._width + '\r')
            self.stream.flush()
