"""`faultlab stat` as perf stat's users expect it: -o - is standard output, -e picks events, -r N prints the
mean and the spread of N runs (run i with --seed plus i), Ctrl-C prints the counters so far, and the
user/kernel/idle shares stay shares on several CPUs."""
import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from faultlab.kernel.counters import EVENT_NAMES


def faultlab(*args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, '-m', 'faultlab.cli'] + list(args), capture_output=True, cwd=cwd,
                          timeout=timeout)


def _build(tmp_path, name, source):
    """A small C program written for one test, built static in tmp_path; its path."""
    src = tmp_path / (name + '.c')
    src.write_text(source)
    exe = tmp_path / name
    subprocess.run(['gcc', '-O1', '-static', str(src), '-o', str(exe)], check=True)
    return str(exe)


def _csv(text):
    """{event: value} of `stat -x ,` lines (a fourth field, the spread of -r, as a float)."""
    out = {}
    for line in text.splitlines():
        fields = line.split(',')
        if fields[0].startswith('CPU'):
            continue
        value = float(fields[0]) if fields[1] == 's' else int(fields[0])
        out[fields[2]] = (value, float(fields[3].rstrip('%'))) if len(fields) > 3 else value
    return out


def _rows(text):
    """{event: the line} of the human-readable block."""
    rows = {}
    for line in text.splitlines():
        p = line.split()
        if len(p) >= 2 and re.fullmatch(r'[\d,.]+', p[0]) and p[1] in EVENT_NAMES:
            rows[p[1]] = line
    return rows


