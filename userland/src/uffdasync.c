/* userfaultfd's asynchronous write-protection (UFFD_FEATURE_WP_ASYNC) with PAGEMAP_SCAN, against the
 * host kernel: a write to a write-protected page is resolved by the kernel (no message), PAGEMAP_SCAN
 * finds the written pages and PM_SCAN_WP_MATCHING protects them again, over anonymous, memfd (shared
 * and private) and private file memory; the features UFFDIO_API reports; the errnos of bad input.
 * With the argument "huge": the same on a shared hugetlb memfd, and uffd-wp kept across fork on
 * hugetlb and shmem with UFFD_FEATURE_EVENT_FORK (needs 2 free 2 MiB pages). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4
#endif
#include "pagemap_scan.h"
#ifndef UFFD_FEATURE_WP_UNPOPULATED     /* uapi linux/userfaultfd.h of Linux 6.4 and 6.7 */
#define UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1ULL << 15)
#endif
#define PS 4096UL
#define HPS (2UL << 20)
#define ALLCAT (PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN | PAGE_IS_FILE | PAGE_IS_PRESENT | PAGE_IS_SWAPPED | \
                PAGE_IS_PFNZERO | PAGE_IS_HUGE)

static int pm;                      /* /proc/self/pagemap */
static char *base;                  /* what region offsets are printed against */
static unsigned long unit = PS;     /* and in what unit */

static const char *en(int e)
{
    switch (e) {
    case EINVAL: return "EINVAL"; case EPERM: return "EPERM"; case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT"; case EAGAIN: return "EAGAIN"; case EBUSY: return "EBUSY";
    case ENOMEM: return "ENOMEM";
    default: return "other";
    }
}

#define SHOW(label, expr) do { long r_ = (long)(expr); printf("%s: %ld %s\n", label, r_, r_ < 0 ? en(errno) : ""); } while (0)

static long scan_arg(struct pm_scan_arg *a, struct page_region *vec, int n)
{
    long r = ioctl(pm, PAGEMAP_SCAN, a);
    if (r < 0) {
        printf("  scan: -1 %s\n", en(errno));
        return r;
    }
    printf("  scan %ld:", r);
    for (int i = 0; i < r && i < n; i++)
        printf(" [%lu+%lu %#llx]", (unsigned long)((char *)(uintptr_t)vec[i].start - base) / unit,
               (unsigned long)(vec[i].end - vec[i].start) / unit, (unsigned long long)vec[i].categories);
    printf(" walk_end +%lu\n", (unsigned long)((char *)(uintptr_t)a->walk_end - base) / unit);
    return r;
}

/* PAGEMAP_SCAN of [p, p + len) with the given masks; prints the regions */
static long scan(void *p, unsigned long len, uint64_t flags, uint64_t mask, uint64_t anyof, uint64_t inv,
                 uint64_t ret_mask)
{
    struct page_region vec[64];
    struct pm_scan_arg a = { .size = sizeof(a), .flags = flags, .start = (uintptr_t)p,
                             .end = (uintptr_t)p + len, .vec = (uintptr_t)vec, .vec_len = 64,
                             .category_mask = mask, .category_anyof_mask = anyof, .category_inverted = inv,
                             .return_mask = ret_mask };
    return scan_arg(&a, vec, 64);
}

#define WRITTEN(p, len) scan(p, len, 0, PAGE_IS_WRITTEN, 0, 0, PAGE_IS_WRITTEN)
#define RESET(p, len) scan(p, len, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN, 0, 0, \
                           PAGE_IS_WRITTEN)

static int new_uffd(uint64_t features, uint64_t *reported)
{
    int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        perror("userfaultfd");
        exit(1);
    }
    struct uffdio_api api = { .api = UFFD_API, .features = features };
    if (ioctl(fd, UFFDIO_API, &api)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (reported)
        *reported = api.features;
    return fd;
}

static long wp_register(int fd, void *p, unsigned long len, uint64_t mode)
{
    struct uffdio_register r = { .range = { (uintptr_t)p, len }, .mode = mode };
    return ioctl(fd, UFFDIO_REGISTER, &r);
}

static long wp_protect(int fd, void *p, unsigned long len, int on)
{
    struct uffdio_writeprotect w = { .range = { (uintptr_t)p, len }, .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };
    return ioctl(fd, UFFDIO_WRITEPROTECT, &w);
}

