"""vmsplice(2) (fs/splice.c): user pages into a pipe by reference, or pipe contents out to user memory.

vmsplice_to_pipe takes a reference on each user page (get_user_pages without FOLL_WRITE, the way
iov_iter_get_pages2 does for a data source) and queues it as a pipe buffer: a later read(2) of the
pipe copies what the page holds then. That reference is what keeps copy-on-write honest: a page a
pipe still holds is never reused in place by a write fault (wp_can_reuse_anon_folio sees the extra
reference), so what was spliced is what is read, whatever the process or its children write later.
"""
import errno

from faultlab.kernel.arch.cpu_interface import PAGE_SHIFT, PAGE_SIZE
from faultlab.kernel.fs.pipe import PIPE_CAPACITY
from faultlab.kernel.mm.gup_pin import FOLL_GET, get_user_pages, put_user_page
from faultlab.kernel.signal import SI_USER
from faultlab.kernel.signal_send import send_signal

SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT = 1, 2, 4, 8
SPLICE_F_ALL = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT
UIO_MAXIOV = 1024
MAX_RW_COUNT = 0x7ffff000
SIGPIPE = 13


class UserPageBuffer:
    """A pipe_buffer with user_page_pipe_buf_ops: a referenced page, an offset and a length."""

    def __init__(self, mm, page, pfn, offset, length):
        self.mm = mm
        self.page = page
        self.pfn = pfn
        self.offset = offset
        self.length = length

    def __len__(self):
        return self.length

    def read(self, n):
        """copy_page_to_iter: up to n bytes as the page holds them now; consumes them."""
        n = min(n, self.length)
        a = (self.pfn << PAGE_SHIFT) + self.offset
        data = bytes(self.mm.svc.frames.phys.mv[a:a + n])
        self.offset += n
        self.length -= n
        return data

    def release(self):
        """pipe_buf_release: drop the page reference."""
        if self.page is not None:
            put_user_page(self.mm, self.page, FOLL_GET)
            self.page = None


def iter_to_pipe(mm, pipe, vecs):
    """Queue the pages behind the user ranges, as many as fit; bytes queued or -errno."""
    total = 0
    for base, ln in vecs:
        while ln:
            if pipe.room() <= 0:
                return total
            off = base & (PAGE_SIZE - 1)
            n = min(ln, PAGE_SIZE - off, pipe.room())
            got = get_user_pages(mm, base, 1, FOLL_GET)
            if isinstance(got, int):
                return total or got
            page, pfn = got[0]
            pipe.push_buffer(UserPageBuffer(mm, page, pfn, off, n))
            total += n
            base += n
            ln -= n
    return total


def vmsplice_to_pipe(k, t, f, vecs, flags):
    """User pages into the pipe f writes to: bytes, -EPIPE (with SIGPIPE), -EAGAIN, or a sleep."""
    p = f.inode.pipe
    if not p.readers:
        send_signal(k, t, t, SIGPIPE, SI_USER)      # send_sig(SIGPIPE, current, 0): SI_USER
        return -errno.EPIPE
    if p.nbytes >= PIPE_CAPACITY:                          # wait_for_space
        if flags & SPLICE_F_NONBLOCK:
            return -errno.EAGAIN
        return p.sleep(k, t, 'vmsplice')
    ret = iter_to_pipe(t.mm, p, vecs)
    if ret > 0:
        p.wake_all(k)
    return ret


def vmsplice_to_user(k, t, f, vecs, flags):
    """The pipe f reads from into user memory (splice_from_pipe with pipe_to_user): bytes, 0 at end
    of file, -EFAULT, -EAGAIN, or a sleep."""
    p = f.inode.pipe
    if not p.nbytes:
        if not p.writers:
            return 0
        if flags & SPLICE_F_NONBLOCK:
            return -errno.EAGAIN
        return p.sleep(k, t, 'vmsplice')
    total = 0
    for base, ln in vecs:
        if not p.nbytes:
            break
        n = min(ln, p.nbytes)
        if t.umem.accessible(base, n, True) < n:
            n = t.umem.accessible(base, n, True)
            if n <= 0:
                return total or -errno.EFAULT
        data = p.take(n)
        t.umem.write(base, data)
        total += len(data)
        if len(data) < ln:
            break
    if total:
        p.wake_all(k)
    return total
