/* alarm(2), setitimer/getitimer (ITIMER_REAL) and pause(2): a periodic timer interrupting a compute
 * loop, alarm's return value, pause() ended by SIGALRM, an interrupted nanosleep, error codes, and
 * finally a default SIGALRM ending the process. Prints what happened; the output must match a native
 * run (times are only compared coarsely).  usage: itimer */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int ticks, code;

static void on_alarm(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    code = si->si_code;
    ticks++;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_alarm;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGALRM, &sa, NULL);

    struct itimerval it = {{0, 2000}, {0, 2000}}, cur;
    printf("setitimer: %d\n", setitimer(ITIMER_REAL, &it, NULL));
    volatile unsigned long x = 0;
    while (ticks < 5)                       /* no system calls: the timer must still fire */
        x++;
    getitimer(ITIMER_REAL, &cur);
    printf("5 ticks in a compute loop (si_code %#x); interval %ld us, value in (0, 2000]: %d\n", code,
           (long)cur.it_interval.tv_usec,
           cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 2000);
    struct itimerval zero = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &zero, &cur);
    printf("disarmed; old interval %ld us\n", (long)cur.it_interval.tv_usec);

    int r = setitimer(ITIMER_REAL, &(struct itimerval){{0, 0}, {0, 1000000}}, NULL);
    int e = errno;
    printf("bad usec: %d %s\n", r, r ? strerror(e) : "ok");
    r = setitimer(5, &it, NULL);
    e = errno;
    printf("bad which: %d %s\n", r, strerror(e));
    r = setitimer(ITIMER_REAL, (struct itimerval *)8, NULL);
    e = errno;
    printf("bad pointer: %d %s\n", r, strerror(e));

    printf("alarm(5) -> %u\n", alarm(5));
    printf("alarm(0) -> %u (the 5 s one, rounded)\n", alarm(0));
    printf("alarm(0) again -> %u\n", alarm(0));

    ticks = 0;
    ualarm(3000, 0);
    r = pause();
    e = errno;
    printf("pause: %d %s, ticks %d\n", r, strerror(e), ticks);

    ticks = 0;
    ualarm(3000, 0);
    struct timespec ts = {1, 0}, left = {0, 0};
    r = nanosleep(&ts, &left);
    e = errno;
    printf("nanosleep: %d %s, ticks %d, left between 0.9 and 1 s: %d\n", r, strerror(e), ticks,
           left.tv_sec == 0 && left.tv_nsec > 900000000);

    signal(SIGALRM, SIG_DFL);
    fflush(stdout);
    alarm(1);
    for (;;)
        pause();
}
