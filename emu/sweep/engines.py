"""Where a sweep's points run: a local pool (N worker threads, each running one `faultlab run` process at a
time) or Dask (a scheduler's workers, or a LocalCluster started for the sweep). Both call
faultlab.sweep.point.run_point with the same arguments and hand back what it returned, so the records are the
same whichever ran them. dask and distributed are optional (the `sweep` extra) and imported only here."""
import concurrent.futures
import logging
import threading

from faultlab.sweep.point import run_point

ENGINES = ('local', 'dask')


class EngineError(RuntimeError):
    """An engine that cannot start (Dask missing, a scheduler that does not answer); one line."""


class Task:
    """One point to run: its number, its key, what run_point takes."""

    def __init__(self, index, key, program, args, options, timeout=None):
        self.index = index
        self.key = key
        self.call = (program, list(args), list(options), timeout)


class LocalEngine:
    """A pool of `jobs` threads on this machine; each point is its own process."""
    name = 'local'

    def __init__(self, jobs):
        self.jobs = jobs
        self.workers = jobs

    def run(self, tasks, started, finished):
        """Run the tasks; started(task) when a worker takes one, finished(task, outcome) as each ends (in
        this thread). KeyboardInterrupt cancels the points not yet started."""
        lock = threading.Lock()

        def work(task):
            with lock:
                started(task)
            return run_point(*task.call)

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix='faultlab-sweep')
        try:
            futures = {pool.submit(work, t): t for t in tasks}
            for fut in concurrent.futures.as_completed(futures):
                outcome = fut.result()
                with lock:
                    finished(futures[fut], outcome)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self):
        pass


class DaskEngine:
    """Dask distributed: the scheduler at `address`, or a LocalCluster of `jobs` one-thread workers (in this
    process: what they run is a `faultlab run` process per point)."""
    name = 'dask'

    def __init__(self, jobs, address=None):
        try:
            import distributed
        except ImportError:
            raise EngineError('--engine dask needs dask[distributed] (pip install faultlab[sweep])') from None
        self._distributed = distributed
        self.cluster = None
        try:
            if address:
                self.client = distributed.Client(address, timeout='10s')
            else:
                # workers in this process: each point is a process of its own already
                self.cluster = distributed.LocalCluster(n_workers=jobs, threads_per_worker=1, processes=False,
                                                        dashboard_address=None, silence_logs=logging.ERROR)
                self.client = distributed.Client(self.cluster)
        except (OSError, TimeoutError, ValueError) as e:
            self.close()
            raise EngineError('dask scheduler %s: %s' % (address or 'LocalCluster', e)) from None
        self.workers = max(1, sum(self.client.nthreads().values()))

    def run(self, tasks, started, finished):
        """Submit every task; finished(task, outcome) as each ends. Dask does not say when a task starts:
        started(task) is called at submission, the progress bar caps `running` at the workers' threads."""
        futures = {}
        for t in tasks:
            fut = self.client.submit(run_point, *t.call, key='faultlab-point-%d-%s' % (t.index, t.key[:16]),
                                     pure=False)
            futures[fut] = t
            started(t)
        try:
            for fut in self._distributed.as_completed(list(futures)):
                finished(futures[fut], fut.result())
        finally:
            for fut in futures:
                if not fut.done():
                    fut.cancel()

    def close(self):
        client = getattr(self, 'client', None)
        if client is not None:
            client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_engine(name, jobs, scheduler=None):
    """The engine --engine names."""
    if name == 'dask':
        return DaskEngine(jobs, scheduler)
    if scheduler:
        raise EngineError('--scheduler is for --engine dask')
    return LocalEngine(jobs)
