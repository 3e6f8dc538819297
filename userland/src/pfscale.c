/* A will-it-scale page_fault1-like test: each thread maps 128 KiB of anonymous memory, writes every
 * page, unmaps it, and counts one operation per page faulted. Prints operations per second of
 * (simulated) time.  usage: pfscale THREADS MILLISECONDS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define MAPSIZE (128 << 10)
static volatile int stop;
static long ops[64];
static pthread_barrier_t start;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

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

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2;
    double duration = (argc > 2 ? atoi(argv[2]) : 2) / 1000.0;
    if (n < 1 || n > 64)
        return 2;
    pthread_t th[64];
    pthread_barrier_init(&start, NULL, n + 1);
    for (long i = 0; i < n; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    pthread_barrier_wait(&start);
    double t0 = now();
    while (now() - t0 < duration) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    stop = 1;
    double t1 = now();
    long total = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += ops[i];
    }
    printf("threads %d operations %ld\n%ld ops/s\n", n, total, (long)(total / (t1 - t0)));
    return 0;
}
