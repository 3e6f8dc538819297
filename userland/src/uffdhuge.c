/* userfaultfd on hugetlb memory against the host kernel: MISSING faults on a shared hugetlb memfd
 * mapping resolved with a 2 MiB UFFDIO_COPY, MINOR faults on a second mapping of the same file
 * resolved with UFFDIO_CONTINUE, MISSING on a private mapping (an anonymous huge page), a write
 * fault on a uffd-wp huge page, and the errnos of bad input (unaligned ranges, ZEROPAGE, EEXIST).
 * Needs 4 free 2 MiB pages. */
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4
#endif
#ifndef UFFDIO_POISON                /* uapi linux/userfaultfd.h of Linux 6.6+, for older headers */
#define _UFFDIO_POISON 0x08
#define UFFD_FEATURE_POISON (1ULL << 14)
struct uffdio_poison { struct uffdio_range range; uint64_t mode; int64_t updated; };
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

#define PS 4096UL
#define HPS (2UL << 20)

static const char *en(int e)
{
    switch (e) {
    case EINVAL: return "EINVAL"; case EEXIST: return "EEXIST"; case ENOENT: return "ENOENT";
    case EFAULT: return "EFAULT"; case ENOMEM: return "ENOMEM"; case EAGAIN: return "EAGAIN";
    default: return "other";
    }
}

#define SHOW(label, expr) do { long r_ = (long)(expr); printf("%s: %ld %s\n", label, r_, r_ < 0 ? en(errno) : ""); } while (0)

static int uffd;
static char *base;                 /* what fault offsets are printed against */
static char src[HPS] __attribute__((aligned(4096)));

struct handler { int max, count; uint64_t flags_or; long offsets[4]; pthread_t th; };

static void *handler_main(void *arg)
{
    struct handler *h = arg;
    while (h->count < h->max) {
        struct pollfd p = { uffd, POLLIN, 0 };
        if (poll(&p, 1, -1) != 1)
            continue;
        struct uffd_msg msg;
        if (read(uffd, &msg, sizeof msg) != sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT)
            continue;
        uint64_t addr = msg.arg.pagefault.address, fl = msg.arg.pagefault.flags;
        h->flags_or |= fl;
        h->offsets[h->count & 3] = (long)(addr - (uintptr_t)base);
        h->count++;
        uint64_t huge = addr & ~(HPS - 1);
        if (fl & UFFD_PAGEFAULT_FLAG_WP) {
            struct uffdio_writeprotect wp = { .range = { huge, HPS }, .mode = 0 };
            ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
        } else if (fl & UFFD_PAGEFAULT_FLAG_MINOR) {
            struct uffdio_continue c = { .range = { huge, HPS } };
            ioctl(uffd, UFFDIO_CONTINUE, &c);
        } else {
            memset(src, (int)(0x40 + ((huge - (uintptr_t)base) >> 21)), HPS);
            struct uffdio_copy c = { .dst = huge, .src = (uintptr_t)src, .len = HPS };
            ioctl(uffd, UFFDIO_COPY, &c);
        }
    }
    return NULL;
}

static void run_handler(struct handler *h, int max)
{
    memset(h, 0, sizeof *h);
    h->max = max;
    pthread_create(&h->th, NULL, handler_main, h);
}

static long reg(void *addr, unsigned long len, uint64_t mode, uint64_t *ioctls)
{
    struct uffdio_register r = { .range = { (uintptr_t)addr, len }, .mode = mode };
    long ret = ioctl(uffd, UFFDIO_REGISTER, &r);
    if (ioctls)
        *ioctls = r.ioctls;
    return ret;
}

