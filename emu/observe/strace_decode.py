"""The argument decoders of `faultlab run --strace`: one system call as strace prints it.

format_call(name, args, ret, mem) -> ('name(args)', 'ret') for one finished call, where mem(addr, n)
reads n bytes of the caller's memory (None when unmapped); the log writes `name(args) = ret`.
The conventions are strace's (strace(1), its src/ decoders): strings quoted with C escapes and cut at
32 bytes followed by `...` (strace -s 32), path names whole, flag sets as NAME|NAME with the rest in
hex, NULL for a null pointer, AT_FDCWD, struct stat as {st_mode=S_IFREG|0644, st_size=N, ...},
errors as `-1 ENOENT (No such file or directory)`, and for the calls it has no decoder for, every
argument in hex (as many as NARGS says, else six).
"""
import errno
import os
import struct

from faultlab.kernel.tracepoints import SI_CODE_NAMES, SIGNAL_NAMES

STRSIZE = 32                  # strace -s 32, its default
PATH_MAX = 4096
MASK64 = (1 << 64) - 1
AT_FDCWD = -100

# the number of arguments of the calls without a decoder here (strace's syscallent table)
NARGS = {'getpid': 0, 'gettid': 0, 'getppid': 0, 'getuid': 0, 'geteuid': 0, 'getgid': 0, 'getegid': 0,
         'sched_yield': 0, 'fork': 0, 'vfork': 0, 'pause': 0, 'setsid': 0, 'sync': 0, 'munlockall': 0,
         'rt_sigreturn': 0, 'dup': 1, 'umask': 1, 'alarm': 1, 'mlockall': 1, 'chdir': 1, 'fchdir': 1,
         'dup2': 2, 'kill': 2, 'mlock': 2, 'munlock': 2, 'ftruncate': 2, 'sigaltstack': 2, 'tkill': 2,
         'nanosleep': 2, 'munmap': 2, 'set_robust_list': 2, 'clock_gettime': 2, 'gettimeofday': 2,
         'dup3': 3, 'lseek': 3, 'madvise': 3, 'mincore': 3, 'msync': 3, 'tgkill': 3, 'mlock2': 3,
         'fcntl': 3, 'getdents64': 3, 'sched_getaffinity': 3, 'poll': 3, 'mremap': 5,
         'clock_nanosleep': 4, 'wait4': 4, 'fadvise64': 4, 'rseq': 4, 'set_tid_address': 1,
         'exit': 1, 'exit_group': 1, 'brk': 1, 'close': 1, 'unlink': 1, 'rmdir': 1, 'pipe': 1,
         'pipe2': 2, 'getrandom': 3, 'prlimit64': 4, 'arch_prctl': 2, 'clone3': 2, 'futex': 6}

O_ACCMODE = {0: 'O_RDONLY', 1: 'O_WRONLY', 2: 'O_RDWR'}
O_FLAGS = [(0o100, 'O_CREAT'), (0o200, 'O_EXCL'), (0o400, 'O_NOCTTY'), (0o1000, 'O_TRUNC'),
           (0o2000, 'O_APPEND'), (0o4000, 'O_NONBLOCK'), (0o4010000, 'O_SYNC'), (0o10000, 'O_DSYNC'),
           (0o20000, 'O_ASYNC'), (0o40000, 'O_DIRECT'), (0o20200000, 'O_TMPFILE'), (0o200000, 'O_DIRECTORY'),
           (0o400000, 'O_NOFOLLOW'), (0o1000000, 'O_NOATIME'), (0o2000000, 'O_CLOEXEC'),
           (0o10000000, 'O_PATH')]
PROT = [(1, 'PROT_READ'), (2, 'PROT_WRITE'), (4, 'PROT_EXEC'), (0x8, 'PROT_SEM'),
        (0x01000000, 'PROT_GROWSDOWN'), (0x02000000, 'PROT_GROWSUP')]
MAP_TYPE = {1: 'MAP_SHARED', 2: 'MAP_PRIVATE', 3: 'MAP_SHARED_VALIDATE'}
MAP_FLAGS = [(0x10, 'MAP_FIXED'), (0x20, 'MAP_ANONYMOUS'), (0x40, 'MAP_32BIT'), (0x100, 'MAP_GROWSDOWN'),
             (0x800, 'MAP_DENYWRITE'), (0x1000, 'MAP_EXECUTABLE'), (0x2000, 'MAP_LOCKED'),
             (0x4000, 'MAP_NORESERVE'), (0x8000, 'MAP_POPULATE'), (0x10000, 'MAP_NONBLOCK'),
             (0x20000, 'MAP_STACK'), (0x40000, 'MAP_HUGETLB'), (0x80000, 'MAP_SYNC'),
             (0x100000, 'MAP_FIXED_NOREPLACE'), (0x4000000, 'MAP_UNINITIALIZED')]
AT_FLAGS = [(0x100, 'AT_SYMLINK_NOFOLLOW'), (0x200, 'AT_REMOVEDIR'), (0x400, 'AT_SYMLINK_FOLLOW'),
            (0x800, 'AT_NO_AUTOMOUNT'), (0x1000, 'AT_EMPTY_PATH')]
SA_FLAGS = [(0x04000000, 'SA_RESTORER'), (0x08000000, 'SA_ONSTACK'), (0x10000000, 'SA_RESTART'),
            (0x40000000, 'SA_NODEFER'), (0x80000000, 'SA_RESETHAND'), (4, 'SA_SIGINFO'), (1, 'SA_NOCLDSTOP'),
            (2, 'SA_NOCLDWAIT')]
