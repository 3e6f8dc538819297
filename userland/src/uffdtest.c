/* userfaultfd against the host kernel: MISSING faults resolved by a handler thread with UFFDIO_COPY
 * (read through poll, and through epoll) and UFFDIO_ZEROPAGE, write-protect faults (WP +
 * UFFDIO_WRITEPROTECT), MINOR faults on shmem (UFFDIO_CONTINUE), UFFD_FEATURE_SIGBUS,
 * UFFD_FEATURE_THREAD_ID, /dev/userfaultfd, a closed userfaultfd waking the thread it left
 * sleeping, and the errnos of bad input (wrong API, unknown features, unaligned or unmapped
 * ranges, EBUSY, EEXIST, ENOENT). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef UFFDIO_MOVE                  /* uapi linux/userfaultfd.h of Linux 6.8+, for older headers */
#define _UFFDIO_MOVE 0x05
#define UFFD_FEATURE_MOVE (1ULL << 16)
#define UFFDIO_MOVE_MODE_DONTWAKE (1ULL << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES (1ULL << 1)
struct uffdio_move { uint64_t dst, src, len, mode; int64_t move; };
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

#ifndef UFFDIO_POISON                /* uapi linux/userfaultfd.h of Linux 6.6+, for older headers */
#define _UFFDIO_POISON 0x08
#define UFFD_FEATURE_POISON (1ULL << 14)
struct uffdio_poison { struct uffdio_range range; uint64_t mode; int64_t updated; };
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#endif

#define PS 4096
#define NPAGES 16
#define OURS (UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_SIGBUS | \
              UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_MINOR_SHMEM)
#define NOT_OURS 0ULL

static const char *en(int e)
{
    switch (e) {
    case EINVAL: return "EINVAL"; case EBUSY: return "EBUSY"; case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT"; case EAGAIN: return "EAGAIN"; case EFAULT: return "EFAULT";
    case EPERM: return "EPERM"; case EBADF: return "EBADF"; case EACCES: return "EACCES";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case ENOMEM: return "ENOMEM"; default: return "other";
    }
}

#define SHOW(label, expr) do { long r_ = (long)(expr); printf("%s: %ld %s\n", label, r_, r_ < 0 ? en(errno) : ""); } while (0)

static long new_uffd(int flags) { return syscall(SYS_userfaultfd, flags); }

static int api(int uffd, uint64_t features)
{
    struct uffdio_api a = { .api = UFFD_API, .features = features };
    return ioctl(uffd, UFFDIO_API, &a);
}

static int reg(int uffd, void *addr, size_t len, uint64_t mode, uint64_t *ioctls)
{
    struct uffdio_register r = { .range = { (uintptr_t)addr, len }, .mode = mode };
    int ret = ioctl(uffd, UFFDIO_REGISTER, &r);
    if (ioctls)
        *ioctls = r.ioctls;
    return ret;
}

