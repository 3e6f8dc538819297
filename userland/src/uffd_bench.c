/*
 * uffd_bench: the cost of a page fault resolved by a userfaultfd handler thread against the same
 * fault resolved by the kernel, and a post-copy-like pull of pages from a remote source.
 *
 *   uffd_bench fault CASE HOW NPAGES [TOUCH [GAP_US]]
 *     NPAGES pages are set up; the first TOUCH (default NPAGES) are written, one byte each, in
 *     order. Before each write the thread spins GAP_US (default 10) on CLOCK_MONOTONIC, so that a
 *     handler on another CPU has gone back to sleep in poll() when the next fault comes; the write
 *     alone is timed (CLOCK_MONOTONIC, vDSO, just before and just after it).
 *     CASE missing: private anonymous memory, the pages not populated. uffd: registered MISSING,
 *       the handler answers each message with UFFDIO_COPY of a prepared page; kernel: the write
 *       fault is do_anonymous_page.
 *     CASE minor: a memfd (shmem) of NPAGES pages written through one MAP_SHARED mapping (so every
 *       page is in the page cache) and written again through a second MAP_SHARED mapping. uffd:
 *       the second mapping is registered MINOR, the handler answers with UFFDIO_CONTINUE; kernel:
 *       the write fault maps the cached page (do_shared_fault).
 *     CASE wp: private anonymous memory, every page written first. uffd: registered WP and the
 *       whole range write-protected (UFFDIO_WRITEPROTECT); the handler unprotects the faulting
 *       page (UFFDIO_WRITEPROTECT, mode 0, which wakes the writer); kernel: a child is forked and
 *       reaped first, so every PTE is read-only and its page ours alone: do_wp_page reuses it.
 *     The handler thread waits as userfaultfd(2)'s example does: a O_NONBLOCK descriptor, poll(),
 *     read() of one uffd_msg; a second descriptor in the poll set (a pipe) ends it.
 *     Prints: elapsed_ns (the whole loop), fault_ns (the timed writes summed), handled (messages
 *     resolved), polls (poll() returns), early_reads (messages whose poll() returned at a
 *     CLOCK_MONOTONIC time before the writer's clock just before the write that raised them: 0 on
 *     any machine whose CPUs share one clock), check ok|bad (every page reads back what was
 *     written, and the bytes the handler supplied).
 *
 *   uffd_bench postcopy MODE NPAGES LATENCY_US COMPUTE_US
 *     Private anonymous memory registered MISSING; the handler "pulls" a page from a remote source
 *     for each message: nanosleep(LATENCY_US), then UFFDIO_COPY of the page's content (a page it
 *     already sent is only woken, UFFDIO_WAKE, with no latency). The main thread reads each page
 *     in order and computes COMPUTE_US per page (a busy loop on CLOCK_MONOTONIC).
 *     MODE demand: nothing else. populate: a second thread MADV_POPULATE_WRITEs the pages one by
 *     one from the start (each call sleeps until the handler copied its page). prefetch: a second
 *     thread calls the vDSO's prefetch_page() on every page (without it, as natively: prints
 *     `no prefetch_page`, exit 0).
 *     Prints: elapsed_ns, handled, sent (pages copied), resent (messages for pages already sent),
 *     prefetch_fail (prefetch_page calls that returned non-zero), check ok|bad.
 *
 * Errors print `FAIL: what` and exit 1; bad arguments print the usage and exit 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vdso_lookup.h"
#include "bench_args.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PS 4096L

enum { H_COPY, H_CONTINUE, H_WP, H_PULL };

struct handler {
    int uffd, stop_rd, kind;
    long latency_ns;
    char *base;                 /* the registered range (H_PULL: the page contents depend on the index) */
    long npages;
    unsigned char *sent;        /* H_PULL: pages already copied */
    uint64_t *t_read;           /* fault: CLOCK_MONOTONIC when poll() reported the message of page i */
    long handled, polls, sent_count, resent;
    pthread_t th;
};


static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static unsigned char page_byte(long index)
{
    return (unsigned char)(index * 37 + 11);
}

static int new_uffd(uint64_t features)
{
    int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0)
        fail("userfaultfd");
    struct uffdio_api api = { .api = UFFD_API, .features = features };
    if (ioctl(uffd, UFFDIO_API, &api))
        fail("UFFDIO_API");
    return uffd;
}