static sigjmp_buf pjb;
static volatile int p_code;
static void on_bus(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    p_code = si->si_code;
    siglongjmp(pjb, 1);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_HUGETLBFS |
                              UFFD_FEATURE_MINOR_HUGETLBFS | UFFD_FEATURE_PAGEFAULT_FLAG_WP };
    SHOW("API hugetlbfs features", ioctl(uffd, UFFDIO_API, &api));
    int fd = memfd_create("uffd-huge", MFD_HUGETLB);
    SHOW("ftruncate", ftruncate(fd, 2 * HPS));
    char *a = mmap(NULL, 2 * HPS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *alias = mmap(NULL, 2 * HPS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (a == MAP_FAILED || alias == MAP_FAILED) {
        printf("mmap: %s\n", en(errno));
        return 1;
    }
    uint64_t ioctls = 0;
    SHOW("register unaligned start", reg(a + PS, HPS, UFFDIO_REGISTER_MODE_MISSING, NULL));
    SHOW("register unaligned end", reg(a, HPS + PS, UFFDIO_REGISTER_MODE_MISSING, NULL));
    SHOW("register MISSING shared", reg(a, 2 * HPS, UFFDIO_REGISTER_MODE_MISSING, &ioctls));
    printf("  range ioctls %#llx\n", (unsigned long long)(ioctls & ~((1ULL << 5) | (1ULL << 8))));
    struct uffdio_zeropage z = { .range = { (uintptr_t)a, HPS } };
    SHOW("ZEROPAGE", ioctl(uffd, UFFDIO_ZEROPAGE, &z));
    struct uffdio_copy c = { .dst = (uintptr_t)a, .src = (uintptr_t)src, .len = PS };
    SHOW("COPY 4 KiB", ioctl(uffd, UFFDIO_COPY, &c));

    struct handler h;
    base = a;
    run_handler(&h, 2);
    long sum = a[100] + a[HPS + 4096 * 7 + 3];         /* one fault per huge page */
    pthread_join(h.th, NULL);
    printf("MISSING shared: faults %d, flags %#llx, offsets %#lx %#lx, bytes %#x %#x, sum %ld\n", h.count,
           (unsigned long long)h.flags_or, h.offsets[0], h.offsets[1], a[5], a[HPS + 5], sum);
    c.dst = (uintptr_t)a;
    c.len = HPS;
    c.copy = 0;
    SHOW("COPY again", ioctl(uffd, UFFDIO_COPY, &c));
    printf("  copy field %lld\n", (long long)c.copy);

    SHOW("register MINOR alias", reg(alias, 2 * HPS, UFFDIO_REGISTER_MODE_MINOR, &ioctls));
    printf("  range ioctls %#llx\n", (unsigned long long)(ioctls & ~((1ULL << 5) | (1ULL << 8))));
    base = alias;
    run_handler(&h, 2);
    sum = alias[HPS - 1] + alias[HPS + 1];
    pthread_join(h.th, NULL);
    printf("MINOR alias: faults %d, flags %#llx, offsets %#lx %#lx, sum %ld\n", h.count,
           (unsigned long long)h.flags_or, h.offsets[0], h.offsets[1], sum);

    char *p = mmap(NULL, HPS, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, HPS);
    int pfd = memfd_create("uffd-huge-priv", MFD_HUGETLB);
    ftruncate(pfd, HPS);
    char *q = mmap(NULL, HPS, PROT_READ | PROT_WRITE, MAP_PRIVATE, pfd, 0);
    SHOW("register MISSING|WP private", reg(q, HPS, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
                                            &ioctls));
    printf("  range ioctls %#llx\n", (unsigned long long)(ioctls & ~((1ULL << 5) | (1ULL << 8))));
    base = q;
    run_handler(&h, 2);
    q[10] = 'w';                                           /* MISSING (write) */
    struct uffdio_writeprotect wp = { .range = { (uintptr_t)q, HPS }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
    wp.range.len = PS;
    SHOW("write-protect 4 KiB of a huge page", ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
    wp.range.len = HPS;
    SHOW("write-protect huge", ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
    long before = q[11];
    q[11] = 'x';                                           /* WP */
    pthread_join(h.th, NULL);
    printf("private: faults %d, flags %#llx, bytes %c %c (read %ld), file page seen %#x\n", h.count,
           (unsigned long long)h.flags_or, q[10], q[11], before, p[0]);
    struct uffdio_range un = { (uintptr_t)a, 2 * HPS };
    SHOW("unregister", ioctl(uffd, UFFDIO_UNREGISTER, &un));
    close(uffd);

    /* mremap of hugetlb mappings: the huge pages move (shared and private), growing is EINVAL */
    char *hint = mmap(NULL, 4 * HPS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *to = (char *)(((uintptr_t)hint + HPS - 1) & ~(HPS - 1));
    munmap(hint, 4 * HPS);
    SHOW("mremap grow", mremap(a, 2 * HPS, 3 * HPS, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0);
    SHOW("mremap unaligned", mremap(a + PS, HPS, HPS, MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED ? -1 : 0);
    char *m = mremap(a, 2 * HPS, 2 * HPS, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    printf("mremap shared: moved %d, bytes %#x %#x\n", m == to, m[5], m[HPS + 5]);
    char *m2 = mremap(q, HPS, HPS, MREMAP_MAYMOVE | MREMAP_FIXED, to + 2 * HPS);
    printf("mremap private: moved %d, bytes %c %c\n", m2 == to + 2 * HPS, m2[10], m2[11]);
    /* UFFDIO_POISON of a huge page: SIGBUS on access */
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api2 = { .api = UFFD_API, .features = UFFD_FEATURE_POISON | UFFD_FEATURE_MISSING_HUGETLBFS };
    SHOW("API POISON", ioctl(uffd, UFFDIO_API, &api2));
    int qfd = memfd_create("uffd-huge-poison", MFD_HUGETLB);
    ftruncate(qfd, HPS);
    char *pz = mmap(NULL, HPS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, qfd, 0);
    SHOW("register", reg(pz, HPS, UFFDIO_REGISTER_MODE_MISSING, &ioctls));
    printf("  range ioctls %#llx\n", (unsigned long long)(ioctls & ~(1ULL << 5)));
    struct uffdio_poison po = { .range = { (uintptr_t)pz, PS } };
    SHOW("POISON 4 KiB", ioctl(uffd, UFFDIO_POISON, &po));
    struct uffdio_range wk = { (uintptr_t)pz + PS, PS };
    SHOW("WAKE 4 KiB", ioctl(uffd, UFFDIO_WAKE, &wk));
    struct uffdio_range un4 = { (uintptr_t)pz, PS };
    SHOW("UNREGISTER 4 KiB", ioctl(uffd, UFFDIO_UNREGISTER, &un4));
    po.range.len = HPS;
    SHOW("POISON huge page", ioctl(uffd, UFFDIO_POISON, &po));
    printf("  updated %lld\n", (long long)po.updated);
    struct sigaction sa = { .sa_sigaction = on_bus, .sa_flags = SA_SIGINFO };
    sigaction(SIGBUS, &sa, NULL);
    volatile char v = 0;
    if (!sigsetjmp(pjb, 1))
        v = pz[4096 * 3];
    printf("  access: si_code %d %d\n", p_code, v);
    printf("done\n");
    return 0;
}
