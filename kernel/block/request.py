"""One block I/O request and the device's counters."""
from dataclasses import dataclass, field
from typing import Callable, Optional

READ = 'read'
WRITE = 'write'


@dataclass(eq=False)
class Request:
    """struct request: one read or write of `nblocks` blocks starting at `block` (times in cycles)."""
    op: str
    block: int
    nblocks: int
    submit_time: int
    start_time: int = 0
    complete_time: int = 0
    done: bool = False
    on_complete: Optional[Callable] = field(default=None, repr=False)

    @property
    def wait_cycles(self):
        """Cycles spent queued before a service slot was free."""
        return self.start_time - self.submit_time

    @property
    def latency_cycles(self):
        """Cycles from submission to completion."""
        return self.complete_time - self.submit_time


@dataclass
class BlockStats:
    """Counters of one block device (like /sys/block/<dev>/stat)."""
    reads: int = 0
    writes: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    queue_wait_cycles: int = 0
    service_cycles: int = 0
    completed: int = 0
    inflight: int = 0
    max_inflight: int = 0

    def as_dict(self):
        """The counters as a plain dict."""
        return dict(self.__dict__)
