"""Wrong errnos do not pass: system calls with one bad argument each (userland/src/errtable.c: bad
descriptors, NULL, unmapped and kernel pointers, bad flags, sizes and signal numbers) fail under faultlab
with exactly the errno they fail with natively, case by case."""
import os

from conftest import run_guest, run_native


def _rows(out):
    return dict(line.rsplit(None, 1) for line in out.decode().splitlines())


def test_bad_arguments_give_the_native_errno(userland):
    prog = os.path.join(userland, 'errtable')
    code, out, _ = run_native(prog)
    assert code == 0
    native = _rows(out)
    assert len(native) >= 90 and native['fstat(unmapped buf)'] == 'EFAULT'
    r = run_guest(prog)
    assert r.exit_code == 0
    guest = _rows(r.stdout)
    wrong = ['%s: %s natively, %s under faultlab' % (k, v, guest.get(k)) for k, v in native.items()
             if guest.get(k) != v]
    assert not wrong, '\n'.join(wrong)


def test_anonymous_inode_files_answer_as_natively(userland):
    """userland/src/anonfiles.c: epoll, eventfd, userfaultfd, io_uring and secretmem files under read,
    write, lseek, pread, fsync, fchmod/fchown, ftruncate, fallocate, fadvise, getdents and mmap."""
    prog = os.path.join(userland, 'anonfiles')
    code, out, _ = run_native(prog)
    assert code == 0 and b'epoll read 8                 EINVAL' in out
    r = run_guest(prog)
    assert r.result.report is None and r.exit_code == 0
    wrong = [' '.join(pair) for pair in zip(out.decode().splitlines(), r.stdout.decode().splitlines())
             if pair[0] != pair[1]]
    assert not wrong and r.stdout == out, '\n'.join(wrong)