static int pm_wp(void *p)
{
    uint64_t e = 0;
    pread(pm, &e, 8, ((uintptr_t)p / PS) * 8);
    return (int)((e >> 57) & 1);
}

static long minflt(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_minflt;
}

static void no_message(int fd)
{
    struct uffd_msg m;
    long r = read(fd, &m, sizeof(m));
    printf("  message: %ld %s\n", r, r < 0 ? en(errno) : "");
}

/* the async cycle over n pages at p (already registered and protected with fd): write some, scan,
 * reset, scan again */
static void cycle(int fd, char *p, unsigned long n)
{
    base = p;
    printf("  new: ");
    WRITTEN(p, n * PS);
    long f0 = minflt();
    p[1 * PS] = 'a';
    p[3 * PS] += 1;
    p[4 * PS] = 'b';
    long faults = minflt() - f0;
    printf("  writes faulted: %d, wp bits %d%d%d%d%d\n", faults >= 3, pm_wp(p), pm_wp(p + PS), pm_wp(p + 2 * PS),
           pm_wp(p + 3 * PS), pm_wp(p + 4 * PS));
    no_message(fd);
    WRITTEN(p, n * PS);
    printf("  reset:");
    RESET(p, n * PS);
    WRITTEN(p, n * PS);
    printf("  wp bits after reset %d%d\n", pm_wp(p + PS), pm_wp(p + 3 * PS));
    p[3 * PS] += 1;
    printf("  value %d, again:", p[3 * PS]);
    WRITTEN(p, n * PS);
    printf("  all categories:");
    scan(p, n * PS, 0, 0, ALLCAT, 0, ALLCAT);
}

static void api_tests(void)
{
    uint64_t rep = 0;
    int fd = new_uffd(UFFD_FEATURE_WP_ASYNC, &rep);
    printf("API WP_ASYNC alone: %s, reported WP_ASYNC %d WP_UNPOPULATED %d WP_HUGETLBFS_SHMEM %d\n",
           fd < 0 ? en(errno) : "ok", !!(rep & UFFD_FEATURE_WP_ASYNC), !!(rep & UFFD_FEATURE_WP_UNPOPULATED),
           !!(rep & UFFD_FEATURE_WP_HUGETLBFS_SHMEM));
    struct uffdio_api api = { .api = UFFD_API, .features = 0 };
    SHOW("  API again", ioctl(fd, UFFDIO_API, &api));
    close(fd);
    fd = new_uffd(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_HUGETLBFS_SHMEM, NULL);
    printf("API WP_ASYNC|PAGEFAULT_FLAG_WP|WP_HUGETLBFS_SHMEM: %s\n", fd < 0 ? en(errno) : "ok");
    close(fd);
    SHOW("API unknown feature bit 40", new_uffd(1ULL << 40, NULL));

    /* what registration allows: any memory for WP alone with WP_ASYNC */
    int tf = open("uffdasync.tmp", O_RDWR | O_CREAT | O_TRUNC, 0600);
    unlink("uffdasync.tmp");
    ftruncate(tf, 4 * PS);
    char *fm = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, tf, 0);
    fd = new_uffd(UFFD_FEATURE_WP_ASYNC, NULL);
    int sync = new_uffd(0, NULL);
    SHOW("register WP on a private file mapping, sync", wp_register(sync, fm, 4 * PS, UFFDIO_REGISTER_MODE_WP));
    SHOW("register MISSING|WP there, async", wp_register(fd, fm, 4 * PS,
                                                         UFFDIO_REGISTER_MODE_WP | UFFDIO_REGISTER_MODE_MISSING));
    SHOW("register WP there, async", wp_register(fd, fm, 4 * PS, UFFDIO_REGISTER_MODE_WP));
    SHOW("  WRITEPROTECT", wp_protect(fd, fm, 4 * PS, 1));
    base = fm;
    printf("  markers:");
    scan(fm, 4 * PS, 0, 0, ALLCAT, 0, ALLCAT);
    strcpy(fm + PS, "private copy");
    fm[2 * PS + 5] = 'x';
    no_message(fd);
    printf("  after writes:");
    scan(fm, 4 * PS, 0, 0, ALLCAT, 0, ALLCAT);
    printf("  reset:");
    RESET(fm, 4 * PS);
    WRITTEN(fm, 4 * PS);
    char c;
    pread(tf, &c, 1, PS);
    printf("  file byte %d, mapping %s\n", c, fm + PS);
    munmap(fm, 4 * PS);
    close(tf);
    close(fd);
    close(sync);
}

