/* SIGCHLD to the parent when a child process ends: si_code CLD_EXITED with the exit status, or
 * CLD_KILLED with the signal that ended it, and the child's pid; waited for with sigsuspend.
 * The output must match a native run.  usage: sigchld */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile int got, code, status, pid;
static void h(int sig, siginfo_t *si, void *uc) { (void)uc; got = sig; code = si->si_code; status = si->si_status; pid = si->si_pid; }
int main(void)
{
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = h; sa.sa_flags = SA_SIGINFO;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t chld, empty; sigemptyset(&chld); sigaddset(&chld, SIGCHLD); sigemptyset(&empty);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    pid_t c = fork();
    if (c == 0) _exit(3);
    while (!got) sigsuspend(&empty);
    printf("SIGCHLD: sig %d code %d status %d pid ok %d\n", got, code, status, pid == c);
    int st; waitpid(c, &st, 0);
    printf("exit %d\n", WEXITSTATUS(st));
    got = 0;
    c = fork();
    if (c == 0) { raise(SIGTERM); _exit(0); }
    while (!got) sigsuspend(&empty);
    printf("SIGCHLD: sig %d code %d status %d pid ok %d\n", got, code, status, pid == c);
    waitpid(c, &st, 0);
    printf("killed by %d\n", WTERMSIG(st));
    return 0;
}
