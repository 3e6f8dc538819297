/*
 * prefetch_bench: software prefetching of mmap'ed file pages with the vDSO's prefetch_page().
 *
 *   prefetch_bench FILE NPAGES COMPUTE_ITERS DISTANCE [cold|warm]
 *
 *     FILE is created (NPAGES * 4096 bytes, byte at offset o = ((o * 2654435761) >> 13) & 0xff,
 *     fsync'ed) if it is missing or too short. cold (the default): the page cache is dropped
 *     (/proc/sys/vm/drop_caches); warm: the file is read with read() first, so it is all cached.
 *     The file is mapped PROT_READ/MAP_SHARED with MADV_RANDOM (a fault reads exactly one page:
 *     the benchmark measures per-page I/O, not read-ahead). Then, timed with CLOCK_MONOTONIC:
 *       prologue (DISTANCE > 0): prefetch_page(page j) for j < DISTANCE
 *       for each page i:  prefetch_page(page i + DISTANCE) if DISTANCE > 0 and it is in the file;
 *                         read 4 bytes of page i (checksum); COMPUTE_ITERS xorshift rounds.
 *     Prints: elapsed_ns, loop_cycles (rdtsc), checksum (sum of the bytes read), prefetch_calls,
 *     prefetch_fail (calls that returned non-zero).
 *
 *   prefetch_bench --cost [DIR]
 *     Cycles of one prefetch_page() call (rdtsc before and after, minus the same with no call in
 *     between) on: a present page, a page in the page cache but not mapped, a cold page (needs
 *     I/O), the same page again while its read is in flight, the same page once its read has
 *     completed (after ~5 ms of simulated time spent in user mode), NULL; and an empty function
 *     called the same way (noop). Prints cost_CASE_cycles N and cost_CASE_ret R per case.
 *
 *   prefetch_bench --cost-loop CASE REPS [DIR]
 *     The same set-up as --cost, then REPS calls for CASE (present, cached, cold, null or noop;
 *     cached and cold: distinct pages 64 KiB apart, REPS <= 32). The set-up does not depend on
 *     CASE or REPS, so the difference of two runs' counters is the cost of the extra calls.
 *
 * Scratch files of the cost modes (DIR, default /home) are removed at the end. Without
 * __vdso_prefetch_page in the vDSO (native Linux) every mode prints `no prefetch_page`, exit 0.
 * Errors print `FAIL: what` and exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vdso_lookup.h"
#include "bench_args.h"

#define PAGE 4096L

typedef long (*prefetch_fn)(const void *);

static prefetch_fn prefetch_page;
static volatile uint64_t sink;          /* keeps the compute kernel's result alive */


static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void drop_caches(void)
{
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0 || write(fd, "1", 1) != 1)
        fail("write 1 to /proc/sys/vm/drop_caches");
    close(fd);
}

static inline unsigned char file_byte(uint64_t off)
{
    return (unsigned char)((off * 2654435761u) >> 13);
}

/* Make path hold at least npages pages of the deterministic content (written and fsync'ed). */
static void ensure_file(const char *path, long npages)
{
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st))
        fail(path);
    if (st.st_size < npages * PAGE) {
        static unsigned char buf[16 * PAGE];
        for (long off = 0; off < npages * PAGE; off += sizeof(buf)) {
            long n = npages * PAGE - off < (long)sizeof(buf) ? npages * PAGE - off : (long)sizeof(buf);
            for (long j = 0; j < n; j++)
                buf[j] = file_byte(off + j);
            if (pwrite(fd, buf, n, off) != n)
                fail("write the benchmark file");
        }
        if (fsync(fd))
            fail("fsync the benchmark file");
    }
    close(fd);
}

static void read_whole_file(const char *path)
{
    static char buf[16 * PAGE];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        fail(path);
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        ;
    if (n < 0)
        fail("read the file");
    close(fd);
}

static const unsigned char *map_random(const char *path, long npages)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        fail(path);
    void *p = mmap(NULL, npages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        fail("mmap the file");
    if (madvise(p, npages * PAGE, MADV_RANDOM))
        fail("madvise(MADV_RANDOM)");
    close(fd);
    return p;
}