static void uffd_register(int uffd, void *addr, long len, uint64_t mode)
{
    struct uffdio_register r = { .range = { (uintptr_t)addr, len }, .mode = mode };
    if (ioctl(uffd, UFFDIO_REGISTER, &r))
        fail("UFFDIO_REGISTER");
}

/* Resolve one fault message; returns 0 or -1. */
static int resolve(struct handler *h, uint64_t addr, uint64_t flags)
{
    static char src[PS] __attribute__((aligned(4096)));
    uint64_t page = addr & ~(PS - 1);
    if (h->kind == H_WP) {
        struct uffdio_writeprotect wp = { .range = { page, PS }, .mode = 0 };
        return ioctl(h->uffd, UFFDIO_WRITEPROTECT, &wp);
    }
    if (h->kind == H_CONTINUE) {
        struct uffdio_continue c = { .range = { page, PS } };
        return ioctl(h->uffd, UFFDIO_CONTINUE, &c);
    }
    long index = (long)(page - (uintptr_t)h->base) / PS;
    if (h->kind == H_PULL) {
        if (index < 0 || index >= h->npages)
            return -1;
        if (h->sent[index]) {           /* already here: this message only needs its thread woken */
            h->resent++;
            struct uffdio_range r = { page, PS };
            return ioctl(h->uffd, UFFDIO_WAKE, &r);
        }
        struct timespec ts = { h->latency_ns / 1000000000L, h->latency_ns % 1000000000L };
        while (nanosleep(&ts, &ts) && errno == EINTR)
            ;
    }
    memset(src, page_byte(index), PS);
    struct uffdio_copy c = { .dst = page, .src = (uintptr_t)src, .len = PS, .mode = 0 };
    if (ioctl(h->uffd, UFFDIO_COPY, &c) && errno != EEXIST)
        return -1;
    if (h->kind == H_PULL) {
        h->sent[index] = 1;
        h->sent_count++;
    }
    (void)flags;
    return 0;
}

static void *handler_main(void *arg)
{
    struct handler *h = arg;
    for (;;) {
        struct pollfd p[2] = { { h->uffd, POLLIN, 0 }, { h->stop_rd, POLLIN, 0 } };
        int n = poll(p, 2, -1);
        uint64_t seen = h->t_read ? now_ns() : 0;      /* when the handler learnt of the message */
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("poll");
        h->polls++;
        if (p[1].revents)
            return NULL;
        if (!(p[0].revents & POLLIN))
            continue;
        struct uffd_msg msg;
        ssize_t r = read(h->uffd, &msg, sizeof msg);
        if (r < 0 && errno == EAGAIN)
            continue;
        if (r != sizeof msg)
            fail("read uffd_msg");
        if (msg.event != UFFD_EVENT_PAGEFAULT)
            continue;
        if (h->t_read) {
            long i = (long)((msg.arg.pagefault.address & ~(PS - 1)) - (uintptr_t)h->base) / PS;
            if (i >= 0 && i < h->npages)
                h->t_read[i] = seen;
        }
        if (resolve(h, msg.arg.pagefault.address, msg.arg.pagefault.flags))
            fail("resolve a fault");
        h->handled++;
    }
}

static void start_handler(struct handler *h, int *stop_wr)
{
    int p[2];
    if (pipe(p))
        fail("pipe");
    h->stop_rd = p[0];
    *stop_wr = p[1];
    if (pthread_create(&h->th, NULL, handler_main, h))
        fail("pthread_create");
}

static void stop_handler(struct handler *h, int stop_wr)
{
    if (write(stop_wr, "x", 1) != 1)
        fail("write the stop pipe");
    pthread_join(h->th, NULL);
}

