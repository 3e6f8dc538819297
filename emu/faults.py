"""Per-fault records: one Fault for every page fault the kernel handles, collected through its tracepoints."""
from typing import NamedTuple

from faultlab.kernel.tracepoints import Tracepoints

__all__ = ['Fault', 'FaultRecorder']

# the x86 page-fault error code (Intel SDM vol. 3A, 4.7)
PF_PROT, PF_WRITE, PF_USER, PF_RSVD, PF_INSTR = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4


class Fault(NamedTuple):
    """One page fault, as the kernel handled it.

    address, rip: the faulting address and instruction; error_code: the x86 #PF error code
    outcome: 'minor' or 'major' (counted in stats['minor_faults'] / ['major_faults']), 'retry' (to be
      taken again, e.g. after a NOWAIT fault started I/O), 'fixup' (a vDSO exception-table fixup) or
      'signal' (SIGSEGV/SIGBUS, or the OOM killer)
    handler: the kernel function that resolved it, e.g. 'do_anonymous_page', 'do_read_fault' (None
      when it failed)
    nowait: FAULT_FLAG_RETRY_NOWAIT (a vDSO prefetch); tid: the thread; cpu: the simulated CPU
    start, end: simulated time (cycles of that CPU's clock) at the trap and at the return to user mode
    """
    address: int
    rip: int
    error_code: int
    outcome: str
    handler: object
    nowait: bool
    tid: int
    cpu: int
    start: int
    end: int

    @property
    def access(self):
        """'read', 'write' or 'exec'."""
        if self.error_code & PF_INSTR:
            return 'exec'
        return 'write' if self.error_code & PF_WRITE else 'read'

    @property
    def major(self):
        """True for a major fault (it waited for the disk)."""
        return self.outcome == 'major'

    @property
    def cycles(self):
        """Simulated cycles from the trap to the return (I/O waits included)."""
        return self.end - self.start

    def __str__(self):
        return '%s %#x rip=%#x: %s %s, %d cycles' % (self.access, self.address, self.rip, self.outcome,
                                                    self.handler or '-', self.cycles)


class FaultRecorder(Tracepoints):
    """A tracer that keeps a Fault for every page_fault_exit (attach with kernel.set_tracer)."""

    def __init__(self):
        self.faults = []
        self._start = {}            # CPU -> simulated time of the fault being handled there

    def page_fault_entry(self, kernel, rip, address, error_code):
        self._start[_cpu(kernel)] = kernel.now()

    def page_fault_exit(self, kernel, rip, address, error_code, info):
        cpu = _cpu(kernel)
        end = int(kernel.now())
        task = kernel.current
        self.faults.append(Fault(address, rip, error_code, info.outcome, info.handler, info.nowait,
                                 task.tid if task is not None else 0, cpu,
                                 int(self._start.pop(cpu, end)), end))


def _cpu(kernel):
    """The index of the simulated CPU the kernel is running on."""
    return getattr(kernel.cpu, 'index', 0)
