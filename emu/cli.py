"""The `faultlab` command line."""
import argparse
import json
import os
import sys
import time

from emu.cycles import PLATFORMS, CostTable
from emu.machine import Machine, DEFAULT_RAM
from emu.selftests import add_selftests_parser, cmd_selftests
from kernel.sysctl_args import parse_sysctl_arg
from kernel.usercred import parse_user_spec, user_cred

DEFAULT_ENV = ['PATH=/bin:/usr/bin', 'HOME=/home', 'LANG=C', 'TERM=dumb']
EXIT_USAGE = 2
EXIT_INTERNAL = 70


def parse_size(s):
    """'256M', '1G', '65536', '64k' -> bytes."""
    s = s.strip().upper().rstrip('B').rstrip('I')
    mult = 1
    if s and s[-1] in 'KMG':
        mult = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}[s[-1]]
        s = s[:-1]
    try:
        v = int(s, 0) * mult
    except ValueError:
        raise argparse.ArgumentTypeError("not a size: %r (examples: 256M, 1G, 65536)" % s)
    if v < 0:
        raise argparse.ArgumentTypeError("size must not be negative")
    return v


def _add_cost_options(p):
    p.add_argument('--platform', choices=list(PLATFORMS), default='bare-metal',
                   help='cost table of the simulated machine: bare-metal (default) or vm (a KVM guest: '
                        'vCPU wake-ups, as in the SPF series\' 16-vCPU VM)')
    p.add_argument('--costs', metavar='FILE', help='override cycle costs (JSON or name = value lines)')


def _cost_table(a):
    return CostTable.from_file(a.costs, a.platform) if a.costs else CostTable(platform=a.platform)


def _add_machine_options(p):
    p.add_argument('--ram', type=parse_size, default=DEFAULT_RAM, help='guest RAM (default 256M)')
    p.add_argument('--swap', type=parse_size, default=256 << 20, help='swap area on the simulated disk '
                   '(default 256M; 0 disables swap)')
    p.add_argument('--hugepages', type=int, default=0, metavar='N',
                   help='2 MiB pages in the hugetlb pool at boot (/proc/sys/vm/nr_hugepages; default 0)')
    _add_cost_options(p)
    p.add_argument('--disk', metavar='K=V,...', help='disk model, e.g. read_latency_us=100,queue_depth=8')
    p.add_argument('--fault-around-bytes', type=parse_size, default=65536,
                   help='fault-around window for file read faults (0 or 4096 disables)')
    p.add_argument('--mount', action='append', default=[], metavar='HOST:GUEST[:rw]',
                   help='make a host file or directory visible in the guest (read-only unless :rw)')
    p.add_argument('--sysroot', metavar='DIR', help='the shared libraries and dynamic-loader configuration '
                   '(lib, lib64, usr/lib, usr/lib64, etc/ld.so.*) of dynamically linked programs come from DIR '
                   'instead of the host, as with qemu-x86_64 -L')
    p.add_argument('--env', action='append', default=[], metavar='NAME=VALUE', help='add to the guest environment')
    p.add_argument('--sysctl', action='append', default=[], metavar='NAME=VALUE',
                   help='set a /proc/sys value at boot through its write handler, as Linux\'s sysctl.NAME=VALUE '
                        'boot parameter (e.g. vm.overcommit_memory=1; repeatable)')
    p.add_argument('--user', metavar='UID[:GID[,GROUP...]]',
                   help='run the first process with these ids and no capabilities, as sudo -u would '
                        '(GID defaults to UID, the groups to GID)')
    p.add_argument('--seed', type=int, default=0, help='seed for getrandom and AT_RANDOM')
    p.add_argument('--cpus', type=int, default=1, help='simulated CPUs (default 1)')
    p.add_argument('--spf', action=argparse.BooleanOptionalAction, default=True,
                   help='speculative page faults for multi-threaded processes (default on)')
    p.add_argument('--spf-file', action='store_true',
                   help='speculative faults also on file-backed VMAs (the 2018 series; default: anonymous only)')
    p.add_argument('--munmap-downgrade', action='store_true',
                   help='munmap zaps with mmap_lock downgraded to read (Linux >= 4.20; default: held for '
                        'write, as in the 4.15 kernel of the SPF series)')
    p.add_argument('--native-faults', action=argparse.BooleanOptionalAction, default=True,
                   help='let the CPU resolve plain anonymous write faults in machine code (same results, '
                        'faster; default on)')
    p.add_argument('--max-insns', type=int, default=None, help='stop the guest after this many instructions')
    p.add_argument('--max-sim-time', type=float, default=None, metavar='SECONDS',
                   help='stop the guest after this much simulated time')
    p.add_argument('--timeout', type=float, default=None, metavar='SECONDS',
                   help='stop the guest after this much host (wall-clock) time, counted from the start of '
                        'faultlab (status 124)')
    p.add_argument('--check', action='store_const', const=True,
                   default={'': False, '0': False, 'full': 'full'}.get(os.environ.get('FAULTLAB_CHECK', ''), True),
                   help='verify kernel mm invariants after faults and syscalls, within a time budget '
                   '(also FAULTLAB_CHECK=1)')
    p.add_argument('--check-all', dest='check', action='store_const', const='full',
                   help='verify them after every fault and syscall (slow; also FAULTLAB_CHECK=full)')


