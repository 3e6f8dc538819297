/*
 * timing_calibrate [ITERATIONS]
 *
 * Microbenchmarks of this core for `faultlab calibrate`: each test runs a
 * block repeated 100 times, ITERATIONS times (default 50000), 25 times, and
 * prints "NAME NS CYCLES LEAST" per instruction measured: the best time, and
 * the median and the least of its times over the add chain's measured just
 * before and after (-1 when no run had steady neighbours: the host may be
 * shared and its clock may change).  Latency tests are
 * dependency chains (each instruction waits for the one before), throughput
 * tests independent instructions.  The clock follows from the add chain
 * (one cycle per dependent add on every x86-64 core).  Built with -O2 -static
 * by userland/Makefile; `faultlab calibrate` turns its figures into a profile.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define R10(x) x x x x x x x x x x
#define R100(x) R10(R10(x))

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);     /* not the time other threads of a shared host run */
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

#define REPS 25
static long iters = 50000;
static uint64_t sink;
static uint64_t cell[64] __attribute__((aligned(64)));
#define RING 256
static uint64_t ring[RING * 8] __attribute__((aligned(64)));

#define TEST(name, n, setup, body, clobber...)                               \
    static double name(void)                                                 \
    {                                                                        \
        uint64_t a = 1, b = 3;                                               \
        uint64_t *p = cell;                                                  \
        double t0 = now_ns();                                                \
        for (long i = 0; i < iters; i++) {                                   \
            __asm__ volatile(setup R100(body)                                \
                             : "+r"(a), "+r"(b), "+r"(p) : : clobber);       \
        }                                                                    \
        sink += a + b;                                                       \
        return (now_ns() - t0) / (iters * 100.0 * (n));                      \
    }