/* The per-page work: `iters` xorshift64 rounds (a serial dependency chain: no vectorizing). */
static uint64_t __attribute__((noinline)) compute(uint64_t x, long iters)
{
    for (long k = 0; k < iters; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

static int bench(int argc, char **argv)
{
    const char *path = argv[1];
    long npages = parse_long(argv[2], "NPAGES", 1, 1L << 20);
    long iters = parse_long(argv[3], "COMPUTE_ITERS", 0, 1L << 40);
    long dist = parse_long(argv[4], "DISTANCE", 0, 1L << 20);
    int warm = 0;
    if (argc > 5) {
        if (!strcmp(argv[5], "warm"))
            warm = 1;
        else if (strcmp(argv[5], "cold")) {
            fprintf(stderr, "FAIL: mode must be cold or warm, got %s\n", argv[5]);
            return 1;
        }
    }

    ensure_file(path, npages);
    if (warm)
        read_whole_file(path);
    else
        drop_caches();
    const unsigned char *base = map_random(path, npages);

    long calls = 0, fails = 0;
    uint64_t sum = 0, state = 0x9E3779B97F4A7C15u;
    uint64_t t0 = now_ns(), c0 = rdtsc();
    for (long j = 0; dist > 0 && j < dist && j < npages; j++) {
        calls++;
        fails += prefetch_page(base + j * PAGE) != 0;
    }
    for (long i = 0; i < npages; i++) {
        if (dist > 0 && i + dist < npages) {
            calls++;
            fails += prefetch_page(base + (i + dist) * PAGE) != 0;
        }
        const volatile unsigned char *p = base + i * PAGE;
        unsigned s = p[0] + p[1365] + p[2730] + p[4095];
        sum += s;
        state = compute(state ^ s, iters);
    }
    uint64_t c1 = rdtsc(), t1 = now_ns();
    sink = state;

    printf("npages %ld\n", npages);
    printf("compute_iters %ld\n", iters);
    printf("distance %ld\n", dist);
    printf("mode %s\n", warm ? "warm" : "cold");
    printf("elapsed_ns %llu\n", (unsigned long long)(t1 - t0));
    printf("loop_cycles %llu\n", (unsigned long long)(c1 - c0));
    printf("checksum %llu\n", (unsigned long long)sum);
    printf("prefetch_calls %ld\n", calls);
    printf("prefetch_fail %ld\n", fails);
    return 0;
}

/* ---- the cost of one call ------------------------------------------------------------------ */

#define NSLOT 32                /* pages per scratch file used by the cost modes */
#define SLOT_PAGES 16           /* 64 KiB apart: each call is outside the last one's fault-around */

static char present_page[PAGE] __attribute__((aligned(4096)));

static long __attribute__((noinline)) noop_page(const void *p)
{
    (void)p;
    return 0;
}

struct cost_setup {
    char cached_path[256], cold_path[256];
    const unsigned char *cached, *cold;     /* mappings of NSLOT * SLOT_PAGES pages */
};

static void cost_setup(struct cost_setup *cs, const char *dir)
{
    snprintf(cs->cached_path, sizeof(cs->cached_path), "%s/prefetch_cost_cached.dat", dir);
    snprintf(cs->cold_path, sizeof(cs->cold_path), "%s/prefetch_cost_cold.dat", dir);
    ensure_file(cs->cached_path, NSLOT * SLOT_PAGES);
    ensure_file(cs->cold_path, NSLOT * SLOT_PAGES);
    drop_caches();
    read_whole_file(cs->cached_path);       /* in the page cache, not mapped */
    cs->cached = map_random(cs->cached_path, NSLOT * SLOT_PAGES);
    cs->cold = map_random(cs->cold_path, NSLOT * SLOT_PAGES);
    present_page[0] = 1;                    /* mapped and present */
}

static void cost_cleanup(struct cost_setup *cs)
{
    unlink(cs->cached_path);
    unlink(cs->cold_path);
}

/* rdtsc delta around one call through a function pointer (the call cannot be inlined). */
static uint64_t __attribute__((noinline)) timed_call(prefetch_fn f, const void *p, long *ret)
{
    uint64_t t0 = rdtsc();
    long r = f(p);
    uint64_t t1 = rdtsc();
    *ret = r;
    return t1 - t0;
}

/* The same with nothing between the two reads: subtracted from every case. */
static uint64_t __attribute__((noinline)) timed_nothing(void)
{
    uint64_t t0 = rdtsc();
    uint64_t t1 = rdtsc();
    return t1 - t0;
}

static void report_cost(const char *name, uint64_t delta, uint64_t base, long ret)
{
    printf("cost_%s_cycles %lld\n", name, (long long)(delta - base));
    printf("cost_%s_ret %ld\n", name, ret);
}

/* A field of /proc/meminfo in kB, or -1. */
static long meminfo_kb(const char *field)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n)) {
            v = atol(line + n);
            break;
        }
    if (f)
        fclose(f);
    return v;
}

