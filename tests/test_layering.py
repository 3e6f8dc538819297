"""The layers, checked on the source: an AST scan of every module's imports.

faultlab (emu/) is the package; faultlab.kernel (kernel/) and faultlab.vdso (vdso/) are mapped under it.
The rules:
* the CPU core (faultlab.core) imports only the standard library, unicorn, capstone, keystone and itself;
* the kernel reaches the CPU only through faultlab.kernel.arch.cpu_interface;
* everything above the kernel (the composition root faultlab.machine, the API, the CLI and the tools:
  faultlab.gdb, faultlab.observe, faultlab.bench, faultlab.selftests) uses the kernel only through its
  interface modules (KERNEL_INTERFACE), never its internals;
* no import inside a function except of an optional dependency, and no import cycle.
Each rule is checked twice: on the tree, and on a tree with one forbidden import added (the check fails).
"""
import ast
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# where each package's folder is (pyproject.toml's package-dir)
PACKAGE_DIRS = {'faultlab': 'emu', 'faultlab.kernel': 'kernel', 'faultlab.vdso': 'vdso'}
CORE = 'faultlab.core'
CORE_THIRD_PARTY = {'unicorn', 'capstone', 'keystone'}
CPU_INTERFACE = 'faultlab.kernel.arch.cpu_interface'
# the layers below the machine; every other module of faultlab is above the kernel
LOWER = ('faultlab.core', 'faultlab.kernel', 'faultlab.vdso')
# the kernel as the machine, the CLI and the tools see it: its configuration and entry points, the
# tracepoints, the debugger's interface, the loader's refusal, the system call names and the option parsers
KERNEL_INTERFACE = {
    'faultlab.kernel', 'faultlab.kernel.kernel', 'faultlab.kernel.tracepoints', 'faultlab.kernel.debugmon',
    'faultlab.kernel.loader', 'faultlab.kernel.syscalls', 'faultlab.kernel.block.params', 'faultlab.kernel.fs',
    'faultlab.kernel.usercred', 'faultlab.kernel.sysctl_args', 'faultlab.kernel.hostlimit',
    'faultlab.kernel.counters',
}
# imports a function may do: dependencies the core does not need (pyproject.toml's optional extras and
# the tools only some commands use)
OPTIONAL = {'qiling', 'matplotlib', 'pandas', 'dask', 'distributed', 'tqdm'}


def module_files():
    """{module name: source path} of every module of the installed package."""
    mods = {}
    for pkg, folder in PACKAGE_DIRS.items():
        base = os.path.join(ROOT, folder)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if os.path.isfile(os.path.join(dirpath, d, '__init__.py'))]
            rel = os.path.relpath(dirpath, base)
            prefix = pkg if rel == '.' else pkg + '.' + rel.replace(os.sep, '.')
            if (prefix != pkg and prefix in PACKAGE_DIRS) or not os.path.isfile(os.path.join(dirpath, '__init__.py')):
                continue
            for f in filenames:
                if f.endswith('.py'):
                    name = prefix if f == '__init__.py' else prefix + '.' + f[:-3]
                    mods[name] = os.path.join(dirpath, f)
    return mods


def scan(name, source):
    """[(imported module, line, at top level)] of one module's imports (relative ones resolved)."""
    tree = ast.parse(source)
    found = []

    def visit(node, top):
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                mod = child.module or ''
                if child.level:
                    base = name.split('.')
                    base = base[:len(base) - child.level] if not name_is_package(name) else \
                        base[:len(base) - child.level + 1]
                    mod = '.'.join(base + ([mod] if mod else []))
                found.append((mod, child.lineno, top))
                # `from pkg import submodule`
                for a in child.names:
                    found.append((mod + '.' + a.name, child.lineno, top))
            visit(child, inner)
    visit(tree, True)
    return found


_PACKAGES = set()


def name_is_package(name):
    return name in _PACKAGES