CLONE_FLAGS = [(0x100, 'CLONE_VM'), (0x200, 'CLONE_FS'), (0x400, 'CLONE_FILES'), (0x800, 'CLONE_SIGHAND'),
               (0x1000, 'CLONE_PIDFD'), (0x2000, 'CLONE_PTRACE'), (0x4000, 'CLONE_VFORK'),
               (0x8000, 'CLONE_PARENT'), (0x10000, 'CLONE_THREAD'), (0x20000, 'CLONE_NEWNS'),
               (0x40000, 'CLONE_SYSVSEM'), (0x80000, 'CLONE_SETTLS'), (0x100000, 'CLONE_PARENT_SETTID'),
               (0x200000, 'CLONE_CHILD_CLEARTID'), (0x400000, 'CLONE_DETACHED'),
               (0x800000, 'CLONE_UNTRACED'), (0x1000000, 'CLONE_CHILD_SETTID')]
SIGPROCMASK_HOW = {0: 'SIG_BLOCK', 1: 'SIG_UNBLOCK', 2: 'SIG_SETMASK'}
ARCH_PRCTL = {0x1001: 'ARCH_SET_GS', 0x1002: 'ARCH_SET_FS', 0x1003: 'ARCH_GET_FS', 0x1004: 'ARCH_GET_GS',
              0x3001: 'ARCH_CET_STATUS', 0x1011: 'ARCH_GET_CPUID', 0x1012: 'ARCH_SET_CPUID'}
RLIMITS = ['RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_DATA', 'RLIMIT_STACK', 'RLIMIT_CORE', 'RLIMIT_RSS',
           'RLIMIT_NPROC', 'RLIMIT_NOFILE', 'RLIMIT_MEMLOCK', 'RLIMIT_AS', 'RLIMIT_LOCKS',
           'RLIMIT_SIGPENDING', 'RLIMIT_MSGQUEUE', 'RLIMIT_NICE', 'RLIMIT_RTPRIO', 'RLIMIT_RTTIME']
GRND = [(1, 'GRND_NONBLOCK'), (2, 'GRND_RANDOM'), (4, 'GRND_INSECURE')]
FUTEX_OPS = ['FUTEX_WAIT', 'FUTEX_WAKE', 'FUTEX_FD', 'FUTEX_REQUEUE', 'FUTEX_CMP_REQUEUE', 'FUTEX_WAKE_OP',
             'FUTEX_LOCK_PI', 'FUTEX_UNLOCK_PI', 'FUTEX_TRYLOCK_PI', 'FUTEX_WAIT_BITSET',
             'FUTEX_WAKE_BITSET', 'FUTEX_WAIT_REQUEUE_PI', 'FUTEX_CMP_REQUEUE_PI', 'FUTEX_LOCK_PI2']
IOCTLS = {0x5401: 'TCGETS', 0x5402: 'TCSETS', 0x5413: 'TIOCGWINSZ', 0x541B: 'FIONREAD'}
S_IFMT = {0o140000: 'S_IFSOCK', 0o120000: 'S_IFLNK', 0o100000: 'S_IFREG', 0o60000: 'S_IFBLK',
          0o40000: 'S_IFDIR', 0o20000: 'S_IFCHR', 0o10000: 'S_IFIFO'}
SEEK = {0: 'SEEK_SET', 1: 'SEEK_CUR', 2: 'SEEK_END', 3: 'SEEK_DATA', 4: 'SEEK_HOLE'}
MADV = {0: 'MADV_NORMAL', 1: 'MADV_RANDOM', 2: 'MADV_SEQUENTIAL', 3: 'MADV_WILLNEED', 4: 'MADV_DONTNEED',
        8: 'MADV_FREE', 9: 'MADV_REMOVE', 10: 'MADV_DONTFORK', 11: 'MADV_DOFORK', 12: 'MADV_MERGEABLE',
        13: 'MADV_UNMERGEABLE', 14: 'MADV_HUGEPAGE', 15: 'MADV_NOHUGEPAGE', 16: 'MADV_DONTDUMP',
        17: 'MADV_DODUMP', 18: 'MADV_WIPEONFORK', 19: 'MADV_KEEPONFORK', 20: 'MADV_COLD',
        21: 'MADV_PAGEOUT', 22: 'MADV_POPULATE_READ', 23: 'MADV_POPULATE_WRITE'}
FADV = {0: 'POSIX_FADV_NORMAL', 1: 'POSIX_FADV_RANDOM', 2: 'POSIX_FADV_SEQUENTIAL', 3: 'POSIX_FADV_WILLNEED',
        4: 'POSIX_FADV_DONTNEED', 5: 'POSIX_FADV_NOREUSE'}
CLOCKS = {0: 'CLOCK_REALTIME', 1: 'CLOCK_MONOTONIC', 2: 'CLOCK_PROCESS_CPUTIME_ID', 3: 'CLOCK_THREAD_CPUTIME_ID',
          4: 'CLOCK_MONOTONIC_RAW', 5: 'CLOCK_REALTIME_COARSE', 6: 'CLOCK_MONOTONIC_COARSE', 7: 'CLOCK_BOOTTIME'}
