"""Run faultlab from a source tree without installing it: the package-dir mapping of pyproject.toml at run time.

The repository keeps the folders emu/, kernel/ and vdso/; installed, they are `faultlab`, `faultlab.kernel`
and `faultlab.vdso`. `python TREE/emu/__main__.py ...` (what `faultlab selftests --faultlab-tree` and the
soak run) maps a tree's folders the same way before anything of faultlab is imported.
"""
import importlib.abc
import importlib.util
import os
import sys

# pyproject.toml's [tool.setuptools] package-dir
PACKAGE_DIRS = {'faultlab': 'emu', 'faultlab.kernel': 'kernel', 'faultlab.vdso': 'vdso'}
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SourceTreeFinder(importlib.abc.MetaPathFinder):
    """Finds the three mapped packages in one source tree (their submodules are found by their __path__)."""

    def __init__(self, root):
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        folder = PACKAGE_DIRS.get(fullname)
        if folder is None:
            return None
        base = os.path.join(self.root, folder)
        return importlib.util.spec_from_file_location(fullname, os.path.join(base, '__init__.py'),
                                                      submodule_search_locations=[base])


def use_tree(root):
    """Import `faultlab` from the source tree at root from now on (before any faultlab import)."""
    sys.meta_path.insert(0, SourceTreeFinder(os.path.abspath(root)))


def cli_command(tree=None):
    """argv that runs the faultlab CLI: of this installation, or of the source tree `tree`."""
    if tree is None:
        return [sys.executable, '-m', 'faultlab']
    return [sys.executable, os.path.join(os.path.abspath(tree), PACKAGE_DIRS['faultlab'], '__main__.py')]


def userland_build():
    """Where the userland programs the benchmarks run are built (FAULTLAB_USERLAND, or the tree's userland/build)."""
    return os.environ.get('FAULTLAB_USERLAND') or os.path.join(SOURCE_ROOT, 'userland', 'build')
