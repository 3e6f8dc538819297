"""io_uring_setup, io_uring_enter and io_uring_register (io_uring/io_uring.c, register.c), and the
requests this kernel runs: NOP, READ/WRITE, READV/WRITEV and READ_FIXED/WRITE_FIXED (io_uring/rw.c).
The rings and fixed buffers are kernel/io_uring.py."""
import errno
import struct

from faultlab.kernel.file import OpenFile
from faultlab.kernel.fs.pipe import PipeEnd, pipe_read, pipe_write
from faultlab.kernel.io_uring import (FEATURES, IORING_MAX_CQ_ENTRIES, IORING_MAX_ENTRIES, IORING_MAX_REG_BUFFERS,
                             IORING_OP_NOP, IORING_OP_READ, IORING_OP_READ_FIXED, IORING_OP_READV,
                             IORING_OP_WRITE, IORING_OP_WRITE_FIXED, IORING_OP_WRITEV, IORING_SETUP_CLAMP,
                             IORING_SETUP_CQSIZE, IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_SINGLE_ISSUER,
                             SETUP_ALL, SETUP_UNSUPPORTED, IoRingCtx, roundup_pow_of_two)
from faultlab.kernel.syscalls.registry import s32, s64, syscall
from faultlab.kernel.syscalls.fs import vfs_read, vfs_write
from faultlab.kernel.syscalls.splice import import_iovec

PARAMS_SIZE = 120
IORING_ENTER_GETEVENTS = 1 << 0
IORING_ENTER_SQ_WAKEUP = 1 << 1
IORING_ENTER_SQ_WAIT = 1 << 2
IORING_ENTER_EXT_ARG = 1 << 3
IORING_ENTER_REGISTERED_RING = 1 << 4
IORING_ENTER_ABS_TIMER, IORING_ENTER_NO_IOWAIT = 1 << 5, 1 << 7    # Linux 6.12, 6.15: no effect inline
ENTER_ALL = (1 << 5) - 1 | IORING_ENTER_ABS_TIMER | IORING_ENTER_NO_IOWAIT
IORING_REGISTER_BUFFERS, IORING_UNREGISTER_BUFFERS = 0, 1
IORING_REGISTER_USE_REGISTERED_RING = 1 << 31
IOSQE_FIXED_FILE = 1 << 0
IOSQE_ALL = (1 << 7) - 1
MAX_RW_COUNT = 0x7ffff000


def _ring_of(t, fd):
    """The io_ring_ctx behind fd: -EBADF without a file, -EOPNOTSUPP when it is not an io_uring."""
    f = t.files.get(s32(fd))
    if f is None:
        return -errno.EBADF
    if not isinstance(f, OpenFile) or not isinstance(f.inode, IoRingCtx):
        return -errno.EOPNOTSUPP
    return f.inode


@syscall(425, 'io_uring_setup')
def sys_io_uring_setup(k, t, entries, uparams, *_):
    entries &= 0xFFFFFFFF
    raw = t.umem.read(uparams, PARAMS_SIZE)
    if raw is None:
        return -errno.EFAULT
    _sq, cq, flags, _cpu, _idle, _features, _wq, *resv = struct.unpack_from('<10I', raw, 0)
    if any(resv):
        return -errno.EINVAL
    if flags & ~SETUP_ALL or flags & SETUP_UNSUPPORTED:
        return -errno.EINVAL
    if flags & IORING_SETUP_DEFER_TASKRUN and not flags & IORING_SETUP_SINGLE_ISSUER:
        return -errno.EINVAL
    if not entries:
        return -errno.EINVAL
    if entries > IORING_MAX_ENTRIES:
        if not flags & IORING_SETUP_CLAMP:
            return -errno.EINVAL
        entries = IORING_MAX_ENTRIES
    sq_entries = roundup_pow_of_two(entries)
    if flags & IORING_SETUP_CQSIZE:
        if not cq:
            return -errno.EINVAL
        if cq > IORING_MAX_CQ_ENTRIES:
            if not flags & IORING_SETUP_CLAMP:
                return -errno.EINVAL
            cq = IORING_MAX_CQ_ENTRIES
        cq_entries = roundup_pow_of_two(cq)
        if cq_entries < sq_entries:
            return -errno.EINVAL
    else:
        cq_entries = 2 * sq_entries
    k.anon_ino = getattr(k, 'anon_ino', 0) + 1
    ctx = IoRingCtx(k, t.mm, k.anon_ino, sq_entries, cq_entries, flags)
    out = struct.pack('<10I', sq_entries, cq_entries, flags, 0, 0, FEATURES, 0, 0, 0, 0) + ctx.params_offsets()
    if not t.umem.write(uparams, out):
        ctx.iput()
        return -errno.EFAULT
    f = OpenFile(ctx, 2, 'anon_inode:[io_uring]')
    fd = t.files.install(f)
    if fd < 0:
        f.put()
    return fd


@syscall(426, 'io_uring_enter')
def sys_io_uring_enter(k, t, fd, to_submit, min_complete, flags, argp, argsz, *_):
    flags &= 0xFFFFFFFF
    if flags & ~ENTER_ALL:
        return -errno.EINVAL
    if flags & IORING_ENTER_REGISTERED_RING:
        return -errno.EINVAL                 # no ring descriptor was ever registered
    ctx = _ring_of(t, fd)
    if isinstance(ctx, int):
        return ctx
    to_submit &= 0xFFFFFFFF
    ret = ctx.submit_sqes(t, to_submit, io_issue_sqe) if to_submit else 0
    if flags & IORING_ENTER_GETEVENTS:
        ctx.flush_overflow()                 # every request completed inline: nothing to wait for
    return ret


