"""AF_UNIX sockets (kernel/net/, kernel/syscalls/net.py): userland/src/unixsock.c prints the same under
faultlab as natively, on 1 and 2 CPUs; other address families are EAFNOSUPPORT; a blocked read sleeps."""
import os

import pytest

from tests.conftest import BUILD, run_guest, run_native

PROG = os.path.join(BUILD, 'unixsock')


@pytest.mark.parametrize('cpus', [1, 2])
def test_unixsock_matches_native(userland, cpus):
    """Stream/datagram/seqpacket socketpairs across threads and fork, SCM_RIGHTS, SO_PASSCRED and
    SCM_CREDENTIALS, poll/select, listen/connect/accept on abstract and filesystem names,
    EPIPE/SIGPIPE, non-blocking calls, SO_RCVTIMEO/SO_SNDTIMEO and bad input: the same output as
    the host kernel."""
    code, native, err = run_native(PROG)
    assert code == 0, err
    g = run_guest(PROG, cpus=cpus)
    assert g.exit_code == 0, g.result.report
    assert g.stdout == native
    for line in (b'one send of 614477 bytes: 614477, reader got 614477, same data 1',
                 b'MSG_WAITALL: 16 abcdabcdabcdabcd',
                 b'child read 16 bytes from the passed pipe: through the pipe',
                 b'poll until a thread writes: 1 revents 0x1',
                 b'echo: hello 1',
                 b"stream read 1: 5 'child' from the child 1",
                 b'read timed out after at least 19 ms 1: read: -1 EAGAIN',
                 b'backlog 2: 3 connected, 3 EAGAIN',
                 b'datagram of SO_SNDBUF-31 bytes: send: -1 EMSGSIZE',
                 b'socket file: S_ISSOCK 1',
                 b'write to a closed peer: -1 EPIPE\nSIGPIPEs: 1',
                 b'send on a pipe: -1 ENOTSOCK',
                 b'\ndone\n'):
        assert line in native


def test_other_families_are_not_supported(userland):
    """The kernel has no networking but AF_UNIX: socket(AF_INET/AF_INET6) fails as __sock_create does
    when no protocol family is registered."""
    g = run_guest(PROG, ['inet'])
    assert g.exit_code == 0, g.result.report
    assert g.stdout == b'socket(AF_INET): -1 EAFNOSUPPORT\nsocket(AF_INET6): -1 EAFNOSUPPORT\n'


def test_a_read_nobody_answers_sleeps(userland):
    """A read on a socket with no data and a live peer sleeps (it does not spin); with nothing left
    to wake it the run ends in a deadlock report naming the wait."""
    g = run_guest(PROG, ['hang'], max_insns=50_000_000)
    assert g.exit_code != 0
    rep = g.result.report
    assert rep.startswith('deadlock') and 'unix_stream_recvmsg' in rep
    assert g.stats['instructions'] < 5_000_000
