/*
 * timing_kernels KERNEL [SCALE]
 *
 * The kernels of `faultlab bench timing`: each sets up its data, then times
 * its work (not the set-up) with clock_gettime(CLOCK_PROCESS_CPUTIME_ID): the
 * CPU time of the process, which time given to other processes on a shared
 * host does not disturb (under faultlab: simulated time), and prints
 *     KERNEL ns NANOSECONDS check CHECKSUM
 * The checksum depends only on KERNEL and SCALE (default 1), so a run under
 * faultlab can be compared with a native one.  The compute kernels keep their
 * data in the L1 cache (48 KiB or less): their time is the core's, which the
 * block model prices; the chase_llc and chase_dram kernels are the memory
 * hierarchy's.
 *
 *   intloop    integer arithmetic: a multiply-xorshift hash, four chains
 *   fp         double precision: a polynomial (Horner) and a dot product
 *   memcpy     memcpy of 256-byte and 2 KiB blocks inside 64 KiB (L1/L2)
 *   chase_l1   pointer chase in a 16 KiB random ring (L1 hits)
 *   chase_llc  pointer chase in a 4 MiB random ring (L2/LLC hits)
 *   chase_dram pointer chase in a 96 MiB random ring (LLC misses)
 *   sort       a quicksort of 64 Ki random ints, insertion sorts of 64-int runs
 *   hash       an open-addressing hash table of 2 Ki slots (24 KiB, in L1): inserts, lookups
 *   matmul     a 40x40 double matrix multiply (i-k-j order; 38 KiB, in L1)
 *   syscall    getppid(2) in a loop
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static double t_begin;          /* where the timed work starts: main's call, or after a kernel's set-up */

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        printf("FAIL: malloc %zu\n", n);
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

static uint64_t intloop(long scale)
{
    uint64_t a = 1, b = 2, c = 3, d = 4;
    for (long i = 0; i < 2000000 * scale; i++) {
        a = (a ^ (a >> 29)) * 0xbf58476d1ce4e5b9ull + i;
        b = (b + (b << 7)) ^ (b >> 11);
        c = c * 6364136223846793005ull + 1442695040888963407ull;
        d += (a & 0xff) + (c >> 60);
    }
    return a ^ b ^ c ^ d;
}

static uint64_t fp(long scale)
{
    static double x[4096], y[4096];
    for (int i = 0; i < 4096; i++) {
        x[i] = (double)(next() & 0xffff) / 65536.0;
        y[i] = (double)(next() & 0xffff) / 65536.0;
    }
    t_begin = now_ns();
    double acc = 0, dot = 0;
    for (long r = 0; r < 800 * scale; r++) {
        for (int i = 0; i < 4096; i++) {
            double v = x[i];
            acc += ((((0.5 * v + 0.25) * v + 0.125) * v + 0.0625) * v + 0.03125);
            dot += x[i] * y[(i * 7) & 4095];
        }
    }
    uint64_t bits;
    double s = acc + dot;
    memcpy(&bits, &s, sizeof bits);
    return bits >> 20;          /* the low bits may differ with the rounding of the two sums */
}

static uint64_t do_memcpy(long scale)
{
    char *buf = xmalloc(65536 * 2);
    for (int i = 0; i < 65536; i++)
        buf[i] = (char)next();
    uint64_t sum = 0;
    for (long r = 0; r < 800 * scale; r++) {
        for (int off = 0; off < 65536; off += 256)
            memcpy(buf + 65536 + ((off + r * 64) & 65535 & ~255), buf + off, 256);
        for (int off = 0; off < 65536; off += 2048)
            memcpy(buf + 65536 + off, buf + ((off + r * 2048) & 65535), 2048);
        sum += (unsigned char)buf[65536 + (r & 65535)];
    }
    return sum;
}

