"""FsError: a filesystem operation failed with a Linux errno."""
import errno as _errno
import os


class FsError(Exception):
    """An error carrying a Linux errno (the value a syscall returns negated)."""

    def __init__(self, err, detail=None):
        """err: an errno value from the `errno` module; detail: optional text (e.g. the path)."""
        self.errno = err
        self.detail = detail
        name = _errno.errorcode.get(err, str(err))
        msg = f'[{name}] {os.strerror(err)}'
        super().__init__(f'{msg}: {detail}' if detail else msg)


def from_oserror(exc, detail=None):
    """Turn a host OSError into an FsError with the same errno (EIO if it has none)."""
    return FsError(exc.errno if exc.errno else _errno.EIO, detail)
