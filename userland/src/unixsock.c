/* AF_UNIX sockets: stream, datagram and seqpacket socketpairs between threads and across fork, SCM_RIGHTS
 * (passing a pipe and a file to a child, MSG_CTRUNC, MSG_CMSG_CLOEXEC), SO_PEERCRED, poll on sockets,
 * listen/connect/accept on an abstract name and on a filesystem name, shutdown, EPIPE with SIGPIPE and
 * MSG_NOSIGNAL, non-blocking calls, and bad input (EBADF, ENOTSOCK, EFAULT, EINVAL, EMSGSIZE, ...).
 * Everything printed must match a native run.
 *   usage: unixsock            the whole test
 *          unixsock inet       only socket(AF_INET...) and socket(AF_INET6...), for a kernel without networking
 *          unixsock hang       a read from a socketpair nobody writes to (never returns) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

static socklen_t abstract_addr(struct sockaddr_un *a, const char *name)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(a->sun_path + 1, name, n);
    return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

static socklen_t path_addr(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path, path);
    return sizeof *a;
}

/* ---- a blocking stream transfer between threads, larger than the send buffer ---- */
#define BIG (600 * 1024 + 77)
static unsigned char bigbuf[BIG], bigin[BIG];
static int sp[2];
static long reader_total;
static void *big_reader(void *arg)
{
    (void)arg;
    long total = 0, n;
    while ((n = read(sp[1], bigin + total, BIG - total)) > 0)
        total += n;
    reader_total = total;
    return NULL;
}

static void stream_threads(void)
{
    socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
    for (size_t i = 0; i < BIG; i++)
        bigbuf[i] = (unsigned char)(i * 131 + (i >> 9));
    pthread_t th;
    pthread_create(&th, NULL, big_reader, NULL);
    long n = send(sp[0], bigbuf, BIG, 0);
    close(sp[0]);
    pthread_join(th, NULL);
    printf("one send of %d bytes: %ld, reader got %ld, same data %d\n", BIG, n, reader_total,
           reader_total == BIG && memcmp(bigbuf, bigin, BIG) == 0);
    close(sp[1]);

    /* MSG_WAITALL waits for the whole amount, fed by small writes from a thread */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
    pthread_create(&th, NULL, big_reader, NULL);      /* reads from sp[1] until EOF */
    for (int i = 0; i < 5; i++)
        if (write(sp[0], bigbuf + 1000 * i, 1000) != 1000)
            perror("write");
    shutdown(sp[0], SHUT_WR);
    pthread_join(th, NULL);
    printf("after SHUT_WR the reader saw end of file at %ld bytes\n", reader_total);
    n = write(sp[1], "back", 4);
    char b[8];
    printf("the other way still works: %ld %ld\n", n, (long)read(sp[0], b, sizeof b));
    close(sp[0]);
    close(sp[1]);
}

static int wa[2];
static void *slow_writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++) {
        usleep(500);
        if (write(wa[0], "abcd", 4) != 4)
            perror("write");
    }
    return NULL;
}

static void waitall(void)
{
    socketpair(AF_UNIX, SOCK_STREAM, 0, wa);
    pthread_t th;
    pthread_create(&th, NULL, slow_writer, NULL);
    char b[32];
    long n = recv(wa[1], b, 16, MSG_WAITALL);
    pthread_join(th, NULL);
    printf("MSG_WAITALL: %ld %.16s\n", n, b);
    close(wa[0]);
    close(wa[1]);
}

/* ---- fork: a child writes over a stream, a datagram pair keeps boundaries ---- */
static void stream_fork(void)
{
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    struct ucred uc;
    socklen_t l = sizeof uc;
    getsockopt(s[0], SOL_SOCKET, SO_PEERCRED, &uc, &l);
    printf("SO_PEERCRED: len %u pid is ours %d uid %u gid %u\n", l, uc.pid == getpid(), uc.uid, uc.gid);
    pid_t c = fork();
    if (c == 0) {
        close(s[0]);
        char msg[64];
        for (int i = 0; i < 3; i++) {
            int n = snprintf(msg, sizeof msg, "line %d from the child\n", i);
            if (write(s[1], msg, n) != n)
                _exit(1);
        }
        _exit(0);
    }
    close(s[1]);
    char buf[256];
    long total = 0, n;
    while ((n = read(s[0], buf + total, sizeof buf - 1 - total)) > 0)
        total += n;
    buf[total] = 0;
    int st;
    waitpid(c, &st, 0);
    printf("parent read %ld bytes until EOF (%ld):\n%s", total, n, buf);
    close(s[0]);

    socketpair(AF_UNIX, SOCK_DGRAM, 0, s);
    c = fork();
    if (c == 0) {
        close(s[0]);
        send(s[1], "one", 3, 0);
        send(s[1], "", 0, 0);
        send(s[1], "three!", 6, 0);
        _exit(0);
    }
    close(s[1]);
    for (int i = 0; i < 3; i++) {
        n = recv(s[0], buf, sizeof buf, 0);
        buf[n > 0 ? n : 0] = 0;
        printf("datagram %d: %ld '%s'\n", i, n, buf);
    }
    waitpid(c, &st, 0);
    n = recv(s[0], buf, sizeof buf, MSG_DONTWAIT);
    printf("peer gone, nothing queued: ");
    show("recv", n);
    close(s[0]);
}

