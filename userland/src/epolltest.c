/* epoll and eventfd against the host kernel: level- and edge-triggered items over pipes, AF_UNIX
 * sockets and eventfds, EPOLLONESHOT and its re-arming, EPOLLEXCLUSIVE, nested epoll files, a thread
 * woken out of epoll_wait, timeouts, eventfd's counter and semaphore modes, and the errnos of bad
 * input (EEXIST, ENOENT, ELOOP, EPERM, EINVAL, EBADF, EFAULT, EAGAIN). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *en(int e)
{
    switch (e) {
    case EEXIST: return "EEXIST"; case ENOENT: return "ENOENT"; case ELOOP: return "ELOOP";
    case EPERM: return "EPERM"; case EINVAL: return "EINVAL"; case EBADF: return "EBADF";
    case EFAULT: return "EFAULT"; case EAGAIN: return "EAGAIN"; case EINTR: return "EINTR";
    default: return "other";
    }
}

#define SHOW(label, expr) do { long r_ = (long)(expr); printf("%s: %ld %s\n", label, r_, r_ < 0 ? en(errno) : ""); } while (0)

static int ctl(int ep, int op, int fd, unsigned ev, uint64_t data)
{
    struct epoll_event e = { .events = ev, .data.u64 = data };
    return epoll_ctl(ep, op, fd, &e);
}

static void wait_show(const char *label, int ep, int max, int timeout)
{
    struct epoll_event evs[8];
    int n = epoll_wait(ep, evs, max, timeout);
    printf("%s: %d", label, n);
    if (n < 0)
        printf(" %s", en(errno));
    for (int i = 0; i < n; i++)
        printf(" [%#x %llu]", evs[i].events, (unsigned long long)evs[i].data.u64);
    printf("\n");
}

static int wake_fd;

static void *writer(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    uint64_t one = 7;
    write(wake_fd, &one, 8);
    return NULL;
}

static void *blocked_reader(void *arg)
{
    uint64_t v = 0;
    long n = read(*(int *)arg, &v, 8);
    printf("blocked eventfd read: %ld value %llu\n", n, (unsigned long long)v);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int p[2], sv[2];
    pipe(p);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    printf("epoll_create1: %d cloexec %d\n", ep >= 0, fcntl(ep, F_GETFD));
    SHOW("epoll_create(0)", epoll_create(0));
    SHOW("epoll_create1(bad flags)", epoll_create1(1));

    /* level-triggered pipe */
    SHOW("add pipe read end", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 100));
    SHOW("add again", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 100));
    wait_show("empty pipe, timeout 0", ep, 8, 0);
    write(p[1], "abc", 3);
    wait_show("LT after write", ep, 8, 0);
    wait_show("LT again", ep, 8, 0);
    char buf[64];
    read(p[0], buf, sizeof buf);
    wait_show("LT after drain", ep, 8, 0);

    /* edge-triggered */
    SHOW("mod to ET", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLET, 101));
    write(p[1], "x", 1);
    wait_show("ET after write", ep, 8, 0);
    wait_show("ET again (no new edge)", ep, 8, 0);
    write(p[1], "y", 1);
    wait_show("ET after a second write", ep, 8, 0);
    read(p[0], buf, 1);
    wait_show("ET after a partial read", ep, 8, 0);
    read(p[0], buf, sizeof buf);

    /* oneshot */
    SHOW("mod to ONESHOT", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 102));
    write(p[1], "z", 1);
    wait_show("ONESHOT first", ep, 8, 0);
    write(p[1], "z", 1);
    wait_show("ONESHOT disabled", ep, 8, 0);
    SHOW("re-arm", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 103));
    wait_show("ONESHOT re-armed", ep, 8, 0);
    read(p[0], buf, sizeof buf);

    /* the write end and a socket, maxevents 1 */
    SHOW("add pipe write end", ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT, 200));
    SHOW("add socket", ctl(ep, EPOLL_CTL_ADD, sv[0], EPOLLIN | EPOLLOUT, 300));
    wait_show("two writable, maxevents 1", ep, 1, 0);
    wait_show("two writable, maxevents 8", ep, 8, 0);
    send(sv[1], "hi", 2, 0);
    SHOW("mod socket to EPOLLIN", ctl(ep, EPOLL_CTL_MOD, sv[0], EPOLLIN, 301));
    SHOW("del write end", ctl(ep, EPOLL_CTL_DEL, p[1], 0, 0));
    wait_show("socket readable", ep, 8, 0);
    recv(sv[0], buf, sizeof buf, 0);
    SHOW("del again", ctl(ep, EPOLL_CTL_DEL, p[1], 0, 0));
    SHOW("mod missing", ctl(ep, EPOLL_CTL_MOD, p[1], EPOLLIN, 0));
    close(sv[1]);
    wait_show("peer closed: HUP", ep, 8, 0);
    SHOW("del socket", ctl(ep, EPOLL_CTL_DEL, sv[0], 0, 0));

    /* exclusive */
    int p2[2];
    pipe(p2);
    SHOW("add EXCLUSIVE", ctl(ep, EPOLL_CTL_ADD, p2[0], EPOLLIN | EPOLLEXCLUSIVE, 400));
    SHOW("mod EXCLUSIVE item", ctl(ep, EPOLL_CTL_MOD, p2[0], EPOLLIN, 401));
    SHOW("add EXCLUSIVE|ONESHOT", ctl(ep, EPOLL_CTL_ADD, p2[1], EPOLLOUT | EPOLLEXCLUSIVE | EPOLLONESHOT, 0));
    write(p2[1], "e", 1);
    wait_show("EXCLUSIVE item ready", ep, 8, 0);

    /* closing the watched file removes it */
    close(p2[0]);
    wait_show("after close of the watched fd", ep, 8, 0);

    /* bad input */
    int fdreg = open("/proc/self/exe", O_RDONLY);
    SHOW("add regular file", ctl(ep, EPOLL_CTL_ADD, fdreg, EPOLLIN, 0));
    SHOW("add epoll to itself", ctl(ep, EPOLL_CTL_ADD, ep, EPOLLIN, 0));
    SHOW("ctl on a non-epoll fd", ctl(p[0], EPOLL_CTL_ADD, p[1], EPOLLIN, 0));
    SHOW("ctl bad epfd", ctl(999, EPOLL_CTL_ADD, p[1], EPOLLIN, 0));
    SHOW("ctl bad fd", ctl(ep, EPOLL_CTL_ADD, 999, EPOLLIN, 0));
    SHOW("ctl bad op", ctl(ep, 99, p[1], EPOLLIN, 0));
    SHOW("ctl EFAULT event", epoll_ctl(ep, EPOLL_CTL_ADD, p[1], (struct epoll_event *)8));
    SHOW("ctl DEL NULL event", epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
    struct epoll_event evs[4];
    SHOW("wait maxevents 0", epoll_wait(ep, evs, 0, 0));
    SHOW("wait bad epfd", epoll_wait(999, evs, 4, 0));
    SHOW("wait on a pipe", epoll_wait(p[0], evs, 4, 0));
    SHOW("wait EFAULT", epoll_wait(ep, (struct epoll_event *)-4096L, 4, 0));

    /* nested epoll and loops */
    int ep2 = epoll_create1(0), ep3 = epoll_create1(0);
    SHOW("ep2 watches ep", ctl(ep2, EPOLL_CTL_ADD, ep, EPOLLIN, 500));
    SHOW("ep watches ep2 (loop)", ctl(ep, EPOLL_CTL_ADD, ep2, EPOLLIN, 0));
    SHOW("ep3 watches ep2", ctl(ep3, EPOLL_CTL_ADD, ep2, EPOLLIN, 600));
    SHOW("ep watches ep3 (loop)", ctl(ep, EPOLL_CTL_ADD, ep3, EPOLLIN, 0));
    SHOW("EXCLUSIVE on an epoll", ctl(ep3, EPOLL_CTL_ADD, ep, EPOLLIN | EPOLLEXCLUSIVE, 0));
    wait_show("ep2: inner epoll ready (pipe write end of p2)", ep2, 8, 0);
    wait_show("ep3: nested twice", ep3, 8, 0);

    /* eventfd */
    int efd = eventfd(3, EFD_NONBLOCK);
    uint64_t v = 0;
    SHOW("eventfd read", read(efd, &v, 8));
    printf("value %llu\n", (unsigned long long)v);
    SHOW("eventfd read empty", read(efd, &v, 8));
    SHOW("eventfd short read", read(efd, &v, 4));
    v = 5;
    SHOW("eventfd write 5", write(efd, &v, 8));
    v = 0xffffffffffffffffULL;
    SHOW("eventfd write max", write(efd, &v, 8));
    v = 0xfffffffffffffff0ULL;
    SHOW("eventfd write overflow", write(efd, &v, 8));
    SHOW("eventfd short write", write(efd, &v, 4));
    SHOW("eventfd2 bad flags", eventfd(0, 0x10));
    SHOW("epoll add eventfd", ctl(ep3, EPOLL_CTL_ADD, efd, EPOLLIN | EPOLLOUT, 700));
    wait_show("eventfd ready", ep3, 8, 0);
    int sem = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    for (int i = 0; i < 3; i++) {
        long n = read(sem, &v, 8);
        printf("semaphore read %d: %ld %s value %llu\n", i, n, n < 0 ? en(errno) : "", (unsigned long long)v);
    }
    struct stat st;
    fstat(efd, &st);
    printf("eventfd fstat mode %o\n", st.st_mode);

    /* a blocking eventfd read in a thread, a write wakes it */
    int bfd = eventfd(0, 0);
    pthread_t th;
    pthread_create(&th, NULL, blocked_reader, &bfd);
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    v = 42;
    write(bfd, &v, 8);
    pthread_join(th, NULL);

    /* a thread wakes epoll_wait with an eventfd; then a timeout */
    int ep4 = epoll_create1(0);
    wake_fd = eventfd(0, 0);
    ctl(ep4, EPOLL_CTL_ADD, wake_fd, EPOLLIN, 800);
    pthread_create(&th, NULL, writer, NULL);
    wait_show("epoll_wait woken by a thread", ep4, 8, -1);
    pthread_join(th, NULL);
    read(wake_fd, &v, 8);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    wait_show("epoll_wait 30 ms timeout", ep4, 8, 30);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("waited at least 29 ms: %d\n", ms >= 29);
    struct timespec tmo = { 0, 5 * 1000 * 1000 };
    long r = syscall(SYS_epoll_pwait2, ep4, evs, 4, &tmo, NULL, 8);
    printf("epoll_pwait2 5 ms: %ld\n", r);
    struct timespec badt = { 0, 2000000000L };
    r = syscall(SYS_epoll_pwait2, ep4, evs, 4, &badt, NULL, 8);
    printf("epoll_pwait2 bad timespec: %ld %s\n", r, r < 0 ? en(errno) : "");
    sigset_t ss;
    sigemptyset(&ss);
    SHOW("epoll_pwait with a mask", epoll_pwait(ep4, evs, 4, 0, &ss));
    printf("done\n");
    return 0;
}
