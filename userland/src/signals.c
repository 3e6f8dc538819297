/* Signal handlers: raise, pthread_kill to a spinning thread, a handler interrupting a blocked thread
 * (EINTR), SA_RESETHAND, blocked signals delivered on unblock, and pthread_cancel of a thread blocked in
 * a condition wait (glibc's SIGCANCEL handler unwinds through the signal frame). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got, got_in_thread, info_ok;
static volatile int spin_go = 1;
static pthread_t spinner_id;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got++;
    if (si->si_signo == sig && (si->si_code == SI_TKILL || si->si_code == SI_USER))
        info_ok = 1;
    if (pthread_equal(pthread_self(), spinner_id)) {
        got_in_thread = 1;
        spin_go = 0;
    }
}

static void *spinner(void *arg)
{
    (void)arg;
    double x = 1.0;
    while (spin_go)
        x = x * 1.0000001 + 0.5;        /* no system calls: the signal must still arrive */
    return x > 0 ? (void *)1 : NULL;
}

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cleanup_ran;

static void cleanup(void *arg) { (void)arg; cleanup_ran = 1; pthread_mutex_unlock(&m); }

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    pthread_cleanup_push(cleanup, NULL);
    for (;;)
        pthread_cond_wait(&cv, &m);      /* a cancellation point */
    pthread_cleanup_pop(1);
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    int r = usleep(50000);
    return (void *)(long)(r < 0 && errno == EINTR);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("raise: handler ran %d, siginfo ok %d\n", got, info_ok);

    pthread_create(&spinner_id, NULL, spinner, NULL);
    pthread_kill(spinner_id, SIGUSR1);
    void *r;
    pthread_join(spinner_id, &r);
    printf("pthread_kill to a spinning thread: handled there %d, it ended %ld\n", got_in_thread, (long)r);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int before = got;
    raise(SIGUSR1);
    printf("blocked: not yet %d\n", got == before);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("unblocked: delivered %d\n", got == before + 1);

    pthread_t s;
    pthread_create(&s, NULL, sleeper, NULL);
    usleep(5000);
    pthread_kill(s, SIGUSR1);
    pthread_join(s, &r);
    printf("sleeping thread interrupted with EINTR %ld\n", (long)r);

    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    struct sigaction old;
    sigaction(SIGUSR2, NULL, &old);
    printf("SA_RESETHAND: back to default %d, flags kept %d\n", old.sa_handler == SIG_DFL,
           (old.sa_flags & (SA_SIGINFO | SA_RESETHAND)) == (SA_SIGINFO | SA_RESETHAND));

    pthread_t w;
    pthread_create(&w, NULL, waiter, NULL);
    usleep(5000);
    pthread_cancel(w);
    pthread_join(w, &r);
    printf("cancelled in a condition wait: %d, cleanup ran %d\n", r == PTHREAD_CANCELED, cleanup_ran);
    return 0;
}
