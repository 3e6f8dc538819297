"""`faultlab profile`: simulated cycles and page faults attributed to guest functions.

User time is exact: the native block counter counts executions per translated block (no
per-instruction hook); each block's instructions are priced by the cycle model, and a fault that cut
a block short is taken back from exactly the instructions that did not retire. So the per-function
instruction and cycle sums equal the machine's counters. Kernel time (trap entry to return, I/O
and lock waits included) is attributed to the function whose instruction trapped: faults by the
faulting RIP, system calls by the function holding the `syscall` instruction.

Call stacks (emu/observe/unwind.py: the program's DWARF CFI, return-address scanning where there is none)
are taken at every trap, so kernel time and
faults are folded with their full guest stack and the kernel handler as the leaf (`name_[k]`). User
cycles are exact per function; their call paths come from samples: every `sample_insns` guest
instructions the CPU is stopped at a block boundary (the run is split into shorter emu_start calls,
which changes no count and no timing) and the stack is unwound. By default the period adapts to the
run's length: it starts at every block and doubles each ADAPT_SAMPLES samples up to MAX_PERIOD
instructions, so a short program is sampled at nearly every block and a long one with a few
thousand samples. Each sample weighs the instructions run since the previous one; each function's
exact cycles are split over the call paths it was sampled in, in proportion to those weights. A
function never sampled takes the paths it trapped from (a fault or a system call), else the paths
of the samples it was a caller in, and only failing both is folded as itself alone.
"""
import collections

from faultlab.observe.symbols import SymbolizerCache, UNKNOWN
from faultlab.observe.unwind import unwind_cfi
from faultlab.kernel.syscalls import SYSCALL_NAMES
from faultlab.kernel.tracepoints import Tracepoints


ADAPT_SAMPLES = 2048         # the adaptive period doubles after this many samples
MAX_PERIOD = 100_000        # ... up to this many instructions between two samples


def _machine_cpus(machine):
    cpus = getattr(machine, 'cpus', None)
    return list(cpus) if cpus else [machine.cpu]


class FuncStats:
    __slots__ = ('insns', 'user_cycles', 'faults', 'major', 'fault_cycles', 'syscalls', 'sys_cycles')

    def __init__(self):
        self.insns = self.user_cycles = self.faults = self.major = 0
        self.fault_cycles = self.syscalls = self.sys_cycles = 0

    @property
    def total(self):
        return self.user_cycles + self.fault_cycles + self.sys_cycles


