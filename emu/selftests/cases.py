"""The mm selftest cases as tools/testing/selftests/mm/run_vmtests.sh runs them, derived from the script.

The script is read line by line as a very small shell: assignments (literals, "$var", $((arithmetic)),
$(cat /proc/sys/...), $(nproc)), `echo VALUE > /proc/sys/...` (the sysctls each case runs under, e.g.
vm/nr_hugepages), if/else/fi with the default invocation's answers (no -a, no -d, x86_64), and
`CATEGORY="..." run_test CMD ARGS` lines. Function bodies (run_test itself, the -a only gup matrix,
usage) are skipped. Anything it cannot evaluate counts as true, so a case is listed rather than lost.
"""
import ast
import re
import shlex
from dataclasses import dataclass, field

# What the default invocation (`./run_vmtests.sh`, as root on x86_64) sees
DEFAULT_VARS = {'RUN_ALL': 'false', 'RUN_DESTRUCTIVE': 'false', 'ARCH': 'x86_64', 'VADDR64': '1',
                'TAP_PREFIX': '# ', 'ksft_skip': '4'}
# written by the script but not state a test runs under
TRIGGER_SYSCTLS = ('vm/drop_caches', 'vm/compact_memory')
SYSCTL_DIR = '/proc/sys/'

_VAR = re.compile(r'\$\{(\w+)\}|\$(\w+)')
_ASSIGN = re.compile(r'^(?:local\s+)?(\w+)=(.*)$')
_ECHO_SYSCTL = re.compile(r'^!?\s*echo\s+(.+?)\s*>\s*/proc/sys/(\S+?)\s*;?$')
_RUN_TEST = re.compile(r'^CATEGORY="?([\w-]+)"?\s+run_test\s+(.+)$')
_FUNC = re.compile(r'^(?:function\s+)?\w+\s*\(\)\s*\{?\s*$')
_TEST = re.compile(r'^\[\[?\s+(.+?)\s+\]\]?$')


@dataclass(frozen=True)
class Case:
    """One run_test line: its category, command line and the sysctls set for it."""
    category: str
    argv: tuple
    sysctls: tuple = ()          # (('vm/nr_hugepages', '128'), ...)
    user: str = None             # `sudo -u USER` in front of the command
    script: bool = False         # a shell script (bash ./x.sh or ./x.sh)

    @property
    def name(self):
        """The name run_vmtests.sh prints (its pretty_name: without a leading `bash ` and `./`)."""
        words = list(self.argv)
        if self.user:
            words = ['sudo', '-u', self.user] + words
        if words[:1] == ['bash']:
            words = words[1:]
        text = ' '.join(words)
        return text[2:] if text.startswith('./') else text

    @property
    def program(self):
        """The file the case runs (the script for a bash case), without ./"""
        prog = self.argv[1] if self.argv[0] == 'bash' and len(self.argv) > 1 else self.argv[0]
        return prog[2:] if prog.startswith('./') else prog

    @property
    def args(self):
        return tuple(self.argv[2:] if self.argv[0] == 'bash' else self.argv[1:])

    @property
    def hugepages(self):
        return int(dict(self.sysctls).get('vm/nr_hugepages', 0) or 0)


@dataclass
class _Shell:
    vars: dict = field(default_factory=dict)
    sysctl: dict = field(default_factory=dict)

    def expand(self, text):
        return _VAR.sub(lambda m: self.vars.get(m.group(1) or m.group(2), ''), text)

    def value(self, text):
        """The value of an assignment's or echo's right-hand side (None when unknown)."""
        text = text.strip()
        m = re.fullmatch(r'"?\$\(\((.+)\)\)"?', text)
        if m:
            return _arith(self.expand(m.group(1)), self.vars)
        m = re.fullmatch(r'"?\$\(cat\s+/proc/sys/(\S+)\)"?', text)
        if m:
            return self.sysctl.get(m.group(1))
        if re.fullmatch(r'"?\$\(nproc\)"?', text):
            return self.vars.get('nr_cpus')
        if '$(' in text or '`' in text:
            return None
        if any((m.group(1) or m.group(2)) not in self.vars for m in _VAR.finditer(text)):
            return None                      # e.g. a restore of a value read from the host
        try:
            words = shlex.split(self.expand(text))
        except ValueError:
            return None
        return ' '.join(words)

    def condition(self, cond):
        """True/False for an `if` condition (unknown forms are true)."""
        cond = cond.strip().rstrip(';').strip()
        if cond.endswith('then'):
            cond = cond[:-4].rstrip().rstrip(';').strip()
        if _ECHO_SYSCTL.match(cond):           # `if ! echo N > /proc/sys/...`: the write happens
            self.statement(cond.lstrip('!').strip())
            return not cond.startswith('!')
        parts = re.split(r'\s+&&\s+', cond)
        if len(parts) > 1:
            return all(self.condition(p) for p in parts)
        neg = cond.startswith('! ')
        if neg:
            cond = cond[2:].strip()
        m = _TEST.match(cond)
        if m:
            result = self._test(m.group(1))
        elif re.fullmatch(r'\$\{?\w+\}?', cond):     # `if $RUN_ALL`: runs true or false
            result = self.expand(cond) != 'false'
        else:
            result = True
        return result != neg

    def _test(self, expr):
        try:
            words = shlex.split(self.expand(expr))
        except ValueError:
            return True
        if len(words) == 3 and words[1] in ('==', '=', '!='):
            return (words[0] == words[2]) != (words[1] == '!=')
        ops = {'-eq': int.__eq__, '-ne': int.__ne__, '-lt': int.__lt__, '-le': int.__le__,
               '-gt': int.__gt__, '-ge': int.__ge__}
        if len(words) == 3 and words[1] in ops:
            try:
                return ops[words[1]](int(words[0]), int(words[2]))
            except ValueError:
                return True
        if len(words) == 2 and words[0] == '-z':
            return words[1] == ''
        if len(words) == 1 and expr.strip().startswith('-z'):
            return True
        return True

    def statement(self, line):
        m = _ECHO_SYSCTL.match(line)
        if m:
            key = m.group(2)
            if key not in TRIGGER_SYSCTLS:
                val = self.value(m.group(1))   # None: back to the machine's own value
                self.sysctl[key] = val
                if key == 'vm/nr_hugepages' and val is not None:
                    self.vars['freepgs'] = val    # what the script reads back from /proc/meminfo
            return
        if ' && ' in line:                        # `cmd && NAME=VALUE`: the command counts as true
            self.statement(line.rsplit(' && ', 1)[1])
            return
        m = _ASSIGN.match(line)
        if m:
            val = self.value(m.group(2))
            if val is not None:
                self.vars[m.group(1)] = val