def build_parser():
    ap = argparse.ArgumentParser(prog='faultlab', description='x86-64 emulator with a Linux-like kernel for '
                                 'studying page faults')
    sub = ap.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('run', help='run a static x86-64 ELF program')
    _add_machine_options(r)
    r.add_argument('--stats', action='store_true', help='print perf-stat-like counters to stderr at exit')
    r.add_argument('--stats-json', metavar='FILE', help='write the counters as JSON')
    from emu.tools import add_options as _add_tool_options
    _add_tool_options(r, 'run')
    r.add_argument('--gdb', metavar='[HOST]:PORT', help='wait for gdb on this address (port 0: a free one) '
                   'and run under its control')
    r.add_argument('program')
    r.add_argument('args', nargs=argparse.REMAINDER)
    for name, what in (('stat', 'run a program and print perf-stat-like counters of the simulated machine'),
                       ('profile', 'run a program and attribute cycles and page faults to its functions')):
        t = sub.add_parser(name, help=what)
        _add_machine_options(t)
        _add_tool_options(t, name)
        t.add_argument('program')
        t.add_argument('args', nargs=argparse.REMAINDER)
    c = sub.add_parser('costs', help='print the cycle cost table')
    _add_cost_options(c)
    from emu.gdbcli import add_gdb_parser
    add_gdb_parser(sub, _add_machine_options)
    add_selftests_parser(sub)
    b = sub.add_parser('bench', help='benchmarks')
    b.add_argument('what', choices=['speed', 'prefetch', 'populate', 'spf', 'elf-fuzz', 'soak'])
    b.add_argument('--quick', action='store_true', help='smaller sizes (for a smoke test)')
    b.add_argument('--size', default=None, help='populate: mapping size (e.g. 2M, 64M)')
    b.add_argument('--reps', type=_positive_int, default=None,
                   help='speed: runs per runner and workload, the best counts (default 3; 1 with --quick)')
    b.add_argument('--count', type=int, default=10000, help='elf-fuzz: number of mutated executables; soak: number of runs')
    b.add_argument('--seed', type=int, default=1, help='elf-fuzz: seed of the mutations; soak: seed of the option combinations')
    return ap


