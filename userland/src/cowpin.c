/* Copy-on-write against page references and pins: fork, vmsplice(2), io_uring fixed buffers,
 * MADV_WIPEONFORK / MADV_DONTFORK, and the errors of vmsplice and io_uring. Every line it prints
 * is compared with a native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static long psz;

/* the result of a call and the errno it left, printed in that order */
#define SHOW(label, call) do { errno = 0; long r_ = (long)(call); int e_ = errno; \
        printf("%s: %ld %s\n", label, r_, r_ < 0 ? strerror(e_) : "ok"); } while (0)

static char *anon_page(int fill)
{
    char *p = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    memset(p, fill, psz);
    return p;
}

static void sync_read(int fd) { char c; while (read(fd, &c, 1) != 1) ; }
static void sync_write(int fd) { if (write(fd, "x", 1) != 1) exit(3); }

/* the child keeps the old content after the parent writes */
static void cow_fork(int mprot)
{
    char *m = anon_page(1);
    int ready[2], go[2];
    if (pipe(ready) || pipe(go)) exit(1);
    pid_t pid = fork();
    if (!pid) {
        char old[64];
        memcpy(old, m, sizeof old);
        sync_write(ready[1]);
        sync_read(go[0]);
        _exit(memcmp(old, m, sizeof old) != 0);
    }
    sync_read(ready[0]);
    if (mprot)
        mprotect(m, psz, PROT_READ), mprotect(m, psz, PROT_READ | PROT_WRITE);
    memset(m, 0xff, psz);
    sync_write(go[1]);
    int st;
    waitpid(pid, &st, 0);
    printf("fork%s: child %s\n", mprot ? "+mprotect" : "", WEXITSTATUS(st) ? "LEAKED" : "kept old data");
    munmap(m, psz);
}

/* the child vmsplices the page, unmaps it, the parent writes: the pipe holds the old data */
static void vmsplice_child(void)
{
    char *m = anon_page(2);
    int ready[2], go[2];
    if (pipe(ready) || pipe(go)) exit(1);
    pid_t pid = fork();
    if (!pid) {
        int fds[2];
        char buf[4096];
        struct iovec iov = { m, psz };
        if (pipe(fds)) _exit(2);
        ssize_t n = vmsplice(fds[1], &iov, 1, 0);
        if (n != psz) _exit(2);
        munmap(m, psz);
        sync_write(ready[1]);
        sync_read(go[0]);
        ssize_t got = read(fds[0], buf, sizeof buf);
        _exit(got != psz || buf[0] != 2 || buf[psz - 1] != 2);
    }
    sync_read(ready[0]);
    memset(m, 0xff, psz);
    sync_write(go[1]);
    int st;
    waitpid(pid, &st, 0);
    printf("vmsplice in child: %s\n", WEXITSTATUS(st) == 0 ? "pipe kept old data" :
           WEXITSTATUS(st) == 1 ? "LEAKED" : "failed");
    munmap(m, psz);
}

/* the parent vmsplices before (or after) fork, the child writes, the parent unmaps and reads */
static void vmsplice_parent(int before)
{
    char *m = anon_page(3);
    int ready[2], go[2], fds[2];
    char buf[4096];
    struct iovec iov = { m, psz };
    ssize_t n = 0;
    if (pipe(ready) || pipe(go) || pipe(fds)) exit(1);
    if (before)
        n = vmsplice(fds[1], &iov, 1, 0);
    pid_t pid = fork();
    if (!pid) {
        sync_write(ready[1]);
        sync_read(go[0]);
        memset(m, 0xff, psz);
        _exit(0);
    }
    if (!before)
        n = vmsplice(fds[1], &iov, 1, 0);
    sync_read(ready[0]);
    munmap(m, psz);
    sync_write(go[1]);
    waitpid(pid, NULL, 0);
    ssize_t got = read(fds[0], buf, sizeof buf);
    printf("vmsplice %s fork: %zd spliced, %zd read, %s\n", before ? "before" : "after", n, got,
           got == psz && buf[0] == 3 && buf[psz - 1] == 3 ? "old data" : "LEAKED");
}

