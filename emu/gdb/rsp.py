"""GDB remote serial protocol framing over a TCP socket: `$payload#cs` packets, acks, Ctrl-C.

Bad input never raises anything but `Disconnected`: a packet with a bad checksum is answered with
`-` (gdb retransmits), bytes outside packets are skipped, a packet that grows past MAX_PACKET
without its `#` is dropped and NAKed.
"""
import select
import socket

MAX_PACKET = 1 << 20       # bytes buffered for one packet before it is dropped as garbage
INTERRUPT = 0x03


class Disconnected(Exception):
    """The client closed the connection (or the socket failed)."""


def escape_binary(data):
    """Binary data in a packet: '#', '$', '}' and '*' become '}' followed by the byte xor 0x20."""
    out = bytearray()
    for b in data:
        if b in (0x23, 0x24, 0x7D, 0x2A):
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape_binary(data):
    """Undo escape_binary (the X packet's data)."""
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == 0x7D:
            nxt = next(it, None)
            if nxt is None:
                raise ValueError('escape character at the end of the data')
            out.append(nxt ^ 0x20)
        else:
            out.append(b)
    return bytes(out)


def checksum(payload):
    return sum(payload) & 0xFF


class RspConnection:
    """One client connection: read packets (acking them), send packets, notice Ctrl-C."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.last_sent = None
        self.interrupted = False
        self.bad_packets = 0
        self.closed = False

    def _recv(self, timeout):
        """Read what is available (waiting up to timeout seconds, None = forever) into the buffer."""
        if self.closed:
            raise Disconnected()
        try:
            if timeout is not None:
                r, _, _ = select.select([self.sock], [], [], timeout)
                if not r:
                    return False
            data = self.sock.recv(65536)
        except (OSError, ValueError):
            data = b''
        if not data:
            self.closed = True
            raise Disconnected()
        self.buf += data
        return True

    def _raw_send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True
            raise Disconnected()

    def _scan(self):
        """Take the next complete packet out of the buffer (None if there is none yet)."""
        buf = self.buf
        while buf:
            c = buf[0]
            if c == 0x24:                       # '$'
                end = buf.find(b'#', 1)
                if end < 0:
                    if len(buf) > MAX_PACKET:
                        del buf[:]
                        self.bad_packets += 1
                        self._raw_send(b'-')
                    return None
                restart = buf.rfind(b'$', 1, end)
                if restart > 0:
                    # a '$' never appears inside a packet (binary data escapes it): the one before broke off
                    del buf[:restart]
                    self.bad_packets += 1
                    self._raw_send(b'-')
                    continue
                if len(buf) < end + 3:
                    return None
                body = bytes(buf[1:end])
                cks = bytes(buf[end + 1:end + 3])
                del buf[:end + 3]
                try:
                    ok = int(cks, 16) == checksum(body)
                except ValueError:
                    ok = False
                if not ok:
                    self.bad_packets += 1
                    self._raw_send(b'-')
                    continue
                self._raw_send(b'+')
                return body
            del buf[0]
            if c == INTERRUPT:
                self.interrupted = True
            elif c == 0x2D and self.last_sent is not None:     # '-': resend
                self._raw_send(self.last_sent)
            # '+' and anything else outside a packet is skipped
        return None

    def read_packet(self):
        """The next packet's payload (bytes), waiting for it; Ctrl-C bytes set `interrupted`."""
        while True:
            pkt = self._scan()
            if pkt is not None:
                return pkt
            self._recv(None)

    def poll_interrupt(self):
        """Without waiting: True if the client sent Ctrl-C (gdb sends nothing else while running)."""
        try:
            while self._recv(0):
                pass
        except Disconnected:
            if INTERRUPT not in self.buf:
                raise
        i = self.buf.find(bytes((INTERRUPT,)))
        if i < 0:
            return False
        del self.buf[i]
        return True

    def send(self, payload):
        """Send one packet (str or bytes payload, already escaped where it is binary)."""
        if isinstance(payload, str):
            payload = payload.encode('latin-1')
        pkt = b'$' + payload + b'#%02x' % checksum(payload)
        self.last_sent = pkt
        self._raw_send(pkt)

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
