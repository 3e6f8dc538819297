"""Outcomes of selftest runs: the kselftest totals line, exit statuses, whether faultlab did worse than
the native run, and a one-line reason for it.

tools/testing/selftests/kselftest.h ends a run with `ksft_print_cnts()`:
"# Totals: pass:N fail:N xfail:N xpass:N skip:N error:N", and exits with KSFT_PASS 0, KSFT_FAIL 1,
KSFT_XFAIL 2, KSFT_XPASS 3 or KSFT_SKIP 4 (run_vmtests.sh counts 0 as pass, 4 as skip, anything else
as a failure).
"""
import re
import signal
from dataclasses import dataclass, field

TOTALS = re.compile(r'^# Totals: pass:(\d+) fail:(\d+) xfail:(\d+) xpass:(\d+) skip:(\d+) error:(\d+)\s*$',
                    re.M)
TOTAL_KEYS = ('pass', 'fail', 'xfail', 'xpass', 'skip', 'error')
KSFT_PASS, KSFT_FAIL, KSFT_SKIP = 0, 1, 4

# kinds of outcome; RANK orders the ones that finished by how well they did
PASS, SKIP, FAIL, SIGNAL, TIMEOUT, ERROR, NOTBUILT, NOTRUN = (
    'pass', 'skip', 'fail', 'signal', 'timeout', 'error', 'not built', 'not run')
RANK = {PASS: 3, SKIP: 2, FAIL: 1, SIGNAL: 0, TIMEOUT: 0, ERROR: 0, NOTRUN: 0}

_NOT_OK = re.compile(r'^(?:# )?not ok \d+ (.*)$', re.M)
_SKIP_LINE = re.compile(r'^(?:# )?ok \d+ (.*# SKIP.*)$', re.M)
_BAIL = re.compile(r'^(?:# )?Bail out!.*$', re.M)
_FAULTLAB_LINE = re.compile(r'^faultlab: (?!warning: ).+$', re.M)
_WARNING = re.compile(r'^faultlab: warning: (.+)$', re.M)
_UNKNOWN_NR = re.compile(r'unknown system call number (\d+)')


def parse_totals(text):
    """The counts of the last kselftest Totals line in the output, or None."""
    found = TOTALS.findall(text or '')
    if not found:
        return None
    return dict(zip(TOTAL_KEYS, (int(x) for x in found[-1])))


@dataclass
class Outcome:
    """How one run ended."""
    kind: str
    status: int = None               # exit status (128+N for a signal under faultlab, -N natively)
    totals: dict = None
    output: str = ''                 # stdout then stderr
    detail: str = ''                 # for a signal / timeout / error / not run: what happened
    seconds: float = 0.0
    warnings: list = field(default_factory=list)

    def cell(self):
        """A table cell: the kind, the exit status when it says more, pass/fail/skip counts."""
        text = self.kind
        if self.kind == FAIL and self.status not in (None, KSFT_FAIL):
            text += '(%d)' % self.status
        if self.kind == SIGNAL and self.detail:
            text = self.detail.split()[0].rstrip(':')
        if self.totals:
            t = self.totals
            text += ' %d/%d/%d' % (t['pass'], t['fail'] + t['error'], t['skip'])
        return text


def classify(status, stdout, stderr, timed_out=False, seconds=0.0, faultlab=False):
    """The Outcome of a finished (or killed) run from its exit status and output."""
    output = (stdout or '') + (stderr or '')
    totals = parse_totals(output)
    warnings = [w for w in _WARNING.findall(stderr or '')] if faultlab else []
    fl_lines = _FAULTLAB_LINE.findall(stderr or '') if faultlab else []
    if timed_out or any('time limit reached' in ln for ln in fl_lines):
        return Outcome(TIMEOUT, status, totals, output, 'time limit', seconds, warnings)
    if faultlab and any(ln.startswith(('faultlab: cannot run', 'faultlab: internal error')) for ln in fl_lines):
        return Outcome(ERROR, status, totals, output, fl_lines[0][len('faultlab: '):], seconds, warnings)
    if status is not None and status < 0:
        return Outcome(SIGNAL, status, totals, output, _signame(-status), seconds, warnings)
    if faultlab and status is not None and status > 128 and fl_lines:
        return Outcome(SIGNAL, status, totals, output, '%s: %s' % (_signame(status - 128), fl_lines[-1]),
                       seconds, warnings)
    kind = PASS if status == KSFT_PASS else SKIP if status == KSFT_SKIP else FAIL
    return Outcome(kind, status, totals, output, '', seconds, warnings)


def _signame(n):
    try:
        return signal.Signals(n).name
    except ValueError:
        return 'signal %d' % n


def worse(faultlab, native):
    """Did faultlab do worse than the native run of the same program? Not comparable (False) when the
    native run could not run it either."""
    if native.kind in (NOTBUILT, NOTRUN) or faultlab.kind == NOTBUILT:
        return False
    if faultlab.kind == NOTRUN:                  # loses only what the native run showed
        return native.kind == PASS
    if RANK.get(faultlab.kind, 0) < RANK.get(native.kind, 0):
        return True
    f, n = faultlab.totals, native.totals
    if n and not f:
        return faultlab.kind != PASS or native.kind != PASS
    if f and n:
        return f['pass'] < n['pass'] or f['fail'] + f['error'] > n['fail'] + n['error']
    return False


def name_syscalls(text, names):
    """'unknown system call number 448' -> '... 448 (process_mrelease)' with a table nr -> name."""
    return _UNKNOWN_NR.sub(lambda m: '%s (%s)' % (m.group(0), names.get(int(m.group(1)), '?')), text)


def reason(faultlab, native, names=None):
    """One line on why faultlab did worse: its fatal report, the first unimplemented system call,
    the first failing TAP line the native run does not have, a bail-out, or the last line."""
    names = names or {}
    parts = []
    if faultlab.kind in (SIGNAL, TIMEOUT, ERROR, NOTRUN) and faultlab.detail:
        parts.append(faultlab.detail)
    nosys = [w for w in faultlab.warnings if 'system call' in w]
    if nosys:
        parts.append(name_syscalls(nosys[0], names))
    native_fails = set(_NOT_OK.findall(native.output))
    new_fails = [ln for ln in _NOT_OK.findall(faultlab.output) if ln not in native_fails]
    native_skips = set(_SKIP_LINE.findall(native.output))
    new_skips = [ln for ln in _SKIP_LINE.findall(faultlab.output) if ln not in native_skips]
    if new_fails:
        parts.append('not ok ' + new_fails[0])
    elif new_skips and not parts:
        parts.append('ok ' + new_skips[0])
    elif not parts:
        bail = _BAIL.findall(faultlab.output)
        if bail:
            parts.append(bail[0].lstrip('# '))
        else:
            lines = [ln for ln in faultlab.output.splitlines() if ln.strip()]
            parts.append('exit %s; last line: %s' % (faultlab.status, lines[-1] if lines else '(no output)'))
    return '; '.join(p.strip() for p in parts)[:220]
