"""POSIX record locks and OFD locks (kernel/fs/locks.py) between a parent and a forked child:
userland/src/fcntllock.c (conflicts reported by F_GETLK with their owner, split and merged ranges,
release on close and exit, a F_SETLKW waiter woken by an unlock, EDEADLK for a wait cycle, OFD locks
shared by dup and released with the last descriptor) must print what it prints natively."""
import os

import pytest

from conftest import assert_matches_native


@pytest.mark.parametrize('cpus', [1, 2])
def test_fcntl_locks_match_native(userland, cpus):
    assert_matches_native(os.path.join(userland, 'fcntllock'), b'deadlock: 1 EDEADLK, other errors 0', cpus=cpus)
