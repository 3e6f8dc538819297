"""epoll and eventfd (kernel/fs/eventpoll.py, kernel/fs/eventfd.py, kernel/syscalls/epoll.py):
userland/src/epolltest.c prints the same under faultlab as natively, on 1 and 2 CPUs."""
import os

import pytest

from tests.conftest import BUILD, run_guest, run_native

PROG = os.path.join(BUILD, 'epolltest')


@pytest.mark.parametrize('cpus', [1, 2])
def test_epolltest_matches_native(userland, cpus):
    """Level/edge-triggered and one-shot items over pipes, sockets, eventfds and nested epoll files,
    EPOLLEXCLUSIVE, a watched descriptor closed, a thread waking epoll_wait, timeouts, eventfd's
    counter and semaphore modes and the errnos of bad input: the same output as the host kernel."""
    code, native, err = run_native(PROG)
    assert code == 0, err
    g = run_guest(PROG, cpus=cpus)
    assert g.exit_code == 0, g.result.report
    assert g.stdout == native
    for line in (b'ET again (no new edge): 0', b'ONESHOT disabled: 0', b'ep watches ep3 (loop): -1 ELOOP',
                 b'add regular file: -1 EPERM', b'epoll_wait woken by a thread: 1 [0x1 800]',
                 b'semaphore read 2: -1 EAGAIN', b'blocked eventfd read: 8 value 42', b'\ndone\n'):
        assert line in native


def test_epoll_wait_sleeps_in_simulated_time(userland):
    """The 30 ms epoll_wait timeout passes in simulated time: the run's simulated time covers it."""
    g = run_guest(PROG)
    assert g.exit_code == 0
    assert b'waited at least 29 ms: 1' in g.stdout