IORING_REGISTER_LAST = 35              # after IORING_REGISTER_MEM_REGION (34), as of Linux 6.15


@syscall(427, 'io_uring_register')
def sys_io_uring_register(k, t, fd, opcode, arg, nr_args, *_):
    opcode &= 0xFFFFFFFF
    nr_args &= 0xFFFFFFFF
    if opcode & IORING_REGISTER_USE_REGISTERED_RING:
        return -errno.EINVAL
    if opcode >= IORING_REGISTER_LAST:
        return -errno.EINVAL                 # io_uring/register.c checks the opcode before the descriptor
    if fd & 0xFFFFFFFF == 0xFFFFFFFF:
        return -errno.EINVAL                 # io_uring_register_blind: none of its opcodes is emulated
    ctx = _ring_of(t, fd)
    if isinstance(ctx, int):
        return ctx
    if opcode == IORING_REGISTER_BUFFERS:
        if not arg:
            return -errno.EFAULT
        if not nr_args or nr_args > IORING_MAX_REG_BUFFERS:
            return -errno.EINVAL
        raw = t.umem.read(arg, 16 * nr_args)
        if raw is None:
            return -errno.EFAULT
        return ctx.register_buffers(t, [struct.unpack_from('<QQ', raw, 16 * i) for i in range(nr_args)])
    if opcode == IORING_UNREGISTER_BUFFERS:
        if arg or nr_args:
            return -errno.EINVAL
        return ctx.unregister_buffers()
    return -errno.EINVAL


# ---- requests ------------------------------------------------------------------------------------
def _file_read(k, t, f, n, pos):
    """Data from f, never sleeping (no io-wq here: an empty pipe is -EAGAIN)."""
    if isinstance(f, OpenFile) and isinstance(f.inode, PipeEnd):
        return pipe_read(k, t, f, n, True)
    return vfs_read(k, t, f, n, pos)


def _file_write(k, t, f, data, pos):
    if isinstance(f, OpenFile) and isinstance(f.inode, PipeEnd):
        return pipe_write(k, t, f, data, True)
    return vfs_write(k, t, f, data, pos)


def io_issue_sqe(ctx, t, sqe):
    """Run one request; its CQE result."""
    k = ctx.k
    opcode, sqe_flags, _ioprio, fd = struct.unpack_from('<BBHi', sqe, 0)
    off, addr, ln, _rw_flags = struct.unpack_from('<QQII', sqe, 8)
    buf_index = struct.unpack_from('<H', sqe, 40)[0]
    if sqe_flags & ~IOSQE_ALL:
        return -errno.EINVAL
    if opcode == IORING_OP_NOP:
        return 0
    if opcode not in (IORING_OP_READ, IORING_OP_WRITE, IORING_OP_READV, IORING_OP_WRITEV,
                      IORING_OP_READ_FIXED, IORING_OP_WRITE_FIXED):
        return -errno.EINVAL
    if sqe_flags & IOSQE_FIXED_FILE:
        return -errno.EBADF                 # no files are ever registered
    f = t.files.get(fd)
    if f is None:
        return -errno.EBADF
    pos = s64(off)
    if pos == -1:
        pos = None                          # IORING_FEAT_RW_CUR_POS: the file position
    elif pos < 0:
        return -errno.EINVAL
    write = opcode in (IORING_OP_WRITE, IORING_OP_WRITEV, IORING_OP_WRITE_FIXED)
    if opcode in (IORING_OP_READ_FIXED, IORING_OP_WRITE_FIXED):
        bufs = ctx.buffers
        if bufs is None or buf_index >= len(bufs) or bufs[buf_index] is None or \
                not bufs[buf_index].spans(addr, ln):
            return -errno.EFAULT
        return _rw_fixed(k, t, f, bufs[buf_index], addr, min(ln, MAX_RW_COUNT), pos, write)
    if opcode in (IORING_OP_READV, IORING_OP_WRITEV):
        vecs = import_iovec(t, addr, ln)
        if isinstance(vecs, int):
            return vecs
    else:
        vecs = [(addr, min(ln, MAX_RW_COUNT))]
    total = 0
    for base, n in vecs:
        if write:
            data = t.umem.read(base, n)
            if data is None:
                return total or -errno.EFAULT
            r = _file_write(k, t, f, data, None if pos is None else pos + total)
        else:
            data = _file_read(k, t, f, n, None if pos is None else pos + total)
            if isinstance(data, int):
                return total or data
            r = len(data) if t.umem.write(base, data) else -errno.EFAULT
        if r < 0:
            return total or r
        total += r
        if r < n:
            break
    return total


def _rw_fixed(k, t, f, buf, addr, n, pos, write):
    """READ_FIXED / WRITE_FIXED: the data moves to or from the pinned pages themselves."""
    phys = k.mmsvc.frames.phys
    if write:
        data = b''.join(bytes(phys.mv[a:a + m]) for a, m in buf.pieces(addr, n))
        return _file_write(k, t, f, data, pos)
    data = _file_read(k, t, f, n, pos)
    if isinstance(data, int):
        return data
    done = 0
    for a, m in buf.pieces(addr, len(data)):
        phys.mv[a:a + m] = data[done:done + m]
        done += m
    for page, _pfn in buf.pages:
        k.mmsvc.frames.note_kernel_write(page)
    return len(data)
