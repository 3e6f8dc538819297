"""gdb against the stub on 2 and 4 CPUs with a threaded program, checked against native gdb on the same
binary (breakpoint hits, the threads that hit, thread counts; addresses may differ); and the Host I/O
(vFile) packets: `info proc mappings`, `remote get`, no file-transfer warning."""
import os
import re
import shutil
import subprocess

import pytest

from test_gdb import GDB, gdb_batch, gdb_session, symbols

GCC = shutil.which('gcc')
pytestmark = pytest.mark.skipif(GDB is None or GCC is None, reason='needs gdb and gcc')

WORKERS_C = r'''
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static long total;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void *worker(void *arg)
{
    long id = (long)arg;
    long sq = id * id;
    pthread_mutex_lock(&lock);
    total += sq;
    pthread_mutex_unlock(&lock);
    return (void *)sq;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3;
    pthread_t t[8];
    for (long i = 0; i < n && i < 8; i++)
        pthread_create(&t[i], 0, worker, (void *)(i + 1));
    for (int i = 0; i < n && i < 8; i++)
        pthread_join(t[i], 0);
    printf("total %ld\n", total);
    return 0;
}
'''


BLOCKING_C = r'''
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static int fds[2];
static volatile int reading;

void *writer(void *arg)
{
    while (!reading)
        ;
    usleep(100000);                 /* main is asleep in its read by then */
    write(fds[1], "x", 1);
    return arg;
}

int main(void)
{
    pthread_t t;
    char c = 0;
    long ret;
    pipe(fds);
    pthread_create(&t, 0, writer, 0);
    /* read(2) of the empty pipe: it sleeps until the writer thread writes */
    reading = 1;
    __asm__ volatile(".globl read_syscall\nread_syscall:\n\tsyscall"
                     : "=a"(ret) : "a"(0L), "D"((long)fds[0]), "S"(&c), "d"(1L) : "rcx", "r11", "memory");
    pthread_join(t, 0);
    printf("read %ld %c\n", ret, c);
    return 0;
}
'''


def build(d, name, source, *flags):
    """Compile source (static unless flags say otherwise) with debug info into d/name."""
    src = d / (name + '.c')
    src.write_text(source)
    prog = str(d / name)
    subprocess.run([GCC, '-g', '-O0', '-pthread'] + list(flags) + [str(src), '-o', prog], check=True)
    return prog


@pytest.fixture(scope='module')
def blocking(tmp_path_factory):
    """A program whose main thread sleeps in read(2) until another thread writes."""
    return build(tmp_path_factory.mktemp('gdbblock'), 'blocking', BLOCKING_C, '-static')


@pytest.fixture(scope='module')
def workers(tmp_path_factory):
    """The threaded program, static with debug info."""
    return build(tmp_path_factory.mktemp('gdbthreads'), 'workers', WORKERS_C, '-static')


@pytest.fixture(scope='module')
def workers_dynamic(tmp_path_factory):
    """The same program linked dynamically (its libc and loader come from the guest's /lib)."""
    return build(tmp_path_factory.mktemp('gdbthreadsdyn'), 'workers', WORKERS_C)


def native(prog, commands, args=()):
    """gdb -batch on the program run natively: the first 'continue' is gdb's `run ARGS`."""
    cmds = list(commands)
    cmds[cmds.index('continue')] = 'run ' + ' '.join(args)
    return gdb_batch(prog, cmds)


def hits(out):
    """The worker args of each breakpoint hit, in order."""
    return re.findall(r'hit Breakpoint 1, worker \(arg=(0x[0-9a-f]+)\)', out)


def hit_threads(out):
    """gdb's thread numbers of each breakpoint hit."""
    return re.findall(r'Thread (\d+)(?: "[^"]*")? hit Breakpoint 1', out)


