"""The number a /proc/sys file is written (kernel/sysctl.c): proc_dointvec_minmax and
proc_doulongvec_minmax for a knob holding one value, with Linux's parser (proc_get_long).

A write is white space (isspace), then one number: an optional '-', then digits read by
strtoul with base 0 (decimal, 0x hexadecimal, a leading 0 octal), ended by the end of the
write or by a space, tab or newline (proc_wspace_sep); what follows more white space is not
read (Linux reports a short write for it). EINVAL for anything else: nothing but white space,
a sign without digits, another character after the number, a number of 21 characters or more
(TMPBUFLEN), a value past the type or outside [lo, hi], a negative unsigned long.
"""
import errno

from faultlab.kernel.fs.errors import FsError

INT_MAX = (1 << 31) - 1
INT_MIN = -INT_MAX - 1
LONG_MAX = (1 << 63) - 1
ULONG_MAX = (1 << 64) - 1
TMPBUFLEN = 22
PAGE_SIZE = 4096
SPACES = b' \t\n\v\f\r'              # isspace
PROC_WSPACE_SEP = b' \t\n'           # what may end a number
_DIGITS = {8: b'01234567', 10: b'0123456789', 16: b'0123456789abcdefABCDEF'}


def proc_skip_spaces(buf, pos):
    """The position of the first character at or after pos that is not white space."""
    while pos < len(buf) and buf[pos] in SPACES:
        pos += 1
    return pos


def parse_integer_fixup_radix(s):
    """_parse_integer_fixup_radix for base 0: (base, digits start) of the number at s's start."""
    if s[:1] == b'0':
        if s[1:2] in (b'x', b'X') and s[2:3] and s[2:3] in _DIGITS[16]:
            return 16, 2
        return 8, 0
    return 10, 0


def strtoul_lenient(s):
    """strtoul_lenient(s, base 0): (value, characters used); EINVAL past ULONG_MAX (-ERANGE)."""
    base, i = parse_integer_fixup_radix(s)
    start, v = i, 0
    while i < len(s) and s[i:i + 1] in _DIGITS[base]:
        v = v * base + int(s[i:i + 1], 16)
        i += 1
    if v > ULONG_MAX or i == start:
        raise FsError(errno.EINVAL)
    return v, i


def proc_get_long(buf):
    """proc_get_long: (negative?, magnitude, characters used) of the number buf starts with."""
    tmp = buf[:TMPBUFLEN - 1]
    neg = tmp[:1] == b'-' and len(buf) > 1
    p = 1 if neg else 0
    if not tmp[p:p + 1].isdigit():
        raise FsError(errno.EINVAL)
    val, used = strtoul_lenient(tmp[p:])
    end = p + used
    if end == TMPBUFLEN - 1:
        raise FsError(errno.EINVAL)        # maybe only part of a longer number
    if end < len(buf) and buf[end] not in PROC_WSPACE_SEP:
        raise FsError(errno.EINVAL)
    return neg, val, end


def proc_read_number(data):
    """The (negative?, magnitude) of a one-value write, or None for an empty write (Linux's !*lenp:
    nothing changes); EINVAL when there is no number (see the module's docstring)."""
    buf = bytes(data)[:PAGE_SIZE - 1]
    if not buf:
        return None
    pos = proc_skip_spaces(buf, 0)
    if pos == len(buf):
        raise FsError(errno.EINVAL)        # nothing read: __do_proc_dointvec's "first" is still set
    neg, val, _used = proc_get_long(buf[pos:])
    return neg, val


def proc_dointvec_minmax(data, lo=INT_MIN, hi=INT_MAX):
    """proc_dointvec_minmax: the int written, in [lo, hi]; None for an empty write; EINVAL otherwise."""
    got = proc_read_number(data)
    if got is None:
        return None
    neg, val = got
    if val > (INT_MAX + 1 if neg else INT_MAX):
        raise FsError(errno.EINVAL)        # do_proc_dointvec_conv: not an int
    v = -val if neg else val
    if v < lo or v > hi:
        raise FsError(errno.EINVAL)
    return v


def proc_doulongvec_minmax(data, lo=0, hi=ULONG_MAX):
    """proc_doulongvec_minmax: the unsigned long written, in [lo, hi]; None for an empty write;
    EINVAL for a negative number or otherwise."""
    got = proc_read_number(data)
    if got is None:
        return None
    neg, val = got
    if neg or val < lo or val > hi:
        raise FsError(errno.EINVAL)
    return val