static void dgram_details(void)
{
    int s[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, s);
    char buf[64];
    send(s[0], "0123456789", 10, 0);
    long n = recv(s[1], buf, 4, MSG_PEEK);
    printf("peek 4: %ld %.4s\n", n, buf);
    n = recv(s[1], buf, 4, MSG_TRUNC);
    printf("MSG_TRUNC gives the real length: %ld %.4s\n", n, buf);
    send(s[0], "abcdef", 6, 0);
    struct iovec iov = {buf, 3};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    n = recvmsg(s[1], &mh, 0);
    printf("recvmsg into 3 bytes: %ld flags MSG_TRUNC %d\n", n, !!(mh.msg_flags & MSG_TRUNC));
    int sndbuf;
    socklen_t l = sizeof sndbuf;
    getsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &l);
    char *big = calloc(1, sndbuf);
    errno = 0;
    n = send(s[0], big, sndbuf - 32 + 1, 0);
    printf("datagram of SO_SNDBUF-31 bytes: ");
    show("send", n);
    n = send(s[0], big, 100000, 0);
    printf("datagram of 100000 bytes: %ld, received %ld\n", n, (long)recv(s[1], big, sndbuf, 0));
    free(big);
    int v = 4096;
    setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    getsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &l);
    printf("SO_SNDBUF set to 4096 reads %d; ", sndbuf);
    v = 1;
    setsockopt(s[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    getsockopt(s[0], SOL_SOCKET, SO_RCVBUF, &sndbuf, &l);
    printf("SO_RCVBUF set to 1 reads %d\n", sndbuf);
    int type;
    l = sizeof type;
    getsockopt(s[0], SOL_SOCKET, SO_TYPE, &type, &l);
    int err;
    socklen_t el = sizeof err;
    getsockopt(s[0], SOL_SOCKET, SO_ERROR, &err, &el);
    int acc;
    socklen_t al = sizeof acc;
    getsockopt(s[0], SOL_SOCKET, SO_ACCEPTCONN, &acc, &al);
    printf("SO_TYPE %d SO_ERROR %d SO_ACCEPTCONN %d\n", type, err, acc);
    /* a datagram socket whose peer closed: the first send says ECONNREFUSED, then it is not connected */
    close(s[1]);
    n = send(s[0], "x", 1, 0);
    printf("send to a closed peer: ");
    show("send", n);
    n = send(s[0], "x", 1, 0);
    printf("and again: ");
    show("send", n);
    close(s[0]);

    /* seqpacket keeps boundaries and sees end of file */
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, s);
    send(s[0], "first", 5, 0);
    send(s[0], "second", 6, 0);
    n = recv(s[1], buf, 3, 0);
    printf("seqpacket: %ld %.3s, ", n, buf);
    n = recv(s[1], buf, sizeof buf, 0);
    printf("%ld %.6s, ", n, buf);
    close(s[0]);
    n = recv(s[1], buf, sizeof buf, 0);
    printf("after close %ld\n", n);
    close(s[1]);
}

/* ---- SCM_RIGHTS ---- */
static int send_fds(int sock, const int *fds, int nfds, const char *data)
{
    char ctl[CMSG_SPACE(sizeof(int) * 8)];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = {(void *)data, strlen(data)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * nfds)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    return sendmsg(sock, &mh, 0);
}