def check_session(tmp_path, prog, cmds, cpus, nworkers):
    """The session under faultlab and natively: same hits by the same workers; faultlab's run completes."""
    out, rc, stdout, stderr = gdb_session(tmp_path, prog, cmds, args=[str(nworkers)], opts=['--cpus', str(cpus)])
    assert 'Traceback' not in out + stderr, out + stderr
    nat = native(prog, cmds, [str(nworkers)])
    assert sorted(hits(out)) == sorted(hits(nat)) == ['0x%x' % i for i in range(1, nworkers + 1)], out + nat
    assert len(set(hit_threads(out))) == len(set(hit_threads(nat))) == nworkers, out + nat
    # the threads gdb learned of: the main thread and one per worker, in both
    assert len(re.findall(r'^\[New Thread ', out, re.M)) == len(re.findall(r'^\[New Thread ', nat, re.M)) \
        == nworkers, out + nat
    assert rc == 0 and stdout == 'total %d\n' % sum(i * i for i in range(1, nworkers + 1)), (out, stderr)
    assert 'exited normally' in out and 'exited normally' in nat
    return out, nat


@pytest.mark.parametrize('cpus', [2, 4])
def test_info_threads_between_continues_keeps_every_breakpoint_hit(workers, tmp_path, cpus):
    """The reported case: `info threads` (an Hg to each thread) between continues; every worker stops."""
    cmds = ['break worker', 'continue'] + ['info threads', 'continue'] * 3 + ['continue']
    out, nat = check_session(tmp_path, workers, cmds, cpus, 3)
    # each `info threads` lists the main thread and the one that hit, in both
    for text in (out, nat):
        listings = re.findall(r'^\s+Id\s+Target Id.*\n((?:[ *].*\n)+)', text, re.M)
        assert len(listings) == 3, text
        for listing in listings:
            assert re.search(r'^\*\s+\d+\s+Thread.*worker \(arg=', listing, re.M), listing
            assert len(listing.splitlines()) >= 2
        # qXfer:threads gives each thread its name, as natively
        assert len(re.findall(r'^Thread \d+ "workers" hit Breakpoint 1', text, re.M)) == 3, text
    # and says which simulated CPU each thread is on
    assert re.search(r'^\*\s+\d+\s+Thread 1\.\d+ "workers" \(tid \d+, CPU [0-3], stopped here\)', out, re.M), out


@pytest.mark.parametrize('cpus', [2, 4])
def test_selecting_thread_1_between_continues_keeps_every_breakpoint_hit(workers, tmp_path, cpus):
    """`thread 1` (Hg1 and a register read) before each continue: the next worker still stops."""
    cmds = ['break worker', 'continue'] + ['thread 1', 'continue'] * 3 + ['continue']
    check_session(tmp_path, workers, cmds, cpus, 3)


def test_every_worker_hits_the_breakpoint_on_4_cpus(workers, tmp_path):
    """Four workers on four CPUs: four hits, by four threads, the same as natively."""
    cmds = ['break worker', 'continue'] + ['continue'] * 4 + ['continue']
    check_session(tmp_path, workers, cmds, 4, 4)


@pytest.mark.parametrize('cpus', [2, 4])
def test_step_in_one_thread(workers, tmp_path, cpus):
    """`next` twice in the thread that hit (the breakpoint deleted): the same thread, its own locals."""
    cmds = ['break worker', 'continue', 'delete', 'next', 'next', 'print sq', 'print id', 'thread', 'continue']
    out, _, stdout, stderr = gdb_session(tmp_path, workers, cmds, args=['3'], opts=['--cpus', str(cpus)])
    nat = native(workers, cmds, ['3'])
    for text in (out, nat):
        assert re.search(r'^\d+\s+pthread_mutex_lock\(&lock\);', text, re.M), text
        # the worker that hit (natively whichever thread got there first): sq = id * id
        m = re.search(r'^\$1 = (\d+)\n\$2 = (\d+)$', text, re.M)
        assert m and int(m.group(1)) == int(m.group(2)) ** 2, text
        hit = hit_threads(text)[0]
        assert re.search(r'\[Current thread is %s ' % hit, text), text
    assert stdout == 'total 14\n', (out, stderr)