static void bad_scans(void)
{
    char *p = mmap(NULL, 8 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct page_region vec[4];
    base = p;
    memset(p, 1, 8 * PS);
    struct pm_scan_arg a = { .size = sizeof(a), .start = (uintptr_t)p, .end = (uintptr_t)p + 8 * PS,
                             .vec = (uintptr_t)vec, .vec_len = 4, .category_mask = PAGE_IS_WRITTEN,
                             .return_mask = PAGE_IS_WRITTEN };
    struct pm_scan_arg b;
#define BAD(label, field, value) do { b = a; b.field = value; SHOW(label, ioctl(pm, PAGEMAP_SCAN, &b)); } while (0)
    BAD("scan unknown flag", flags, 4);
    BAD("scan unknown category", category_mask, 1 << 10);
    BAD("scan unknown return bit", return_mask, 1 << 12);
    BAD("scan wrong size", size, sizeof(a) - 8);
    BAD("scan unaligned start", start, (uintptr_t)p + 1);
    BAD("scan end before start", end, (uintptr_t)p - PS);
    BAD("scan kernel range", end, 0xffff800000000000UL);
    BAD("scan vec_len without vec", vec, 0);
    BAD("scan vec unmapped", vec, 16);
    BAD("scan CHECK_WPASYNC unregistered", flags, PM_SCAN_CHECK_WPASYNC);
    BAD("scan WP_MATCHING unregistered", flags, PM_SCAN_WP_MATCHING);
    SHOW("scan arg unmapped", ioctl(pm, PAGEMAP_SCAN, (void *)16));
    /* empty entries of a page table that exists, unregistered: the slow path and the WRITTEN fast path */
    munmap(p + 2 * PS, 6 * PS);
    char *q = mmap(p + 2 * PS, 6 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    q[PS] = 1;
    printf("  holes, all categories:");
    scan(p, 8 * PS, 0, 0, ALLCAT, 0, ALLCAT);
    printf("  holes, written:");
    WRITTEN(p, 8 * PS);
    /* WP_ASYNC, but the range registered for MISSING only: not WPALLOWED either */
    int afd = new_uffd(UFFD_FEATURE_WP_ASYNC, NULL);
    SHOW("register MISSING, async", wp_register(afd, p, 8 * PS, UFFDIO_REGISTER_MODE_MISSING));
    BAD("scan CHECK_WPASYNC MISSING range", flags, PM_SCAN_CHECK_WPASYNC);
    SHOW("  WRITEPROTECT there", wp_protect(afd, p, 8 * PS, 1));
    close(afd);
    /* registered for WP without WP_ASYNC: no VMA is WPALLOWED */
    int fd = new_uffd(0, NULL);
    SHOW("register WP, sync", wp_register(fd, p, 8 * PS, UFFDIO_REGISTER_MODE_WP));
    BAD("scan CHECK_WPASYNC sync range", flags, PM_SCAN_CHECK_WPASYNC);
    printf("  categories sync range:");
    scan(p, 8 * PS, 0, 0, ALLCAT, 0, ALLCAT);
    close(fd);
    munmap(p, 8 * PS);
}

static void anon_tests(void)
{
    int fd = new_uffd(UFFD_FEATURE_WP_ASYNC, NULL);
    char *p = mmap(NULL, 8 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 0, 2 * PS);              /* pages 0-1 populated, 2-7 empty */
    SHOW("anon register WP", wp_register(fd, p, 8 * PS, UFFDIO_REGISTER_MODE_WP));
    SHOW("  WRITEPROTECT", wp_protect(fd, p, 8 * PS, 1));
    base = p;
    printf("  markers and pages:");
    scan(p, 8 * PS, 0, 0, ALLCAT, 0, ALLCAT);
    printf("  read of an empty page %d:", p[6 * PS]);
    scan(p + 6 * PS, PS, 0, 0, ALLCAT, 0, ALLCAT);
    cycle(fd, p, 8);
    SHOW("  CHECK_WPASYNC across an unregistered VMA", scan(p, 9 * PS, PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN, 0, 0,
                                                             PAGE_IS_WRITTEN));
    /* a vec of one region and max_pages with WP_MATCHING: only what was reported is protected again */
    memset(p, 'm', 8 * PS);
    struct page_region vec[1];
    struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_WP_MATCHING, .start = (uintptr_t)p,
                             .end = (uintptr_t)p + 8 * PS, .vec = (uintptr_t)vec, .vec_len = 1, .max_pages = 3,
                             .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN };
    printf("  max_pages 3:");
    scan_arg(&a, vec, 1);
    WRITTEN(p, 8 * PS);
    /* the slow path: inverted masks */
    printf("  not written:");
    scan(p, 8 * PS, 0, PAGE_IS_WRITTEN, 0, PAGE_IS_WRITTEN, ALLCAT);
    /* UNREGISTER clears the uffd-wp state */
    SHOW("  UNREGISTER", ioctl(fd, UFFDIO_UNREGISTER, &(struct uffdio_range){ (uintptr_t)p, 8 * PS }));
    printf("  after unregister wp bits %d%d:", pm_wp(p), pm_wp(p + 2 * PS));
    scan(p, 8 * PS, 0, 0, ALLCAT, 0, ALLCAT);
    close(fd);
    munmap(p, 8 * PS);
}

static void memfd_tests(void)
{
    int mfd = memfd_create("uffdasync", 0);
    ftruncate(mfd, 8 * PS);
    write(mfd, "file data", 9);
    for (int shared = 1; shared >= 0; shared--) {
        int fd = new_uffd(UFFD_FEATURE_WP_ASYNC, NULL);
        char *p = mmap(NULL, 8 * PS, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, mfd, 0);
        printf("memfd %s: ", shared ? "shared" : "private");
        SHOW("register WP", wp_register(fd, p, 8 * PS, UFFDIO_REGISTER_MODE_WP));
        SHOW("  WRITEPROTECT", wp_protect(fd, p, 8 * PS, 1));
        printf("  read of a marker page %d:", p[7 * PS]);
        base = p;
        scan(p + 7 * PS, PS, 0, 0, ALLCAT, 0, ALLCAT);
        cycle(fd, p, 8);
        char c;
        pread(mfd, &c, 1, PS);
        printf("  file byte 1: %d\n", c);
        close(fd);
        munmap(p, 8 * PS);
    }
    close(mfd);
}

/* ---- huge: hugetlb, and uffd-wp across fork ---- */
static int fork_fd = -1;
static int handler_fd;

static void *fork_handler(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p = { handler_fd, POLLIN, 0 };
        if (poll(&p, 1, 5000) != 1)
            return NULL;
        struct uffd_msg m;
        if (read(handler_fd, &m, sizeof(m)) != sizeof(m))
            continue;
        if (m.event == UFFD_EVENT_FORK) {
            fork_fd = m.arg.fork.ufd;
            return NULL;
        }
    }
}