/* receive up to 8 descriptors with a control buffer of ctlsize bytes; returns how many */
static int recv_fds(int sock, int *fds, size_t ctlsize, int flags, char *data, size_t dlen, int *msg_flags)
{
    char ctl[256];
    struct iovec iov = {data, dlen};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctlsize ? ctl : NULL,
                        .msg_controllen = ctlsize};
    long n = recvmsg(sock, &mh, flags);
    if (n < 0)
        return -1;
    data[n] = 0;
    *msg_flags = mh.msg_flags;
    int got = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            int k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds + got, CMSG_DATA(cm), k * sizeof(int));
            got += k;
        }
    }
    printf("  recvmsg: %ld bytes '%s', controllen %zu, %d fds, MSG_CTRUNC %d\n", n, data,
           (size_t)mh.msg_controllen, got, !!(mh.msg_flags & MSG_CTRUNC));
    return got;
}

static void scm_rights(void)
{
    int s[2], p[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    pipe(p);
    int memfd = open("/tmp/unixsock-scm.txt", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (write(memfd, "file contents", 13) != 13)
        perror("write");
    pid_t c = fork();
    if (c == 0) {
        /* the child's lines go out at its fflush, after the pipe read: after the parent's line,
           whatever the scheduling (stdout may be line-buffered) */
        setvbuf(stdout, NULL, _IOFBF, BUFSIZ);
        close(s[0]);
        close(p[1]);
        close(memfd);
        int fds[8], fl;
        char data[64];
        int got = recv_fds(s[1], fds, 256, 0, data, sizeof data - 1, &fl);
        if (got != 2)
            _exit(2);
        char buf[64];
        long n = read(fds[0], buf, sizeof buf);
        printf("  child read %ld bytes from the passed pipe: %.*s\n", n, (int)(n > 0 ? n : 0), buf);
        n = pread(fds[1], buf, sizeof buf, 0);
        printf("  child read %ld bytes from the passed file: %.*s\n", n, (int)(n > 0 ? n : 0), buf);
        struct stat st;
        fstat(fds[1], &st);
        printf("  passed file is regular %d size %ld\n", S_ISREG(st.st_mode), (long)st.st_size);
        fflush(stdout);
        _exit(0);
    }
    close(s[1]);
    int two[2] = {p[0], memfd};
    long n = send_fds(s[0], two, 2, "fds");
    printf("SCM_RIGHTS: sent %ld bytes with a pipe and a file\n", n);
    fflush(stdout);
    close(p[0]);
    close(memfd);
    if (write(p[1], "through the pipe", 16) != 16)
        perror("write");
    close(p[1]);
    int st;
    waitpid(c, &st, 0);
    printf("child exit %d\n", WEXITSTATUS(st));
    close(s[0]);

    /* control buffers too small, MSG_CMSG_CLOEXEC, MSG_PEEK, datagrams */
    socketpair(AF_UNIX, SOCK_DGRAM, 0, s);
    int three[3] = {0, 1, 2};
    int fds[8], fl;
    char data[64];
    send_fds(s[0], three, 3, "abc");
    int got = recv_fds(s[1], fds, CMSG_SPACE(sizeof(int) * 1), 0, data, sizeof data - 1, &fl);
    printf("room for one of three: got %d\n", got);
    for (int i = 0; i < got; i++)
        close(fds[i]);
    send_fds(s[0], three, 3, "def");
    got = recv_fds(s[1], fds, 0, 0, data, sizeof data - 1, &fl);
    printf("no control buffer: got %d\n", got);
    send_fds(s[0], three, 2, "ghi");
    got = recv_fds(s[1], fds, 256, MSG_PEEK, data, sizeof data - 1, &fl);
    for (int i = 0; i < got; i++)
        close(fds[i]);
    got = recv_fds(s[1], fds, 256, MSG_CMSG_CLOEXEC, data, sizeof data - 1, &fl);
    printf("MSG_CMSG_CLOEXEC: flags %#x, fd flags %d %d, received fds are new %d\n", fl & MSG_CMSG_CLOEXEC,
           fcntl(fds[0], F_GETFD), fcntl(fds[1], F_GETFD), fds[0] > 2 && fds[1] > 2);
    for (int i = 0; i < got; i++)
        close(fds[i]);
    int bad[1] = {999};
    n = send_fds(s[0], bad, 1, "x");
    printf("SCM_RIGHTS with a closed descriptor: ");
    show("sendmsg", n);
    close(s[0]);
    close(s[1]);
    unlink("/tmp/unixsock-scm.txt");

    /* a stream read stops after the data that carried descriptors */
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    send(s[0], "plain", 5, 0);
    send_fds(s[0], three, 1, "withfd");
    send(s[0], "after", 5, 0);
    got = recv_fds(s[1], fds, 256, 0, data, sizeof data - 1, &fl);
    for (int i = 0; i < got; i++)
        close(fds[i]);
    got = recv_fds(s[1], fds, 256, 0, data, sizeof data - 1, &fl);
    close(s[0]);
    close(s[1]);
}

/* ---- SO_PASSCRED and SCM_CREDENTIALS ---- */
static long recv_cred(int sock, char *data, size_t dlen, struct ucred *uc, int *have)
{
    char ctl[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {data, dlen};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    long n = recvmsg(sock, &mh, 0);
    struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL;
    *have = cm && cm->cmsg_type == SCM_CREDENTIALS && cm->cmsg_len == CMSG_LEN(sizeof *uc);
    if (*have)
        memcpy(uc, CMSG_DATA(cm), sizeof *uc);
    return n;
}

static void passcred(void)
{
    int s[2], on = 1, v, have;
    socklen_t vl = sizeof v;
    socketpair(AF_UNIX, SOCK_DGRAM, 0, s);
    char data[64];
    struct ucred uc;
    send(s[0], "before", 6, 0);
    setsockopt(s[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    getsockopt(s[1], SOL_SOCKET, SO_PASSCRED, &v, &vl);
    printf("SO_PASSCRED %d\n", v);
    long n = recv_cred(s[1], data, sizeof data, &uc, &have);
    printf("sent before SO_PASSCRED: %ld bytes, credentials %d pid %d uid %u gid %u\n", n, have, uc.pid,
           uc.uid, uc.gid);
    pid_t c = fork();
    if (c == 0) {
        send(s[0], "from the child", 14, 0);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    n = recv_cred(s[1], data, sizeof data, &uc, &have);
    printf("SCM_CREDENTIALS: %ld bytes, %d, pid is the child %d uid %u gid %u\n", n, have, uc.pid == c,
           uc.uid, uc.gid);
    struct ucred mine = {getpid(), 0, 0};
    char ctl[CMSG_SPACE(sizeof mine)];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = {"x", 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof mine);
    memcpy(CMSG_DATA(cm), &mine, sizeof mine);
    show("sendmsg with SCM_CREDENTIALS", sendmsg(s[0], &mh, 0));
    n = recv_cred(s[1], data, sizeof data, &uc, &have);
    printf("received: %ld bytes, %d, pid is ours %d\n", n, have, uc.pid == getpid());
    cm->cmsg_len = CMSG_LEN(sizeof mine) - 1;
    show("SCM_CREDENTIALS of the wrong length", sendmsg(s[0], &mh, 0));
    close(s[0]);
    close(s[1]);

    /* a stream reader with SO_PASSCRED does not glue data from two writers */
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    setsockopt(s[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    send(s[0], "parent", 6, 0);
    c = fork();
    if (c == 0) {
        send(s[0], "child", 5, 0);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    send(s[0], "parent2", 7, 0);
    for (int i = 0; i < 3; i++) {
        n = recv_cred(s[1], data, sizeof data, &uc, &have);
        printf("stream read %d: %ld '%.*s' from the child %d\n", i, n, (int)n, data, uc.pid == c);
    }
    close(s[0]);
    close(s[1]);
}

/* ---- poll ---- */
static int pp[2];
static void *late_writer(void *arg)
{
    (void)arg;
    usleep(3000);
    if (write(pp[0], "ping", 4) != 4)
        perror("write");
    return NULL;
}

static void polling(void)
{
    socketpair(AF_UNIX, SOCK_STREAM, 0, pp);
    struct pollfd pf[2] = {{pp[0], POLLIN | POLLOUT, 0}, {pp[1], POLLIN | POLLOUT | POLLRDHUP, 0}};
    int n = poll(pf, 2, 0);
    printf("poll on a fresh pair: %d revents %#x %#x\n", n, pf[0].revents, pf[1].revents);
    pthread_t th;
    pthread_create(&th, NULL, late_writer, NULL);
    struct pollfd in = {pp[1], POLLIN, 0};
    n = poll(&in, 1, 5000);
    pthread_join(th, NULL);
    printf("poll until a thread writes: %d revents %#x\n", n, in.revents);
    shutdown(pp[0], SHUT_WR);
    n = poll(pf, 2, 0);
    printf("after SHUT_WR: %d revents %#x %#x\n", n, pf[0].revents, pf[1].revents);
    close(pp[0]);
    n = poll(&pf[1], 1, 0);
    printf("after the peer closed: %d revents %#x\n", n, pf[1].revents);
    close(pp[1]);

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct pollfd u = {s, POLLIN | POLLOUT, 0};
    n = poll(&u, 1, 0);
    printf("unconnected stream socket: %d revents %#x\n", n, u.revents);
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(s, &r);
    FD_SET(s, &w);
    struct timeval tv = {0, 0};
    n = select(s + 1, &r, &w, NULL, &tv);
    printf("select: %d readable %d writable %d\n", n, FD_ISSET(s, &r), FD_ISSET(s, &w));
    close(s);
}

/* ---- listen/connect/accept ---- */
static struct sockaddr_un srv;
static socklen_t srvlen;
static int lfd;
static void *echo_server(void *arg)
{
    long clients = (long)arg;
    for (long i = 0; i < clients; i++) {
        struct sockaddr_un peer;
        socklen_t pl = sizeof peer;
        int c = accept(lfd, (struct sockaddr *)&peer, &pl);
        if (c < 0) {
            perror("accept");
            continue;
        }
        char buf[128];
        long n;
        while ((n = read(c, buf, sizeof buf)) > 0)
            if (write(c, buf, n) != n)
                break;
        close(c);
    }
    return NULL;
}

static void print_name(const char *what, struct sockaddr_un *a, socklen_t len)
{
    printf("%s: len %u", what, len);
    if (len > offsetof(struct sockaddr_un, sun_path)) {
        if (a->sun_path[0])
            printf(" path %s", a->sun_path);
        else
            printf(" abstract '%.*s'", (int)(len - offsetof(struct sockaddr_un, sun_path) - 1), a->sun_path + 1);
    }
    printf("\n");
}

static void connect_accept(void)
{
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    srvlen = abstract_addr(&srv, "faultlab-unixsock-test");
    show("listen before bind", listen(lfd, 5));
    show("bind abstract", bind(lfd, (struct sockaddr *)&srv, srvlen));
    show("bind again", bind(lfd, (struct sockaddr *)&srv, srvlen));
    int other = socket(AF_UNIX, SOCK_STREAM, 0);
    show("bind a taken name", bind(other, (struct sockaddr *)&srv, srvlen));
    show("connect before listen", connect(other, (struct sockaddr *)&srv, srvlen));
    close(other);
    show("listen", listen(lfd, 2));
    int acc;
    socklen_t al = sizeof acc;
    getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al);
    printf("SO_ACCEPTCONN %d\n", acc);
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    show("accept with none waiting (non-blocking)", accept(lfd, NULL, NULL));
    fcntl(lfd, F_SETFL, 0);

    pthread_t th;
    pthread_create(&th, NULL, echo_server, (void *)2L);
    for (int i = 0; i < 2; i++) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        show("connect", connect(c, (struct sockaddr *)&srv, srvlen));
        show("connect again", connect(c, (struct sockaddr *)&srv, srvlen));
        struct sockaddr_un a;
        socklen_t l = sizeof a;
        getpeername(c, (struct sockaddr *)&a, &l);
        print_name("getpeername", &a, l);
        l = sizeof a;
        getsockname(c, (struct sockaddr *)&a, &l);
        print_name("getsockname (unbound client)", &a, l);
        struct ucred uc;
        socklen_t ul = sizeof uc;
        getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &ul);
        printf("server's credentials: pid is ours %d\n", uc.pid == getpid());
        char msg[32], back[32];
        int n = snprintf(msg, sizeof msg, "hello %d", i);
        if (write(c, msg, n) != n)
            perror("write");
        long r = 0, m;
        while (r < n && (m = read(c, back + r, sizeof back - r)) > 0)
            r += m;
        printf("echo: %.*s\n", (int)r, back);
        close(c);
    }
    pthread_join(th, NULL);

    /* a full backlog: non-blocking connects beyond it fail with EAGAIN */
    int cs[6], ok = 0, eagain = 0;
    for (int i = 0; i < 6; i++) {
        cs[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(cs[i], (struct sockaddr *)&srv, srvlen) == 0)
            ok++;
        else if (errno == EAGAIN)
            eagain++;
    }
    printf("backlog 2: %d connected, %d EAGAIN\n", ok, eagain);
    /* the listener closes with connections queued: they are reset */
    close(lfd);
    char b[4];
    long n = read(cs[0], b, sizeof b);
    printf("queued connection after the listener closed: ");
    show("read", n);
    for (int i = 0; i < 6; i++)
        close(cs[i]);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    show("connect to a name no longer bound", connect(c, (struct sockaddr *)&srv, srvlen));
    struct sockaddr_un dg;
    socklen_t dgl = abstract_addr(&dg, "faultlab-unixsock-dgram");
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(d, (struct sockaddr *)&dg, dgl);
    show("stream connect to a datagram name", connect(c, (struct sockaddr *)&dg, dgl));
    close(c);

    /* datagrams to a bound name, with the sender's address */
    int e = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un ea;
    socklen_t eal = abstract_addr(&ea, "faultlab-unixsock-sender");
    bind(e, (struct sockaddr *)&ea, eal);
    show("sendto", sendto(e, "to you", 6, 0, (struct sockaddr *)&dg, dgl));
    char buf[32];
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    n = recvfrom(d, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("recvfrom: %ld %.6s, ", n, buf);
    print_name("from", &from, fl);
    int anon = socket(AF_UNIX, SOCK_DGRAM, 0);
    sendto(anon, "anon", 4, 0, (struct sockaddr *)&dg, dgl);
    fl = sizeof from;
    n = recvfrom(d, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("recvfrom an unbound sender: %ld, address length %u\n", n, fl);
    show("connect datagram", connect(anon, (struct sockaddr *)&dg, dgl));
    show("send on it", send(anon, "c", 1, 0));
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    show("connect AF_UNSPEC", connect(anon, &unspec, sizeof unspec));
    show("send after disconnect", send(anon, "c", 1, 0));
    struct sockaddr_un auto_ = {.sun_family = AF_UNIX};     /* only the family: autobind */
    socklen_t autol = sizeof auto_;
    show("autobind", bind(anon, (struct sockaddr *)&auto_, offsetof(struct sockaddr_un, sun_path)));
    getsockname(anon, (struct sockaddr *)&auto_, &autol);
    printf("autobound name: length %u abstract %d\n", autol, auto_.sun_path[0] == 0);
    close(anon);
    close(e);
    close(d);
    /* a receiver connected elsewhere refuses others (EPERM) */
}

static void filesystem_name(void)
{
    const char *path = "/tmp/faultlab-unixsock.sock";
    unlink(path);
    struct sockaddr_un a;
    socklen_t al = path_addr(&a, path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    show("bind path", bind(l, (struct sockaddr *)&a, al));
    struct stat st;
    stat(path, &st);
    printf("socket file: S_ISSOCK %d\n", S_ISSOCK(st.st_mode));
    show("open the socket file", open(path, O_RDWR));
    int pathfd = open(path, O_PATH);
    printf("open it with O_PATH works %d\n", pathfd >= 0);
    close(pathfd);
    int l2 = socket(AF_UNIX, SOCK_STREAM, 0);
    show("bind the same path", bind(l2, (struct sockaddr *)&a, al));
    close(l2);
    listen(l, 1);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    show("connect by path", connect(c, (struct sockaddr *)&a, al));
    int s = accept(l, NULL, NULL);
    struct sockaddr_un n;
    socklen_t nl = sizeof n;
    getsockname(s, (struct sockaddr *)&n, &nl);
    print_name("accepted socket's name", &n, nl);
    send(c, "via path", 8, 0);
    char b[16];
    long r = recv(s, b, sizeof b, 0);
    printf("received %ld: %.8s\n", r, b);
    close(s);
    close(c);
    close(l);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    show("connect after the listener closed", connect(c, (struct sockaddr *)&a, al));
    unlink(path);
    show("connect after unlink", connect(c, (struct sockaddr *)&a, al));
    al = path_addr(&a, "/tmp");
    show("connect to a directory", connect(c, (struct sockaddr *)&a, al));
    al = path_addr(&a, "/nonexistent/dir/sock");
    show("bind in a missing directory", bind(c, (struct sockaddr *)&a, al));
    close(c);
}

/* ---- EPIPE, SIGPIPE, shutdown ---- */
static volatile int sigpipes;
static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

static void epipe(void)
{
    signal(SIGPIPE, on_sigpipe);
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    close(s[1]);
    show("write to a closed peer", write(s[0], "x", 1));
    printf("SIGPIPEs: %d\n", sigpipes);
    show("send MSG_NOSIGNAL", send(s[0], "x", 1, MSG_NOSIGNAL));
    printf("SIGPIPEs: %d\n", sigpipes);
    char b[4];
    show("read after the peer closed", read(s[0], b, sizeof b));
    close(s[0]);

    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    send(s[1], "unread", 6, 0);
    close(s[0]);
    show("peer closed with data unread, read", read(s[1], b, sizeof b));
    show("read again", read(s[1], b, sizeof b));
    close(s[1]);

    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    shutdown(s[0], SHUT_WR);
    show("write after SHUT_WR", write(s[0], "x", 1));
    printf("SIGPIPEs: %d\n", sigpipes);
    show("peer reads end of file", read(s[1], b, sizeof b));
    show("shutdown how=7", shutdown(s[0], 7));
    close(s[0]);
    close(s[1]);
    signal(SIGPIPE, SIG_DFL);
}

/* ---- non-blocking ---- */
static void nonblocking(void)
{
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s);
    printf("SOCK_NONBLOCK: O_NONBLOCK %d, FD_CLOEXEC %d\n", !!(fcntl(s[0], F_GETFL) & O_NONBLOCK),
           fcntl(s[0], F_GETFD));
    char b[4096];
    show("read with nothing queued", read(s[1], b, sizeof b));
    memset(b, 'z', sizeof b);
    long total = 0, n;
    while ((n = write(s[0], b, sizeof b)) > 0)
        total += n;
    printf("filled: more than 100000 bytes %d, then %s\n", total > 100000, strerrorname_np(errno));
    struct pollfd pf = {s[0], POLLOUT, 0};
    printf("full socket writable: %d\n", poll(&pf, 1, 0));
    long drained = 0;
    while ((n = read(s[1], b, sizeof b)) > 0)
        drained += n;
    printf("drained all: %d\n", drained == total);
    printf("writable again: %d\n", poll(&pf, 1, 0));
    show("recv MSG_DONTWAIT on a blocking socket", recv(s[1], b, 1, MSG_DONTWAIT));
    close(s[0]);
    close(s[1]);
}

/* ---- SO_RCVTIMEO / SO_SNDTIMEO ---- */
static double ms_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1e3 + (b.tv_nsec - a->tv_nsec) / 1e6;
}

static void timeouts(void)
{
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    struct timeval tv = {0, 20000}, back;
    socklen_t bl = sizeof back;
    show("SO_RCVTIMEO 20 ms", setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    getsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &back, &bl);
    printf("reads back %ld.%06ld len %u\n", (long)back.tv_sec, (long)back.tv_usec, bl);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char c[4096];
    long n = read(s[0], c, 1);
    printf("read timed out after at least 19 ms %d: ", ms_since(&t0) >= 19);
    show("read", n);
    tv.tv_usec = 1000000;
    show("SO_RCVTIMEO usec 1000000", setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    show("SO_RCVTIMEO short", setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, 8));
    /* a full socket: a send with SO_SNDTIMEO gives up */
    memset(c, 'q', sizeof c);
    while (send(s[1], c, sizeof c, MSG_DONTWAIT) > 0)
        ;
    tv.tv_usec = 10000;
    setsockopt(s[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    n = send(s[1], c, sizeof c, 0);
    printf("send to a full socket timed out after at least 9 ms %d: ", ms_since(&t0) >= 9);
    show("send", n);
    close(s[0]);
    close(s[1]);
    int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un a;
    bind(l, (struct sockaddr *)&a, abstract_addr(&a, "faultlab-unixsock-timeo"));
    listen(l, 1);
    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    show("accept with SO_RCVTIMEO", accept(l, NULL, NULL));
    close(l);
}

/* ---- bad input ---- */
static void bad_input(void)
{
    int p[2];
    pipe(p);
    char b[8];
    show("send on -1", send(-1, "x", 1, 0));
    show("send on a closed fd", send(100, "x", 1, 0));
    show("send on a pipe", send(p[1], "x", 1, 0));
    show("getsockopt on a pipe", getsockopt(p[0], SOL_SOCKET, SO_TYPE, b, &(socklen_t){4}));
    show("socketpair to NULL", socketpair(AF_UNIX, SOCK_STREAM, 0, NULL));
    show("socket with bad flags", socket(AF_UNIX, SOCK_STREAM | 0x100, 0));
    show("socket type 99", socket(AF_UNIX, 99, 0));
    show("socket SOCK_RDM", socket(AF_UNIX, SOCK_RDM, 0));
    show("socket protocol 7", socket(AF_UNIX, SOCK_STREAM, 7));
    show("socket family 200", socket(200, SOCK_STREAM, 0));
    show("socket family -1", socket(-1, SOCK_STREAM, 0));
    show("socket AF_DECnet", socket(12, SOCK_STREAM, 0));
    show("socketpair AF_DECnet", socketpair(12, SOCK_STREAM, 0, p));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct stat st;
    fstat(s, &st);
    printf("fstat: S_ISSOCK %d mode %o\n", S_ISSOCK(st.st_mode), st.st_mode & 07777);
    show("lseek on a socket", lseek(s, 0, SEEK_SET));
    show("pread on a socket", pread(s, b, 1, 0));
    show("send unconnected", send(s, "x", 1, 0));
    show("read unconnected", read(s, b, 1));
    show("getpeername unconnected", getpeername(s, (struct sockaddr *)b, &(socklen_t){8}));
    show("accept not listening", accept(s, NULL, NULL));
    show("accept4 bad flags", accept4(s, NULL, NULL, 0x10));
    show("bind addrlen 1", bind(s, (struct sockaddr *)b, 1));
    show("bind addrlen 200", bind(s, (struct sockaddr *)b, 200));
    struct sockaddr_un bad = {.sun_family = AF_INET};
    show("bind family AF_INET", bind(s, (struct sockaddr *)&bad, sizeof bad));
    show("bind EFAULT", bind(s, (struct sockaddr *)8, 10));
    show("connect to an unbound abstract name", connect(s, (struct sockaddr *)&srv, srvlen));
    show("shutdown unconnected", shutdown(s, SHUT_RDWR));
    show("setsockopt level 99", setsockopt(s, 99, 1, &(int){1}, 4));
    show("setsockopt short", setsockopt(s, SOL_SOCKET, SO_SNDBUF, &(int){1}, 2));
    show("setsockopt SO_TYPE", setsockopt(s, SOL_SOCKET, SO_TYPE, &(int){1}, 4));
    show("getsockopt unknown", getsockopt(s, SOL_SOCKET, 999, b, &(socklen_t){4}));
    show("getsockopt len -1", getsockopt(s, SOL_SOCKET, SO_TYPE, b, &(socklen_t){-1}));
    show("getsockopt EFAULT", getsockopt(s, SOL_SOCKET, SO_TYPE, (void *)8, &(socklen_t){4}));
    int v = 0;
    socklen_t vl = 2;
    getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &vl);
    printf("getsockopt into 2 bytes: %d len %u\n", v, vl);
    close(s);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    show("listen on a datagram socket", listen(d, 1));
    show("accept on a datagram socket", accept(d, NULL, NULL));
    show("send unconnected datagram", send(d, "x", 1, 0));
    show("sendto an unbound name", sendto(d, "x", 1, 0, (struct sockaddr *)&srv, srvlen));
    int s2[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s2);
    show("send EFAULT", send(s2[0], (void *)8, 4, 0));
    show("sendto with an address on a connected stream", sendto(s2[0], "x", 1, 0, (struct sockaddr *)&srv, srvlen));
    struct msghdr mh = {.msg_iovlen = 2000};
    show("sendmsg iovlen 2000", sendmsg(s2[0], &mh, 0));
    show("sendmsg EFAULT msghdr", sendmsg(s2[0], (struct msghdr *)8, 0));
    char ctl[CMSG_SPACE(4)] = {0};
    struct iovec iov = {"x", 1};
    struct msghdr cm = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    ((struct cmsghdr *)ctl)->cmsg_len = 4;
    show("sendmsg cmsg_len 4", sendmsg(s2[0], &cm, 0));
    ((struct cmsghdr *)ctl)->cmsg_len = CMSG_LEN(4);
    ((struct cmsghdr *)ctl)->cmsg_level = SOL_SOCKET;
    ((struct cmsghdr *)ctl)->cmsg_type = 77;
    show("sendmsg unknown cmsg type", sendmsg(s2[0], &cm, 0));
    close(s2[0]);
    close(s2[1]);
    close(d);
    close(p[0]);
    close(p[1]);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "inet") == 0) {
        show("socket(AF_INET)", socket(AF_INET, SOCK_STREAM, 0));
        show("socket(AF_INET6)", socket(AF_INET6, SOCK_DGRAM, 0));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "hang") == 0) {
        int s[2];
        char c;
        socketpair(AF_UNIX, SOCK_STREAM, 0, s);
        return (int)read(s[0], &c, 1);
    }
    stream_threads();
    waitall();
    stream_fork();
    dgram_details();
    scm_rights();
    passcred();
    polling();
    connect_accept();
    filesystem_name();
    epipe();
    nonblocking();
    timeouts();
    bad_input();
    printf("done\n");
    return 0;
}