def test_output_dash_is_standard_output(userland, tmp_path):
    p = faultlab('stat', '-o', '-', os.path.join(userland, 'hello'), cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert out.startswith('hello, world\n') and 'Performance counter stats for' in out
    assert p.stderr == b''
    assert not (tmp_path / '-').exists()


def test_events_pick_the_rows_in_their_order(userland):
    p = faultlab('stat', '-e', 'page-faults,instructions', '-e', 'disk-reads', os.path.join(userland, 'hello'))
    assert p.returncode == 0, p.stderr
    rows = _rows(p.stderr.decode())
    assert list(rows) == ['page-faults', 'instructions', 'disk-reads']
    p = faultlab('stat', '-x', ',', '-e', 'major-faults,seconds-simulated', os.path.join(userland, 'hello'))
    lines = p.stderr.decode().splitlines()
    assert [ln.split(',')[2] for ln in lines] == ['major-faults', 'seconds-simulated']
    assert int(lines[0].split(',')[0]) > 0 and float(lines[1].split(',')[0]) > 0


def test_unknown_event_is_one_line_listing_the_known_ones(userland):
    p = faultlab('stat', '-e', 'cycles,page-fualts', os.path.join(userland, 'hello'))
    assert p.returncode == 2 and p.stdout == b''
    err = p.stderr.decode()
    assert err.count('\n') == 1 and 'Traceback' not in err
    assert "'page-fualts'" in err and 'page-faults' in err and 'instructions' in err


RANDOM_PAGES = r'''
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
int main(void) {
    unsigned char r;
    if (getrandom(&r, 1, 0) != 1) return 1;
    int pages = 1 + r % 64;                 /* 1 to 64 pages, as getrandom draws it */
    char *p = malloc(pages * 4096 + 4096);
    for (int i = 0; i < pages; i++) p[i * 4096] = 1;
    printf("%d\n", pages);
    return 0;
}
'''


def test_repeat_prints_the_mean_and_the_spread_of_runs_seeded_one_apart(tmp_path):
    prog = _build(tmp_path, 'randpages', RANDOM_PAGES)
    single = []
    for seed in (7, 8, 9, 10):
        p = faultlab('stat', '-x', ',', '--seed', str(seed), prog)
        assert p.returncode == 0, p.stderr
        single.append(_csv(p.stderr.decode()))
    assert len({s['page-faults'] for s in single}) > 1            # another --seed value changes the run
    p = faultlab('stat', '-r', '4', '--seed', '7', '-x', ',', prog)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 4                         # the program ran four times
    rep = _csv(p.stderr.decode())
    faults = [s['page-faults'] for s in single]
    mean = sum(faults) / 4
    sem = (sum((x - mean) ** 2 for x in faults) / 3 / 4) ** 0.5
    assert rep['page-faults'][0] == round(mean)
    assert rep['page-faults'][1] == pytest.approx(100 * sem / mean, abs=0.01)
    p = faultlab('stat', '-r', '4', '--seed', '7', prog)
    err = p.stderr.decode()
    assert '4 runs' in err
    line = _rows(err)['page-faults']
    assert line.split()[0] == '{:,}'.format(round(mean))
    assert re.search(r'\( \+-\s*%.2f%% \)$' % (100 * sem / mean), line), line
    assert re.search(r'seconds simulated time\s+\( \+-\s*[\d.]+% \)', err)


def test_repeat_must_be_positive(userland):
    for bad in ('0', '-3', 'x'):
        p = faultlab('stat', '-r', bad, os.path.join(userland, 'hello'))
        assert p.returncode == 2 and p.stderr.decode().count('\n') == 1 and '-r/--repeat' in p.stderr.decode()


SPIN = r'''
#include <stdio.h>
int main(void) {
    puts("spinning"); fflush(stdout);
    volatile unsigned long x = 0;
    for (;;) x++;
}
'''


def _interrupt(tmp_path, command):
    """Run the spinning program under `faultlab COMMAND`, Ctrl-C it once it spins: (status, stderr)."""
    prog = _build(tmp_path, 'spin', SPIN)
    p = subprocess.Popen([sys.executable, '-m', 'faultlab.cli', command, '--timeout', '120', prog],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 60)
        assert ready and p.stdout.readline() == b'spinning\n'
        time.sleep(0.5)                                            # well into the loop
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    err = err.decode()
    assert 'Traceback' not in err and 'Exception ignored' not in err, err
    return p.returncode, err


def test_ctrl_c_prints_the_counters_so_far_and_exits_130(tmp_path):
    status, err = _interrupt(tmp_path, 'stat')
    assert status == 130, err
    assert 'interrupted' in err and 'Performance counter stats for' in err
    insns = int(_rows(err)['instructions'].split()[0].replace(',', ''))
    assert insns > 100_000                                         # the loop's instructions are counted


def test_ctrl_c_ends_run_with_one_line(tmp_path):
    status, err = _interrupt(tmp_path, 'run')
    assert status == 130 and err == 'faultlab: interrupted\n'


def test_shares_of_cpu_time_stay_shares_on_two_cpus(userland):
    """On two CPUs the kernel work of both CPUs is more than the furthest clock: the user, kernel and idle
    shares are of every CPU's clock summed, and add up to 100%."""
    prog = os.path.join(userland, 'ebizzy')
    p = faultlab('stat', '--cpus', '2', prog)
    assert p.returncode == 0, p.stderr
    rows = _rows(p.stderr.decode())
    shares = {e: float(re.search(r'#\s+([\d.]+)%', rows[e]).group(1))
              for e in ('guest-cycles', 'kernel-cycles', 'idle-cycles')}
    assert all(0 <= s <= 100 for s in shares.values()), shares
    assert sum(shares.values()) == pytest.approx(100, abs=0.2)
    csv = _csv(faultlab('stat', '--cpus', '2', '-x', ',', '-e',
                        'cycles,guest-cycles,kernel-cycles,idle-cycles,cpu-time-cycles', prog).stderr.decode())
    assert csv['cpu-time-cycles'] == pytest.approx(csv['guest-cycles'] + csv['kernel-cycles'] + csv['idle-cycles'],
                                                   abs=2)
    assert csv['kernel-cycles'] > csv['cycles'] * 0.5 and csv['cpu-time-cycles'] > csv['cycles']
    assert 'summed' in rows['cycles']


def test_mean_of_runs_keeps_cpu_numbers_and_averages_the_rest():
    """-r's mean snapshot: counts averaged (per CPU and per fault handler too), CPU numbers kept; the
    spread is perf's: the standard error of the mean over the mean."""
    from faultlab.observe.stat import format_stat, mean_snapshot, spreads
    runs = [dict(instructions=100, cycles=400, freq_hz=1_000_000_000, page_faults=10,
                 cpus=[dict(cpu=0, instructions=60, cycles=400), dict(cpu=1, instructions=40, cycles=390)],
                 fault_breakdown={'do_anonymous_page': {'count': 10, 'cycles': 1000}}),
            dict(instructions=300, cycles=600, freq_hz=1_000_000_000, page_faults=30,
                 cpus=[dict(cpu=0, instructions=200, cycles=600), dict(cpu=1, instructions=100, cycles=590)],
                 fault_breakdown={'do_anonymous_page': {'count': 20, 'cycles': 3000},
                                  'do_cow_fault': {'count': 10, 'cycles': 500}})]
    m = mean_snapshot(runs)
    assert m['instructions'] == 200 and m['freq_hz'] == 1_000_000_000
    assert [c['cpu'] for c in m['cpus']] == [0, 1] and m['cpus'][1]['instructions'] == 70
    assert m['fault_breakdown']['do_cow_fault'] == {'count': 5, 'cycles': 250}
    s = spreads(runs)
    assert s['instructions'] == pytest.approx(50.0) and s['page-faults'] == pytest.approx(50.0)
    text = format_stat(m, 'p', runs=2, spread=s)
    assert '2 runs' in text and 'CPU0 ' in text and 'CPU1 ' in text
    assert _rows(text)['instructions'].endswith('( +- 50.00% )')