@pytest.mark.parametrize('cpus', [2, 4])
def test_thread_switch_shows_each_threads_frames(workers, tmp_path, cpus):
    """`thread 1` shows main's stack (it is in pthread_create), switching back shows the worker's args."""
    cmds = ['break worker', 'continue', 'thread 1', 'bt', 'thread 2', 'print arg', 'bt 1', 'kill']
    out, _, _, stderr = gdb_session(tmp_path, workers, cmds, args=['1'], opts=['--cpus', str(cpus)])
    nat = native(workers, cmds[:-1], ['1'])
    for text in (out, nat):
        assert re.search(r'^#\d+\s+.*main \(argc=2, argv=0x[0-9a-f]+\) at .*workers\.c:\d+', text, re.M), text
        assert '$1 = (void *) 0x1' in text, text
        assert re.search(r'^#0\s+worker \(arg=0x1\) at .*workers\.c:\d+', text, re.M), text
    assert 'Traceback' not in out + stderr


@pytest.mark.parametrize('cpus', [2, 4])
def test_stepi_in_another_thread(workers, tmp_path, cpus):
    """`thread 1` then `stepi`: thread 1 steps one instruction (the core switches to it) and stays the
    selected thread, as natively (where the other threads run meanwhile; here the step is one instruction
    of thread 1 alone, so the worker that hit is still where it stopped)."""
    cmds = ['break worker', 'continue', 'delete', 'thread 1', 'printf "pc1=%#lx\\n", $pc', 'stepi',
            'printf "pc2=%#lx\\n", $pc', 'thread', 'continue']
    out, rc, stdout, stderr = gdb_session(tmp_path, workers, cmds[:-1] + ['thread 2', 'print arg', 'continue'],
                                          args=['3'], opts=['--cpus', str(cpus)])
    nat = native(workers, cmds, ['3'])
    for text in (out, nat):
        assert re.search(r'^\[Current thread is 1 ', text, re.M), text
        pc1, pc2 = (int(re.search(r'^%s=(0x[0-9a-f]+)$' % k, text, re.M).group(1), 16) for k in ('pc1', 'pc2'))
        # (natively, main may already sleep in pthread_join: then the step is the futex call's return)
        assert 0 < pc2 - pc1 <= 15 or text is nat and pc2 == pc1, text
    assert '$1 = (void *) 0x1' in out, out
    assert rc == 0 and stdout == 'total 14\n', (out, stderr)


@pytest.mark.parametrize('cpus', [1, 2])
def test_stepi_over_a_blocking_system_call(blocking, tmp_path, cpus):
    """stepi on a read(2) that sleeps: the step ends when the call returns (the writer thread ran
    meanwhile), at the next instruction, with the call's result, as natively."""
    cmds = ['break *read_syscall', 'continue', 'stepi', 'printf "pc=%#lx rax=%ld\\n", $pc, $rax',
            'stepi', 'printf "pc=%#lx\\n", $pc', 'continue']
    out, rc, stdout, stderr = gdb_session(tmp_path, blocking, cmds, opts=['--cpus', str(cpus)])
    nat = native(blocking, cmds)
    for text in (out, nat):
        stop = int(re.search(r'Breakpoint 1, (0x[0-9a-f]+) in main', text).group(1), 16)
        assert 'pc=%#x rax=1\n' % (stop + 2) in text, text
        assert re.search(r'^pc=0x[0-9a-f]+$', text, re.M) and 'exited normally' in text, text
    assert rc == 0 and stdout == 'read 1 x\n', (out, stderr)


@pytest.mark.parametrize('cpus', [1, 2])
def test_stepi_of_a_thread_asleep_in_a_system_call(blocking, tmp_path, cpus):
    """Stopped in the writer while main sleeps in read(2): `thread 1`, `stepi` lets the others run
    and ends when main's read returns (pc right after the syscall, rax the byte count), as natively."""
    after = symbols(blocking)['read_syscall'] + 2
    cmds = ['break write', 'continue', 'thread 1', 'stepi', 'printf "pc=%#lx rax=%ld\\n", $pc, $rax', 'thread']
    out, _, _, stderr = gdb_session(tmp_path, blocking, cmds + ['kill'], opts=['--cpus', str(cpus)])
    nat = native(blocking, cmds)
    for text in (out, nat):
        assert 'pc=%#x rax=1\n' % after in text, text
        assert re.search(r'^\[Current thread is 1 ', text, re.M), text
    assert 'Traceback' not in out + stderr