/* vmsplice from a pipe's read end copies out; a written page read back; errors */
static void vmsplice_misc(void)
{
    int fds[2];
    char out[8] = {0};
    struct iovec iov = { out, sizeof out };
    if (pipe(fds)) exit(1);
    if (write(fds[1], "pipedata", 8) != 8) exit(1);
    printf("vmsplice to user: %zd '%.8s'\n", vmsplice(fds[0], &iov, 1, 0), out);
    char *m = anon_page(4);
    struct iovec two[2] = { { m, 10 }, { m + 100, 20 } };
    printf("vmsplice two segments: %zd\n", vmsplice(fds[1], two, 2, 0));
    m[0] = 9;                               /* the page is still exclusive: written in place */
    char rd[40];
    ssize_t got = read(fds[0], rd, sizeof rd);
    printf("read back: %zd first %d last %d\n", got, rd[0], rd[29]);
    SHOW("bad flags", vmsplice(fds[1], two, 1, 0x100));
    int fd = open("/proc/self/exe", O_RDONLY);
    SHOW("not a pipe", vmsplice(fd, two, 1, 0));
    SHOW("bad fd", vmsplice(1000, two, 1, 0));
    SHOW("too many segments", vmsplice(fds[1], two, 1025, 0));
    struct iovec bad = { (void *)8, 10 };
    SHOW("unmapped buffer", vmsplice(fds[1], &bad, 1, 0));
    SHOW("zero segments", vmsplice(fds[1], two, 0, 0));
    long total = 0, r;
    errno = 0;
    while ((r = vmsplice(fds[1], &iov, 1, SPLICE_F_NONBLOCK)) > 0)
        total += r;
    printf("full pipe: %s after some bytes: %s\n", strerror(errno), total > 0 ? "yes" : "no");
    close(fds[1]);
    char drain[8];
    while (read(fds[0], drain, sizeof drain) > 0)
        ;
    SHOW("to user at end of file", vmsplice(fds[0], &iov, 1, 0));
    close(fd);
    close(fds[0]);
    munmap(m, psz);
}

/* ---- io_uring with raw system calls ---------------------------------------------------------- */
struct ring {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    r->fd = syscall(__NR_io_uring_setup, 4, &p);
    if (r->fd < 0)
        return -1;
    size_t sz = p.sq_off.array + p.sq_entries * 4;
    if (p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe) > sz)
        sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    char *sq = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
    char *cq = (p.features & IORING_FEAT_SINGLE_MMAP) ? sq :
        mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
        return -1;
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

/* one request, submitted and waited for: its result */
static int ring_do(struct ring *r, int op, int fd, void *addr, unsigned len, uint64_t off, int buf_index)
{
    unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
    struct io_uring_sqe *sqe = &r->sqes[idx];
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = op;
    sqe->fd = fd;
    sqe->addr = (uintptr_t)addr;
    sqe->len = len;
    sqe->off = off;
    sqe->buf_index = buf_index;
    sqe->user_data = 0x1234;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    int n = syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    if (n != 1)
        return -1000;
    unsigned head = *r->cq_head;
    if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
        return -1001;
    struct io_uring_cqe *cqe = &r->cqes[head & *r->cq_mask];
    int res = cqe->user_data == 0x1234 ? cqe->res : -1002;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

/* a fixed buffer pinned R/W, then fork (or a R/O remap): the pin must see the parent's writes */
static void iouring_fixed(int use_fork)
{
    struct ring r;
    char *m = anon_page(5), tmp[4096];
    int ready[2], go[2];
    if (pipe(ready) || pipe(go) || ring_init(&r)) { printf("io_uring setup failed\n"); return; }
    char name[] = "/tmp/cowpinXXXXXX";
    int fd = mkstemp(name);
    unlink(name);
    struct iovec iov = { m, psz };
    int reg = syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS, &iov, 1);
    pid_t pid = 0;
    if (use_fork) {
        pid = fork();
        if (!pid) {
            sync_write(ready[1]);
            sync_read(go[0]);
            _exit(m[0] != 5);
        }
        sync_read(ready[0]);
    } else {
        mprotect(m, psz, PROT_READ);
        mprotect(m, psz, PROT_READ | PROT_WRITE);
    }
    memset(m, 0xff, psz);
    int res = ring_do(&r, IORING_OP_WRITE_FIXED, fd, m, psz, 0, 0);
    ssize_t got = pread(fd, tmp, psz, 0);
    printf("io_uring fixed buffer after %s: register %d write %d read %zd %s\n",
           use_fork ? "fork" : "mprotect", reg, res, got,
           got == psz && !memcmp(tmp, m, psz) ? "pin saw the write" : "pin is STALE");
    if (use_fork) {
        int st;
        sync_write(go[1]);
        waitpid(pid, &st, 0);
        printf("  child: %s\n", WEXITSTATUS(st) ? "LEAKED" : "kept old data");
    }
    /* READ_FIXED lands in the pinned page, which the process sees */
    if (pwrite(fd, "fromfile", 8, 0) != 8) exit(1);
    res = ring_do(&r, IORING_OP_READ_FIXED, fd, m + 16, 8, 0, 0);
    printf("  read fixed: %d '%.8s'\n", res, m + 16);
    res = ring_do(&r, IORING_OP_WRITE_FIXED, fd, m + psz - 4, 8, 0, 0);
    printf("  outside the buffer: %s\n", strerror(-res));
    res = ring_do(&r, IORING_OP_WRITE_FIXED, fd, m, 8, 0, 3);
    printf("  bad buffer index: %s\n", strerror(-res));
    SHOW("  register again", syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS, &iov, 1));
    SHOW("  unregister", syscall(__NR_io_uring_register, r.fd, IORING_UNREGISTER_BUFFERS, NULL, 0));
    SHOW("  unregister again", syscall(__NR_io_uring_register, r.fd, IORING_UNREGISTER_BUFFERS, NULL, 0));
    res = ring_do(&r, IORING_OP_WRITE, fd, "plain", 5, 100, 0);
    printf("  plain write: %d, nop: %d\n", res, ring_do(&r, IORING_OP_NOP, -1, NULL, 0, 0, 0));
    close(fd);
    close(r.fd);
    munmap(m, psz);
}

