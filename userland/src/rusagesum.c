/* getrusage(RUSAGE_SELF) sums every thread of the process, RUSAGE_THREAD is the caller's alone
 * (kernel/sys.c getrusage: RUSAGE_SELF adds each live thread's nvcsw/nivcsw and the signal struct's
 * totals of the threads that ended). A peer thread blocks in read() N times (a pipe ping-pong with the
 * main thread) and exits; after pthread_join the main thread prints
 *   self S main M peer P
 * S = RUSAGE_SELF ru_nvcsw + ru_nivcsw, M = its own RUSAGE_THREAD count, P = the peer's RUSAGE_THREAD
 * count just before it ended. Run it pinned to one CPU natively.  usage: rusagesum N */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static int ping[2], pong[2], rounds;
static long peer_switches;

static long switches(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru) != 0) {
        perror("getrusage");
        exit(1);
    }
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

static void *peer(void *arg)
{
    char c;
    (void)arg;
    for (int i = 0; i < rounds; i++)
        if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1) {
            perror("peer");
            exit(1);
        }
    peer_switches = switches(RUSAGE_THREAD);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t t;
    char c = 'x';
    if (argc != 2 || (rounds = atoi(argv[1])) < 1) {
        fprintf(stderr, "usage: rusagesum N\n");
        return 2;
    }
    if (pipe(ping) || pipe(pong) || pthread_create(&t, NULL, peer, NULL)) {
        perror("rusagesum");
        return 1;
    }
    for (int i = 0; i < rounds; i++)
        if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) {
            perror("main");
            return 1;
        }
    pthread_join(t, NULL);
    long self = switches(RUSAGE_SELF), mine = switches(RUSAGE_THREAD);
    printf("self %ld main %ld peer %ld\n", self, mine, peer_switches);
    return 0;
}
