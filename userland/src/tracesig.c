/* Signals as strace shows them: kill and tgkill to itself (SI_USER, SI_TKILL), a sigqueue'd value
 * (SI_QUEUE), a signal blocked and taken when unblocked, SIGALRM from a timer (SI_KERNEL), a child
 * that exits 3 and one killed by SIGKILL (SIGCHLD with CLD_EXITED and CLD_KILLED), a child killed
 * by SIGTERM's default action as sigsuspend unblocks it. The output must match a native run.
 * usage: tracesig */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got[65];

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)si;
    (void)uc;
    got[sig]++;
}

static void report(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        printf("waitpid failed\n");
    else if (WIFEXITED(st))
        printf("child exited %d\n", WEXITSTATUS(st));
    else
        printf("child killed by %s\n", strsignal(WTERMSIG(st)));
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    for (int sig = SIGUSR1; sig <= SIGALRM; sig++)
        if (sig != SIGKILL && sig != SIGSEGV && sig != SIGPIPE)
            sigaction(sig, &sa, NULL);
    sigaction(SIGRTMIN + 2, &sa, NULL);
    setvbuf(stdout, NULL, _IONBF, 0);

    kill(getpid(), SIGUSR1);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR2);
    union sigval v = {.sival_int = 42};
    sigqueue(getpid(), SIGRTMIN + 2, v);

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    kill(getpid(), SIGUSR1);
    printf("blocked: taken %d times so far\n", got[SIGUSR1]);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked: taken %d times\n", got[SIGUSR1]);

    struct itimerval it = {.it_value = {.tv_usec = 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    while (!got[SIGALRM])
        pause();

    pid_t child = fork();
    if (child == 0)
        _exit(3);
    report(child);
    int fds[2];
    pipe(fds);
    child = fork();
    if (child == 0) {
        close(fds[0]);
        write(fds[1], "x", 1);
        for (;;)
            pause();
    }
    char c;
    read(fds[0], &c, 1);
    kill(child, SIGKILL);
    report(child);
    child = fork();
    if (child == 0) {
        sigset_t term, none;
        sigemptyset(&term);
        sigemptyset(&none);
        sigaddset(&term, SIGTERM);
        sigprocmask(SIG_BLOCK, &term, NULL);    /* SIGTERM waits for sigsuspend, sent before or after */
        signal(SIGTERM, SIG_DFL);
        write(fds[1], "y", 1);
        for (;;)
            sigsuspend(&none);
    }
    read(fds[0], &c, 1);
    kill(child, SIGTERM);
    report(child);
    printf("taken: USR1 %d, USR2 %d, RTMIN+2 %d, ALRM %d\n", got[SIGUSR1], got[SIGUSR2], got[SIGRTMIN + 2],
           got[SIGALRM]);
    return 0;
}