static char *map_anon(size_t n)
{
    return mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* ---- a handler thread: resolves MISSING faults with COPY (pattern) or ZEROPAGE, WP faults by
 * unprotecting, MINOR faults with CONTINUE; waits with poll or epoll ---- */
struct handler {
    int uffd, use_epoll, zeropage, count, max;
    uint64_t first_flags, flags_or;
    int tid_ok;
    pid_t fault_tid;
    pthread_t th;
};

static char *move_src_page;       /* zeropage == 2: faults are resolved by moving this page */

static void *handler_main(void *arg)
{
    struct handler *h = arg;
    static char page[PS] __attribute__((aligned(PS)));
    int ep = -1;
    if (h->use_epoll) {
        ep = epoll_create1(0);
        struct epoll_event e = { .events = EPOLLIN, .data.u32 = 1 };
        epoll_ctl(ep, EPOLL_CTL_ADD, h->uffd, &e);
    }
    while (h->count < h->max) {
        if (h->use_epoll) {
            struct epoll_event e;
            if (epoll_wait(ep, &e, 1, -1) != 1)
                continue;
        } else {
            struct pollfd p = { h->uffd, POLLIN, 0 };
            if (poll(&p, 1, -1) != 1 || !(p.revents & POLLIN))
                continue;
        }
        struct uffd_msg msg;
        if (read(h->uffd, &msg, sizeof msg) != sizeof msg)
            continue;
        if (msg.event != UFFD_EVENT_PAGEFAULT)
            continue;
        uint64_t addr = msg.arg.pagefault.address, fl = msg.arg.pagefault.flags;
        if (h->count == 0)
            h->first_flags = fl;
        h->flags_or |= fl;
        if (h->fault_tid && msg.arg.pagefault.feat.ptid == (uint32_t)h->fault_tid)
            h->tid_ok++;
        h->count++;
        if (fl & UFFD_PAGEFAULT_FLAG_WP) {
            struct uffdio_writeprotect wp = { .range = { addr & ~(PS - 1UL), PS }, .mode = 0 };
            ioctl(h->uffd, UFFDIO_WRITEPROTECT, &wp);
        } else if (fl & UFFD_PAGEFAULT_FLAG_MINOR) {
            struct uffdio_continue c = { .range = { addr & ~(PS - 1UL), PS } };
            ioctl(h->uffd, UFFDIO_CONTINUE, &c);
        } else if (h->zeropage == 2) {
            struct uffdio_move m = { .dst = addr & ~(PS - 1UL), .src = (uintptr_t)move_src_page, .len = PS };
            ioctl(h->uffd, UFFDIO_MOVE, &m);
        } else if (h->zeropage) {
            struct uffdio_zeropage z = { .range = { addr & ~(PS - 1UL), PS } };
            ioctl(h->uffd, UFFDIO_ZEROPAGE, &z);
        } else {
            for (int i = 0; i < PS; i++)
                page[i] = (char)((addr >> 12) + i);
            struct uffdio_copy c = { .dst = addr & ~(PS - 1UL), .src = (uintptr_t)page, .len = PS };
            ioctl(h->uffd, UFFDIO_COPY, &c);
        }
    }
    if (ep >= 0)
        close(ep);
    return NULL;
}

static void start_handler(struct handler *h, int uffd, int max)
{
    memset(h, 0, sizeof *h);
    h->uffd = uffd;
    h->max = max;
}

static pid_t gettid_(void) { return syscall(SYS_gettid); }

static void test_missing(int use_epoll, int zeropage)
{
    int uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
    api(uffd, UFFD_FEATURE_THREAD_ID);
    char *area = map_anon(NPAGES * PS);
    reg(uffd, area, NPAGES * PS, UFFDIO_REGISTER_MODE_MISSING, NULL);
    struct handler h;
    start_handler(&h, uffd, NPAGES);
    h.use_epoll = use_epoll;
    h.zeropage = zeropage;
    h.fault_tid = gettid_();
    pthread_create(&h.th, NULL, handler_main, &h);
    long bad = 0, sum = 0;
    for (int p = 0; p < NPAGES; p++)
        for (int i = 0; i < PS; i += 512) {
            char want = zeropage ? 0 : (char)((((uintptr_t)area + p * PS) >> 12) + i);
            sum += area[p * PS + i];
            bad += area[p * PS + i] != want;
        }
    pthread_join(h.th, NULL);
    printf("MISSING+%s (%s): faults %d, first flags %#llx, wrong bytes %ld, thread ids %d\n",
           zeropage ? "ZEROPAGE" : "COPY", use_epoll ? "epoll" : "poll", h.count,
           (unsigned long long)h.first_flags, bad, h.tid_ok);
    area[5] = 9;                       /* a write after ZEROPAGE: an ordinary copy-on-write */
    printf("  write after resolving: %d\n", area[5]);
    close(uffd);
    munmap(area, NPAGES * PS);
}

static void test_wp(void)
{
    int uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
    api(uffd, UFFD_FEATURE_PAGEFAULT_FLAG_WP);
    char *area = map_anon(4 * PS);
    memset(area, 1, 4 * PS);
    uint64_t ioctls;
    SHOW("register WP", reg(uffd, area, 4 * PS, UFFDIO_REGISTER_MODE_WP, &ioctls));
    printf("  range ioctls %#llx\n", (unsigned long long)(ioctls & ~NOT_OURS));
    struct uffdio_writeprotect wp = { .range = { (uintptr_t)area, 4 * PS }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
    SHOW("write-protect", ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
    wp.mode = UFFDIO_WRITEPROTECT_MODE_WP | UFFDIO_WRITEPROTECT_MODE_DONTWAKE;
    SHOW("WP|DONTWAKE", ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
    wp.mode = 8;
    SHOW("bad WP mode", ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
    struct handler h;
    start_handler(&h, uffd, 4);
    pthread_create(&h.th, NULL, handler_main, &h);
    long sum = 0;
    for (int p = 0; p < 4; p++)
        sum += area[p * PS];          /* reads do not fault */
    for (int p = 0; p < 4; p++)
        area[p * PS + 1] = 7;         /* writes do */
    pthread_join(h.th, NULL);
    printf("WP: read sum %ld, faults %d, flags %#llx, values %d %d\n", sum, h.count,
           (unsigned long long)h.flags_or, area[1], area[3 * PS + 1]);
    close(uffd);
}

static void test_minor(void)
{
    int uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
    SHOW("API MINOR_SHMEM", api(uffd, UFFD_FEATURE_MINOR_SHMEM));
    int mfd = memfd_create("uffd-minor", 0);
    ftruncate(mfd, 4 * PS);
    char *a = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    char *b = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    memset(a, 'm', 4 * PS);                  /* the page cache is full; b maps none of it */
    uint64_t ioctls;
    SHOW("register MINOR on shmem", reg(uffd, b, 4 * PS, UFFDIO_REGISTER_MODE_MINOR, &ioctls));
    printf("  range ioctls %#llx\n", (unsigned long long)(ioctls & ~NOT_OURS));
    char *anon = map_anon(PS);
    SHOW("register MINOR on anon", reg(uffd, anon, PS, UFFDIO_REGISTER_MODE_MINOR, NULL));
    struct handler h;
    start_handler(&h, uffd, 4);
    pthread_create(&h.th, NULL, handler_main, &h);
    long sum = 0;
    for (int p = 0; p < 4; p++)
        sum += b[p * PS + 3];
    pthread_join(h.th, NULL);
    printf("MINOR: faults %d, flags %#llx, sum %ld\n", h.count, (unsigned long long)h.flags_or, sum);
    close(uffd);
}

static void test_missing_shmem(void)
{
    int uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
    api(uffd, UFFD_FEATURE_MISSING_SHMEM);
    char *s = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    SHOW("register MISSING on shared anon", reg(uffd, s, 4 * PS, UFFDIO_REGISTER_MODE_MISSING, NULL));
    struct handler h;
    start_handler(&h, uffd, 4);
    pthread_create(&h.th, NULL, handler_main, &h);
    long bad = 0;
    for (int p = 0; p < 4; p++)
        bad += s[p * PS + 5] != (char)((((uintptr_t)s + p * PS) >> 12) + 5);
    pthread_join(h.th, NULL);
    printf("MISSING shmem: faults %d, wrong %ld\n", h.count, bad);
    close(uffd);
}

/* MADV_REMOVE punches the file behind a shared mapping (shmem_fallocate PUNCH_HOLE): memfd and
 * shared anonymous memory read back as zeros, a private mapping keeps its own copy but sees the
 * hole where it had none, and a MISSING-registered range faults to the handler again */
static void test_remove(void)
{
    int mfd = memfd_create("uffd-remove", 0);
    ftruncate(mfd, 4 * PS);
    char *a = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    char *p = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
    memset(a, 'r', 4 * PS);
    p[0] = 'p';                                    /* page 0 of the private mapping: a copy */
    long seen = p[PS];                             /* page 1: the file's page, mapped */
    SHOW("MADV_REMOVE memfd", madvise(a + PS, 2 * PS, MADV_REMOVE));
    struct stat st;
    fstat(mfd, &st);
    printf("  size %lld blocks %lld\n", (long long)st.st_size, (long long)st.st_blocks);
    printf("  shared %d %d %d %d, private %c %d (had %c)\n", a[0], a[PS], a[2 * PS], a[3 * PS], p[0],
           p[PS], (int)seen);
    SHOW("MADV_REMOVE private", madvise(p, PS, MADV_REMOVE));
    char *anon = map_anon(PS);
    SHOW("MADV_REMOVE anon", madvise(anon, PS, MADV_REMOVE));
    char *ro = mmap(NULL, PS, PROT_READ, MAP_SHARED, open("/proc/self/exe", O_RDONLY), 0);
    SHOW("MADV_REMOVE read-only file", madvise(ro, PS, MADV_REMOVE));

    int uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
    api(uffd, UFFD_FEATURE_MISSING_SHMEM);
    char *s = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(s, 's', 4 * PS);
    reg(uffd, s, 4 * PS, UFFDIO_REGISTER_MODE_MISSING, NULL);
    SHOW("MADV_REMOVE shared anon", madvise(s, 4 * PS, MADV_REMOVE));
    struct handler h;
    start_handler(&h, uffd, 4);
    pthread_create(&h.th, NULL, handler_main, &h);
    long bad = 0;
    for (int q = 0; q < 4; q++)
        bad += s[q * PS + 7] != (char)((((uintptr_t)s + q * PS) >> 12) + 7);
    pthread_join(h.th, NULL);
    printf("  after remove: faults %d, wrong %ld\n", h.count, bad);
    close(uffd);
    close(mfd);
}

/* faults from the kernel's own accesses go to the handler and the call completes once it resolved
 * them: write() from registered memory (copy_from_user), read() and pread() into it (copy_to_user),
 * MADV_POPULATE_WRITE/READ (gup); with UFFD_USER_MODE_ONLY the same read() is EFAULT */
static void test_kernel_access(void)
{
    int uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
    api(uffd, 0);
    char *area = map_anon(8 * PS);
    reg(uffd, area, 8 * PS, UFFDIO_REGISTER_MODE_MISSING, NULL);
    struct handler h;
    start_handler(&h, uffd, 6);
    pthread_create(&h.th, NULL, handler_main, &h);
    int pfd[2];
    pipe(pfd);
    long n = write(pfd[1], area + 100, 200);          /* page 0, copied from by the kernel */
    char buf[256];
    long m = read(pfd[0], buf, sizeof buf);
    long bad = 0;
    for (int i = 0; i < 200; i++)
        bad += buf[i] != (char)((((uintptr_t)area) >> 12) + 100 + i);
    printf("kernel read of user memory: write %ld, read back %ld, wrong %ld, flags %#llx\n", n, m, bad,
           (unsigned long long)h.flags_or);
    write(pfd[1], "kernel-write", 12);
    n = read(pfd[0], area + PS + 10, 12);              /* page 1, written by the kernel */
    printf("kernel write to user memory: read %ld, text %.12s, flags %#llx\n", n, area + PS + 10,
           (unsigned long long)h.flags_or);
    int mfd = memfd_create("uffd-pread", 0);
    write(mfd, "pread-data", 10);
    n = pread(mfd, area + 2 * PS + 5, 10, 0);          /* page 2 */
    printf("pread into missing page: %ld, text %.10s\n", n, area + 2 * PS + 5);
    SHOW("MADV_POPULATE_WRITE", madvise(area + 3 * PS, 2 * PS, MADV_POPULATE_WRITE));
    SHOW("MADV_POPULATE_READ", madvise(area + 5 * PS, PS, MADV_POPULATE_READ));
    pthread_join(h.th, NULL);
    printf("  faults %d, page 3 byte %d\n", h.count, area[3 * PS + 1] == (char)((((uintptr_t)area + 3 * PS) >> 12) + 1));
    close(uffd);
    close(mfd);

    int u2 = new_uffd(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    api(u2, 0);
    char *b = map_anon(PS);
    reg(u2, b, PS, UFFDIO_REGISTER_MODE_MISSING, NULL);
    write(pfd[1], "x", 1);
    SHOW("read into user-mode-only range", read(pfd[0], b, 1));
    close(u2);
    close(pfd[0]);
    close(pfd[1]);
}

/* non-cooperative events: FORK (the child's registration on a new descriptor the handler switches
 * to), REMAP (mremap moves the registration), REMOVE (MADV_DONTNEED; the handler unregisters the
 * range), UNMAP; and fork without EVENT_FORK: the child's copy is not registered at all */
static int ev_uffd, ev_stop[2];
static char *ev_base;
static char ev_log[512];
static uint64_t ev_remap_from, ev_remap_to;

static void ev_logf(const char *fmt, long a, long b)
{
    size_t n = strlen(ev_log);
    snprintf(ev_log + n, sizeof ev_log - n, fmt, a, b);
}

static void *ev_handler(void *arg)
{
    static char page[PS] __attribute__((aligned(PS)));
    int cur = ev_uffd;
    (void)arg;
    for (;;) {
        struct pollfd p[2] = { { cur, POLLIN, 0 }, { ev_stop[0], POLLIN, 0 } };
        if (poll(p, 2, -1) < 1)
            continue;
        if (p[1].revents)
            break;
        struct uffd_msg msg;
        if (read(cur, &msg, sizeof msg) != sizeof msg)
            continue;
        switch (msg.event) {
        case UFFD_EVENT_PAGEFAULT: {
            uint64_t addr = msg.arg.pagefault.address & ~(PS - 1UL);
            memset(page, 'e', PS);
            struct uffdio_copy c = { .dst = addr, .src = (uintptr_t)page, .len = PS };
            ev_logf(" PF%ld%.0ld", ioctl(cur, UFFDIO_COPY, &c), 0);
            break;
        }
        case UFFD_EVENT_FORK:
            ev_logf(" FORK(new fd %ld)%.0ld", msg.arg.fork.ufd != (uint32_t)cur, 0);
            cur = msg.arg.fork.ufd;
            break;
        case UFFD_EVENT_REMAP:
            ev_remap_from = msg.arg.remap.from;
            ev_remap_to = msg.arg.remap.to;
            ev_logf(" REMAP(len %ld)%.0ld", (long)msg.arg.remap.len / PS, 0);
            break;
        case UFFD_EVENT_REMOVE: {
            struct uffdio_range r = { msg.arg.remove.start, msg.arg.remove.end - msg.arg.remove.start };
            ev_logf(" REMOVE(%ld pages, unregister %ld)", (long)r.len / PS, ioctl(cur, UFFDIO_UNREGISTER, &r));
            break;
        }
        case UFFD_EVENT_UNMAP:
            ev_logf(" UNMAP(%ld pages)%.0ld", (long)(msg.arg.remove.end - msg.arg.remove.start) / PS, 0);
            break;
        default:
            ev_logf(" event %#lx%.0ld", msg.event, 0);
        }
    }
    if (cur != ev_uffd)
        close(cur);
    return NULL;
}

static void test_events(void)
{
    ev_uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
    SHOW("API events", api(ev_uffd, UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
                           UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP));
    ev_base = map_anon(4 * PS);
    reg(ev_uffd, ev_base, 4 * PS, UFFDIO_REGISTER_MODE_MISSING, NULL);
    pipe(ev_stop);
    ev_log[0] = 0;
    pthread_t th;
    pthread_create(&th, NULL, ev_handler, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = ev_base[0] == 'e' && ev_base[PS + 9] == 'e';
        char *moved = mremap(ev_base, 4 * PS, 4 * PS, MREMAP_MAYMOVE | MREMAP_FIXED, ev_base + 64 * PS);
        ok &= moved == ev_base + 64 * PS;
        ok &= moved[2 * PS] == 'e';                     /* a fault at the new place */
        ok &= madvise(moved, 2 * PS, MADV_DONTNEED) == 0;
        ok &= moved[0] == 0 && moved[PS] == 0 && moved[PS * 2] == 'e';   /* unregistered: zero */
        ok &= munmap(moved, 4 * PS) == 0;
        printf("  child: %s\n", ok ? "ok" : "WRONG");
        _exit(!ok);
    }
    int st;
    waitpid(pid, &st, 0);
    write(ev_stop[1], "x", 1);
    pthread_join(th, NULL);
    printf("events:%s; child status %d\n", ev_log, st);
    printf("  remap event from %d to %d\n", ev_remap_from == (uintptr_t)ev_base,
           ev_remap_to == (uintptr_t)ev_base + 64 * PS);
    close(ev_uffd);
    close(ev_stop[0]);
    close(ev_stop[1]);

    /* without EVENT_FORK the child's copy loses the registration and its uffd-wp bits */
    int u = new_uffd(O_CLOEXEC | O_NONBLOCK);
    api(u, 0);
    char *a = map_anon(2 * PS);
    memset(a, 'p', 2 * PS);
    reg(u, a, 2 * PS, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP, NULL);
    struct uffdio_writeprotect wp = { .range = { (uintptr_t)a, 2 * PS }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
    ioctl(u, UFFDIO_WRITEPROTECT, &wp);
    char *b = map_anon(PS);
    reg(u, b, PS, UFFDIO_REGISTER_MODE_MISSING, NULL);
    pid = fork();
    if (pid == 0) {
        a[1] = 'c';                                     /* no WP fault: an ordinary copy-on-write */
        _exit(b[0] == 0 && a[1] == 'c' && a[0] == 'p' ? 0 : 1);   /* no MISSING fault either */
    }
    waitpid(pid, &st, 0);
    printf("fork without EVENT_FORK: child status %d, parent byte %c\n", st, a[1]);
    close(u);
}

/* UFFDIO_MOVE: a handler resolves MISSING faults by moving pages out of a source area (which then
 * reads back as zero), holes with and without ALLOW_SRC_HOLES, EEXIST, EBUSY for a page shared
 * with a fork child, EINVAL for a shared source */
static void test_move(void)
{
    int uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
    SHOW("API MOVE", api(uffd, UFFD_FEATURE_MOVE));
    char *src = map_anon(8 * PS), *dst = map_anon(8 * PS);
    for (int p = 0; p < 4; p++)
        memset(src + p * PS, 'A' + p, PS);
    uint64_t ioctls;
    reg(uffd, dst, 8 * PS, UFFDIO_REGISTER_MODE_MISSING, &ioctls);
    printf("  MOVE in range ioctls: %d\n", !!(ioctls & (1ULL << _UFFDIO_MOVE)));
    struct uffdio_move mv = { .dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = 2 * PS };
    SHOW("MOVE 2 pages", ioctl(uffd, UFFDIO_MOVE, &mv));
    printf("  moved %lld, dst %c %c, src now %d %d\n", (long long)mv.move, dst[0], dst[PS], src[0], src[PS]);
    mv.move = 0;
    SHOW("MOVE again (dst mapped)", ioctl(uffd, UFFDIO_MOVE, &mv));
    printf("  move field %lld\n", (long long)mv.move);
    mv.dst = (uintptr_t)dst + 4 * PS;
    mv.src = (uintptr_t)src + 4 * PS;                 /* never touched: holes */
    mv.move = 0;
    SHOW("MOVE from holes", ioctl(uffd, UFFDIO_MOVE, &mv));
    printf("  move field %lld\n", (long long)mv.move);
    mv.mode = UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES;
    SHOW("MOVE from holes, ALLOW_SRC_HOLES", ioctl(uffd, UFFDIO_MOVE, &mv));
    printf("  move field %lld\n", (long long)mv.move);
    mv.mode = 0;
    mv.dst = (uintptr_t)dst + PS;
    mv.src = (uintptr_t)dst + 2 * PS;
    SHOW("MOVE overlapping", ioctl(uffd, UFFDIO_MOVE, &mv));
    char *sh = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sh[0] = 1;
    mv = (struct uffdio_move){ .dst = (uintptr_t)dst + 6 * PS, .src = (uintptr_t)sh, .len = PS };
    SHOW("MOVE from shared memory", ioctl(uffd, UFFDIO_MOVE, &mv));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(200000);
        _exit(src[2 * PS] == 'C' ? 0 : 1);
    }
    mv = (struct uffdio_move){ .dst = (uintptr_t)dst + 6 * PS, .src = (uintptr_t)src + 2 * PS, .len = PS };
    SHOW("MOVE of a page shared with a child", ioctl(uffd, UFFDIO_MOVE, &mv));
    int st;
    waitpid(pid, &st, 0);
    src[3 * PS] = 'D';                                /* ours alone again (a write after the child left) */

    struct handler h;
    start_handler(&h, uffd, 1);
    h.zeropage = 2;
    move_src_page = src + 3 * PS;
    pthread_create(&h.th, NULL, handler_main, &h);
    char got = dst[7 * PS + 1];
    pthread_join(h.th, NULL);
    printf("MISSING+MOVE: faults %d, byte %c, source now %d, child status %d\n", h.count, got, src[3 * PS],
           st);
    close(uffd);
}

/* UFFDIO_POISON: a poisoned page of anonymous or memfd memory is SIGBUS (BUS_MCEERR_AR) on access,
 * a mapped page EEXIST, the next page unaffected */
static sigjmp_buf pjb;
static volatile int p_code;
static void on_poison_bus(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    p_code = si->si_code;
    siglongjmp(pjb, 1);
}

static void test_poison(void)
{
    int uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
    SHOW("API POISON", api(uffd, UFFD_FEATURE_POISON | UFFD_FEATURE_MISSING_SHMEM));
    int mfd = memfd_create("uffd-poison", 0);
    ftruncate(mfd, 2 * PS);
    char *areas[2] = { map_anon(2 * PS), mmap(NULL, 2 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0) };
    struct sigaction sa = { .sa_sigaction = on_poison_bus, .sa_flags = SA_SIGINFO }, old;
    sigaction(SIGBUS, &sa, &old);
    for (int k = 0; k < 2; k++) {
        char *a = areas[k];
        uint64_t ioctls;
        reg(uffd, a, 2 * PS, UFFDIO_REGISTER_MODE_MISSING, &ioctls);
        printf("%s: POISON in range ioctls %d\n", k ? "memfd" : "anon", !!(ioctls & (1ULL << _UFFDIO_POISON)));
        struct uffdio_poison po = { .range = { (uintptr_t)a, PS } };
        SHOW("  POISON", ioctl(uffd, UFFDIO_POISON, &po));
        printf("  updated %lld\n", (long long)po.updated);
        SHOW("  POISON again", ioctl(uffd, UFFDIO_POISON, &po));
        printf("  updated %lld\n", (long long)po.updated);
        po.mode = 2;
        SHOW("  POISON bad mode", ioctl(uffd, UFFDIO_POISON, &po));
        struct uffdio_zeropage z = { .range = { (uintptr_t)a + PS, PS } };
        ioctl(uffd, UFFDIO_ZEROPAGE, &z);
        p_code = 0;
        volatile char v = 0;
        if (!sigsetjmp(pjb, 1))
            v = a[5];
        printf("  read of the poisoned page: si_code %d, next page %d\n", p_code, a[PS + 5] + v);
        pid_t pid = fork();                  /* the marker is copied; the child's copy is not registered */
        if (pid == 0) {
            p_code = 0;
            if (!sigsetjmp(pjb, 1))
                v = a[6];
            _exit(p_code);
        }
        int st;
        waitpid(pid, &st, 0);
        printf("  in a fork child: si_code %d\n", WEXITSTATUS(st));
        munmap(a, 2 * PS);
    }
    sigaction(SIGBUS, &old, NULL);
    close(mfd);
    close(uffd);
}

/* uffd-wp on empty PTEs (UFFD_FEATURE_WP_UNPOPULATED, PTE markers): pagemap's PM_UFFD_WP bit on a
 * write-protected empty page, gone after unprotect and after MADV_DONTNEED; a read maps the zero
 * page still write-protected, a write is a WP fault; shmem gets markers without the feature,
 * anonymous memory does not */
static int pm_fd = -1;
static const char *pm(void *addr)
{
    uint64_t e = 0;
    pread(pm_fd, &e, 8, ((uintptr_t)addr / PS) * 8);
    static char buf[32];
    snprintf(buf, sizeof buf, "wp %d present %d", (int)(e >> 57 & 1), (int)(e >> 63 & 1));
    return buf;
}

static void test_wp_unpopulated(void)
{
    pm_fd = open("/proc/self/pagemap", O_RDONLY);
    for (int k = 0; k < 3; k++) {
        int uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
        api(uffd, UFFD_FEATURE_PAGEFAULT_FLAG_WP | (k == 0 ? UFFD_FEATURE_WP_UNPOPULATED : 0));
        int mfd = -1;
        char *a;
        if (k == 2) {
            mfd = memfd_create("uffd-wp-marker", 0);
            ftruncate(mfd, 4 * PS);
            a = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
        } else {
            a = map_anon(4 * PS);
        }
        reg(uffd, a, 4 * PS, UFFDIO_REGISTER_MODE_WP, NULL);
        struct uffdio_writeprotect wp = { .range = { (uintptr_t)a, PS }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
        ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
        printf("%s: protected empty page: %s\n", k == 0 ? "anon WP_UNPOPULATED" : k == 1 ? "anon" : "memfd",
               pm(a));
        if (k == 1) {
            close(uffd);
            munmap(a, 4 * PS);
            continue;
        }
        wp.mode = 0;
        ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
        printf("  unprotected: %s\n", pm(a));
        if (k == 2) {                        /* a zapped write-protected shmem page leaves a marker */
            a[PS] = 1;
            wp.range.start = (uintptr_t)a + PS;
            wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
            ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
            printf("  protected page: %s\n", pm(a + PS));
            madvise(a + PS, PS, MADV_DONTNEED);
            printf("  after MADV_DONTNEED: %s\n", pm(a + PS));
            wp.mode = 0;
            ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
            printf("  unprotected: %s, byte %d\n", pm(a + PS), a[PS]);
        }
        if (k == 0) {
            wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
            ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
            madvise(a, PS, MADV_DONTNEED);
            printf("  after MADV_DONTNEED: %s\n", pm(a));
            ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
            volatile char v = a[3];
            printf("  after a read (%d): %s\n", v, pm(a));
            struct handler h;
            start_handler(&h, uffd, 1);
            pthread_create(&h.th, NULL, handler_main, &h);
            a[4] = 4;
            pthread_join(h.th, NULL);
            printf("  write: faults %d, flags %#llx, value %d, %s\n", h.count, (unsigned long long)h.flags_or,
                   a[4], pm(a));
        }
        close(uffd);
        munmap(a, 4 * PS);
        if (mfd >= 0)
            close(mfd);
    }
    close(pm_fd);
}

static sigjmp_buf jb;
static volatile int sig_code;
static void *volatile sig_addr;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    sig_code = si->si_code;
    sig_addr = si->si_addr;
    siglongjmp(jb, 1);
}

static void test_sigbus(void)
{
    int uffd = new_uffd(O_CLOEXEC);
    SHOW("API SIGBUS", api(uffd, UFFD_FEATURE_SIGBUS));
    char *area = map_anon(2 * PS);
    reg(uffd, area, 2 * PS, UFFDIO_REGISTER_MODE_MISSING, NULL);
    struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
    sigaction(SIGBUS, &sa, NULL);
    if (!sigsetjmp(jb, 1)) {
        volatile char c = area[PS + 10];
        (void)c;
        printf("SIGBUS: no signal\n");
    } else {
        printf("SIGBUS: si_code %d, address matches %d\n", sig_code, sig_addr == area + PS + 10);
    }
    static char page[PS] __attribute__((aligned(PS)));
    memset(page, 'c', PS);
    struct uffdio_copy c = { .dst = (uintptr_t)area + PS, .src = (uintptr_t)page, .len = PS };
    SHOW("  COPY", ioctl(uffd, UFFDIO_COPY, &c));
    printf("  after COPY: %c, copy field %lld\n", area[PS + 10], (long long)c.copy);
    SHOW("  COPY again", ioctl(uffd, UFFDIO_COPY, &c));
    printf("  copy field %lld\n", (long long)c.copy);
    c.dst = (uintptr_t)area + 2 * PS;
    SHOW("  COPY outside the range", ioctl(uffd, UFFDIO_COPY, &c));
    c.dst = (uintptr_t)area + 1;
    SHOW("  COPY unaligned", ioctl(uffd, UFFDIO_COPY, &c));
    c.dst = (uintptr_t)area;
    c.mode = 4;
    SHOW("  COPY bad mode", ioctl(uffd, UFFDIO_COPY, &c));
    c.mode = UFFDIO_COPY_MODE_WP;
    SHOW("  COPY WP on a MISSING-only range", ioctl(uffd, UFFDIO_COPY, &c));
    struct uffdio_zeropage z = { .range = { (uintptr_t)area, PS } };
    SHOW("  ZEROPAGE", ioctl(uffd, UFFDIO_ZEROPAGE, &z));
    printf("  zeropage field %lld, byte %d\n", (long long)z.zeropage, area[0]);
    signal(SIGBUS, SIG_DFL);
    close(uffd);
}

/* a thread sleeps in a fault; closing the userfaultfd wakes it and the fault completes normally */
static char *close_area;
static void *toucher(void *arg)
{
    (void)arg;
    long v = close_area[100];
    printf("woken after close: value %ld\n", v);
    return NULL;
}

static void test_close_wakes(void)
{
    int uffd = new_uffd(O_CLOEXEC | O_NONBLOCK);
    api(uffd, 0);
    close_area = map_anon(PS);
    reg(uffd, close_area, PS, UFFDIO_REGISTER_MODE_MISSING, NULL);
    pthread_t th;
    pthread_create(&th, NULL, toucher, NULL);
    struct pollfd p = { uffd, POLLIN, 0 };
    int n = poll(&p, 1, 2000);
    struct uffd_msg msg;
    long r = read(uffd, &msg, sizeof msg);
    printf("fault queued: poll %d read %ld event %#x\n", n, r, msg.event);
    r = read(uffd, &msg, sizeof msg);
    printf("no second message: %ld %s\n", r, r < 0 ? en(errno) : "");
    close(uffd);
    pthread_join(th, NULL);
}

static void test_bad_input(void)
{
    SHOW("userfaultfd(bad flags)", new_uffd(0x10));
    int uffd = new_uffd(O_CLOEXEC);
    char *area = map_anon(4 * PS);
    SHOW("register before API", reg(uffd, area, PS, UFFDIO_REGISTER_MODE_MISSING, NULL));
    struct uffd_msg msg;
    SHOW("read before API", read(uffd, &msg, sizeof msg));
    struct pollfd p = { uffd, POLLIN, 0 };
    int pr = poll(&p, 1, 0);
    printf("poll before API: %d revents %#x\n", pr, p.revents);
    struct uffdio_api a = { .api = 0xAB, .features = 0, .ioctls = 5 };
    SHOW("API wrong version", ioctl(uffd, UFFDIO_API, &a));
    printf("  zeroed: %llu %llu %llu\n", (unsigned long long)a.api, (unsigned long long)a.features,
           (unsigned long long)a.ioctls);
    a.api = UFFD_API;
    a.features = 1ULL << 40;
    SHOW("API unknown feature", ioctl(uffd, UFFDIO_API, &a));
    a.api = UFFD_API;
    a.features = 0;
    SHOW("API", ioctl(uffd, UFFDIO_API, &a));
    printf("  api %#llx, our features %d, ioctls %#llx\n", (unsigned long long)a.api,
           (a.features & OURS) == OURS, (unsigned long long)a.ioctls);
    SHOW("API twice", api(uffd, 0));
    SHOW("unknown ioctl", ioctl(uffd, _IOWR(UFFDIO, 0x20, struct uffdio_range), area));
    pr = poll(&p, 1, 0);
    printf("poll on a blocking uffd: %d revents %#x\n", pr, p.revents);
    SHOW("register unaligned start", reg(uffd, area + 1, PS, UFFDIO_REGISTER_MODE_MISSING, NULL));
    SHOW("register unaligned length", reg(uffd, area, PS + 1, UFFDIO_REGISTER_MODE_MISSING, NULL));
    SHOW("register length 0", reg(uffd, area, 0, UFFDIO_REGISTER_MODE_MISSING, NULL));
    SHOW("register mode 0", reg(uffd, area, PS, 0, NULL));
    SHOW("register bad mode", reg(uffd, area, PS, 8, NULL));
    SHOW("register kernel address", reg(uffd, (void *)0xffff800000000000UL, PS, 1, NULL));
    char *hole = map_anon(PS);
    munmap(hole, PS);
    SHOW("register unmapped", reg(uffd, hole, PS, UFFDIO_REGISTER_MODE_MISSING, NULL));
    uint64_t ioctls;
    SHOW("register", reg(uffd, area, 2 * PS, UFFDIO_REGISTER_MODE_MISSING, &ioctls));
    printf("  range ioctls %#llx\n", (unsigned long long)(ioctls & ~NOT_OURS));
    int other = new_uffd(O_CLOEXEC);
    api(other, 0);
    SHOW("another uffd on the range", reg(other, area, PS, UFFDIO_REGISTER_MODE_MISSING, NULL));
    SHOW("another uffd next to it", reg(other, area + 2 * PS, PS, UFFDIO_REGISTER_MODE_MISSING, NULL));
    struct uffdio_range rg = { (uintptr_t)area, PS + 1 };
    SHOW("WAKE unaligned", ioctl(uffd, UFFDIO_WAKE, &rg));
    rg.len = PS;
    SHOW("WAKE", ioctl(uffd, UFFDIO_WAKE, &rg));
    SHOW("UNREGISTER", ioctl(uffd, UFFDIO_UNREGISTER, &rg));
    area[0] = 3;
    printf("unregistered page: %d\n", area[0]);
    SHOW("UNREGISTER EFAULT", ioctl(uffd, UFFDIO_UNREGISTER, (void *)8));
    void *ro = mmap(NULL, PS, PROT_READ, MAP_SHARED, open("/proc/self/exe", O_RDONLY), 0);
    SHOW("register a file mapping", reg(other, ro, PS, UFFDIO_REGISTER_MODE_MISSING, NULL));
    close(other);
    close(uffd);
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    printf("/dev/userfaultfd: %d\n", dev >= 0);
    int u2 = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    printf("USERFAULTFD_IOC_NEW: %d, O_NONBLOCK %d\n", u2 >= 0, (fcntl(u2, F_GETFL) & O_NONBLOCK) != 0);
    SHOW("API via /dev", api(u2, UFFD_FEATURE_THREAD_ID));
    SHOW("dev bad ioctl", ioctl(dev, _IO(0xAA, 1), 0));
    SHOW("dev bad flags", ioctl(dev, USERFAULTFD_IOC_NEW, 0x10));
    char link[64] = "";
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", u2);
    readlink(path, link, sizeof link - 1);
    printf("fd link: %s\n", link);
    close(u2);
    close(dev);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    test_bad_input();
    test_missing(0, 0);
    test_missing(1, 0);
    test_missing(0, 1);
    test_wp();
    test_minor();
    test_missing_shmem();
    test_remove();
    test_kernel_access();
    test_events();
    test_move();
    test_poison();
    test_wp_unpopulated();
    FILE *thp = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");   /* move-pmd's size */
    unsigned long pmd = 0;
    if (thp && fscanf(thp, "%lu", &pmd) == 1)
        printf("hpage_pmd_size %lu\n", pmd);
    if (thp)
        fclose(thp);
    test_sigbus();
    test_close_wakes();
    printf("done\n");
    return 0;
}