def test_info_proc_mappings_and_file_transfer(workers, tmp_path):
    """vFile: no file-transfer warning; `info proc mappings` lists the kernel's /proc/PID/maps; `remote
    get` copies the guest's program (the host path qXfer:exec-file names) and its maps text."""
    got_prog, got_maps = tmp_path / 'prog.copy', tmp_path / 'maps.copy'
    cmds = ['info proc mappings', 'info proc', 'remote get %s %s' % (workers, got_prog),
            'remote get /proc/1/maps %s' % got_maps, 'remote get /no/such/file %s' % (tmp_path / 'x'),
            'break worker', 'continue', 'info proc mappings', 'delete', 'continue']
    out, rc, stdout, stderr = gdb_session(tmp_path, workers, cmds, args=['1'])
    assert 'does not support file transfer' not in out, out
    assert 'Traceback' not in out + stderr
    assert rc == 0 and stdout == 'total 1\n'
    with open(workers, 'rb') as f:
        assert got_prog.read_bytes() == f.read()
    maps = got_maps.read_text()
    assert re.match(r'^00400000-[0-9a-f]+ r--p 00000000 [0-9a-f]{2}:[0-9a-f]{2} \d+\s+/bin/workers$',
                    maps.splitlines()[0]), maps
    assert '[stack]' in maps and '[vdso]' in maps
    # info proc mappings shows every line of the maps text (the one taken while stopped at _start)
    tables = out.split('Mapped address spaces:')[1:]
    assert len(tables) == 2, out
    for line in maps.splitlines():
        start, end = line.split()[0].split('-')
        assert re.search(r'^\s+0x%x\s+0x%x\s' % (int(start, 16), int(end, 16)), tables[0], re.M), (line, out)
    assert 'process 1' in out and "exe = '/bin/workers'" in out
    assert "No such file or directory" in out
    # stopped in a worker, the second table has the threads' stacks too (mmap'ed, anonymous)
    rows = [re.findall(r'^\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s', t, re.M) for t in tables]
    assert len(rows[0]) == len(maps.splitlines()) and len(rows[1]) > len(rows[0]), out


def test_dynamic_program_libraries_come_from_the_target(workers_dynamic, tmp_path):
    """A dynamically linked threaded program on 2 CPUs: gdb reads the loader and libc through vFile
    (target: paths), every worker stops, and the backtrace goes through libc's start_thread."""
    cmds = ['break worker', 'continue', 'info sharedlibrary', 'bt', 'continue', 'continue', 'continue']
    out, rc, stdout, stderr = gdb_session(tmp_path, workers_dynamic, cmds, args=['3'], opts=['--cpus', '2'])
    assert 'Traceback' not in out + stderr
    assert 'does not support file transfer' not in out, out
    assert re.search(r'Yes\s+target:/lib\S*/ld-linux-x86-64\.so\.2$', out, re.M), out
    assert re.search(r'Yes\s+target:/\S*libc\.so\.6$', out, re.M), out
    assert re.search(r'^#1\s+0x[0-9a-f]+ in start_thread', out, re.M), out
    assert sorted(hits(out)) == ['0x1', '0x2', '0x3'], out
    assert rc == 0 and stdout == 'total 14\n'


def test_monitor_stats_is_the_perf_stat_block(workers, tmp_path):
    """`monitor stats` prints the same perf-stat-like block as `faultlab run --stats`."""
    out, rc, _, _ = gdb_session(tmp_path, workers, ['break worker', 'continue', 'monitor stats', 'delete',
                                                   'continue'], args=['1'], opts=['--cpus', '2'])
    assert "Performance counter stats for 'workers' (faultlab, simulated" in out and '2 CPUs' in out, out
    assert re.search(r'^\s+[\d,]+\s+instructions\s', out, re.M) and re.search(r'^\s+[\d,]+\s+page-faults\s',
                                                                                 out, re.M)
    assert 'per CPU:' in out and 'seconds simulated time' in out
    assert rc == 0
