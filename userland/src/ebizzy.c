/* An ebizzy-like benchmark, after `ebizzy -mTRp` (the SPF series' measurement): each thread repeatedly
 * maps a chunk of random size (1 to CHUNK bytes in whole 8-byte records, like -R; CHUNK is ebizzy's -s,
 * with an optional K or M suffix) with mmap (-m), writes one byte to each of its pages (-T: just touch
 * the pages), and unmaps it; a record is one such round. With SEARCHES > 0 each round also searches the
 * chunk that many times for random keys (the copy-and-search mode of ebizzy without -T). Prints records
 * per second of (simulated) time, measured with clock_gettime(CLOCK_MONOTONIC) like ebizzy's gettimeofday.
 *
 * ebizzy 0.3 itself (the release the series ran) draws its -R sizes with `*state *= 1103515245 + 12345`
 * from a state of 0, so every size it draws is one record: each of its records maps, touches and unmaps
 * a single page. CHUNK = 8 reproduces that; the default 512K gives the sizes ebizzy meant to draw.
 * With WINDOW_MS > 0 the rate is a steady-state one (steady.h): windows of WINDOW_MS until the last
 * three agree within TOL_PCT percent (default 5), MILLISECONDS at most; the records/s line is then
 * that rate.
 * usage: ebizzy THREADS MILLISECONDS CHUNK [SEARCHES [WINDOW_MS [TOL_PCT]]] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "steady.h"

#define PAGE 4096

static int nthreads = 4;
static long chunk_bytes = 512 << 10;
static double duration = 0.002;
static int searches;
static double window, tol = 0.05;
static volatile int stop;
static long records[64];
static pthread_barrier_t start_barrier;
static int nthreads_running;
static int ready;                    /* workers waiting at the barrier */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long xorshift(unsigned long *s)
{
    unsigned long x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void *worker(void *arg)
{
    long id = (long)arg;
    unsigned long seed = 0x9E3779B97F4A7C15UL * (id + 1);
    size_t nrec = chunk_bytes / sizeof(unsigned long);
    __atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
    pthread_barrier_wait(&start_barrier);
    while (!stop) {
        size_t bytes = (xorshift(&seed) % nrec + 1) * sizeof(unsigned long);
        unsigned char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            perror("mmap");
            exit(1);
        }
        for (size_t i = 0; i < bytes; i += PAGE)      /* touch: the faults are the work */
            mem[i] = 0xff;
        for (int s = 0; s < searches; s++) {           /* optional: search for a key on the pages */
            unsigned char key = (unsigned char)xorshift(&seed) | 1;
            for (size_t i = 0; i < bytes; i += PAGE)
                if (mem[i] == key)
                    break;
        }
        munmap(mem, bytes);
        records[id]++;
    }
    return NULL;
}

/* Every worker's records so far (read while they run). */
static long total_records(void)
{
    long total = 0;
    for (int i = 0; i < nthreads_running; i++)
        total += __atomic_load_n(&records[i], __ATOMIC_RELAXED);
    return total;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        nthreads = atoi(argv[1]);
    if (argc > 2)
        duration = atoi(argv[2]) / 1000.0;
    if (argc > 3) {
        char *end;
        chunk_bytes = strtol(argv[3], &end, 10);
        if (*end == 'K' || *end == 'k')
            chunk_bytes <<= 10, end++;
        else if (*end == 'M' || *end == 'm')
            chunk_bytes <<= 20, end++;
        if (*end)
            return 2;
    }
    if (argc > 4)
        searches = atoi(argv[4]);
    if (argc > 5)
        window = atoi(argv[5]) / 1000.0;
    if (argc > 6)
        tol = atoi(argv[6]) / 100.0;
    if (nthreads < 1 || nthreads > 64 || chunk_bytes < 8 || searches < 0 || window < 0 || tol <= 0)
        return 2;
    nthreads_running = nthreads;
    pthread_t th[64];
    pthread_barrier_init(&start_barrier, NULL, nthreads + 1);
    for (long i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    /* the clock starts before the workers do (as ebizzy reads it before setting threads_go): with more
     * threads than CPUs, the main thread may wait for a CPU once they run */
    while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < nthreads) {
        struct timespec ts = {0, 10000};
        nanosleep(&ts, NULL);
    }
    double t0 = now();
    pthread_barrier_wait(&start_barrier);
    static struct steady st;
    if (window > 0) {
        steady_measure(&st, total_records, t0, window, duration, tol);
    } else {
        while (now() - t0 < duration) {
            struct timespec ts = {0, 100000};        /* check every 100 us */
            nanosleep(&ts, NULL);
        }
    }
    stop = 1;
    double t1 = now();
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    long total = 0;
    for (int i = 0; i < nthreads; i++)
        total += records[i];
    printf("threads %d chunk %ld bytes records %ld\n", nthreads, chunk_bytes, total);
    if (window > 0) {
        steady_print(&st);
        printf("%ld records/s\n", (long)st.rate);
    } else {
        printf("%ld records/s\n", (long)(total / (t1 - t0)));
    }
    return 0;
}
