/* Pipes: fstat (a FIFO, both ends one inode), ESPIPE, a child writing to its parent through fork (end
 * of file once every write end is closed, including at the child's exit), O_NONBLOCK (EAGAIN when
 * empty or full), a read that sleeps until another thread writes, EPIPE without a reader (SIGPIPE
 * ignored), and pipe2/pipe errors. The output must match a native run.  usage: pipes */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int tp[2];
static void *writer(void *arg)
{
    (void)arg;
    usleep(2000);
    if (write(tp[1], "late", 4) != 4)
        perror("write");
    close(tp[1]);
    return NULL;
}

int main(void)
{
    int p[2];
    if (pipe(p)) { perror("pipe"); return 1; }
    struct stat st, st2;
    fstat(p[0], &st);
    fstat(p[1], &st2);
    printf("fifo %d, same ino %d\n", S_ISFIFO(st.st_mode), st2.st_ino == st.st_ino);
    long lr = (long)lseek(p[0], 0, SEEK_SET);
    printf("lseek: %ld %s\n", lr, strerror(errno));
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        const char *msg = "hello from the child\n";
        if (write(p[1], msg, strlen(msg)) < 0)
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    char buf[256];
    ssize_t n, total = 0;
    while ((n = read(p[0], buf + total, sizeof buf - total)) > 0)
        total += n;
    buf[total] = 0;
    printf("parent read %zd bytes: %s", total, buf);
    printf("read at EOF: %zd\n", read(p[0], buf, 10));
    waitpid(c, NULL, 0);
    close(p[0]);

    pipe2(tp, O_NONBLOCK);
    n = read(tp[0], buf, 10);
    printf("nonblocking empty read: %zd %s\n", n, strerror(errno));
    fcntl(tp[0], F_SETFL, 0);
    pthread_t th;
    pthread_create(&th, NULL, writer, NULL);
    n = read(tp[0], buf, 10);
    printf("blocking read got %zd: %.4s\n", n, buf);
    pthread_join(th, NULL);
    printf("then EOF: %zd\n", read(tp[0], buf, 10));
    close(tp[0]);

    int q[2];
    pipe(q);
    close(q[0]);
    signal(SIGPIPE, SIG_IGN);
    n = write(q[1], "x", 1);
    printf("write without reader: %zd %s\n", n, strerror(errno));
    int big[2];
    pipe2(big, O_NONBLOCK);
    static char chunk[70000];
    n = write(big[1], chunk, sizeof chunk);
    printf("nonblocking big write: %zd\n", n);
    n = write(big[1], chunk, 10);
    printf("full pipe: %zd %s\n", n, strerror(errno));
    int r = pipe2(big, 0x1234);
    printf("pipe2 bad flags: %d %s\n", r, strerror(errno));
    int *volatile bad = (int *)8;      /* volatile: gcc cannot see the bad pointer and warn about it */
    r = pipe(bad);
    printf("pipe bad pointer: %d %s\n", r, strerror(errno));
    return 0;
}