def graph(mods, sources):
    """{module: [(imported faultlab module or third-party top name, line, top level)]}."""
    _PACKAGES.clear()
    _PACKAGES.update(n for n, p in mods.items() if p.endswith('__init__.py'))
    g = {}
    for name, src in sources.items():
        edges = []
        for mod, line, top in scan(name, src):
            if mod in mods:
                edges.append((mod, line, top))
            elif not mod.startswith('faultlab'):
                edges.append((mod.split('.')[0], line, top))
            elif mod.rsplit('.', 1)[0] in mods and mod not in mods:
                pass          # `from faultlab.x import name`: the module itself is recorded
        g[name] = edges
    return g


def _under(mod, pkg):
    return mod == pkg or mod.startswith(pkg + '.')


def violations(mods, sources):
    """One line per broken rule."""
    g = graph(mods, sources)
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for name, edges in sorted(g.items()):
        where = os.path.relpath(mods[name], ROOT)
        for mod, line, top in edges:
            is_ours = mod in mods
            if not top and mod.split('.')[0] not in OPTIONAL:
                bad.append('%s:%d imports %s inside a function' % (where, line, mod))
            if _under(name, CORE):
                if is_ours and not _under(mod, CORE) or not is_ours and mod not in stdlib | CORE_THIRD_PARTY:
                    bad.append('%s:%d: the CPU core imports %s' % (where, line, mod))
            if _under(name, 'faultlab.kernel') and is_ours and not _under(mod, 'faultlab.kernel') \
                    and not _under(mod, 'faultlab.vdso') and name != CPU_INTERFACE:
                bad.append('%s:%d: the kernel imports %s, not through %s' % (where, line, mod, CPU_INTERFACE))
            if not any(_under(name, low) for low in LOWER) and _under(mod, 'faultlab.kernel') \
                    and mod not in KERNEL_INTERFACE:
                bad.append('%s:%d: %s imports the kernel internal %s' % (where, line, name, mod))
    bad.extend('import cycle: %s' % ' -> '.join(c) for c in cycles(g, mods))
    return bad


def cycles(g, mods):
    """The import cycles among top-level imports (Tarjan's strongly connected components)."""
    edges = {n: sorted({m for m, _, top in e if top and m in mods and m != n}) for n, e in g.items()}
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def read_sources(mods):
    return {n: open(p).read() for n, p in mods.items()}


def test_layers_hold():
    mods = module_files()
    assert len(mods) > 100
    bad = violations(mods, read_sources(mods))
    assert not bad, '\n'.join(bad)


@pytest.mark.parametrize('module, added', [
    ('faultlab.core.cpu', 'from faultlab.kernel.mm import memory'),
    ('faultlab.core.physmem', 'import json\nimport elftools'),
    ('faultlab.kernel.mm.memory', 'from faultlab.core.cpu import Cpu'),
    ('faultlab.kernel.mm.memory', 'from faultlab.observe import trace'),
    ('faultlab.observe.trace', 'from faultlab.kernel.mm.memory import handle_mm_fault'),
    ('faultlab.machine', 'from faultlab.kernel.mm.page_alloc import FrameAllocator'),
    ('faultlab.gdb.stub', 'def f():\n    import json'),
    ('faultlab.kernel.mm.vma', 'from faultlab.kernel.mm import memory'),
])
def test_a_forbidden_import_is_found(module, added):
    mods = module_files()
    sources = read_sources(mods)
    sources[module] = sources[module] + '\n' + added + '\n'
    assert len(violations(mods, sources)) > len(violations(mods, read_sources(mods)))


def test_every_package_is_installed():
    """pyproject.toml lists every package folder (setuptools installs only the listed ones)."""
    text = open(os.path.join(ROOT, 'pyproject.toml')).read()
    listed = set(re.findall(r'^\s*"(faultlab[a-z_.]*)",$', text, flags=re.M))
    packages = {n for n, p in module_files().items() if p.endswith('__init__.py')}
    assert listed == packages