def _positive_int(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError('expected a positive integer, got %r' % text)
    return n


def make_machine(a, stdout=None, stderr=None):
    """Build a Machine from parsed options (ValueError for a bad option value)."""
    from kernel.block.params import DiskParams
    from kernel.fs import parse_mount_spec
    from kernel.kernel import KernelConfig
    costs = _cost_table(a)
    disk = DiskParams.parse(a.disk) if a.disk else DiskParams()
    mounts = [parse_mount_spec(m) for m in a.mount]
    for host, _guest, _ro in mounts:
        if not os.path.exists(host):
            raise ValueError("--mount: host path %s does not exist" % host)
        if not (os.path.isdir(host) or os.path.isfile(host)):
            raise ValueError("--mount: host path %s is neither a directory nor a regular file" % host)
    sysroot = getattr(a, 'sysroot', None) or '/'
    if not os.path.isdir(sysroot):
        raise ValueError("--sysroot: %s is not a directory" % sysroot)
    if a.hugepages < 0:
        raise ValueError("--hugepages must be 0 or more")
    fab = a.fault_around_bytes
    if fab & (fab - 1) and fab:
        raise ValueError("--fault-around-bytes must be a power of two")
    if not 1 <= a.cpus <= 64:
        raise ValueError("--cpus must be between 1 and 64")
    sysctls = [parse_sysctl_arg(text) for text in a.sysctl]
    cred = user_cred(*parse_user_spec(a.user)) if a.user is not None else None
    config = KernelConfig(sysctls=sysctls, cred=cred, fault_around_bytes=fab, disk=disk, mounts=mounts, seed=a.seed,
                          stdout=stdout, stderr=stderr, swap_bytes=a.swap, cpus=a.cpus, spf=a.spf,
                          spf_file=a.spf_file, nr_hugepages=a.hugepages, check=a.check,
                          munmap_downgrade=a.munmap_downgrade, native_faults=a.native_faults, sysroot=sysroot)
    return Machine(ram=a.ram, costs=costs, config=config)


def _fmt(n):
    return '{:,}'.format(int(n))


def format_stats(s, name):
    """A perf-stat-like block."""
    ipc = s['instructions'] / s['cycles'] if s['cycles'] else 0.0
    lines = [
        '',
        " Performance counter stats for '%s' (faultlab, simulated %.3f GHz):" % (name, s['freq_hz'] / 1e9),
        '',
        '%20s      instructions              #  %6.2f  insn per cycle' % (_fmt(s['instructions']), ipc),
        '%20s      cycles                    #  %s guest, %s kernel, %s idle'
        % (_fmt(s['cycles']), _fmt(s['guest_cycles']), _fmt(s['kernel_cycles']), _fmt(s['idle_cycles'])),
        '%20s      page-faults               #  %s minor, %s major'
        % (_fmt(s['page_faults']), _fmt(s['minor_faults']), _fmt(s['major_faults'])),
        '%20s      kernel-faultins           #  pages faulted in by the kernel (uaccess, populate)'
        % _fmt(s['kernel_faultins']),
        '%20s      fault-around-pages' % _fmt(s['fault_around_pages']),
        '%20s      pages-zeroed' % _fmt(s['pages_zeroed']),
        '%20s      pages-copied              #  copy-on-write' % _fmt(s['pages_copied']),
        '%20s      pagecache-hits' % _fmt(s['pagecache_hits']),
        '%20s      pagecache-misses' % _fmt(s['pagecache_misses']),
        '%20s      disk-reads                #  %s bytes' % (_fmt(s['disk_reads']), _fmt(s['disk_read_bytes'])),
        '%20s      disk-writes               #  %s bytes' % (_fmt(s['disk_writes']), _fmt(s['disk_write_bytes'])),
        '%20s      tlb-flushes' % _fmt(s['tlb_flushes']),
        '%20s      swap-in / swap-out        #  %s pages in, %s pages out; %s scanned, %s reclaimed'
        % (_fmt(s['pswpin'] + s['pswpout']), _fmt(s['pswpin']), _fmt(s['pswpout']), _fmt(s['pgscan']),
           _fmt(s['pgsteal'])),
        '%20s      syscalls' % _fmt(s['syscalls']),
        '',
        '%20.9f seconds simulated (%.9f s waiting for I/O)' % (s['sim_seconds'], s['iowait_cycles'] / s['freq_hz']),
    ]
    if s['fault_breakdown']:
        lines += ['', '  page faults by handler (kernel cycles, mean per fault):']
        for h, c in s['fault_breakdown'].items():
            n = c.get('count', 0) or 1
            steps = ', '.join('%s %d' % (k, v / n) for k, v in sorted(c.items(), key=lambda kv: -kv[1])
                              if k not in ('count', 'cycles'))
            lines.append('    %-28s %8s faults %10.0f cycles/fault  [%s]' % (h, _fmt(c.get('count', 0)),
                                                                           c.get('cycles', 0) / n, steps))
    return '\n'.join(lines) + '\n'


def cmd_run(a):
    from kernel.loader import ExecError
    if not a.program:
        print('faultlab run: no program given', file=sys.stderr)
        return EXIT_USAGE
    try:
        m = make_machine(a)
    except (ValueError, OSError) as e:
        print('faultlab: %s' % e, file=sys.stderr)
        return EXIT_USAGE
    if getattr(a, "gdb", None):
        from emu.gdbstub import attach_gdb
        try:
            attach_gdb(m, a.gdb, a.program)
        except (ValueError, OSError) as e:
            print('faultlab: %s' % e, file=sys.stderr)
            return EXIT_USAGE
    env = DEFAULT_ENV + a.env
    argv = [os.path.basename(a.program)] + a.args
    from emu.tools import RunTools
    try:
        tools = RunTools(m, a, ' '.join([a.program] + a.args))
    except OSError as e:
        print('faultlab: cannot write %s: %s' % (e.filename, e.strerror), file=sys.stderr)
        return EXIT_USAGE
    res = None
    try:
        res = m.run(a.program, argv, env, max_insns=a.max_insns, max_sim_seconds=a.max_sim_time,
                    wall_timeout=a.timeout, wall_start=getattr(a, 'wall_start', None))
    except ExecError as e:
        print('faultlab: cannot run %s' % e, file=sys.stderr)
        return 126 if e.errno in (13,) else 127 if e.errno == 2 else 126
    finally:
        tools.close(res)
    sys.stdout.flush()
    if res.report:
        print('faultlab: %s[%d] %s' % (argv[0], 1, res.report), file=sys.stderr)
    try:
        tools.report(res)
    except OSError as e:
        print('faultlab: cannot write %s: %s' % (e.filename, e.strerror), file=sys.stderr)
        return EXIT_USAGE
    if getattr(a, 'stats', False):
        sys.stderr.write(format_stats(res.stats, ' '.join([a.program] + a.args)))
    if getattr(a, 'stats_json', None):
        with open(a.stats_json, 'w') as f:
            json.dump(dict(res.stats, exit_code=res.exit_code,
                           killed_by=res.killed_by[1] if res.killed_by else None), f, indent=2)
    return res.exit_code


def cmd_costs(a):
    costs = _cost_table(a)
    print('freq_hz = %d' % costs.freq_hz)
    for name, cyc, src in costs.describe():
        print('%-20s = %-8s # %s' % (name, cyc, src))
    return 0


def cmd_bench(a):
    if a.what == 'elf-fuzz':
        from emu.fuzz_elf import main as elf_fuzz
        return elf_fuzz(count=a.count if not a.quick else 200, seed=a.seed)
    if a.what == 'soak':
        from emu.bench_soak import main as bench_soak
        return bench_soak(count=a.count, seed=a.seed, quick=a.quick)
    if a.what == 'prefetch':
        from emu.bench_prefetch import main as bench_prefetch
        return bench_prefetch(quick=a.quick)
    if a.what == 'spf':
        from emu.bench_spf import main as bench_spf
        return bench_spf(quick=a.quick)
    if a.what == 'populate':
        from emu.bench_populate import main as bench_populate
        return bench_populate(**({'size': a.size} if a.size else {}), quick=a.quick)
    from emu.bench import main as bench_speed
    return bench_speed(quick=a.quick, reps=a.reps)


def process_start():
    """When this process started, as a time.monotonic() value (from /proc/self/stat's starttime, so that
    --timeout also counts the interpreter's start and the machine's set-up); now if unknown."""
    now = time.monotonic()
    try:
        with open('/proc/self/stat') as f:
            starttime = int(f.read().rsplit(')', 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - starttime / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError):
        return now
    return now - max(0.0, age)


def main(argv=None):
    ap = build_parser()
    a = ap.parse_args(argv)
    a.wall_start = process_start() if argv is None else None     # --timeout counts from here
    try:
        from emu.gdbcli import cmd_gdb
        return {'run': cmd_run, 'stat': cmd_run, 'profile': cmd_run, 'costs': cmd_costs,
                'bench': cmd_bench, 'gdb': cmd_gdb, 'selftests': cmd_selftests}[a.cmd](a)
    except KeyboardInterrupt:
        print('faultlab: interrupted', file=sys.stderr)
        return 130
    except Exception as e:     # the emulator's own failure: one clear line, no traceback
        import traceback
        tb = traceback.extract_tb(e.__traceback__)
        where = '%s:%d' % (os.path.relpath(tb[-1].filename), tb[-1].lineno) if tb else '?'
        print('faultlab: internal error: %s: %s (at %s; set FAULTLAB_DEBUG=1 for a traceback)'
              % (type(e).__name__, e, where), file=sys.stderr)
        if os.environ.get('FAULTLAB_DEBUG'):
            traceback.print_exc()
        return EXIT_INTERNAL


if __name__ == '__main__':
    sys.exit(main())
