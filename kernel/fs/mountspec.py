"""Parsing of --mount HOST:GUEST[:rw|:ro] command-line options."""


def parse_mount_spec(spec):
    """'HOST:GUEST[:rw|:ro]' -> (host_path, guest_path, readonly); read-only unless ':rw'.

    The host path may itself contain ':' (the guest path and mode are split off the right).
    Raises ValueError with a message saying what is wrong.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError('empty mount spec (expected HOST:GUEST[:rw|:ro])')
    rest, readonly = spec, True
    head, sep, tail = spec.rpartition(':')
    if sep and tail in ('rw', 'ro'):
        rest, readonly = head, tail == 'ro'
    elif sep and spec.count(':') >= 2 and not tail.startswith('/'):
        raise ValueError(f'bad mount mode {tail!r} in {spec!r} (expected rw or ro)')
    host, sep, guest = rest.rpartition(':')
    if not sep:
        raise ValueError(f'mount spec {spec!r} has no guest path (expected HOST:GUEST[:rw|:ro])')
    if not host:
        raise ValueError(f'mount spec {spec!r} has no host path (expected HOST:GUEST[:rw|:ro])')
    if not guest:
        raise ValueError(f'mount spec {spec!r} has no guest path (expected HOST:GUEST[:rw|:ro])')
    if not guest.startswith('/'):
        raise ValueError(f'guest path {guest!r} in mount spec {spec!r} must be absolute')
    if guest.rstrip('/') == '' :
        raise ValueError(f'cannot mount over the guest root in {spec!r}')
    return host, guest, readonly
