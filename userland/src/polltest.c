/* poll, ppoll and select on pipes: ready at once, a timeout with nothing ready (empty results), a
 * wait that ends when another thread writes, POLLHUP once the writer is closed, POLLNVAL and EBADF
 * for closed descriptors, and EINTR from a signal handler. The output must match a native run.
 * usage: polltest */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static int p[2];
static void *writer(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 3000000};
    nanosleep(&ts, NULL);
    if (write(p[1], "x", 1) != 1)
        perror("write");
    return NULL;
}
static void h(int s) { (void)s; }

int main(void)
{
    if (pipe(p))
        return 1;
    struct pollfd fds[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {99, POLLIN, 0}};
    int r = poll(fds, 3, 0);
    printf("poll now: %d, revents %#x %#x %#x\n", r, fds[0].revents, fds[1].revents, fds[2].revents);
    r = poll(fds, 1, 2);
    printf("poll empty pipe, 2 ms: %d revents %#x\n", r, fds[0].revents);
    pthread_t th;
    pthread_create(&th, NULL, writer, NULL);
    r = poll(fds, 1, 1000);
    printf("poll until a thread writes: %d revents %#x\n", r, fds[0].revents);
    pthread_join(th, NULL);
    char c;
    if (read(p[0], &c, 1) != 1)
        return 1;
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    struct timeval tv = {0, 1000};
    r = select(p[0] + 1, &rd, NULL, NULL, &tv);
    printf("select empty, 1 ms: %d set %d\n", r, FD_ISSET(p[0], &rd));
    pthread_create(&th, NULL, writer, NULL);
    FD_SET(p[0], &rd);
    r = select(p[0] + 1, &rd, NULL, NULL, NULL);
    printf("select until a write: %d set %d\n", r, FD_ISSET(p[0], &rd));
    pthread_join(th, NULL);
    if (read(p[0], &c, 1) != 1)
        return 1;
    close(p[1]);
    fds[0].events = POLLIN;
    r = poll(fds, 1, 0);
    printf("writer closed: %d revents %#x\n", r, fds[0].revents);
    FD_ZERO(&rd);
    FD_SET(50, &rd);
    r = select(51, &rd, NULL, NULL, &tv);
    printf("select bad fd: %d %s\n", r, strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigaction(SIGALRM, &sa, NULL);
    int q[2];
    if (pipe(q))
        return 1;
    struct pollfd one = {q[0], POLLIN, 0};
    ualarm(2000, 0);
    r = poll(&one, 1, -1);
    printf("poll interrupted: %d %s\n", r, strerror(errno));
    sigset_t none;
    sigemptyset(&none);
    struct timespec ts = {0, 1000000};
    r = ppoll(&one, 1, &ts, &none);
    printf("ppoll 1 ms: %d\n", r);
    return 0;
}
