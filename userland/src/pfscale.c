/* A will-it-scale page_fault1-like test: each thread maps 128 KiB of anonymous memory, writes every
 * page, unmaps it, and counts one operation per page faulted. Prints operations per second of
 * (simulated) time; with WINDOW_MS > 0 a steady-state rate (steady.h: windows until the last three agree
 * within TOL_PCT percent, default 5, MILLISECONDS at most).
 * usage: pfscale THREADS MILLISECONDS [WINDOW_MS [TOL_PCT]] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "steady.h"

#define MAPSIZE (128 << 10)
static volatile int stop;
static long ops[64];
static pthread_barrier_t start;
static int nthreads;

static void *worker(void *arg)
{
    long id = (long)arg;
    pthread_barrier_wait(&start);
    while (!stop) {
        char *p = mmap(NULL, MAPSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            exit(1);
        for (int i = 0; i < MAPSIZE; i += 4096) {
            p[i] = 1;
            ops[id]++;
        }
        munmap(p, MAPSIZE);
    }
    return NULL;
}

/* Every worker's operations so far (read while they run). */
static long total_ops(void)
{
    long total = 0;
    for (int i = 0; i < nthreads; i++)
        total += __atomic_load_n(&ops[i], __ATOMIC_RELAXED);
    return total;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2;
    double duration = (argc > 2 ? atoi(argv[2]) : 2) / 1000.0;
    double window = (argc > 3 ? atoi(argv[3]) : 0) / 1000.0;
    double tol = (argc > 4 ? atoi(argv[4]) : 5) / 100.0;
    if (n < 1 || n > 64 || window < 0 || tol <= 0)
        return 2;
    nthreads = n;
    pthread_t th[64];
    pthread_barrier_init(&start, NULL, n + 1);
    for (long i = 0; i < n; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    pthread_barrier_wait(&start);
    static struct steady st;
    steady_run(&st, total_ops, &stop, window, duration, tol);
    long total = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += ops[i];
    }
    printf("threads %d operations %ld\n", n, total);
    steady_report(&st, window, total);
    return 0;
}
