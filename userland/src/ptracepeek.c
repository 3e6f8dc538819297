/*
 * ptracepeek: ptrace and job control between a parent and its forked children, the outcome printed
 * (no pids or addresses) to compare with the native run.
 *
 *   - PTRACE_ATTACH stops the child (waitpid sees SIGSTOP), PEEKDATA reads a word, POKEDATA writes
 *     one the child prints after PTRACE_DETACH; EIO for an unmapped word, an unknown request, a bad
 *     resume signal; EPERM for attaching twice or to itself; ESRCH for a process it does not trace
 *   - PTRACE_CONT with a signal: the child's handler runs for it
 *   - PTRACE_TRACEME: a raised signal stops the child for its parent; execve stops it with SIGTRAP
 *   - SIGSTOP and SIGCONT: waitpid with WUNTRACED and WCONTINUED, waitid with WSTOPPED/WCONTINUED;
 *     a child stopped and continued in nanosleep finishes its sleep (no EINTR)
 *   - process_vm_readv/writev: whole, partial (a bad second remote iovec), EFAULT, EINVAL, ESRCH,
 *     a read-only remote page
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define NO_SUCH_PID 4194404      /* above PID_MAX_LIMIT: never a process */

static volatile long value = 0x1122334455667788L;
static char buf[32] = "hello from the child";
static const char rodata[16] = "read-only";
static volatile int got_usr1;

static void report(const char *what, long ret)
{
    printf("%s: %ld%s%s\n", what, ret, ret < 0 ? " " : "", ret < 0 ? strerrorname_np(errno) : "");
}

static void on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

/* TracerPid from /proc/self/status (0: not traced). */
static int tracer_pid(void)
{
    char line[256];
    int pid = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %d", &pid) == 1)
            break;
    fclose(f);
    return pid;
}

/* A child that waits for a byte on the pipe, then prints what it has and exits with `code`. */
static pid_t waiting_child(int pipefd[2], int code)
{
    if (pipe(pipefd))
        exit(1);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(pipefd[1]);
        while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
            ;
        printf("child: value %lx buf '%s' usr1 %d traced by its parent %d\n", value, buf, got_usr1,
               tracer_pid() == getppid());
        fflush(stdout);
        _exit(code);
    }
    close(pipefd[0]);
    return pid;
}

static void release(int pipefd[2], pid_t pid)
{
    int st;
    fflush(stdout);
    if (write(pipefd[1], "x", 1) != 1)
        exit(1);
    close(pipefd[1]);
    pid_t w = waitpid(pid, &st, 0);
    printf("reaped %d: exited %d status %d\n", w == pid, WIFEXITED(st), WEXITSTATUS(st));
}

static void test_attach_peek_poke(void)
{
    int pipefd[2], st;
    pid_t pid = waiting_child(pipefd, 7);

    report("attach", ptrace(PTRACE_ATTACH, pid, 0, 0));
    pid_t w = waitpid(pid, &st, 0);
    printf("waitpid %d: stopped %d sig %d\n", w == pid, WIFSTOPPED(st), WSTOPSIG(st));
    report("attach again", ptrace(PTRACE_ATTACH, pid, 0, 0));
    errno = 0;
    long word = ptrace(PTRACE_PEEKDATA, pid, &value, 0);
    printf("peekdata: %lx errno %d\n", word, errno);
    report("pokedata", ptrace(PTRACE_POKEDATA, pid, &value, 0xcafe));
    errno = 0;
    word = ptrace(PTRACE_PEEKTEXT, pid, &value, 0);
    printf("peektext: %lx errno %d\n", word, errno);
    report("peekdata NULL", ptrace(PTRACE_PEEKDATA, pid, 0, 0));
    report("unknown request", ptrace((enum __ptrace_request)0x4321, pid, 0, 0));
    report("cont bad signal", ptrace(PTRACE_CONT, pid, 0, 999));
    report("detach", ptrace(PTRACE_DETACH, pid, 0, 0));
    report("peekdata detached", ptrace(PTRACE_PEEKDATA, pid, &value, 0));
    release(pipefd, pid);
}

