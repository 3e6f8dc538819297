#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
static volatile int stop; static long ops[64], mapsize; static int shared; static pthread_barrier_t start;
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec / 1e9; }
static void *worker(void *arg) {
    long id = (long)arg; char path[64]; snprintf(path, sizeof path, "/tmp/pf23.%ld", id);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, mapsize)) exit(1);
    unlink(path); pthread_barrier_wait(&start);
    while (!stop) {
        char *p = mmap(NULL, mapsize, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) exit(1);
        for (long i = 0; i < mapsize && !stop; i += 4096) { p[i] = 0; ops[id]++; }
        munmap(p, mapsize);
    }
    return NULL;
}
int main(int argc, char **argv) {
    if (argc < 5) return 2;
    shared = !strcmp(argv[1], "shared"); int n = atoi(argv[2]); double dur = atoi(argv[3]) / 1000.0;
    mapsize = atol(argv[4]) << 10; pthread_t th[64];
    pthread_barrier_init(&start, NULL, n + 1);
    for (long i = 0; i < n; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    pthread_barrier_wait(&start);
    double t0 = now();
    while (now() - t0 < dur) { struct timespec ts = {0, 100000}; nanosleep(&ts, NULL); }
    stop = 1; double t1 = now();
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    long tot = 0; for (int i = 0; i < n; i++) tot += ops[i];
    printf("%s threads %d ops %ld\n%ld ops/s\n", argv[1], n, tot, (long)(tot / (t1 - t0)));
    return 0;
}
