"""Kernel oops: an exception inside a kernel handler becomes one fatal report naming the trap."""
import os
import traceback


class KernelOops(RuntimeError):
    """The kernel failed while handling a trap (a bug in faultlab, not in the guest)."""


def oops(what, exc):
    """A KernelOops for exception exc raised while handling `what` (a syscall or fault description),
    naming the innermost kernel source line it came from."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = '%s:%d in %s' % (os.path.relpath(tb[-1].filename), tb[-1].lineno, tb[-1].name) if tb else '?'
    return KernelOops('%s raised %s: %s (at %s)' % (what, type(exc).__name__, exc, where))