/* fork with p write-protected; the child reports its uffd-wp bit and (for the sync case with
 * EVENT_FORK it leaves the page alone) */
static void fork_case(const char *label, char *p, unsigned long size, unsigned long fill, uint64_t features)
{
    handler_fd = new_uffd(features, NULL);
    if (handler_fd < 0) {
        printf("%s: API %s\n", label, en(errno));
        return;
    }
    SHOW(label, wp_register(handler_fd, p, size, UFFDIO_REGISTER_MODE_WP));
    memset(p, 'p', fill);
    SHOW("  WRITEPROTECT", wp_protect(handler_fd, p, size, 1));
    pthread_t th;
    fork_fd = -1;
    if (features & UFFD_FEATURE_EVENT_FORK)
        pthread_create(&th, NULL, fork_handler, NULL);
    int pipefd[2];
    pipe(pipefd);
    pid_t pid = fork();
    if (pid == 0) {
        char line[64];
        close(pm);
        pm = open("/proc/self/pagemap", O_RDONLY);     /* the parent's descriptor shows the parent's mm */
        int n = snprintf(line, sizeof(line), "child wp %d%d byte %c", pm_wp(p), pm_wp(p + size - PS), p[0]);
        if (features & UFFD_FEATURE_WP_ASYNC) {
            p[0] = 'c';
            n += snprintf(line + n, sizeof(line) - n, ", after write wp %d", pm_wp(p));
        }
        write(pipefd[1], line, n);
        _exit(0);
    }
    if (features & UFFD_FEATURE_EVENT_FORK)
        pthread_join(th, NULL);
    int st;
    waitpid(pid, &st, 0);
    char line[64] = "";
    close(pipefd[1]);
    long n = read(pipefd[0], line, sizeof(line) - 1);
    line[n > 0 ? n : 0] = 0;
    close(pipefd[0]);
    printf("  %s; fork event %d; status %d; parent wp %d byte %c\n", line, fork_fd >= 0, st, pm_wp(p), p[0]);
    if (fork_fd >= 0)
        close(fork_fd);
    ioctl(handler_fd, UFFDIO_UNREGISTER, &(struct uffdio_range){ (uintptr_t)p, size });
    close(handler_fd);
}

