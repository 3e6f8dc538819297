/* SA_RESTART: a futex wait and a waitpid that a signal handler interrupts are restarted when the handler
 * has SA_RESTART and fail with EINTR when it does not; nanosleep fails with EINTR either way (signal(7))
 * and says how much time was left.
 * A second thread sends the signal to the main thread while it sleeps. usage: sigrestart */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int handled;
static pid_t main_tid;
static int word;

static void handler(int sig) { (void)sig; handled++; }

static void *poker(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 20000000};     /* long enough for the main thread to be asleep natively */
    nanosleep(&ts, NULL);
    syscall(SYS_tgkill, getpid(), main_tid, SIGUSR1);
    nanosleep(&ts, NULL);
    __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    return NULL;
}

static void run(int flags, const char *what)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigaction(SIGUSR1, &sa, NULL);
    handled = 0;
    word = 0;
    pthread_t th;
    pthread_create(&th, NULL, poker, NULL);
    long r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    int e = errno;
    printf("%s futex: %ld %s, handled %d\n", what, r, r ? strerror(e) : "ok", handled);
    pthread_join(th, NULL);

    handled = 0;
    pid_t child = fork();
    if (child == 0) {
        struct timespec ts = {0, 60000000};
        nanosleep(&ts, NULL);
        _exit(7);
    }
    pthread_create(&th, NULL, poker, NULL);
    int st;
    pid_t w = waitpid(child, &st, 0);
    e = errno;
    printf("%s waitpid: %s, handled %d\n", what, w == child ? "child" : strerror(e), handled);
    if (w != child)
        waitpid(child, &st, 0);
    pthread_join(th, NULL);

    handled = 0;
    pthread_create(&th, NULL, poker, NULL);
    struct timespec ts = {0, 60000000}, left = {-1, -1};
    r = nanosleep(&ts, &left);
    e = errno;
    printf("%s nanosleep: %ld %s, handled %d, time left between 0 and 60 ms: %d\n", what, r,
           r ? strerror(e) : "ok", handled, left.tv_sec == 0 && left.tv_nsec > 0 && left.tv_nsec < 60000000);
    pthread_join(th, NULL);
}

int main(void)
{
    main_tid = gettid();
    run(0, "no SA_RESTART");
    run(SA_RESTART, "SA_RESTART");
    return 0;
}
