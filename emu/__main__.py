"""`python -m faultlab ...` runs the CLI; `python TREE/emu/__main__.py ...` runs a source tree's CLI uninstalled."""
import os
import sys

if __name__ == '__main__' and not __package__:
    # run as a script from a source tree: map its folders under `faultlab` first
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0]) == here:
        del sys.path[0]                      # the folder itself is not a top-level import root
    sys.path.insert(0, here)
    import srctree                           # emu/srctree.py, before the package exists
    del sys.path[0]
    srctree.use_tree(os.path.dirname(here))
    sys.modules.pop('srctree', None)

from faultlab.cli import main  # noqa: E402  (after the source tree is mapped)

if __name__ == '__main__':
    sys.exit(main())