static void huge_tests(void)
{
    int hfd = memfd_create("uffdasync-huge", MFD_HUGETLB);
    if (hfd < 0 || ftruncate(hfd, HPS)) {
        printf("hugetlb memfd: %s\n", en(errno));
        return;
    }
    char *h = mmap(NULL, HPS, PROT_READ | PROT_WRITE, MAP_SHARED, hfd, 0);
    if (h == MAP_FAILED) {
        printf("hugetlb mmap: %s\n", en(errno));
        return;
    }
    int fd = new_uffd(UFFD_FEATURE_WP_ASYNC, NULL);
    SHOW("hugetlb register WP", wp_register(fd, h, HPS, UFFDIO_REGISTER_MODE_WP));
    SHOW("  WRITEPROTECT", wp_protect(fd, h, HPS, 1));
    base = h;
    printf("  empty:");
    scan(h, HPS, 0, 0, ALLCAT, 0, ALLCAT);
    memset(h, 1, HPS);
    no_message(fd);
    printf("  written:");
    scan(h, HPS, 0, 0, ALLCAT, 0, ALLCAT);
    printf("  partial reset:");
    RESET(h + PS, 4 * PS);
    printf("  reset:");
    RESET(h, HPS);
    printf("  wp bit %d:", pm_wp(h));
    WRITTEN(h, HPS);
    h[HPS / 2] = 2;
    printf("  one write:");
    WRITTEN(h, HPS);
    printf("  two pages:");
    scan(h + 3 * PS, 2 * PS, 0, PAGE_IS_WRITTEN, 0, 0, PAGE_IS_WRITTEN | PAGE_IS_HUGE);
    RESET(h, HPS);
    SHOW("  MADV_DONTNEED of the protected huge page", madvise(h, HPS, MADV_DONTNEED));
    printf("  wp bit %d (a marker):", pm_wp(h));
    scan(h, HPS, 0, 0, ALLCAT, 0, ALLCAT);
    printf("  byte %d, then:", h[5]);
    scan(h, HPS, 0, 0, ALLCAT, 0, ALLCAT);
    h[6] = 7;
    printf("  written %d:", h[6]);
    scan(h, HPS, 0, 0, ALLCAT, 0, ALLCAT);
    close(fd);

    /* uffd-wp across fork: hugetlb, then shmem */
    fork_case("hugetlb fork, EVENT_FORK", h, HPS, HPS, UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
    fork_case("hugetlb fork, no EVENT_FORK", h, HPS, HPS, UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
    fork_case("hugetlb fork, EVENT_FORK and WP_ASYNC", h, HPS, HPS, UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_WP_ASYNC);
    munmap(h, HPS);
    close(hfd);
    char *ph = mmap(NULL, HPS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (ph != MAP_FAILED) {
        fork_case("private hugetlb fork, EVENT_FORK", ph, HPS, HPS, UFFD_FEATURE_EVENT_FORK);
        munmap(ph, HPS);
    }
    int mfd = memfd_create("uffdasync-shm", 0);
    ftruncate(mfd, 4 * PS);
    char *s = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    fork_case("shmem fork, EVENT_FORK", s, 4 * PS, 2 * PS, UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
    fork_case("shmem fork, no EVENT_FORK", s, 4 * PS, 2 * PS, 0);
    munmap(s, 4 * PS);
    close(mfd);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    pm = open("/proc/self/pagemap", O_RDONLY);
    if (pm < 0) {
        perror("pagemap");
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "huge")) {
        huge_tests();
        printf("done\n");
        return 0;
    }
    api_tests();
    bad_scans();
    anon_tests();
    memfd_tests();
    printf("done\n");
    return 0;
}
