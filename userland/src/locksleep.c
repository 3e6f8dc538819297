/* Tasks that sleep on mmap_lock beside tasks that never sleep: F faulter threads each map one page,
 * write it and unmap it in a loop (mmap and munmap take mmap_lock for write, the fault for read, so
 * the faulters sleep on it), and S spinner threads only count in user mode, always runnable. With at
 * least as many spinners as CPUs no CPU should ever be idle (a task sleeping on the lock leaves its CPU
 * to a runnable one). Prints the faulters' records and the spinners' loops after MS milliseconds.
 * usage: locksleep FAULTERS SPINNERS MS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static volatile int stop;
static long counts[64];
static pthread_barrier_t start;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *faulter(void *arg)
{
    long id = (long)arg;
    pthread_barrier_wait(&start);
    while (!stop) {
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            exit(1);
        p[0] = 1;
        munmap(p, 4096);
        counts[id]++;
    }
    return NULL;
}

static void *spinner(void *arg)
{
    long id = (long)arg;
    pthread_barrier_wait(&start);
    while (!stop)
        for (int i = 0; i < 100; i++)
            __atomic_add_fetch(&counts[id], 1, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: locksleep FAULTERS SPINNERS MS\n");
        return 2;
    }
    int f = atoi(argv[1]), s = atoi(argv[2]);
    double duration = atoi(argv[3]) / 1000.0;
    if (f < 0 || s < 0 || f + s < 1 || f + s > 64)
        return 2;
    pthread_t th[64];
    pthread_barrier_init(&start, NULL, f + s + 1);
    for (long i = 0; i < f + s; i++)
        pthread_create(&th[i], NULL, i < f ? faulter : spinner, (void *)i);
    pthread_barrier_wait(&start);
    double t0 = now();
    while (now() - t0 < duration) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    stop = 1;
    long rec = 0, loops = 0;
    for (int i = 0; i < f + s; i++) {
        pthread_join(th[i], NULL);
        if (i < f)
            rec += counts[i];
        else
            loops += counts[i];
    }
    printf("records %ld loops %ld\n", rec, loops);
    return 0;
}
