/* Waiting for signals: sigpending of a blocked signal, sigsuspend (the handler runs, the old mask
 * comes back), sigwait and sigtimedwait (taking a blocked signal without a handler running; EAGAIN at
 * the timeout; EINVAL for a bad timeout), a blocked default-fatal signal that stays pending until
 * sigwait takes it, and the usual server pattern: every thread blocks SIGUSR2, a dedicated thread
 * sigwait()s for it and another thread sends it with kill() (a process-directed signal).
 * The output must match a native run.  usage: sigwait */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int got;

static void handler(int sig)
{
    got = sig;
}

static void *waiter(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;
    int r = sigwait(set, &sig);
    printf("waiter thread: sigwait %d took signal %d\n", r, sig);
    return NULL;
}

static void *sender(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
    kill(getpid(), SIGUSR2);
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t usr1, empty, pend, now;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigemptyset(&empty);
    sigprocmask(SIG_BLOCK, &usr1, NULL);

    raise(SIGUSR1);
    sigpending(&pend);
    printf("blocked and raised: pending %d, handled %d\n", sigismember(&pend, SIGUSR1), got);
    int r = sigsuspend(&empty);
    int e = errno;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("sigsuspend: %d %s, handled %d, USR1 blocked again %d\n", r, strerror(e), got,
           sigismember(&now, SIGUSR1));

    got = 0;
    raise(SIGUSR1);
    int sig = 0;
    r = sigwait(&usr1, &sig);
    printf("sigwait: %d signal %d, handled %d\n", r, sig, got);

    struct timespec ts = {0, 2000000};
    siginfo_t si;
    r = sigtimedwait(&usr1, &si, &ts);
    e = errno;
    printf("sigtimedwait with nothing pending: %d %s\n", r, strerror(e));
    ts.tv_nsec = 2000000000;
    r = sigtimedwait(&usr1, &si, &ts);
    e = errno;
    printf("sigtimedwait bad timeout: %d %s\n", r, strerror(e));

    /* SIGTERM's default action is fatal, but blocked it waits for sigwait */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    raise(SIGTERM);
    r = sigwait(&term, &sig);
    printf("blocked SIGTERM taken by sigwait: %d signal %d\n", r, sig);

    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);    /* inherited by both threads */
    pthread_t w, s;
    pthread_create(&w, NULL, waiter, &usr2);
    pthread_create(&s, NULL, sender, NULL);
    pthread_join(s, NULL);
    pthread_join(w, NULL);
    printf("done\n");
    return 0;
}
