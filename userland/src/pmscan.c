/* The PAGEMAP_SCAN ioctl of /proc/self/pagemap (Linux 6.7+): categories of anonymous, zero-page
 * and file pages, inverted/any-of masks, max_pages and a short vec (walk_end), and the argument
 * checks; printed relative to the mapping so a native run prints the same. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pagemap_scan.h"

static int pm;
static long psz;
static char *base;

static long scan(void *start, size_t len, struct page_region *vec, size_t vec_len, uint64_t flags,
                 uint64_t max_pages, uint64_t mask, uint64_t anyof, uint64_t inverted, uint64_t ret_mask,
                 uint64_t *walk_end)
{
    struct pm_scan_arg a = {
        .size = sizeof a, .flags = flags, .start = (uintptr_t)start, .end = (uintptr_t)start + len,
        .vec = (uintptr_t)vec, .vec_len = vec_len, .max_pages = max_pages, .category_mask = mask,
        .category_anyof_mask = anyof, .category_inverted = inverted, .return_mask = ret_mask,
    };
    long r = ioctl(pm, PAGEMAP_SCAN, &a);
    if (walk_end)
        *walk_end = a.walk_end;
    return r;
}

static void show(const char *label, long n, struct page_region *v, uint64_t walk_end)
{
    printf("%s: %ld regions, walk_end +%ld:", label, n, walk_end ? (long)(walk_end - (uintptr_t)base) / psz : -1L);
    for (long i = 0; i < n; i++)
        printf(" [%ld-%ld %#llx]", (long)(v[i].start - (uintptr_t)base) / psz,
               (long)(v[i].end - (uintptr_t)base) / psz, (unsigned long long)v[i].categories);
    printf("\n");
}

#define ERR(label, call) do { errno = 0; long r_ = (call); int e_ = errno; \
        printf("%s: %ld %s\n", label, r_, r_ < 0 ? strerror(e_) : "ok"); } while (0)

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    psz = sysconf(_SC_PAGESIZE);
    pm = open("/proc/self/pagemap", O_RDONLY);
    if (pm < 0) { perror("pagemap"); return 1; }
    const int N = 16;
    char *area = mmap(NULL, (N + 8) * psz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    base = mmap(area, N * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    madvise(base, N * psz, MADV_NOHUGEPAGE);
    base[0] = base[psz] = 1;                       /* 0, 1 written */
    volatile char c = base[2 * psz];               /* 2 the zero page */
    (void)c;
    base[4 * psz] = base[5 * psz] = base[6 * psz] = 1;
    c = base[9 * psz];
    base[12 * psz] = 1;
    struct page_region v[32];
    uint64_t we;
    const uint64_t R = PAGE_IS_PRESENT | PAGE_IS_WRITTEN | PAGE_IS_PFNZERO | PAGE_IS_FILE | PAGE_IS_SWAPPED;
    long n;

    n = scan(base, N * psz, v, 32, 0, 0, PAGE_IS_PRESENT, 0, 0, R, &we);
    show("present", n, v, we);
    n = scan(base, N * psz, v, 32, 0, 0, PAGE_IS_PRESENT, 0, PAGE_IS_PRESENT, R, &we);
    show("not present", n, v, we);
    n = scan(base, N * psz, v, 32, 0, 0, 0, PAGE_IS_PFNZERO | PAGE_IS_SWAPPED, 0, R, &we);
    show("any of zero page, swapped", n, v, we);
    n = scan(base, N * psz, v, 32, 0, 0, PAGE_IS_PRESENT, 0, PAGE_IS_PFNZERO, PAGE_IS_PRESENT, &we);
    show("present, not the zero page", n, v, we);
    n = scan(base, N * psz, v, 32, 0, 3, PAGE_IS_PRESENT, 0, 0, R, &we);
    show("max_pages 3", n, v, we);
    n = scan(base, N * psz, v, 1, 0, 0, PAGE_IS_PRESENT, 0, 0, PAGE_IS_PRESENT, &we);
    show("vec of one, present only", n, v, we);
    n = scan(base, N * psz, v, 2, 0, 0, PAGE_IS_PRESENT, 0, 0, R, &we);
    show("vec of two", n, v, we);
    n = scan(base, N * psz, NULL, 0, 0, 0, PAGE_IS_PRESENT, 0, 0, R, &we);
    show("no vec", n, v, we);
    n = scan(base + 3 * psz, 5 * psz - 100, v, 32, 0, 0, 0, 0, 0, R, &we);
    show("all from page 3, end unaligned", n, v, we);
    n = scan(base, 0, v, 32, 0, 0, 0, 0, 0, R, &we);
    show("empty range", n, v, we);
    n = scan(base, N * psz, v, 32, PM_SCAN_WP_MATCHING, 0, 0, 0, 0, R, &we);
    show("WP_MATCHING on unregistered memory", n, v, we);

    /* a hole and a file mapping after the anonymous one */
    char path[] = "/tmp/pmscanXXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    if (ftruncate(fd, 4 * psz)) return 1;
    char *f = mmap(base + (N + 2) * psz, 4 * psz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    munmap(base + N * psz, 2 * psz);            /* a hole between the two */
    f[0] = 1;
    c = f[2 * psz];
    n = scan(base + 10 * psz, 12 * psz, v, 32, 0, 0, PAGE_IS_PRESENT, 0, 0, R, &we);
    show("anon, hole, file", n, v, we);
    n = scan(base + 10 * psz, 12 * psz, v, 32, 0, 0, PAGE_IS_FILE, 0, 0, PAGE_IS_FILE, &we);
    show("file only", n, v, we);

    struct pm_scan_arg a = { .size = sizeof a, .start = (uintptr_t)base, .end = (uintptr_t)base + psz };
    ERR("good", ioctl(pm, PAGEMAP_SCAN, &a));
    a.size = 8;
    ERR("bad size", ioctl(pm, PAGEMAP_SCAN, &a));
    a.size = sizeof a;
    a.flags = 4;
    ERR("bad flags", ioctl(pm, PAGEMAP_SCAN, &a));
    a.flags = 0;
    a.return_mask = 1 << 12;
    ERR("bad category", ioctl(pm, PAGEMAP_SCAN, &a));
    a.return_mask = 0;
    a.start += 1;
    ERR("unaligned start", ioctl(pm, PAGEMAP_SCAN, &a));
    a.start -= 1;
    a.vec_len = 4;
    ERR("vec_len without vec", ioctl(pm, PAGEMAP_SCAN, &a));
    a.vec_len = 0;
    a.end = a.start - psz;
    ERR("end before start", ioctl(pm, PAGEMAP_SCAN, &a));
    a.end = a.start + psz;
    a.vec = 8;
    a.vec_len = 1UL << 60;
    ERR("huge vec", ioctl(pm, PAGEMAP_SCAN, &a));
    a.vec = 0;
    a.vec_len = 0;
    a.flags = PM_SCAN_CHECK_WPASYNC;
    ERR("CHECK_WPASYNC", ioctl(pm, PAGEMAP_SCAN, &a));
    a.flags = 0;
    ERR("bad argument pointer", ioctl(pm, PAGEMAP_SCAN, (void *)8));
    ERR("other command", ioctl(pm, _IO('f', 99), 0));
    return 0;
}
