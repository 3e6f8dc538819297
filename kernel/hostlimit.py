"""The host-time limit of a run (--timeout) as the kernel sees it: a fatal signal on its way.

`timeout(1)` ends a process with a signal, and Linux's long operations give up when one is pending
(fatal_signal_pending() in __get_user_pages, in reclaim, in exit paths). Here the machine's watchdog
raises the flag when the host deadline passes (emu/machine.py); kernel loops that can run for seconds
of host time (populating a range, a full --check verification) poll `fatal_signal_pending()` and stop
early, so that the run ends at the next return to the machine's loop.

One run at a time sets it (the flag is cleared when the run ends); reading it is a global lookup, cheap
enough for per-page loops.
"""

_pending = False


def fatal_signal_pending():
    """True once the running machine's host deadline has passed."""
    return _pending


def raise_host_limit():
    """The watchdog's side: the deadline passed."""
    global _pending
    _pending = True


def clear_host_limit():
    """A run starts or ends: no limit is pending."""
    global _pending
    _pending = False
