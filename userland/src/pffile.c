/* will-it-scale page_fault2 / page_fault3 (threads): each thread creates its own file of SIZE_KB KiB
 * (mkstemp in /tmp, ftruncate), then maps it (MAP_PRIVATE for page_fault2: every write fault copies the
 * cached file page; MAP_SHARED for page_fault3: every write fault maps the cached page writable), writes
 * one byte to each page and unmaps it, in a loop; one operation per page faulted. No thread changes
 * another's mappings; they share only the address space. Prints operations per second of (simulated)
 * time; with WINDOW_MS > 0 a steady-state rate (steady.h).
 * The files are written first, so their pages are in the page cache before the loops start.
 * usage: pffile THREADS MILLISECONDS private|shared [SIZE_KB [WINDOW_MS [TOL_PCT]]] */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "steady.h"

static volatile int stop;
static long ops[64];
static int fds[64];
static pthread_barrier_t start;
static int nthreads, shared;
static size_t size;

static void *worker(void *arg)
{
    long id = (long)arg;
    pthread_barrier_wait(&start);
    while (!stop) {
        char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fds[id], 0);
        if (p == MAP_FAILED) {
            perror("mmap");
            exit(1);
        }
        for (size_t i = 0; i < size; i += 4096) {
            p[i] = 0;
            __atomic_add_fetch(&ops[id], 1, __ATOMIC_RELAXED);
        }
        munmap(p, size);
    }
    return NULL;
}

static long total_ops(void)
{
    long total = 0;
    for (int i = 0; i < nthreads; i++)
        total += __atomic_load_n(&ops[i], __ATOMIC_RELAXED);
    return total;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: pffile THREADS MILLISECONDS private|shared [SIZE_KB [WINDOW_MS [TOL_PCT]]]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    double duration = atoi(argv[2]) / 1000.0;
    shared = strcmp(argv[3], "shared") == 0;
    size = (size_t)(argc > 4 ? atoi(argv[4]) : 512) << 10;
    double window = (argc > 5 ? atoi(argv[5]) : 0) / 1000.0;
    double tol = (argc > 6 ? atoi(argv[6]) : 5) / 100.0;
    if (n < 1 || n > 64 || (!shared && strcmp(argv[3], "private")) || size < 4096 || window < 0 || tol <= 0)
        return 2;
    nthreads = n;
    for (int i = 0; i < n; i++) {
        char path[] = "/tmp/willitscale.XXXXXX";
        fds[i] = mkstemp(path);
        if (fds[i] < 0 || unlink(path)) {
            perror("pffile");
            return 1;
        }
        static char zeros[1 << 16];               /* write the file: its pages are in the page cache */
        for (size_t off = 0; off < size; off += sizeof zeros)
            if (pwrite(fds[i], zeros, size - off < sizeof zeros ? size - off : sizeof zeros, off) <= 0) {
                perror("pffile: write");
                return 1;
            }
    }
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
    printf("threads %d %s operations %ld\n", n, shared ? "shared" : "private", total);
    steady_report(&st, window, total);
    return 0;
}