static void test_cont_signal(void)
{
    int pipefd[2], st;
    pid_t pid = waiting_child(pipefd, 0);

    report("attach", ptrace(PTRACE_ATTACH, pid, 0, 0));
    waitpid(pid, &st, 0);
    report("cont", ptrace(PTRACE_CONT, pid, 0, 0));
    report("kill USR1", kill(pid, SIGUSR1));
    pid_t w = waitpid(pid, &st, 0);
    printf("waitpid %d: stopped %d sig %d\n", w == pid, WIFSTOPPED(st), WSTOPSIG(st));
    report("running: peekdata", ptrace(PTRACE_PEEKDATA, pid, &value, 0) == value ? 0 : -1);
    report("cont with USR1", ptrace(PTRACE_CONT, pid, 0, SIGUSR1));
    report("running: peek", ptrace(PTRACE_PEEKDATA, pid, &value, 0));
    report("detach running", ptrace(PTRACE_DETACH, pid, 0, 0));
    report("kill STOP", kill(pid, SIGSTOP));
    w = waitpid(pid, &st, 0);
    printf("waitpid %d: stopped %d sig %d\n", w == pid, WIFSTOPPED(st), WSTOPSIG(st));
    report("detach", ptrace(PTRACE_DETACH, pid, 0, 0));
    release(pipefd, pid);
}

static void test_traced_while_running(void)
{
    int pipefd[2], st;
    pid_t pid = waiting_child(pipefd, 3);

    report("attach", ptrace(PTRACE_ATTACH, pid, 0, 0));
    waitpid(pid, &st, 0);
    report("cont", ptrace(PTRACE_CONT, pid, 0, 0));
    release(pipefd, pid);
}

static void test_traceme(void)
{
    int st;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        exit(1);
    self[n] = 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        long r = ptrace(PTRACE_TRACEME, 0, 0, 0);
        long again = ptrace(PTRACE_TRACEME, 0, 0, 0);
        printf("child: traceme %ld, again %ld %s\n", r, again, strerrorname_np(errno));
        fflush(stdout);
        raise(SIGUSR2);                       /* stops for the tracer, which cancels it */
        char *argv[] = {self, "exec", NULL};
        execv(self, argv);
        _exit(9);
    }
    /* each result is printed once the child stops again: the child prints as it runs */
    pid_t w = waitpid(pid, &st, 0);
    printf("waitpid %d: stopped %d sig %d\n", w == pid, WIFSTOPPED(st), WSTOPSIG(st));
    long r = ptrace(PTRACE_CONT, pid, 0, 0);
    w = waitpid(pid, &st, 0);
    printf("cont %ld, after exec %d: stopped %d sig %d\n", r, w == pid, WIFSTOPPED(st), WSTOPSIG(st));
    fflush(stdout);
    r = ptrace(PTRACE_CONT, pid, 0, 0);
    w = waitpid(pid, &st, 0);
    printf("cont %ld, reaped %d: exited %d status %d\n", r, w == pid, WIFEXITED(st), WEXITSTATUS(st));
}

static void test_errors(void)
{
    int pipefd[2];
    pid_t pid = waiting_child(pipefd, 0);

    report("attach self", ptrace(PTRACE_ATTACH, getpid(), 0, 0));
    report("attach none", ptrace(PTRACE_ATTACH, NO_SUCH_PID, 0, 0));
    report("peek untraced", ptrace(PTRACE_PEEKDATA, pid, &value, 0));
    report("cont untraced", ptrace(PTRACE_CONT, pid, 0, 0));
    report("unknown untraced", ptrace((enum __ptrace_request)0x4321, pid, 0, 0));
    report("seize addr", ptrace(PTRACE_SEIZE, pid, 1, 0));
    report("seize", ptrace(PTRACE_SEIZE, pid, 0, 0));
    report("peek seized running", ptrace(PTRACE_PEEKDATA, pid, &value, 0));
    report("detach seized running", ptrace(PTRACE_DETACH, pid, 0, 0));
    report("kill seized", ptrace(PTRACE_KILL, pid, 0, 0));
    int st;
    pid_t w = waitpid(pid, &st, 0);
    printf("waitpid %d: signaled %d sig %d\n", w == pid, WIFSIGNALED(st), WTERMSIG(st));
    close(pipefd[1]);
}

