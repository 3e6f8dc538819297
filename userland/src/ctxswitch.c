/* Context switches as a task counts them (getrusage RUSAGE_THREAD ru_nvcsw + ru_nivcsw, and
 * /proc/self/status voluntary_ctxt_switches / nonvoluntary_ctxt_switches for the main thread):
 *   pingpong N   two threads pass a byte N times over two pipes; each blocks in read() N times
 *   sleep N      the main thread sleeps N times for 200 us (a switch to idle and back each time)
 * Prints each thread's switches during the phase (deltas after a first round, so start-up work and the
 * first touch of the code do not count).
 * Run it pinned to one CPU natively: a switch is a task leaving its CPU (__schedule's switch_count). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int ping[2], pong[2], rounds;
static long peer_switches;

static long thread_switches(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0) {
        perror("getrusage");
        exit(1);
    }
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

/* The main thread's voluntary + nonvoluntary switches from /proc/self/status. */
static long status_switches(void)
{
    char line[256];
    long sum = 0, v;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        perror("/proc/self/status");
        exit(1);
    }
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
            sum += v;
    fclose(f);
    return sum;
}

static void *peer(void *arg)
{
    char c;
    long before = 0;
    (void)arg;
    for (int i = 0; i <= rounds; i++) {
        if (i == 1)
            before = thread_switches();
        if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1) {
            perror("peer");
            exit(1);
        }
    }
    peer_switches = thread_switches() - before;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ctxswitch pingpong|sleep N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    thread_switches();
    status_switches();
    if (strcmp(argv[1], "pingpong") == 0) {
        pthread_t t;
        char c = 'x';
        rounds = n;
        if (pipe(ping) || pipe(pong)) {
            perror("pipe");
            return 1;
        }
        if (pthread_create(&t, NULL, peer, NULL)) {
            perror("pthread_create");
            return 1;
        }
        long before = 0, sbefore = 0;
        for (int i = 0; i <= n; i++) {
            if (i == 1) {
                before = thread_switches();
                sbefore = status_switches();
            }
            if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) {
                perror("main");
                return 1;
            }
        }
        long mine = thread_switches() - before, smine = status_switches() - sbefore;
        pthread_join(t, NULL);
        printf("pingpong %d main %ld status %ld peer %ld\n", n, mine, smine, peer_switches);
    } else if (strcmp(argv[1], "sleep") == 0) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        long before = thread_switches(), sbefore = status_switches();
        for (int i = 0; i < n; i++)
            nanosleep(&ts, NULL);
        printf("sleep %d main %ld status %ld\n", n, thread_switches() - before, status_switches() - sbefore);
    } else {
        fprintf(stderr, "ctxswitch: unknown mode %s\n", argv[1]);
        return 2;
    }
    return 0;
}
