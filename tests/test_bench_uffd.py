"""faultlab bench uffd (emu/bench/uffd.py): uffd_bench under faultlab against the native run, the table
built from small real runs, and a check that fails making the command exit 1."""
import os
import re

import pytest

from conftest import run_guest, run_native
from faultlab.bench import uffd as bu
from faultlab.bench.guest import parse_values
from faultlab.cli import main as cli_main
from faultlab.sweep.records import read_records

# the lines of uffd_bench that do not depend on timing
SAME = ('case', 'how', 'npages', 'touch', 'handled', 'early_reads', 'check')


def _values(text):
    return parse_values(text.decode() if isinstance(text, bytes) else text)


@pytest.mark.parametrize('case', ['missing', 'minor', 'wp'])
@pytest.mark.parametrize('how', ['uffd', 'kernel'])
def test_fault_mode_matches_the_native_run(userland, case, how):
    prog = os.path.join(userland, 'uffd_bench')
    args = ['fault', case, how, '8', '6', '10']
    code, out, err = run_native(prog, args)
    assert code == 0, err
    native = _values(out)
    r = run_guest(prog, args, cpus=2)
    assert r.exit_code == 0, r.stderr
    guest = _values(r.stdout)
    assert {k: guest[k] for k in SAME} == {k: native[k] for k in SAME}
    assert guest['check'] == 'ok' and guest['handled'] == (6 if how == 'uffd' else 0)
    assert guest['early_reads'] == 0


def test_postcopy_modes_match_the_native_run(userland):
    """demand and populate pull every page once, natively and under faultlab; prefetch_page is not in
    the host's vDSO, and under faultlab it asks for no page (every call fails, no message)."""
    prog = os.path.join(userland, 'uffd_bench')
    for mode in ('demand', 'populate'):
        args = ['postcopy', mode, '6', '20', '20']
        code, out, err = run_native(prog, args)
        assert code == 0, err
        native, guest = _values(out), _values(run_guest(prog, args, cpus=2).stdout)
        for k in ('sent', 'sum', 'check'):
            assert guest[k] == native[k], (mode, k, guest, native)
    code, out, _ = run_native(prog, ['postcopy', 'prefetch', '6', '20', '20'])
    assert code == 0 and out == b'no prefetch_page\n'
    guest = _values(run_guest(prog, ['postcopy', 'prefetch', '6', '20', '20']).stdout)
    assert guest['prefetch_fail'] == 6 and guest['handled'] == guest['sent'] == 6 and guest['check'] == 'ok'


def test_bad_arguments_are_usage_errors(userland):
    prog = os.path.join(userland, 'uffd_bench')
    for args in (['fault', 'nosuch', 'uffd', '4'], ['fault', 'missing', 'uffd', '4', '5'],
                 ['postcopy', 'x', '1', '1', '1']):
        code, _out, err = run_native(prog, args)
        r = run_guest(prog, args)
        assert code == r.exit_code == 2 and r.stderr == err, args


def test_a_failing_check_exits_1(userland):
    """No latency and no compute: the populating thread has nothing to overlap, so populate does not
    beat demand on 2 CPUs; the check says so and the command exits 1."""
    lines = []
    assert bu.main(pages=4, latency_us=0, compute_us=0, cpus=(2,), out=lines.append) == 1
    fail = [ln for ln in lines if ln.startswith('  FAIL 2 CPUs: populate in a second thread')]
    assert len(fail) == 1 and 'nothing to overlap' in fail[0]
    assert re.match(r'^\d+ of \d+ checks hold$', lines[-1])


def test_cpus_option_is_checked():
    with pytest.raises(SystemExit) as e:
        cli_main(['bench', 'uffd', '--cpus', '0'])
    assert e.value.code == 2
    assert bu.cpu_list('2,1,2') == (1, 2)


def test_one_cpu_table_checks_records_and_figure(userland, tmp_path, capsys):
    """`faultlab bench uffd --quick --cpus 1 --csv --json --plot`: a row per case and resolver, the
    post-copy rows, every check holds (a handler-resolved fault costs more); one record per table row
    with the printed figures, the figure written; an output that cannot be written is refused first."""
    pytest.importorskip('matplotlib')
    csv, js, fig = str(tmp_path / 'u.csv'), str(tmp_path / 'u.json'), str(tmp_path / 'fig')
    assert cli_main(['bench', 'uffd', '--quick', '--pages', '4', '--cpus', '1', '--latency-us', '20',
                     '--csv', csv, '--json', js, '--plot', fig]) == 0
    out = capsys.readouterr().out
    rows = [ln.split() for ln in out.splitlines() if re.match(r'^.{38} (uffd  |kernel)    1 +\d+ ', ln)]
    assert len(rows) == 6, out
    for uffd, kernel in zip(rows[0::2], rows[1::2]):
        assert 'uffd' in uffd and 'kernel' in kernel
        assert int(uffd[-6]) > int(kernel[-6]) > 0
        assert uffd[-2] != '-' and kernel[-2] == '-'       # round trip only with a handler
    post = [ln.split() for ln in out.splitlines() if re.match(r'^  (demand|populate|prefetch)\s+1\s', ln)]
    assert [p[0] for p in post] == ['demand', 'populate', 'prefetch']
    assert 'FAIL' not in out and re.search(r'^(\d+) of \1 checks hold$', out, re.M), out
    recs = [{k: v for k, v in r.items() if v is not None} for r in read_records(csv)]
    assert recs == [{k: v for k, v in r.items() if v is not None} for r in read_records(js)]
    assert [(r['table'], r.get('case') or r.get('mode'), r.get('how')) for r in recs] == \
        [('fault', c, h) for c, _t, _k in bu.CASES for h in ('uffd', 'kernel')] + \
        [('postcopy', m, None) for m in bu.POSTCOPY_MODES]
    assert [int(t[-6]) for t in rows] == [round(r['cycles']) for r in recs if r['table'] == 'fault']
    assert {r['handler'] for r in recs if r.get('how') == 'uffd'} == {'handle_userfault'}
    assert open(os.path.join(fig, 'uffd.png'), 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    assert bu.main(pages=4, cpus=(1,), out=print, csv=str(tmp_path / 'no' / 'u.csv')) == 2
