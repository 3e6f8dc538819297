/* What a SA_SIGINFO handler learns about who sent a signal: raise (tgkill: SI_TKILL), kill (SI_USER),
 * sigqueue and pthread_sigqueue (rt_sigqueueinfo / rt_tgsigqueueinfo: SI_QUEUE with the value), each
 * with the sender's pid; and the errors of sigqueue. The output must match a native run.
 * usage: siginfo */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile int code, value, pid_ok;

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    code = si->si_code;
    value = si->si_value.sival_int;
    pid_ok = si->si_pid == getpid();
}

static void show(const char *what)
{
    printf("%-16s si_code %d, pid is ours %d, value %d\n", what, code, pid_ok, value);
    code = value = pid_ok = 0;
}

static void *thread_main(void *arg)
{
    (void)arg;
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGRTMIN, &sa, NULL);

    raise(SIGUSR1);
    show("raise");
    kill(getpid(), SIGUSR1);
    show("kill");
    sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 42});
    show("sigqueue");
    pthread_sigqueue(pthread_self(), SIGUSR1, (union sigval){.sival_int = 7});
    show("pthread_sigqueue");

    int r = sigqueue(getpid(), 65, (union sigval){.sival_int = 1});
    printf("sigqueue bad signal: %d %s\n", r, strerror(errno));
    pthread_t th;
    pthread_create(&th, NULL, thread_main, NULL);
    pthread_join(th, NULL);
    r = sigqueue(999999, SIGUSR1, (union sigval){.sival_int = 1});
    printf("sigqueue no such process: %d %s\n", r, strerror(errno));
    return 0;
}