static void test_job_control(void)
{
    int pipefd[2], st;
    siginfo_t si;
    pid_t pid = waiting_child(pipefd, 3);

    report("kill STOP", kill(pid, SIGSTOP));
    pid_t w = waitpid(pid, &st, WUNTRACED);
    printf("WUNTRACED %d: stopped %d sig %d\n", w == pid, WIFSTOPPED(st), WSTOPSIG(st));
    report("again WNOHANG", waitpid(pid, &st, WUNTRACED | WNOHANG));
    report("kill CONT", kill(pid, SIGCONT));
    w = waitpid(pid, &st, WCONTINUED);
    printf("WCONTINUED %d: continued %d\n", w == pid, WIFCONTINUED(st));
    report("kill STOP", kill(pid, SIGSTOP));
    memset(&si, 0, sizeof(si));
    report("waitid WSTOPPED", waitid(P_PID, pid, &si, WSTOPPED));
    printf("  code %d status %d pid %d\n", si.si_code, si.si_status, si.si_pid == pid);
    report("kill CONT", kill(pid, SIGCONT));
    memset(&si, 0, sizeof(si));
    report("waitid WCONTINUED", waitid(P_PID, pid, &si, WCONTINUED | WNOWAIT));
    printf("  code %d status %d\n", si.si_code, si.si_status);
    memset(&si, 0, sizeof(si));
    report("waitid WCONTINUED", waitid(P_PID, pid, &si, WCONTINUED));
    printf("  code %d status %d\n", si.si_code, si.si_status);
    report("waitid none", waitid(P_PID, pid, &si, WCONTINUED | WSTOPPED | WNOHANG));
    release(pipefd, pid);
}

static void test_stop_sleeper(void)
{
    int st;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 300 * 1000 * 1000}, rem = {0, 0};
        int r = nanosleep(&ts, &rem);
        printf("child: nanosleep %d\n", r);
        fflush(stdout);
        _exit(0);
    }
    usleep(50 * 1000);                        /* the child sleeps */
    report("kill STOP", kill(pid, SIGSTOP));
    pid_t w = waitpid(pid, &st, WUNTRACED);
    printf("WUNTRACED %d: stopped %d sig %d\n", w == pid, WIFSTOPPED(st), WSTOPSIG(st));
    report("kill CONT", kill(pid, SIGCONT));
    fflush(stdout);
    w = waitpid(pid, &st, 0);
    printf("reaped %d: exited %d status %d\n", w == pid, WIFEXITED(st), WEXITSTATUS(st));
}

static void test_process_vm(void)
{
    int pipefd[2];
    char got[32] = "", more[8] = "";
    pid_t pid = waiting_child(pipefd, 0);
    struct iovec local[2] = {{got, sizeof(got)}, {more, sizeof(more)}};
    struct iovec remote[2] = {{buf, 10}, {NULL, 8}};

    memset(buf, 0, sizeof(buf));              /* ours; the child's copy keeps its text */
    report("readv", process_vm_readv(pid, local, 1, remote, 1, 0));
    printf("  got '%s'\n", got);
    report("readv partial", process_vm_readv(pid, local, 1, remote, 2, 0));
    report("readv bad remote", process_vm_readv(pid, local, 1, remote + 1, 1, 0));
    report("readv flags", process_vm_readv(pid, local, 1, remote, 1, 1));
    report("readv none", process_vm_readv(NO_SUCH_PID, local, 1, remote, 1, 0));
    report("readv nothing local", process_vm_readv(pid, local, 0, remote, 1, 0));
    struct iovec two[2] = {{buf + 6, 4}, {buf, 5}};
    memset(got, 0, sizeof(got));
    report("readv scatter", process_vm_readv(pid, local, 2, two, 2, 0));
    printf("  got '%s' '%.8s'\n", got, more);
    struct iovec src = {"HELLO", 5};
    struct iovec dst = {buf, 5};
    report("writev", process_vm_writev(pid, &src, 1, &dst, 1, 0));
    struct iovec ro = {(void *)rodata, 5};
    report("writev read-only", process_vm_writev(pid, &src, 1, &ro, 1, 0));
    struct iovec badlocal = {NULL, 5};
    report("writev bad local", process_vm_writev(pid, &badlocal, 1, &dst, 1, 0));
    release(pipefd, pid);
}

int main(int argc, char **argv)
{
    if (argc > 1) {                           /* re-executed by test_traceme's traced child */
        printf("exec'd: %s\n", argv[1]);
        return 5;
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    signal(SIGUSR1, on_usr1);                 /* the children inherit it (SA_RESTART) */
    printf("== attach, peek, poke, detach\n");
    test_attach_peek_poke();
    test_traced_while_running();
    printf("== cont with a signal\n");
    test_cont_signal();
    printf("== traceme, exec\n");
    test_traceme();
    printf("== errors\n");
    test_errors();
    printf("== job control\n");
    test_job_control();
    printf("== a sleeper stopped and continued\n");
    test_stop_sleeper();
    printf("== process_vm\n");
    test_process_vm();
    printf("ptracepeek done\n");
    return 0;
}
