/* touchloop: time loads from memory that is already mapped and populated, to compare the cost of TLB
 * and cache misses natively and under faultlab.
 *
 *   touchloop KIB STRIDE PASSES [seq|rand]
 *
 * Maps KIB KiB of anonymous memory (MADV_NOHUGEPAGE: 4 KiB pages, as faultlab maps them), writes every
 * page once, then reads one byte every STRIDE bytes, PASSES times over the whole range (pages in address
 * order, or in one fixed pseudo-random order with `rand`). Prints
 *   kib stride passes order ns_per_page ns_per_touch
 * from clock_gettime(CLOCK_MONOTONIC) around the timed passes (a first pass, untimed, warms the caches
 * and TLBs as far as they reach). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_args.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static unsigned sweep(const volatile unsigned char *p, const uint32_t *order, long pages, long stride)
{
    unsigned s = 0;
    for (long k = 0; k < pages; k++) {
        const volatile unsigned char *q = p + ((long)(order ? order[k] : k) << 12);
        for (long off = 0; off < 4096; off += stride)
            s += q[off];
    }
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: touchloop KIB STRIDE PASSES [seq|rand]\n");
        return 2;
    }
    long kib = parse_long(argv[1], "size (KiB)", 4, 4L << 20);
    long stride = parse_long(argv[2], "stride", 1, 4096);
    long passes = parse_long(argv[3], "passes", 1, 1L << 20);
    int rnd = argc == 5 && !strcmp(argv[4], "rand");
    if (argc == 5 && !rnd && strcmp(argv[4], "seq")) {
        fprintf(stderr, "FAIL: bad order %s (expected seq or rand)\n", argv[4]);
        return 2;
    }
    long pages = (kib + 3) / 4;
    size_t len = (size_t)pages << 12;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fail("mmap");
    madvise(p, len, MADV_NOHUGEPAGE);
    for (long k = 0; k < pages; k++)
        p[k << 12] = (unsigned char)k;
    uint32_t *order = NULL;
    if (rnd) {
        order = mmap(NULL, pages * sizeof(*order), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (order == MAP_FAILED)
            fail("mmap");
        for (long k = 0; k < pages; k++)
            order[k] = k;
        uint64_t x = 88172645463325252ull;           /* xorshift64: the same order every run */
        for (long k = pages - 1; k > 0; k--) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            long j = x % (k + 1);
            uint32_t t = order[k]; order[k] = order[j]; order[j] = t;
        }
    }
    unsigned s = sweep(p, order, pages, stride);
    double t0 = now_ns();
    for (long r = 0; r < passes; r++)
        s += sweep(p, order, pages, stride);
    double t = now_ns() - t0;
    long touches = pages * ((4096 + stride - 1) / stride);
    printf("%ld %ld %ld %s %.2f %.3f\n", kib, stride, passes, rnd ? "rand" : "seq",
           t / (passes * pages), t / (passes * touches));
    return s == 0x12345678 ? 3 : 0;     /* (keeps the loads) */
}