FCNTL_CMDS = {0: 'F_DUPFD', 1: 'F_GETFD', 2: 'F_SETFD', 3: 'F_GETFL', 4: 'F_SETFL', 5: 'F_GETLK', 6: 'F_SETLK',
              7: 'F_SETLKW', 8: 'F_SETOWN', 9: 'F_GETOWN', 10: 'F_SETSIG', 11: 'F_GETSIG', 1024: 'F_SETLEASE',
              1025: 'F_GETLEASE', 1026: 'F_NOTIFY', 1030: 'F_DUPFD_CLOEXEC', 1031: 'F_SETPIPE_SZ',
              1032: 'F_GETPIPE_SZ', 1033: 'F_ADD_SEALS', 1034: 'F_GET_SEALS', 36: 'F_OFD_GETLK',
              37: 'F_OFD_SETLK', 38: 'F_OFD_SETLKW'}
FALLOC_FLAGS = [(1, 'FALLOC_FL_KEEP_SIZE'), (2, 'FALLOC_FL_PUNCH_HOLE'), (4, 'FALLOC_FL_NO_HIDE_STALE'),
                (8, 'FALLOC_FL_COLLAPSE_RANGE'), (0x10, 'FALLOC_FL_ZERO_RANGE'), (0x20, 'FALLOC_FL_INSERT_RANGE'),
                (0x40, 'FALLOC_FL_UNSHARE_RANGE')]
