/* Names and lives of tasks, for `faultlab run --trace`: two threads rename themselves with
 * PR_SET_NAME and touch a page each, a forked child execs hello (its sibling, next to
 * /proc/self/exe: its name becomes "hello"), another forked child exits 5, a third is killed by
 * SIGKILL from its parent. Each task prints its final name as "name NAME"; the parent prints how
 * its children ended. The output's lines (sorted) must match a native run.  usage: tracenames */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static char pages[2][4096];

static void print_name(void)
{
    char name[16] = {0};
    prctl(PR_GET_NAME, name, 0, 0, 0);
    printf("name %s\n", name);
    fflush(stdout);
}

static void *worker(void *arg)
{
    long id = (long)arg;
    char name[16];
    snprintf(name, sizeof name, "tn-worker-%ld", id);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    pages[id][0] = 1;
    print_name();
    return NULL;
}

static void report(pid_t pid, const char *what)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return;
    if (WIFEXITED(st))
        printf("%s exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        printf("%s killed by %d\n", what, WTERMSIG(st));
}

int main(void)
{
    char self[PATH_MAX], hello[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        return 1;
    self[n] = 0;
    *strrchr(self, '/') = 0;
    snprintf(hello, sizeof hello, "%.4000s/hello", self);
    setvbuf(stdout, NULL, _IONBF, 0);
    print_name();
    pthread_t th[2];
    for (long i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);

    pid_t execd = fork();
    if (execd == 0) {
        char *argv[] = {"hello", NULL}, *envp[] = {NULL};
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        execve(hello, argv, envp);
        _exit(127);
    }
    report(execd, "exec child");
    pid_t plain = fork();
    if (plain == 0) {
        prctl(PR_SET_NAME, "tn-child", 0, 0, 0);
        print_name();
        _exit(5);
    }
    report(plain, "plain child");
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    pid_t victim = fork();
    if (victim == 0) {
        prctl(PR_SET_NAME, "tn-victim", 0, 0, 0);
        print_name();
        write(fds[1], "x", 1);
        for (;;)
            pause();
    }
    char c;
    read(fds[0], &c, 1);
    kill(victim, SIGKILL);
    report(victim, "victim");
    return 0;
}