static void iouring_errors(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    SHOW("setup 0 entries", syscall(__NR_io_uring_setup, 0, &p));
    SHOW("setup bad params", syscall(__NR_io_uring_setup, 4, (void *)8));
    p.resv[1] = 1;
    SHOW("setup reserved", syscall(__NR_io_uring_setup, 4, &p));
    memset(&p, 0, sizeof p);
    SHOW("setup too many", syscall(__NR_io_uring_setup, 1 << 20, &p));
    int pfd[2];
    if (pipe(pfd)) exit(1);
    SHOW("enter on a pipe", syscall(__NR_io_uring_enter, pfd[0], 0, 0, 0, NULL, 0));
    SHOW("register bad fd", syscall(__NR_io_uring_register, 999, 0, NULL, 0));
    close(pfd[0]);
    close(pfd[1]);
    /* a writable long-term pin of a shared mapping of a disk file is refused */
    struct ring r;
    if (ring_init(&r)) return;
    char *shared = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct iovec iov = { shared, psz };
    SHOW("register shared anonymous", syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS, &iov, 1));
    syscall(__NR_io_uring_register, r.fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
    iov.iov_base = (void *)8;
    SHOW("register unmapped", syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS, &iov, 1));
    iov.iov_base = shared;
    iov.iov_len = 0;
    SHOW("register empty", syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS, &iov, 1));
    SHOW("register none", syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS, &iov, 0));
    close(r.fd);
}

static sigjmp_buf jb;
static void on_segv(int sig) { siglongjmp(jb, 1); }

static void fork_advice(void)
{
    char *wipe = anon_page(7), *nofork = anon_page(8);
    printf("MADV_WIPEONFORK: %d, MADV_DONTFORK: %d\n", madvise(wipe, psz, MADV_WIPEONFORK),
           madvise(nofork, psz, MADV_DONTFORK));
    char *sh = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    SHOW("MADV_WIPEONFORK on shared", madvise(sh, psz, MADV_WIPEONFORK));
    pid_t pid = fork();
    if (!pid) {
        int wiped = wipe[0] == 0 && wipe[psz - 1] == 0;
        signal(SIGSEGV, on_segv);
        int faulted = 0;
        if (sigsetjmp(jb, 1))
            faulted = 1;
        else
            (void)*(volatile char *)nofork;
        _exit(wiped | faulted << 1);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child: wiped %d, DONTFORK page unmapped %d; parent still has %d and %d\n", WEXITSTATUS(st) & 1,
           WEXITSTATUS(st) >> 1 & 1, wipe[0], nofork[0]);
    madvise(wipe, psz, MADV_KEEPONFORK);
    madvise(nofork, psz, MADV_DOFORK);
    pid = fork();
    if (!pid)
        _exit(wipe[0] == 7 && nofork[0] == 8);
    waitpid(pid, &st, 0);
    printf("after KEEPONFORK/DOFORK the child sees the data: %d\n", WEXITSTATUS(st));
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    psz = sysconf(_SC_PAGESIZE);
    cow_fork(0);
    cow_fork(1);
    vmsplice_child();
    vmsplice_parent(1);
    vmsplice_parent(0);
    vmsplice_misc();
    iouring_fixed(1);
    iouring_fixed(0);
    iouring_errors();
    fork_advice();
    return 0;
}