static int cost(const char *dir)
{
    struct cost_setup cs;
    cost_setup(&cs, dir);
    long r;
    uint64_t base = timed_nothing();
    printf("cost_rdtsc_pair_cycles %llu\n", (unsigned long long)base);

    uint64_t d = timed_call(noop_page, present_page, &r);
    report_cost("noop", d, base, r);

    timed_call(prefetch_page, present_page, &r);            /* warm-up */
    d = timed_call(prefetch_page, present_page, &r);
    report_cost("present", d, base, r);

    /* slot 1, as in --cost-loop: the fault-around window holds 16 pages of the mapping */
    const unsigned char *cached = cs.cached + SLOT_PAGES * PAGE, *cold = cs.cold + SLOT_PAGES * PAGE;
    d = timed_call(prefetch_page, cached, &r);
    report_cost("cached", d, base, r);

    d = timed_call(prefetch_page, cold, &r);
    report_cost("cold", d, base, r);

    d = timed_call(prefetch_page, cold, &r);
    report_cost("inflight", d, base, r);

    /* ~5 ms of user-mode time (vDSO clock, no system call): any read has completed by then */
    uint64_t until = now_ns() + 5000000;
    while (now_ns() < until)
        ;
    d = timed_call(prefetch_page, cold, &r);
    report_cost("completed", d, base, r);

    d = timed_call(prefetch_page, NULL, &r);
    report_cost("null", d, base, r);

    /* memory pressure: fill RAM with locked pages, then prefetch a cold file page; the call
     * must fail fast (no reclaim, no I/O) instead of freeing memory at length (faultlab only:
     * natively the program stops before this, as the host vDSO has no prefetch_page) */
    long total_kb = meminfo_kb("MemTotal:");
    if (total_kb > 1024) {
        char pressure_path[280];
        snprintf(pressure_path, sizeof(pressure_path), "%s/prefetch_cost_pressure.dat", dir);
        ensure_file(pressure_path, SLOT_PAGES);
        drop_caches();
        mlockall(MCL_CURRENT);          /* keep this program's own pages: no refault can be served */
        const unsigned char *cold2 = map_random(pressure_path, SLOT_PAGES);   /* new, not locked */
        /* MAP_LOCKED populates what it can: RAM ends up full of locked, unreclaimable pages */
        size_t len = ((size_t)total_kb * 1024) & ~(size_t)(PAGE - 1);
        void *fill = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
        if (fill != MAP_FAILED) {
            d = timed_call(prefetch_page, cold2, &r);
            report_cost("pressure", d, base, r);
            munmap(fill, len);
        }
        munlockall();
        unlink(pressure_path);
    }

    cost_cleanup(&cs);
    return 0;
}

static long __attribute__((noinline)) call_loop(prefetch_fn f, const void *const *ptrs, long reps)
{
    long fails = 0;
    for (long k = 0; k < reps; k++)
        fails += f(ptrs[k & (NSLOT - 1)]) != 0;
    return fails;
}

static int cost_loop(const char *which, long reps, const char *dir)
{
    struct cost_setup cs;
    const void *ptrs[NSLOT];
    prefetch_fn f = prefetch_page;
    int per_slot = 0;

    cost_setup(&cs, dir);
    for (int k = 0; k < NSLOT; k++) {
        if (!strcmp(which, "present") || !strcmp(which, "noop"))
            ptrs[k] = present_page;
        else if (!strcmp(which, "null"))
            ptrs[k] = NULL;
        else if (!strcmp(which, "cached"))
            ptrs[k] = cs.cached + (long)k * SLOT_PAGES * PAGE, per_slot = 1;
        else if (!strcmp(which, "cold"))
            ptrs[k] = cs.cold + (long)k * SLOT_PAGES * PAGE, per_slot = 1;
        else {
            fprintf(stderr, "FAIL: unknown case %s (present, cached, cold, null, noop)\n", which);
            return 1;
        }
    }
    if (!strcmp(which, "noop"))
        f = noop_page;
    if (per_slot && reps > NSLOT) {
        fprintf(stderr, "FAIL: at most %d calls for %s\n", NSLOT, which);
        return 1;
    }
    long fails = call_loop(f, ptrs, reps);
    printf("calls %ld\n", reps);
    printf("fail %ld\n", fails);
    cost_cleanup(&cs);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: prefetch_bench FILE NPAGES COMPUTE_ITERS DISTANCE [cold|warm]\n"
                    "       prefetch_bench --cost [DIR]\n"
                    "       prefetch_bench --cost-loop CASE REPS [DIR]\n");
    return 2;
}

int main(int argc, char **argv)
{
    prefetch_page = (prefetch_fn)vdso_sym("LINUX_2.6", "__vdso_prefetch_page");
    int is_cost = argc >= 2 && !strcmp(argv[1], "--cost") && argc <= 3;
    int is_loop = argc >= 4 && !strcmp(argv[1], "--cost-loop") && argc <= 5;
    int is_bench = !is_cost && !is_loop && (argc == 5 || argc == 6) && argv[1][0] != '-';
    if (!is_cost && !is_loop && !is_bench)
        return usage();
    if (!prefetch_page) {
        printf("no prefetch_page\n");
        return 0;
    }
    if (is_cost)
        return cost(argc > 2 ? argv[2] : "/home");
    if (is_loop)
        return cost_loop(argv[2], parse_long(argv[3], "REPS", 0, 1L << 30), argc > 4 ? argv[4] : "/home");
    return bench(argc, argv);
}