static char *map_anon(long npages)
{
    char *p = mmap(NULL, npages * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fail("mmap");
    return p;
}

/* ---- fault CASE HOW NPAGES ------------------------------------------------------------------- */
static int fault_bench(const char *kase, const char *how, long npages, long touch, long gap_us)
{
    int use_uffd;
    if (!strcmp(how, "uffd"))
        use_uffd = 1;
    else if (!strcmp(how, "kernel"))
        use_uffd = 0;
    else
        return 2;
    struct handler h = { .uffd = -1, .npages = npages };
    char *area;
    unsigned char expect_before = 0;    /* the byte at offset 1 of every page after the loop */
    int copied = 0;                     /* ... or page_byte(index): UFFDIO_COPY's source */

    if (!strcmp(kase, "missing")) {
        area = map_anon(npages);
        if (use_uffd) {
            h.uffd = new_uffd(0);
            uffd_register(h.uffd, area, npages * PS, UFFDIO_REGISTER_MODE_MISSING);
            h.kind = H_COPY;
            copied = 1;
        }
    } else if (!strcmp(kase, "minor")) {
        int fd = memfd_create("uffd_bench", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, npages * PS))
            fail("memfd");
        char *first = mmap(NULL, npages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        area = mmap(NULL, npages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (first == MAP_FAILED || area == MAP_FAILED)
            fail("mmap the memfd");
        for (long i = 0; i < npages; i++)
            memset(first + i * PS, 0x5a, PS);      /* in the page cache now */
        expect_before = 0x5a;
        if (use_uffd) {
            h.uffd = new_uffd(UFFD_FEATURE_MINOR_SHMEM);
            uffd_register(h.uffd, area, npages * PS, UFFDIO_REGISTER_MODE_MINOR);
            h.kind = H_CONTINUE;
        }
    } else if (!strcmp(kase, "wp")) {
        area = map_anon(npages);
        for (long i = 0; i < npages; i++)
            memset(area + i * PS, 0xa5, PS);
        expect_before = 0xa5;
        if (use_uffd) {
            h.uffd = new_uffd(UFFD_FEATURE_PAGEFAULT_FLAG_WP);
            uffd_register(h.uffd, area, npages * PS, UFFDIO_REGISTER_MODE_WP);
            struct uffdio_writeprotect w = { .range = { (uintptr_t)area, npages * PS },
                                             .mode = UFFDIO_WRITEPROTECT_MODE_WP };
            if (ioctl(h.uffd, UFFDIO_WRITEPROTECT, &w))
                fail("UFFDIO_WRITEPROTECT");
            h.kind = H_WP;
        } else {
            pid_t c = fork();       /* the PTEs become read-only, shared with the child */
            if (c < 0)
                fail("fork");
            if (c == 0)
                _exit(0);
            int st;
            if (waitpid(c, &st, 0) != c)
                fail("waitpid");
        }
    } else {
        return 2;
    }

    int stop_wr = -1;
    h.base = area;
    uint64_t *t_write = calloc(npages, sizeof(uint64_t));
    h.t_read = calloc(npages, sizeof(uint64_t));
    if (!t_write || !h.t_read)
        fail("calloc");
    if (use_uffd)
        start_handler(&h, &stop_wr);

    uint64_t fault_ns = 0, t0 = now_ns();
    for (long i = 0; i < touch; i++) {
        uint64_t until = now_ns() + gap_us * 1000;
        while (now_ns() < until)
            ;
        uint64_t a = now_ns();
        ((volatile char *)area)[i * PS] = (char)(i + 1);
        uint64_t b = now_ns();
        t_write[i] = a;
        fault_ns += b - a;
    }
    uint64_t t1 = now_ns();

    if (use_uffd)
        stop_handler(&h, stop_wr);
    int ok = 1;
    long early = 0;
    for (long i = 0; i < npages; i++) {
        unsigned char want = copied ? page_byte(i) : expect_before;
        if (i < touch && (area[i * PS] != (char)(i + 1) || (unsigned char)area[i * PS + 1] != want))
            ok = 0;
        if (h.t_read[i] && h.t_read[i] < t_write[i])
            early++;
    }
    printf("case %s\n", kase);
    printf("how %s\n", how);
    printf("npages %ld\n", npages);
    printf("touch %ld\n", touch);
    printf("gap_us %ld\n", gap_us);
    printf("elapsed_ns %llu\n", (unsigned long long)(t1 - t0));
    printf("fault_ns %llu\n", (unsigned long long)fault_ns);
    printf("handled %ld\n", h.handled);
    printf("polls %ld\n", h.polls);
    printf("early_reads %ld\n", early);
    printf("check %s\n", ok ? "ok" : "bad");
    return ok ? 0 : 1;
}

/* ---- postcopy MODE NPAGES LATENCY_US COMPUTE_US ---------------------------------------------------- */
struct ahead {
    char *base;
    long npages, fails;
    int populate;
    long (*prefetch)(const void *);
    pthread_t th;
};

static void *ahead_main(void *arg)
{
    struct ahead *a = arg;
    for (long i = 0; i < a->npages; i++) {
        if (a->populate) {
            if (madvise(a->base + i * PS, PS, MADV_POPULATE_WRITE))
                a->fails++;
        } else if (a->prefetch(a->base + i * PS)) {
            a->fails++;
        }
    }
    return NULL;
}

static int postcopy(const char *mode, long npages, long latency_us, long compute_us)
{
    long (*prefetch)(const void *) = NULL;
    int populate = 0, second = 1;
    if (!strcmp(mode, "demand"))
        second = 0;
    else if (!strcmp(mode, "populate"))
        populate = 1;
    else if (!strcmp(mode, "prefetch")) {
        prefetch = (long (*)(const void *))vdso_sym("LINUX_2.6", "__vdso_prefetch_page");
        if (!prefetch) {
            printf("no prefetch_page\n");
            return 0;
        }
    } else
        return 2;

    char *area = map_anon(npages);
    struct handler h = { .npages = npages, .base = area, .kind = H_PULL, .latency_ns = latency_us * 1000 };
    h.sent = calloc(npages, 1);
    if (!h.sent)
        fail("calloc");
    h.uffd = new_uffd(0);
    uffd_register(h.uffd, area, npages * PS, UFFDIO_REGISTER_MODE_MISSING);
    int stop_wr;
    start_handler(&h, &stop_wr);

    struct ahead a = { .base = area, .npages = npages, .populate = populate, .prefetch = prefetch };
    uint64_t t0 = now_ns();
    if (second && pthread_create(&a.th, NULL, ahead_main, &a))
        fail("pthread_create");
    unsigned long sum = 0;
    int ok = 1;
    for (long i = 0; i < npages; i++) {
        unsigned char b = ((volatile unsigned char *)area)[i * PS + 100];
        ok &= b == page_byte(i);
        sum += b;
        uint64_t until = now_ns() + compute_us * 1000;
        while (now_ns() < until)
            ;
    }
    uint64_t t1 = now_ns();
    if (second)
        pthread_join(a.th, NULL);
    stop_handler(&h, stop_wr);

    printf("mode %s\n", mode);
    printf("npages %ld\n", npages);
    printf("latency_us %ld\n", latency_us);
    printf("compute_us %ld\n", compute_us);
    printf("elapsed_ns %llu\n", (unsigned long long)(t1 - t0));
    printf("handled %ld\n", h.handled);
    printf("sent %ld\n", h.sent_count);
    printf("resent %ld\n", h.resent);
    printf("prefetch_fail %ld\n", second ? a.fails : 0);
    printf("sum %lu\n", sum);
    printf("check %s\n", ok && h.sent_count == npages ? "ok" : "bad");
    return ok ? 0 : 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: uffd_bench fault missing|minor|wp uffd|kernel NPAGES [TOUCH [GAP_US]]\n"
                    "       uffd_bench postcopy demand|populate|prefetch NPAGES LATENCY_US COMPUTE_US\n");
    return 2;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 5 && argc <= 7 && !strcmp(argv[1], "fault")) {
        long npages = parse_long(argv[4], "NPAGES", 1, 1L << 20);
        long touch = argc > 5 ? parse_long(argv[5], "TOUCH", 0, npages) : npages;
        long gap = argc > 6 ? parse_long(argv[6], "GAP_US", 0, 1000000) : 10;
        int r = fault_bench(argv[2], argv[3], npages, touch, gap);
        return r == 2 ? usage() : r;
    }
    if (argc == 6 && !strcmp(argv[1], "postcopy")) {
        int r = postcopy(argv[2], parse_long(argv[3], "NPAGES", 1, 1L << 20),
                         parse_long(argv[4], "LATENCY_US", 0, 10000000), parse_long(argv[5], "COMPUTE_US", 0, 10000000));
        return r == 2 ? usage() : r;
    }
    return usage();
}