def _arith(expr, variables):
    """Shell arithmetic on integers (+ - * / % and parentheses; bare names are variables)."""
    expr = re.sub(r'[A-Za-z_]\w*', lambda m: str(variables.get(m.group(0), 0) or 0), expr)
    try:
        tree = ast.parse(expr, mode='eval')
    except SyntaxError:
        return None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            op = type(node.op)
            if op is ast.Add:
                return a + b
            if op is ast.Sub:
                return a - b
            if op is ast.Mult:
                return a * b
            if op in (ast.Div, ast.FloorDiv):
                return int(a / b) if b else 0
            if op is ast.Mod:
                return a % b if b else 0
        raise ValueError('unsupported arithmetic')
    try:
        return str(ev(tree))
    except (ValueError, TypeError, RecursionError):
        return None


def _logical_lines(text):
    """The script's lines with continuations joined and comments and blank lines dropped."""
    out, pending = [], ''
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith('\\'):
            pending += line[:-1] + ' '
            continue
        line = (pending + line).strip()
        pending = ''
        if line and not line.startswith('#'):
            out.append(line)
    return out


def derive_cases(text, nr_cpus=1, hugepage_kb=2048, hugepages=0):
    """The cases a default `run_vmtests.sh` run on x86_64 executes, in order, with the sysctls
    (nr_hugepages, overcommit_memory, ...) in effect for each. nr_cpus is what nproc says in the
    machine that runs them; hugepages the pool before the script starts."""
    sh = _Shell(vars=dict(DEFAULT_VARS, nr_cpus=str(nr_cpus), hpgsize_KB=str(hugepage_kb),
                          freepgs=str(hugepages)),
                sysctl={'vm/nr_hugepages': str(hugepages)})
    cases = []
    active = []                   # one entry per open if: [taken now, any branch taken]
    in_func = False
    for line in _logical_lines(text):
        if in_func:
            if line == '}':
                in_func = False
            continue
        if _FUNC.match(line):
            in_func = True
            continue
        head = line.split(None, 1)[0].rstrip(';')
        if head == 'if':
            cond = line[2:]
            live = all(a[0] for a in active)
            taken = sh.condition(cond) if live else False
            active.append([taken, taken])
            continue
        if head == 'elif' and active:
            live = all(a[0] for a in active[:-1])
            taken = live and not active[-1][1] and sh.condition(line[4:])
            active[-1] = [taken, active[-1][1] or taken]
            continue
        if head == 'else' and active:
            active[-1][0] = not active[-1][1]
            continue
        if head == 'fi' and active:
            active.pop()
            continue
        if head == 'then':
            continue
        if not all(a[0] for a in active):
            continue
        m = _RUN_TEST.match(line)
        if m:
            cases.append(_case(sh, m.group(1), m.group(2)))
            continue
        sh.statement(line)
    return cases


def _case(sh, category, command):
    argv = shlex.split(sh.expand(command))
    user = None
    if argv[:2] == ['sudo', '-u'] and len(argv) > 3:
        user, argv = argv[2], argv[3:]
    script = argv[0] in ('bash', 'sh') or argv[0].endswith('.sh')
    sysctls = tuple(sorted((k, v) for k, v in sh.sysctl.items() if v is not None))
    return Case(category, tuple(argv), sysctls, user, script)