TEST(add_lat, 1, "", "add %1, %0\n\t", "cc")
TEST(add_tput, 8, "", "add $1, %%r8\n\tadd $1, %%r9\n\tadd $1, %%r10\n\tadd $1, %%r11\n\t"
     "add $1, %%r12\n\tadd $1, %%r13\n\tadd $1, %%r14\n\tadd $1, %%r15\n\t",
     "cc", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
TEST(nop_tput, 1, "", "nop\n\t", "cc")
TEST(imul_lat, 1, "", "imul %0, %0\n\t", "cc")
TEST(imul_tput, 8, "", "imul %%r8, %%r8\n\timul %%r9, %%r9\n\timul %%r10, %%r10\n\timul %%r11, %%r11\n\t"
     "imul %%r12, %%r12\n\timul %%r13, %%r13\n\timul %%r14, %%r14\n\timul %%r15, %%r15\n\t",
     "cc", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
/* div r64 with a 32-bit quotient: rax = (rax / 3) + 0x40000000 (the add: 1 cycle, subtracted) */
TEST(div64_lat, 1, "mov $3, %%rcx\n\tmov $0x40000000, %%rax\n\t", "xor %%edx, %%edx\n\tdiv %%rcx\n\tadd $0x40000000, %%rax\n\t",
     "cc", "rax", "rcx", "rdx")
TEST(div32_lat, 1, "mov $3, %%ecx\n\tmov $0x4000000, %%eax\n\t", "xor %%edx, %%edx\n\tdiv %%ecx\n\tadd $0x4000000, %%eax\n\t",
     "cc", "rax", "rcx", "rdx")
TEST(load_lat, 1, "", "mov (%2), %2\n\t", "cc", "memory")
TEST(load_tput, 4, "", "mov (%2), %%r8\n\tmov 8(%2), %%r9\n\tmov 16(%2), %%r10\n\tmov 24(%2), %%r11\n\t",
     "cc", "r8", "r9", "r10", "r11", "memory")
TEST(store_forward, 1, "", "mov %0, 8(%2)\n\tmov 8(%2), %0\n\t", "cc", "memory")
TEST(fp_add_lat, 1, "", "addsd %%xmm1, %%xmm0\n\t", "cc", "xmm0", "xmm1")
TEST(fp_add_tput, 8, "", "addsd %%xmm8, %%xmm0\n\taddsd %%xmm8, %%xmm1\n\taddsd %%xmm8, %%xmm2\n\t"
     "addsd %%xmm8, %%xmm3\n\taddsd %%xmm8, %%xmm4\n\taddsd %%xmm8, %%xmm5\n\taddsd %%xmm8, %%xmm6\n\t"
     "addsd %%xmm8, %%xmm7\n\t", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8")
TEST(fp_mul_lat, 1, "", "mulsd %%xmm1, %%xmm0\n\t", "cc", "xmm0", "xmm1")
TEST(fp_mul_tput, 8, "", "mulsd %%xmm8, %%xmm0\n\tmulsd %%xmm8, %%xmm1\n\tmulsd %%xmm8, %%xmm2\n\t"
     "mulsd %%xmm8, %%xmm3\n\tmulsd %%xmm8, %%xmm4\n\tmulsd %%xmm8, %%xmm5\n\tmulsd %%xmm8, %%xmm6\n\t"
     "mulsd %%xmm8, %%xmm7\n\t", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8")
/* six addsd and six mulsd, all independent: whether additions and multiplications share pipes */
TEST(fp_mix_tput, 12, "", "addsd %%xmm8, %%xmm0\n\taddsd %%xmm8, %%xmm1\n\taddsd %%xmm8, %%xmm2\n\t"
     "addsd %%xmm8, %%xmm3\n\tmulsd %%xmm9, %%xmm4\n\tmulsd %%xmm9, %%xmm5\n\tmulsd %%xmm9, %%xmm6\n\t"
     "mulsd %%xmm9, %%xmm7\n\tmulsd %%xmm9, %%xmm10\n\tmulsd %%xmm9, %%xmm11\n\taddsd %%xmm8, %%xmm12\n\t"
     "addsd %%xmm8, %%xmm13\n\t", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
     "xmm9", "xmm10", "xmm11", "xmm12", "xmm13")
TEST(fp_fma_lat, 1, "", "vfmadd231sd %%xmm1, %%xmm2, %%xmm0\n\t", "cc", "xmm0", "xmm1", "xmm2")
TEST(fp_div_lat, 1, "mov $1, %%eax\n\tcvtsi2sd %%eax, %%xmm1\n\tcvtsi2sd %%eax, %%xmm0\n\t",
     "divsd %%xmm1, %%xmm0\n\t", "cc", "rax", "xmm0", "xmm1")
TEST(fp_div_tput, 8, "mov $1, %%eax\n\tcvtsi2sd %%eax, %%xmm8\n\t",
     "divsd %%xmm8, %%xmm0\n\tdivsd %%xmm8, %%xmm1\n\tdivsd %%xmm8, %%xmm2\n\tdivsd %%xmm8, %%xmm3\n\t"
     "divsd %%xmm8, %%xmm4\n\tdivsd %%xmm8, %%xmm5\n\tdivsd %%xmm8, %%xmm6\n\tdivsd %%xmm8, %%xmm7\n\t",
     "cc", "rax", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8")
TEST(fp_sqrt_lat, 1, "mov $1, %%eax\n\tcvtsi2sd %%eax, %%xmm0\n\t", "sqrtsd %%xmm0, %%xmm0\n\t", "cc", "rax", "xmm0")

int main(int argc, char **argv)
{
    if (argc > 1)
        iters = atol(argv[1]);
    if (iters < 1) {
        fprintf(stderr, "usage: timing_calibrate [ITERATIONS]\n");
        return 2;
    }
    /* the L1 pointer chase: a ring through the 256 cache lines of 16 KiB in a random order (Sattolo's
     * shuffle), which no prefetcher or predictor can follow */
    unsigned order[RING], x = 2463534242u;
    for (unsigned i = 0; i < RING; i++)
        order[i] = i;
    for (unsigned i = RING - 1; i > 0; i--) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        unsigned j = x % i, t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (unsigned i = 0; i < RING; i++)
        ring[order[i] * 8] = (uint64_t)&ring[order[(i + 1) % RING] * 8];
    cell[0] = (uint64_t)&ring[order[0] * 8];
    struct { const char *name; double (*fn)(void); } tests[] = {
        {"add_lat", add_lat}, {"add_tput", add_tput}, {"nop_tput", nop_tput},
        {"imul_lat", imul_lat}, {"imul_tput", imul_tput}, {"div64_lat", div64_lat},
        {"div32_lat", div32_lat}, {"load_lat", load_lat}, {"load_tput", load_tput},
        {"store_forward", store_forward}, {"fp_add_lat", fp_add_lat}, {"fp_add_tput", fp_add_tput},
        {"fp_mul_lat", fp_mul_lat}, {"fp_mul_tput", fp_mul_tput}, {"fp_mix_tput", fp_mix_tput}, {"fp_fma_lat", fp_fma_lat},
        {"fp_div_lat", fp_div_lat}, {"fp_div_tput", fp_div_tput}, {"fp_sqrt_lat", fp_sqrt_lat},
    };
    /* each run of a test between two runs of the add chain: its cycles are its time over theirs when
     * the two agree within 3% (the clock did not change meanwhile); the best time in ns, the median and
     * the least of those ratios */
    for (unsigned i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        double best = 1e30, ratio[REPS];
        int n = 0;
        for (int rep = 0; rep < REPS; rep++) {
            double before = add_lat(), t = tests[i].fn(), after = add_lat();
            if (t < best)
                best = t;
            double lo = before < after ? before : after, hi = before < after ? after : before;
            if (hi <= lo * 1.03) {
                double r = t / ((before + after) / 2), *q = ratio + n++;
                while (q > ratio && q[-1] > r) {       /* insertion: kept sorted */
                    q[0] = q[-1];
                    q--;
                }
                *q = r;
            }
        }
        printf("%s %.5f %.4f %.4f\n", tests[i].name, best, n ? ratio[n / 2] : -1.0, n ? ratio[0] : -1.0);
    }
    return sink == 42;
}