class Profiler(Tracepoints):
    """Attach to a Machine before it runs; call finish() after."""

    def __init__(self, machine, stacks=True, sample_insns=None):
        """sample_insns: instructions between two stack samples; None adapts it to the run (1 block,
        doubling every ADAPT_SAMPLES samples up to MAX_PERIOD); 0 never samples."""
        self.machine = machine
        self.kernel = machine.kernel
        self.stacks = stacks
        self.ip_insns = collections.Counter()       # instruction address -> retired executions
        self.ip_cycles = collections.Counter()      # instruction address -> guest cycles
        self.kernel_stacks = collections.Counter()  # folded stack (tuple, outermost first) -> cycles
        self.fault_stacks = collections.Counter()   # folded stack -> faults
        self.trap_funcs = collections.defaultdict(FuncStats)
        self._open = {}                              # cpu index -> (start, rip, stack)
        self._syms = SymbolizerCache(self.kernel)
        self._cpus = _machine_cpus(machine)
        self.samples = collections.Counter()         # sampled user stack (outermost first) -> samples
        self.sample_weights = collections.Counter()  # sampled user stack -> instructions it stands for
        self.adaptive = sample_insns is None
        self.period = 1 if self.adaptive else sample_insns
        self.nsamples = 0
        self._last_insns = {}                        # cpu index -> its instructions at its last sample
        for cpu in self._cpus:
            cpu.counter.set_block_sink(lambda counts, partials, cpu=cpu: self._harvest(cpu, counts, partials))
            if stacks and self.period:
                self._sample_every(cpu)
        self.finished = False

    # ---- user call paths: samples at block boundaries -----------------------------------------
    def _sample_every(self, cpu):
        """Split each cpu.run(budget) into runs of self.period instructions and sample between them."""
        if not hasattr(cpu, '_stopped'):
            return                      # a CPU without the stop flag: no sampling (exact figures stay)
        orig = cpu.run

        def run(budget=None):
            end = None if budget is None else cpu.insns + budget
            while True:
                chunk = self.period if end is None else min(self.period, end - cpu.insns)
                if chunk <= 0:
                    return
                orig(chunk)
                if cpu._stopped or (end is not None and cpu.insns >= end):
                    return
                self._sample(cpu)
        cpu.run = run

    def _sample(self, cpu):
        task = self.kernel.current
        if task is None or task.exited:
            return
        sym = self.symbolizer()
        frames = unwind_cfi(sym, sym.cfi, task.umem.read_code, cpu.rip, cpu.read_reg('rsp'), cpu.read_reg('rbp'))
        stack = sym.frame_names(frames)
        idx = getattr(cpu, 'index', 0)
        weight = cpu.insns - self._last_insns.get(idx, 0)
        self._last_insns[idx] = cpu.insns
        self.samples[stack] += 1
        self.sample_weights[stack] += max(1, weight)
        self.nsamples += 1
        if self.adaptive and self.nsamples % ADAPT_SAMPLES == 0 and self.period < MAX_PERIOD:
            self.period = min(MAX_PERIOD, self.period * 2)

    # ---- user time: per-block counts from the native counter ---------------------------------
    def _harvest(self, cpu, counts, partials):
        insns, cycles = self.ip_insns, self.ip_cycles
        for addr, size, n in counts:
            priced = cpu.block_insn_costs(addr, size)
            if not priced:
                continue
            for a, c in priced:
                insns[a] += n
                cycles[a] += c * n
        for addr, size, cut, times in partials:
            priced = cpu.block_insn_costs(addr, size)
            if not priced:
                continue
            for a, c in priced[len(priced) - cut:]:
                insns[a] -= times
                cycles[a] -= c * times

    # ---- traps -----------------------------------------------------------------------------------
    def symbolizer(self):
        return self._syms.current()

    def _stack(self, rip):
        sym = self.symbolizer()
        if not self.stacks:
            return (sym.name(rip),)
        cpu = self.kernel.cpu
        frames = unwind_cfi(sym, sym.cfi, self.kernel.current.umem.read_code, rip, cpu.read_reg('rsp'),
                            cpu.read_reg('rbp'))
        return sym.frame_names(frames)

    def _enter(self, rip):
        self._open[getattr(self.kernel.cpu, 'index', 0)] = (self.kernel.now(), rip, self._stack(rip))

    def _leave(self):
        got = self._open.pop(getattr(self.kernel.cpu, 'index', 0), None)
        if got is None:
            return None
        start, rip, stack = got
        return self.kernel.now() - start, rip, stack

    def page_fault_entry(self, kernel, rip, address, error_code):
        self._enter(rip)

    def page_fault_exit(self, kernel, rip, address, error_code, info):
        got = self._leave()
        if got is None:
            return
        cycles, rip, stack = got
        f = self.trap_funcs[stack[-1]]
        f.faults += 1
        f.major += info.outcome == 'major'
        f.fault_cycles += cycles
        leaf = (info.handler or 'page_fault(%s)' % info.outcome) + '_[k]'
        self.kernel_stacks[stack + (leaf,)] += cycles
        self.fault_stacks[stack + (leaf,)] += 1

    def syscall_entry(self, kernel, task, nr):
        self._enter(kernel.cpu.rip)

    def syscall_exit(self, kernel, task, nr, ret):
        got = self._leave()
        if got is None:
            return
        cycles, rip, stack = got
        f = self.trap_funcs[stack[-1]]
        f.syscalls += 1
        f.sys_cycles += cycles
        name = SYSCALL_NAMES.get(nr, 'syscall_%d' % nr)
        self.kernel_stacks[stack + ('sys_%s_[k]' % name,)] += cycles

    # ---- results ---------------------------------------------------------------------------------
    def finish(self):
        """Collect the last counts (call once the run is over)."""
        if not self.finished:
            for cpu in self._cpus:
                cpu.counter.harvest()
                cpu.counter.set_block_sink(None)
                cpu.__dict__.pop('run', None)        # the sampling wrapper
            self.finished = True

    def functions(self):
        """{function name: FuncStats} with user and kernel attribution."""
        self.finish()
        out = collections.defaultdict(FuncStats)
        sym = self.symbolizer() if self.kernel.current is not None else None
        for ip, n in self.ip_insns.items():
            name = sym.name(ip) if sym else UNKNOWN
            f = out[name]
            f.insns += n
            f.user_cycles += self.ip_cycles[ip]
        for name, t in self.trap_funcs.items():
            f = out[name]
            f.faults += t.faults
            f.major += t.major
            f.fault_cycles += t.fault_cycles
            f.syscalls += t.syscalls
            f.sys_cycles += t.sys_cycles
        for f in out.values():
            f.user_cycles = int(round(f.user_cycles))
        return dict(out)

    def _fallback_paths(self):
        """{function: {path: weight}} for functions no sample caught running: the stacks they trapped
        from (faults, system calls), else the sampled stacks they were a caller in, cut after them."""
        trapped = collections.defaultdict(collections.Counter)
        for stack, n in self.fault_stacks.items():
            if len(stack) >= 2:
                trapped[stack[-2]][stack[:-1]] += n
        for stack, n in self.kernel_stacks.items():
            if len(stack) >= 2 and stack[:-1] not in trapped[stack[-2]]:
                trapped[stack[-2]][stack[:-1]] += 1
        calling = collections.defaultdict(collections.Counter)
        for stack, w in self.sample_weights.items():
            for i, name in enumerate(stack[:-1]):
                calling[name][stack[:i + 1]] += w
        return trapped, calling

    def user_stacks(self):
        """{stack: user cycles}: each function's exact cycles split over its sampled call paths."""
        by_leaf = collections.defaultdict(list)
        for stack, n in self.sample_weights.items():
            by_leaf[stack[-1]].append((stack, n))
        out = collections.Counter()
        fallback = None
        for name, f in self.functions().items():
            total = f.user_cycles
            paths = sorted(by_leaf.get(name, ()))
            if total <= 0:
                continue
            if not paths:
                if fallback is None:
                    fallback = self._fallback_paths()
                trapped, calling = fallback
                paths = sorted((trapped.get(name) or calling.get(name) or {}).items())
            if not paths:
                out[(name,)] += total
                continue
            nsamples = sum(n for _, n in paths)
            shares = [(total * n // nsamples, stack) for stack, n in paths]
            left = total - sum(c for c, _ in shares)
            for i, (c, stack) in enumerate(shares):
                out[stack] += c + (left if i == 0 else 0)     # the rounding remainder: sums stay exact
        return out

    def folded(self, event='cycles'):
        """Folded stacks `a;b;c count` lines: 'cycles' (user per function + kernel with stacks) or
        'faults' (page faults with stacks)."""
        if event == 'faults':
            items = self.fault_stacks.items()
        else:
            user = self.user_stacks()
            items = list(user.items()) + list(self.kernel_stacks.items())
        lines = ['%s %d' % (';'.join(s.replace(';', ':').replace(' ', '_') for s in stack), n)
                 for stack, n in sorted(items) if n > 0]
        return '\n'.join(lines) + ('\n' if lines else '')


def _fmt(n):
    return '{:,}'.format(int(n))


def format_profile(prof, stats, name, top=30):
    """The table `faultlab profile` prints."""
    funcs = prof.functions()
    total = stats['cycles'] or 1
    rows = sorted(funcs.items(), key=lambda kv: (-kv[1].total, kv[0]))
    acc_user = sum(f.user_cycles for f in funcs.values())
    acc_kernel = sum(f.fault_cycles + f.sys_cycles for f in funcs.values())
    other = stats['cycles'] - acc_user - acc_kernel
    lines = ['',
             " Profile of '%s' (faultlab, simulated time %.6f s, %s cycles)" % (name, stats['sim_seconds'],
                                                                               _fmt(stats['cycles'])),
             '  user: exact per function (block counts x cycle model); kernel: trap entry to return,',
             '  I/O waits included, charged to the function whose instruction trapped.',
             '',
             '%8s %14s %14s %8s %6s %13s %8s %13s  %s' % ('%total', 'user-cycles', 'instructions', 'faults',
                                                        'major', 'fault-cycles', 'syscalls', 'sys-cycles',
                                                        'function')]
    for fname, f in rows[:top]:
        lines.append('%7.2f%% %14s %14s %8s %6s %13s %8s %13s  %s'
                     % (100.0 * f.total / total, _fmt(f.user_cycles), _fmt(f.insns), _fmt(f.faults),
                        _fmt(f.major), _fmt(f.fault_cycles), _fmt(f.syscalls), _fmt(f.sys_cycles), fname))
    if len(rows) > top:
        rest = [f for _, f in rows[top:]]
        lines.append('%7.2f%% %14s %14s %8s %6s %13s %8s %13s  [%d more functions]'
                     % (100.0 * sum(f.total for f in rest) / total, _fmt(sum(f.user_cycles for f in rest)),
                        _fmt(sum(f.insns for f in rest)), _fmt(sum(f.faults for f in rest)),
                        _fmt(sum(f.major for f in rest)), _fmt(sum(f.fault_cycles for f in rest)),
                        _fmt(sum(f.syscalls for f in rest)), _fmt(sum(f.sys_cycles for f in rest)), len(rest)))
    lines.append('%7.2f%% %14s %14s %8s %6s %13s %8s %13s  [kernel outside traps: exec, completions]'
                 % (100.0 * other / total, '', '', '', '', _fmt(other), '', ''))
    lines.append('%7.2f%% %14s %14s %8s %6s %13s %8s %13s  total'
                 % (100.0 * (acc_user + acc_kernel + other) / total, _fmt(acc_user),
                    _fmt(sum(f.insns for f in funcs.values())), _fmt(sum(f.faults for f in funcs.values())),
                    _fmt(sum(f.major for f in funcs.values())),
                    _fmt(sum(f.fault_cycles for f in funcs.values())),
                    _fmt(sum(f.syscalls for f in funcs.values())), _fmt(sum(f.sys_cycles for f in funcs.values()))))
    return '\n'.join(lines) + '\n'