/* a ring of n pointers, one per 64-byte line, in a random cyclic order (Sattolo) */
static uint64_t chase(size_t bytes, long steps)
{
    size_t n = bytes / 64;
    void **mem = xmalloc(bytes);
    size_t *order = xmalloc(n * sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = next() % i;
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        mem[order[i] * 8] = &mem[order[(i + 1) % n] * 8];
    void **p = &mem[order[0] * 8];
    for (size_t i = 0; i < n; i++)      /* one lap first: every page mapped, the cache warm */
        p = *p;
    t_begin = now_ns();
    for (long i = 0; i < steps; i++)
        p = *p;
    return (uint64_t)((char *)p - (char *)mem);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static uint64_t sort(long scale)
{
    int n = 65536;
    int *v = xmalloc(n * sizeof *v);
    uint64_t sum = 0;
    for (long r = 0; r < scale; r++) {
        for (int i = 0; i < n; i++)
            v[i] = (int)(next() % 1000000);
        qsort(v, n, sizeof *v, cmp_int);
        for (int k = 0; k < n; k += 64) {         /* insertion sort of 64-int runs, reversed first */
            for (int i = 0; i < 32; i++) {
                int t = v[k + i];
                v[k + i] = v[k + 63 - i];
                v[k + 63 - i] = t;
            }
            for (int i = k + 1; i < k + 64; i++) {
                int x = v[i], j = i - 1;
                while (j >= k && v[j] > x) {
                    v[j + 1] = v[j];
                    j--;
                }
                v[j + 1] = x;
            }
        }
        sum += (uint64_t)v[n / 2] + v[n - 1];
    }
    return sum;
}

static uint64_t hash(long scale)
{
    enum { SLOTS = 2048 };
    uint64_t *keys = xmalloc(SLOTS * sizeof *keys);
    uint32_t *vals = xmalloc(SLOTS * sizeof *vals);
    uint64_t found = 0;
    for (long r = 0; r < 160 * scale; r++) {
        memset(keys, 0, SLOTS * sizeof *keys);
        uint64_t s = 12345 + r;
        for (int i = 0; i < SLOTS * 3 / 4; i++) {
            s = s * 6364136223846793005ull + 1;
            uint64_t k = (s >> 16) | 1;
            uint64_t h = (k * 0x9e3779b97f4a7c15ull) >> 53;
            while (keys[h] && keys[h] != k)
                h = (h + 1) & (SLOTS - 1);
            keys[h] = k;
            vals[h] = (uint32_t)i;
        }
        s = 12345 + r;
        for (int i = 0; i < SLOTS; i++) {
            s = s * 6364136223846793005ull + 1;
            uint64_t k = (i & 1) ? (s >> 16) | 1 : (s >> 16) + 2;
            uint64_t h = (k * 0x9e3779b97f4a7c15ull) >> 53;
            while (keys[h] && keys[h] != k)
                h = (h + 1) & (SLOTS - 1);
            if (keys[h] == k)
                found += vals[h];
        }
    }
    return found;
}

static uint64_t matmul(long scale)
{
    enum { N = 40 };
    static double a[N][N], b[N][N], c[N][N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i][j] = (double)((i * 7 + j) % 13) / 8;
            b[i][j] = (double)((i + j * 5) % 11) / 4;
        }
    double s = 0;
    for (long r = 0; r < 500 * scale; r++) {
        memset(c, 0, sizeof c);
        for (int i = 0; i < N; i++)
            for (int k = 0; k < N; k++) {
                double x = a[i][k];
                for (int j = 0; j < N; j++)
                    c[i][j] += x * b[k][j];
            }
        s += c[r % N][(r * 5) % N];
    }
    return (uint64_t)s;
}

static uint64_t sys(long scale)
{
    uint64_t s = 0;
    for (long i = 0; i < 20000 * scale; i++)
        s += (uint64_t)syscall(SYS_getppid);
    return s != 0;
}

int main(int argc, char **argv)
{
    long scale = argc > 2 ? atol(argv[2]) : 1;
    if (argc < 2 || scale < 1) {
        fprintf(stderr, "usage: timing_kernels KERNEL [SCALE]\n");
        return 2;
    }
    const char *k = argv[1];
    uint64_t check;
    t_begin = now_ns();
    if (!strcmp(k, "intloop"))
        check = intloop(scale);
    else if (!strcmp(k, "fp"))
        check = fp(scale);
    else if (!strcmp(k, "memcpy"))
        check = do_memcpy(scale);
    else if (!strcmp(k, "chase_l1"))
        check = chase(16 << 10, 2000000 * scale);
    else if (!strcmp(k, "chase_llc"))
        check = chase(4 << 20, 1000000 * scale);
    else if (!strcmp(k, "chase_dram"))
        check = chase(96 << 20, 300000 * scale);
    else if (!strcmp(k, "sort"))
        check = sort(scale);
    else if (!strcmp(k, "hash"))
        check = hash(scale);
    else if (!strcmp(k, "matmul"))
        check = matmul(scale);
    else if (!strcmp(k, "syscall"))
        check = sys(scale);
    else {
        fprintf(stderr, "timing_kernels: unknown kernel %s\n", k);
        return 2;
    }
    printf("%s ns %.0f check %llu\n", k, now_ns() - t_begin, (unsigned long long)check);
    return 0;
}
