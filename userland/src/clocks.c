/*
 * clocks: reads the clocks glibc serves from the vDSO and the TSC around a compute loop,
 * writes into the vDSO (must fault) when given "poke". Output is for tests, not for native diffing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <time.h>
#include <x86intrin.h>

int main(int argc, char **argv)
{
    struct timespec a, b, real;
    struct timeval tv;
    unsigned long t0 = __rdtsc();
    clock_gettime(CLOCK_MONOTONIC, &a);
    volatile long x = 0;
    for (long i = 0; i < 200000; i++)
        x += i;
    clock_gettime(CLOCK_MONOTONIC, &b);
    unsigned long t1 = __rdtsc();
    clock_gettime(CLOCK_REALTIME, &real);
    gettimeofday(&tv, NULL);
    time_t now = time(NULL);
    printf("tsc_delta %lu\n", t1 - t0);
    printf("mono_delta_ns %ld\n", (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec));
    printf("realtime %ld.%09ld\n", (long)real.tv_sec, real.tv_nsec);
    printf("gettimeofday %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    printf("time %ld\n", (long)now);
    if (argc > 1 && !strcmp(argv[1], "poke")) {
        char *vdso = (char *)getauxval(AT_SYSINFO_EHDR);
        fflush(stdout);
        vdso[64] = 1;          /* read-only mapping: SIGSEGV */
        printf("wrote into the vDSO\n");
    }
    return 0;
}
