"""faultlab: a cycle-approximate x86-64 emulator with a mini Linux-like kernel, for studying page faults.

The Python API runs one program on a new simulated machine and returns how it went:

    import faultlab

    run = faultlab.run('userland/build/readahead', ['/data/big.bin'],
                       faultlab.Options(ram='64M', mounts=['userland/build/data:/data']))
    run.exit_code, run.stdout               # the guest's exit status and captured output (bytes)
    run.stats['major_faults']               # the counters of `faultlab run --stats`
    [f for f in run.faults if f.major]      # one faultlab.Fault per page fault

Options(...)  the machine: ram, swap, cpus, hugepages, disk, fault_around_bytes, platform, costs,
              mounts, sysroot, user, sysctls, seed, spf, spf_file, munmap_downgrade, native_faults,
              check; a bad value is a ValueError (a wrong type a TypeError) with a one-line message
run(program, args, options, env=, stdout=, stderr=, faults=, tracer=, max_insns=, max_sim_seconds=,
    timeout=)  boots the machine, runs the program, returns a Run; output is captured (None), or
              streamed to a callable(bytes) or a file object
Run           exit_code, stdout, stderr, stats, faults, stop_reason, report, signal, warnings, machine
Fault         address, rip, error_code, access, outcome ('minor', 'major', ...), handler, major,
              nowait, tid, cpu, start, end, cycles
Tracepoints   subclass it (page_fault_entry/exit, syscall_entry/exit, signal_generate, signal_send,
              sched_process_fork, sched_process_exec, task_rename, sched_wakeup,
              sched_process_exit, wait, lock_wait, block_rq_issue) and pass an
              instance as run(..., tracer=...); FaultInfo is what
              page_fault_exit receives
ExecError     a program that cannot be run (its errno as execve would return it)

Importing faultlab loads the machine (CPU core and kernel), not the command line or the tools.
"""
from faultlab.api import Options, Run, run
from faultlab.faults import Fault
from faultlab.kernel.loader import ExecError
from faultlab.kernel.tracepoints import FaultInfo, Tracepoints

__all__ = ['Options', 'run', 'Run', 'Fault', 'Tracepoints', 'FaultInfo', 'ExecError']