_ESCAPES = {0x09: '\\t', 0x0a: '\\n', 0x0b: '\\v', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\'}


def s32(v):
    """A register read as a C int."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & (1 << 31) else v


def s64(v):
    """A register read as a C long."""
    v &= MASK64
    return v - (1 << 64) if v & (1 << 63) else v


def quote(data, force_hex=False):
    """Bytes as strace quotes them: C escapes, other unprintable bytes in octal (or all in hex)."""
    if force_hex:
        return '"%s"' % ''.join('\\x%02x' % b for b in data)
    out = []
    for i, b in enumerate(data):
        if b in _ESCAPES:
            out.append(_ESCAPES[b])
        elif 0x20 <= b < 0x7f:
            out.append(chr(b))
        elif i + 1 < len(data) and 0x30 <= data[i + 1] <= 0x37:
            out.append('\\%03o' % b)
        else:
            out.append('\\%o' % b)
    return '"%s"' % ''.join(out)


def hexa(v):
    """A number in hex as C's %#lx prints it (0 without 0x)."""
    return '%#x' % v if v else '0'


def pointer(v):
    """An address: NULL or hex."""
    return 'NULL' if v == 0 else '%#x' % v


def flags(v, table, zero='0'):
    """A flag set as A|B|0x..., or zero's text."""
    names = []
    for bit, name in table:
        if bit and v & bit == bit:
            names.append(name)
            v &= ~bit
    if v:
        names.append('%#x' % v)
    return '|'.join(names) or zero


def dirfd(v):
    """An *at call's directory descriptor."""
    fd = s32(v)
    return 'AT_FDCWD' if fd == AT_FDCWD else str(fd)


def signame(sig):
    """A signal number as strace names it (SIGRTMIN is 32, glibc's first usable one RT_1)."""
    if sig in SIGNAL_NAMES:
        return SIGNAL_NAMES[sig]
    if sig == 32:
        return 'SIGRTMIN'
    if 33 <= sig <= 64:
        return 'SIGRT_%d' % (sig - 32)
    return str(sig)


def sigset(mask, size=8):
    """A signal set: [SIGINT SIGTERM], or ~[...] when more than half of it is set."""
    nsig = size * 8
    full = (1 << nsig) - 1
    inverted = bin(mask & full).count('1') > nsig // 2
    m = ~mask & full if inverted else mask

    def name(sig):
        n = signame(sig)
        return 'RTMIN' if sig == 32 else n[3:] if n.startswith('SIG') else n
    body = ' '.join(name(i + 1) for i in range(nsig) if m >> i & 1)
    return ('~[%s]' if inverted else '[%s]') % body


def errname(ret):
    """`-1 ENOENT (No such file or directory)` for -errno."""
    e = -ret
    return '-1 %s (%s)' % (errno.errorcode.get(e, 'E%d' % e), os.strerror(e))


# the input structs of the calls that sleep, read when the call is made (its caller's stack may have
# moved on by the time the line is written): call -> [(argument index, bytes)]
ENTRY_READS = {'nanosleep': [(0, 16)], 'rt_sigsuspend': [(0, 8)], 'clock_nanosleep': [(2, 16)],
               'futex': [(3, 16)], 'rt_sigtimedwait': [(0, 8), (2, 16)], 'ppoll': [(2, 16)], 'pselect6': [(4, 16)]}


def entry_snapshot(name, args, mem):
    """{address: bytes} of the inputs ENTRY_READS names for this call, read now."""
    snap = {}
    for i, n in ENTRY_READS.get(name, ()):
        if args[i]:
            try:
                data = mem(args[i], n)
            except Exception:
                data = None
            if data is not None:
                snap[args[i]] = data
    return snap


class Decoder:
    """One call's arguments read from its caller's memory (or from what was read at its entry)."""

    def __init__(self, mem, snap=None):
        self.mem = mem
        self.snap = snap or {}

    def read(self, addr, n):
        """n bytes at addr or None."""
        if not addr:
            return None
        early = self.snap.get(addr)
        if early is not None and len(early) >= n:
            return early[:n]
        try:
            return self.mem(addr, n)
        except Exception:
            return None

    def cstr(self, addr):
        """A NUL-terminated string, cut at STRSIZE."""
        if not addr:
            return 'NULL'
        data = b''
        for n in (STRSIZE + 1, 1):
            data = self.read(addr, n)
            if data is not None:
                break
        if data is None:
            return '%#x' % addr
        cut = data.find(b'\0')
        if cut >= 0:
            return quote(data[:cut])
        return quote(data[:STRSIZE]) + '...'

    def pointers(self, addr, limit):
        """A NULL-terminated array of pointers (argv, envp), at most limit of them."""
        out = []
        while addr and len(out) < limit:
            p = self.read(addr + 8 * len(out), 8)
            if p is None or not int.from_bytes(p, 'little'):
                break
            out.append(int.from_bytes(p, 'little'))
        return out

    def path(self, addr):
        """A path name: strace prints it whole (up to PATH_MAX), not cut at STRSIZE."""
        if not addr:
            return 'NULL'
        data = b''
        while len(data) < PATH_MAX:
            at = addr + len(data)
            chunk = self.read(at, min(PATH_MAX - len(data), 4096 - (at & 4095)))
            if chunk is None:
                break
            cut = chunk.find(b'\0')
            if cut >= 0:
                return quote(data + chunk[:cut])
            data += chunk
        return quote(data) + '...' if data else '%#x' % addr

    def buf(self, addr, count, force_hex=False):
        """A buffer of count bytes, cut at STRSIZE."""
        if not addr:
            return 'NULL'
        n = min(count, STRSIZE)
        data = self.read(addr, n) if n else b''
        if data is None:
            return '%#x' % addr
        return quote(data, force_hex) + ('...' if count > STRSIZE else '')

    def struct(self, addr, fmt):
        """A struct unpacked, or None."""
        data = self.read(addr, struct.calcsize(fmt))
        return struct.unpack(fmt, data) if data is not None else None

    def dirents(self, addr, size):
        """How many struct linux_dirent64 fill the first size bytes at addr (d_reclen at offset 16)."""
        data = self.read(addr, size) or b''
        n = off = 0
        while off + 18 <= len(data):
            reclen = struct.unpack_from('<H', data, off + 16)[0]
            if reclen == 0:
                break
            n += 1
            off += reclen
        return n

    def timespec(self, addr):
        """struct timespec, or NULL."""
        if not addr:
            return 'NULL'
        ts = self.struct(addr, '<qq')
        return '{tv_sec=%d, tv_nsec=%d}' % ts if ts else '%#x' % addr

    def itimerval(self, addr):
        """struct itimerval (two struct timeval), or NULL."""
        if not addr:
            return 'NULL'
        v = self.struct(addr, '<qqqq')
        return ('{it_interval={tv_sec=%d, tv_usec=%d}, it_value={tv_sec=%d, tv_usec=%d}}' % v if v
                else '%#x' % addr)

    def stat(self, addr):
        """struct stat as strace abbreviates it."""
        st = self.struct(addr, '<QQQIIIIQqqq')
        if st is None:
            return pointer(addr)
        mode, rdev, size = st[3], st[7], st[8]
        kind = S_IFMT.get(mode & 0o170000, '%#o' % (mode & 0o170000))
        text = '{st_mode=%s|%04o, ' % (kind, mode & 0o7777)
        if mode & 0o170000 in (0o20000, 0o60000):
            major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfff)
            minor = (rdev & 0xff) | ((rdev >> 12) & ~0xff)
            return text + 'st_rdev=makedev(%#x, %#x), ...}' % (major, minor)
        return text + 'st_size=%d, ...}' % size

    def sigaction(self, addr):
        """struct kernel_sigaction."""
        sa = self.struct(addr, '<QQQQ')
        if sa is None:
            return pointer(addr)
        handler, fl, restorer, mask = sa
        h = {0: 'SIG_DFL', 1: 'SIG_IGN'}.get(handler, '%#x' % handler)
        text = '{sa_handler=%s, sa_mask=%s, sa_flags=%s' % (h, sigset(mask), flags(fl, SA_FLAGS))
        if fl & 0x04000000:
            text += ', sa_restorer=%#x' % restorer
        return text + '}'

    def sigmask(self, addr, size):
        """A sigset_t in memory."""
        if not addr:
            return 'NULL'
        data = self.read(addr, min(size, 8))
        return sigset(int.from_bytes(data, 'little'), min(size, 8)) if data else '%#x' % addr

    def rlimit(self, addr):
        """struct rlimit64 as strace prints it (*1024 when the value is a multiple of 1024)."""
        r = self.struct(addr, '<QQ')
        if r is None:
            return pointer(addr)

        def lim(v):
            if v == MASK64:
                return 'RLIM64_INFINITY'
            return '%d*1024' % (v // 1024) if v and v % 1024 == 0 else str(v)
        return '{rlim_cur=%s, rlim_max=%s}' % (lim(r[0]), lim(r[1]))

    def wstatus(self, addr):
        """wait4's status word."""
        st = self.struct(addr, '<i')
        if st is None:
            return pointer(addr)
        s = st[0]
        if s & 0x7f == 0:
            return '[{WIFEXITED(s) && WEXITSTATUS(s) == %d}]' % (s >> 8 & 0xff)
        if s & 0xff == 0x7f:
            return '[{WIFSTOPPED(s) && WSTOPSIG(s) == %s}]' % signame(s >> 8 & 0xff)
        core = ' && WCOREDUMP(s)' if s & 0x80 else ''
        return '[{WIFSIGNALED(s) && WTERMSIG(s) == %s%s}]' % (signame(s & 0x7f), core)


def _mmap_flags(v):
    """mmap's flags: the mapping type, then the modifiers."""
    v &= 0xFFFFFFFF
    kind = MAP_TYPE.get(v & 3, '%#x' % (v & 3))
    rest = flags(v & ~3, MAP_FLAGS, '')
    return kind + ('|' + rest if rest else '')


def _open_flags(v):
    """open's flags: the access mode, then the others."""
    v &= 0xFFFFFFFF
    acc = O_ACCMODE.get(v & 3, '%#x' % (v & 3))
    rest = flags(v & ~3, O_FLAGS, '')
    return acc + ('|' + rest if rest else '')


def _clone_flags(v):
    """clone's flags with the exit signal in the low byte."""
    sig = v & 0xff
    text = flags(v & ~0xff, CLONE_FLAGS, '')
    if sig:
        text = (text + '|' if text else '') + signame(sig)
    return text or '0'


def _futex_op(v):
    """futex's op: the command with FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME."""
    cmd = v & 0x7f
    text = FUTEX_OPS[cmd] if cmd < len(FUTEX_OPS) else '%#x' % cmd
    if v & 128:
        text += '_PRIVATE'
    if v & 256:
        text += '|FUTEX_CLOCK_REALTIME'
    return text


def decode_args(name, a, ret, d):
    """The argument list of one call, or None when it has no decoder here."""
    ok = ret is not None and ret >= 0
    fn = _DECODERS.get(name)
    return fn(a, ret, ok, d) if fn is not None else None


# _d_NAME(a, ret, ok, d): NAME's arguments as strace prints them, from a (the six argument registers),
# ret (its result, None when it did not return), ok (it succeeded: output arguments were written) and
# d (a Decoder of the caller's memory)
def _d_read(a, ret, ok, d):
    return [str(s32(a[0])), d.buf(a[1], ret) if ok else '%#x' % a[1], str(a[2])]


def _d_pread(a, ret, ok, d):
    return _d_read(a, ret, ok, d) + [str(s64(a[3]))]


def _d_write(a, ret, ok, d):
    return [str(s32(a[0])), d.buf(a[1], a[2]), str(a[2])]


def _d_pwrite(a, ret, ok, d):
    return _d_write(a, ret, ok, d) + [str(s64(a[3]))]


def _has_mode(fl):
    """open's mode argument counts with O_CREAT or O_TMPFILE."""
    return bool(fl & 0o100) or fl & 0o20200000 == 0o20200000


def _d_open(a, ret, ok, d):
    out = [d.path(a[0]), _open_flags(a[1])]
    return out + ['0%03o' % a[2]] if _has_mode(a[1]) else out


def _d_openat(a, ret, ok, d):
    out = [dirfd(a[0]), d.path(a[1]), _open_flags(a[2])]
    return out + ['0%03o' % a[3]] if _has_mode(a[2]) else out


def _d_fd(a, ret, ok, d):
    return [str(s32(a[0]))]


def _d_stat(a, ret, ok, d):
    return [d.path(a[0]), d.stat(a[1]) if ok else pointer(a[1])]


def _d_fstat(a, ret, ok, d):
    return [str(s32(a[0])), d.stat(a[1]) if ok else pointer(a[1])]


def _d_newfstatat(a, ret, ok, d):
    return [dirfd(a[0]), d.path(a[1]), d.stat(a[2]) if ok else pointer(a[2]), flags(a[3], AT_FLAGS)]


def _d_mmap(a, ret, ok, d):
    return [pointer(a[0]), str(a[1]), flags(a[2], PROT, 'PROT_NONE'), _mmap_flags(a[3]), str(s32(a[4])),
            hexa(a[5])]


def _d_mprotect(a, ret, ok, d):
    return ['%#x' % a[0], str(a[1]), flags(a[2], PROT, 'PROT_NONE')]


def _d_munmap(a, ret, ok, d):
    return ['%#x' % a[0], str(a[1])]


def _d_brk(a, ret, ok, d):
    return [pointer(a[0])]


def _d_path(a, ret, ok, d):
    return [d.path(a[0])]


def _d_unlinkat(a, ret, ok, d):
    return [dirfd(a[0]), d.path(a[1]), flags(a[2], AT_FLAGS)]


def _d_access(a, ret, ok, d):
    return [d.path(a[0]), flags(a[1], [(4, 'R_OK'), (2, 'W_OK'), (1, 'X_OK')], 'F_OK')]


def _d_readlink(a, ret, ok, d):
    return [d.path(a[0]), d.buf(a[1], ret) if ok else '%#x' % a[1], str(a[2])]


def _d_getrandom(a, ret, ok, d):
    return [d.buf(a[0], ret, True) if ok else '%#x' % a[0], str(a[1]), flags(a[2], GRND)]


def _d_exit(a, ret, ok, d):
    return [str(s32(a[0]))]


def _d_rt_sigaction(a, ret, ok, d):
    return [signame(a[0]), d.sigaction(a[1]) if a[1] else 'NULL',
            (d.sigaction(a[2]) if ok else '%#x' % a[2]) if a[2] else 'NULL', str(a[3])]


def _d_rt_sigprocmask(a, ret, ok, d):
    how = SIGPROCMASK_HOW.get(a[0], '%#x' % a[0])
    return [how, d.sigmask(a[1], a[3]), (d.sigmask(a[2], a[3]) if ok else '%#x' % a[2]) if a[2] else 'NULL',
            str(a[3])]


def _d_arch_prctl(a, ret, ok, d):
    return [ARCH_PRCTL.get(a[0], '%#x' % a[0]), '%#x' % a[1]]


def _d_set_tid_address(a, ret, ok, d):
    return [pointer(a[0])]


def _d_set_robust_list(a, ret, ok, d):
    return [pointer(a[0]), str(a[1])]


def _d_rseq(a, ret, ok, d):
    return [pointer(a[0]), hexa(a[1]), str(s32(a[2])), hexa(a[3])]


def _d_prlimit64(a, ret, ok, d):
    res = RLIMITS[a[1]] if a[1] < len(RLIMITS) else str(a[1])
    new = d.rlimit(a[2]) if a[2] else 'NULL'
    old = (d.rlimit(a[3]) if ok else '%#x' % a[3]) if a[3] else 'NULL'
    return [str(s32(a[0])), res, new, old]


def _d_ioctl(a, ret, ok, d):
    return [str(s32(a[0])), IOCTLS.get(a[1] & 0xFFFFFFFF, '%#x' % a[1]), '%#x' % a[2]]


def _d_ftruncate(a, ret, ok, d):
    return [str(s32(a[0])), str(s64(a[1]))]


def _d_lseek(a, ret, ok, d):
    return [str(s32(a[0])), str(s64(a[1])), SEEK.get(a[2], str(a[2]))]


def _d_madvise(a, ret, ok, d):
    return ['%#x' % a[0], str(a[1]), MADV.get(a[2], str(a[2]))]


def _d_fadvise64(a, ret, ok, d):
    return [str(s32(a[0])), str(s64(a[1])), str(a[2]), FADV.get(a[3], str(a[3]))]


def _d_wait4(a, ret, ok, d):
    status = (d.wstatus(a[1]) if ok and ret > 0 else '%#x' % a[1]) if a[1] else 'NULL'
    opts = flags(a[2], [(1, 'WNOHANG'), (2, 'WUNTRACED'), (8, 'WCONTINUED'), (0x40000000, '__WALL'),
                        (0x80000000, '__WCLONE')])
    return [str(s32(a[0])), status, opts, pointer(a[3])]


def _d_clone(a, ret, ok, d):
    out = ['child_stack=%s' % pointer(a[1]), 'flags=%s' % _clone_flags(a[0])]
    if a[0] & 0x100000:
        out.append('parent_tid=%#x' % a[2])
    if a[0] & 0x1200000:
        out.append('child_tidptr=%#x' % a[3])
    if a[0] & 0x80000:
        out.append('tls=%#x' % a[4])
    return out


def _d_clone3(a, ret, ok, d):
    c = d.struct(a[0], '<QQQQQQQ')
    if c is None:
        return [pointer(a[0]), str(a[1])]
    fl, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size = c
    tls = d.struct(a[0] + 56, '<Q')
    parts = ['flags=%s' % flags(fl, CLONE_FLAGS)]
    if fl & 0x1200000:
        parts.append('child_tid=%#x' % child_tid)
    if fl & 0x100000:
        parts.append('parent_tid=%#x' % parent_tid)
    parts.append('exit_signal=%s' % (signame(exit_signal) if exit_signal else '0'))
    parts += ['stack=%#x' % stack, 'stack_size=%#x' % stack_size]
    if fl & 0x80000 and tls is not None:
        parts.append('tls=%#x' % tls[0])
    text = '{%s}' % ', '.join(parts)
    if ok and fl & 0x100000:
        text += ' => {parent_tid=[%d]}' % ret
    return [text, str(a[1])]


def _d_futex(a, ret, ok, d):
    op = a[1] & 0xFFFFFFFF
    cmd = op & 0x7f
    out = ['%#x' % a[0], _futex_op(op), str(s32(a[2]))]
    if cmd in (0, 9):           # FUTEX_WAIT(_BITSET): the timeout, and the bitset
        out.append(d.timespec(a[3]))
        if cmd == 9:
            out.append('FUTEX_BITSET_MATCH_ANY' if a[5] & 0xFFFFFFFF == 0xFFFFFFFF else '%#x' % a[5])
    elif cmd == 10:
        out.append('FUTEX_BITSET_MATCH_ANY' if a[5] & 0xFFFFFFFF == 0xFFFFFFFF else '%#x' % a[5])
    return out


def _d_pipe(a, ret, ok, d):
    fds = d.struct(a[0], '<ii') if ok else None
    return ['[%d, %d]' % fds if fds else pointer(a[0])]


def _d_pipe2(a, ret, ok, d):
    return _d_pipe(a, ret, ok, d) + [flags(a[1] & 0xFFFFFFFF, O_FLAGS)]


def _d_fcntl(a, ret, ok, d):
    cmd = a[1] & 0xFFFFFFFF
    name = FCNTL_CMDS.get(cmd, '%#x' % cmd)
    out = [str(s32(a[0])), name]
    if name == 'F_SETFL':
        out.append(_open_flags(a[2]))
    elif name == 'F_SETFD':
        out.append('FD_CLOEXEC' if a[2] == 1 else hexa(a[2]))
    elif name in ('F_DUPFD', 'F_DUPFD_CLOEXEC', 'F_SETOWN', 'F_SETSIG', 'F_SETPIPE_SZ', 'F_SETLEASE',
                  'F_NOTIFY'):
        out.append(str(s32(a[2])))
    elif name not in ('F_GETFD', 'F_GETFL', 'F_GETOWN', 'F_GETSIG', 'F_GETPIPE_SZ', 'F_GETLEASE',
                      'F_GET_SEALS'):
        out.append(hexa(a[2]))
    return out


def fcntl_ret(cmd, ret):
    """fcntl's result: F_GETFL's flags and F_GETFD's FD_CLOEXEC spelled out (strace's `= 0x2 (flags O_RDWR)`)."""
    name = FCNTL_CMDS.get(cmd & 0xFFFFFFFF)
    if name == 'F_GETFL' and ret >= 0:
        return '%#x (flags %s)' % (ret, _open_flags(ret))
    if name == 'F_GETFD' and ret >= 0:
        return '%#x (flags %s)' % (ret, 'FD_CLOEXEC' if ret == 1 else '0') if ret else '0'
    return None


def _d_kill(a, ret, ok, d):
    return [str(s32(a[0])), signame(a[1] & 0xFFFFFFFF) if a[1] else '0']


def _d_tgkill(a, ret, ok, d):
    return [str(s32(a[0])), str(s32(a[1])), signame(a[2] & 0xFFFFFFFF) if a[2] else '0']


def _d_rt_sigqueueinfo(a, ret, ok, d):
    info = d.read(a[2], 128)
    return [str(s32(a[0])), signame(a[1] & 0xFFFFFFFF), siginfo_text(info) if info else pointer(a[2])]


def _d_rt_tgsigqueueinfo(a, ret, ok, d):
    info = d.read(a[3], 128)
    return [str(s32(a[0])), str(s32(a[1])), signame(a[2] & 0xFFFFFFFF), siginfo_text(info) if info else pointer(a[3])]


ITIMERS = {0: 'ITIMER_REAL', 1: 'ITIMER_VIRTUAL', 2: 'ITIMER_PROF'}


def _d_setitimer(a, ret, ok, d):
    return [ITIMERS.get(a[0], str(s32(a[0]))), d.itimerval(a[1]), d.itimerval(a[2]) if ok else pointer(a[2])]


def _d_getitimer(a, ret, ok, d):
    return [ITIMERS.get(a[0], str(s32(a[0]))), d.itimerval(a[1]) if ok else pointer(a[1])]


def _d_nanosleep(a, ret, ok, d):
    return [d.timespec(a[0]), pointer(a[1])]


def _d_clock_nanosleep(a, ret, ok, d):
    fl = 'TIMER_ABSTIME' if a[1] & 1 else '0'
    return [CLOCKS.get(a[0], str(s32(a[0]))), fl, d.timespec(a[2]), pointer(a[3])]


def _d_clock_gettime(a, ret, ok, d):
    return [CLOCKS.get(a[0], str(s32(a[0]))), d.timespec(a[1]) if ok else pointer(a[1])]


def _d_dup2(a, ret, ok, d):
    return [str(s32(a[0])), str(s32(a[1]))]


def _d_dup3(a, ret, ok, d):
    return [str(s32(a[0])), str(s32(a[1])), flags(a[2], O_FLAGS)]


def _d_rt_sigsuspend(a, ret, ok, d):
    return [d.sigmask(a[0], a[1]), str(a[1])]


def _d_fallocate(a, ret, ok, d):
    mode = flags(a[1] & 0xFFFFFFFF, FALLOC_FLAGS)
    return [str(s32(a[0])), mode, str(s64(a[2])), str(s64(a[3]))]


def _d_getdents64(a, ret, ok, d):
    buf = '%#x' % a[1]
    if ok:
        buf += ' /* %d entries */' % d.dirents(a[1], ret)
    return [str(s32(a[0])), buf, str(a[2] & 0xFFFFFFFF)]


def _d_sched_yield(a, ret, ok, d):
    return []


_DECODERS = {
    'read': _d_read, 'pread64': _d_pread, 'write': _d_write, 'pwrite64': _d_pwrite, 'open': _d_open,
    'openat': _d_openat, 'close': _d_fd, 'stat': _d_stat, 'lstat': _d_stat, 'fstat': _d_fstat,
    'newfstatat': _d_newfstatat, 'mmap': _d_mmap, 'mprotect': _d_mprotect, 'munmap': _d_munmap,
    'brk': _d_brk, 'unlink': _d_path, 'rmdir': _d_path, 'chdir': _d_path, 'unlinkat': _d_unlinkat,
    'access': _d_access, 'readlink': _d_readlink, 'getrandom': _d_getrandom, 'exit': _d_exit,
    'exit_group': _d_exit, 'rt_sigaction': _d_rt_sigaction, 'rt_sigprocmask': _d_rt_sigprocmask,
    'arch_prctl': _d_arch_prctl, 'set_tid_address': _d_set_tid_address, 'set_robust_list': _d_set_robust_list,
    'rseq': _d_rseq, 'prlimit64': _d_prlimit64, 'ioctl': _d_ioctl, 'ftruncate': _d_ftruncate,
    'lseek': _d_lseek, 'madvise': _d_madvise, 'fadvise64': _d_fadvise64, 'wait4': _d_wait4,
    'clone': _d_clone, 'clone3': _d_clone3, 'futex': _d_futex, 'fsync': _d_fd, 'fdatasync': _d_fd,
    'dup': _d_fd, 'pipe': _d_pipe, 'pipe2': _d_pipe2, 'fcntl': _d_fcntl, 'kill': _d_kill, 'tkill': _d_kill,
    'rt_sigqueueinfo': _d_rt_sigqueueinfo, 'rt_tgsigqueueinfo': _d_rt_tgsigqueueinfo, 'setitimer': _d_setitimer,
    'getitimer': _d_getitimer,
    'tgkill': _d_tgkill, 'nanosleep': _d_nanosleep, 'clock_nanosleep': _d_clock_nanosleep,
    'clock_gettime': _d_clock_gettime, 'dup2': _d_dup2, 'dup3': _d_dup3, 'sched_yield': _d_sched_yield,
    'rt_sigsuspend': _d_rt_sigsuspend, 'fallocate': _d_fallocate, 'getdents64': _d_getdents64,
}


def format_ret(name, ret):
    """What follows ` = `: ? for a call that did not return, errors with their names, addresses in hex."""
    if ret is None:
        return '?'
    if -4096 < ret < 0:
        return errname(ret)
    if name in ('mmap', 'brk', 'mremap', 'shmat'):
        return '%#x' % (ret & MASK64)
    return str(ret)


def format_call(name, args, ret, mem, nargs=None, snap=None):
    """A finished call as strace writes it, in two parts: `name(args)` and what follows ` = `."""
    decoded = decode_args(name, args, ret, Decoder(mem, snap))
    special = fcntl_ret(args[1], ret) if name == 'fcntl' and ret is not None else None
    if decoded is None:
        n = NARGS.get(name, 6 if nargs is None else nargs)
        decoded = [hexa(v) for v in args[:n]]
    return '%s(%s)' % (name, ', '.join(decoded)), special or format_ret(name, ret)


def format_signal(sig, si_code, addr):
    """`--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---` for a fault's signal."""
    code = SI_CODE_NAMES.get((sig, si_code), str(si_code))
    return '--- %s {si_signo=%s, si_code=%s, si_addr=%s} ---' % (signame(sig), signame(sig), code,
                                                                   pointer(addr))


# si_code values of signals sent by processes and the kernel (include/uapi/asm-generic/siginfo.h)
SI_CODES = {0: 'SI_USER', 0x80: 'SI_KERNEL', -1: 'SI_QUEUE', -2: 'SI_TIMER', -3: 'SI_MESGQ', -4: 'SI_ASYNCIO',
            -5: 'SI_SIGIO', -6: 'SI_TKILL'}
CLD_CODES = {1: 'CLD_EXITED', 2: 'CLD_KILLED', 3: 'CLD_DUMPED', 4: 'CLD_TRAPPED', 5: 'CLD_STOPPED', 6: 'CLD_CONTINUED'}
SIGCHLD = 17


def format_siginfo(info):
    """`--- SIGCHLD {si_signo=SIGCHLD, ...} ---`: a signal the thread takes, as strace writes it."""
    return '--- %s %s ---' % (signame(struct.unpack_from('<i', info)[0]), siginfo_text(info))


def siginfo_text(info):
    """A siginfo as strace prints it (its printsiginfo): the sender's pid and uid for kill, tgkill and
    sigqueue (with the value), the child's status and times for SIGCHLD, nothing more for the kernel's."""
    signo, _errno, code = struct.unpack_from('<iii', info)
    sig = signame(signo)
    if signo == SIGCHLD and code in CLD_CODES:
        cname = CLD_CODES[code]
    elif code in SI_CODES:
        cname = SI_CODES[code]
    else:
        cname = SI_CODE_NAMES.get((signo, code), str(code))
    out = ['si_signo=%s' % sig, 'si_code=%s' % cname]
    pid, uid = struct.unpack_from('<ii', info, 16)
    if code == -2:                                   # SI_TIMER: timer id, overrun, value
        val = struct.unpack_from('<Q', info, 24)[0]
        out += ['si_timerid=%#x' % pid, 'si_overrun=%d' % uid, 'si_int=%d' % s32(val), 'si_ptr=%s' % pointer(val)]
    elif code == 0x80 and signo != SIGCHLD:
        pass
    elif signo == SIGCHLD and code in CLD_CODES:
        status = struct.unpack_from('<i', info, 24)[0]
        utime, stime = struct.unpack_from('<qq', info, 32)
        shown = signame(status) if code in (2, 3, 4, 5) and status else str(status)
        out += ['si_pid=%d' % pid, 'si_uid=%d' % uid, 'si_status=%s' % shown, 'si_utime=%d' % utime,
                'si_stime=%d' % stime]
    else:
        out += ['si_pid=%d' % pid, 'si_uid=%d' % uid]
        if code == -1:                               # SI_QUEUE: the value
            val = struct.unpack_from('<Q', info, 24)[0]
            out += ['si_int=%d' % s32(val), 'si_ptr=%s' % pointer(val)]
    return '{%s}' % ', '.join(out)


def format_exit(killed_by_sig, code):
    """`+++ exited with N +++` or `+++ killed by SIGSEGV +++`."""
    if killed_by_sig:
        return '+++ killed by %s +++' % signame(killed_by_sig)
    return '+++ exited with %d +++' % code
