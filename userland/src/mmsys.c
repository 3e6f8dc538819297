/* NUMA memory policy on one node, protection keys, pidfds: results and errnos for valid and bad
   input, as a one-node machine without protection keys gives them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD ((void *)16)
#define MPOL_DEFAULT 0
#define MPOL_PREFERRED 1
#define MPOL_BIND 2
#define MPOL_INTERLEAVE 3
#define MPOL_LOCAL 4
#define MPOL_PREFERRED_MANY 5
#define MPOL_F_STATIC_NODES (1 << 15)
#define MPOL_F_RELATIVE_NODES (1 << 14)
#define MPOL_F_NUMA_BALANCING (1 << 13)
#define MPOL_F_NODE 1
#define MPOL_F_ADDR 2
#define MPOL_F_MEMS_ALLOWED 4
#define MPOL_MF_STRICT 1
#define MPOL_MF_MOVE 2

static long r(long v) { return v < 0 ? -errno : v; }

static long set_mp(int mode, unsigned long mask, unsigned long maxnode)
{
    return r(syscall(SYS_set_mempolicy, mode, &mask, maxnode));
}

static void get_mp(const char *what, void *addr, unsigned long flags)
{
    int mode = -1;
    unsigned long mask[2] = { 0xdead, 0xdead };
    long ret = r(syscall(SYS_get_mempolicy, &mode, mask, 128, addr, flags));
    printf("get_mempolicy %s: %ld mode %d mask %lx %lx\n", what, ret, mode, mask[0], mask[1]);
}

static void mempolicy(void)
{
    get_mp("default", NULL, 0);
    get_mp("mems allowed", NULL, MPOL_F_MEMS_ALLOWED);
    printf("set BIND {0}: %ld\n", set_mp(MPOL_BIND, 1, 2));
    get_mp("bind", NULL, 0);
    printf("set BIND {1}: %ld\n", set_mp(MPOL_BIND, 2, 3));
    printf("set BIND {0,1}: %ld\n", set_mp(MPOL_BIND, 3, 3));
    get_mp("bind {0,1}", NULL, 0);
    printf("set BIND {}: %ld\n", set_mp(MPOL_BIND, 0, 3));
    printf("set INTERLEAVE {0}: %ld\n", set_mp(MPOL_INTERLEAVE, 1, 2));
    get_mp("interleave node", NULL, MPOL_F_NODE);
    printf("set PREFERRED {}: %ld\n", set_mp(MPOL_PREFERRED, 0, 2));
    get_mp("preferred {} is local", NULL, 0);
    printf("set PREFERRED|STATIC {}: %ld\n", set_mp(MPOL_PREFERRED | MPOL_F_STATIC_NODES, 0, 2));
    printf("set LOCAL {0}: %ld\n", set_mp(MPOL_LOCAL, 1, 2));
    printf("set LOCAL: %ld\n", set_mp(MPOL_LOCAL, 0, 2));
    printf("set BIND|STATIC {0,5}: %ld\n", set_mp(MPOL_BIND | MPOL_F_STATIC_NODES, 0x21, 64));
    get_mp("static", NULL, 0);
    printf("set BIND|RELATIVE {5}: %ld\n", set_mp(MPOL_BIND | MPOL_F_RELATIVE_NODES, 0x20, 64));
    get_mp("relative", NULL, 0);
    printf("set STATIC|RELATIVE: %ld\n", set_mp(MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES, 1, 2));
    printf("set INTERLEAVE|NUMA_BALANCING: %ld\n", set_mp(MPOL_INTERLEAVE | MPOL_F_NUMA_BALANCING, 1, 2));
    printf("set mode 7: %ld\n", set_mp(7, 1, 2));
    printf("set mode -1: %ld\n", set_mp(-1, 1, 2));
    printf("set DEFAULT {0}: %ld\n", set_mp(MPOL_DEFAULT, 1, 2));
    printf("set BIND bad mask: %ld\n", r(syscall(SYS_set_mempolicy, MPOL_BIND, BAD, 2)));
    printf("set BIND maxnode 0: %ld\n", set_mp(MPOL_BIND, 1, 0));
    printf("set BIND maxnode huge: %ld\n", set_mp(MPOL_BIND, 1, 1UL << 20));
    printf("set DEFAULT NULL: %ld\n", r(syscall(SYS_set_mempolicy, MPOL_DEFAULT, NULL, 0)));
    get_mp("default again", NULL, 0);
    int mode;
    unsigned long mask;
    printf("get maxnode 0: %ld\n", r(syscall(SYS_get_mempolicy, &mode, &mask, 0, NULL, 0)));
    printf("get bad flags: %ld\n", r(syscall(SYS_get_mempolicy, &mode, NULL, 0, NULL, 8)));
    printf("get MEMS_ALLOWED|NODE: %ld\n", r(syscall(SYS_get_mempolicy, &mode, NULL, 0, NULL, 5)));
    printf("get addr without F_ADDR: %ld\n", r(syscall(SYS_get_mempolicy, &mode, NULL, 0, &mode, 0)));
    printf("get F_NODE without interleave: %ld\n", r(syscall(SYS_get_mempolicy, &mode, NULL, 0, NULL, 1)));
    printf("get bad policy pointer: %ld\n", r(syscall(SYS_get_mempolicy, BAD, NULL, 0, NULL, 0)));
    printf("get bad mask pointer: %ld\n", r(syscall(SYS_get_mempolicy, &mode, BAD, 64, NULL, 0)));

    char *p = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned long one = 1, two = 2;
    get_mp("F_ADDR before mbind", p, MPOL_F_ADDR);
    printf("mbind BIND {0}: %ld\n", r(syscall(SYS_mbind, p, 4 * 4096, MPOL_BIND, &one, 2, 0)));
    get_mp("F_ADDR bound", p, MPOL_F_ADDR);
    get_mp("F_ADDR beyond bound", p + 5 * 4096, MPOL_F_ADDR);
    get_mp("F_ADDR|F_NODE", p + 4096, MPOL_F_ADDR | MPOL_F_NODE);
    printf("mbind STRICT|MOVE: %ld\n", r(syscall(SYS_mbind, p, 4096, MPOL_BIND, &one, 2, MPOL_MF_STRICT | MPOL_MF_MOVE)));
    printf("mbind {1}: %ld\n", r(syscall(SYS_mbind, p, 4096, MPOL_BIND, &two, 3, 0)));
    printf("mbind unaligned: %ld\n", r(syscall(SYS_mbind, p + 1, 4096, MPOL_BIND, &one, 2, 0)));
    printf("mbind len 0: %ld\n", r(syscall(SYS_mbind, p, 0, MPOL_BIND, &one, 2, 0)));
    printf("mbind bad flags: %ld\n", r(syscall(SYS_mbind, p, 4096, MPOL_BIND, &one, 2, 64)));
    printf("mbind hole: %ld\n", r(syscall(SYS_mbind, p, 64 * 4096, MPOL_BIND, &one, 2, 0)));
    printf("mbind DEFAULT: %ld\n", r(syscall(SYS_mbind, p, 8 * 4096, MPOL_DEFAULT, NULL, 0, 0)));
    get_mp("F_ADDR after DEFAULT", p, MPOL_F_ADDR);
    get_mp("F_ADDR unmapped", (char *)4096, MPOL_F_ADDR);

    /* move_pages: status of touched, read-only-touched, untouched and unmapped pages */
    p[0] = 1;
    volatile char c = p[4096];
    (void)c;
    void *pages[5] = { p, p + 4096, p + 2 * 4096, (char *)4096, p + 3 * 4096 + 5 };
    int status[5] = { 9, 9, 9, 9, 9 };
    long ret = r(syscall(SYS_move_pages, 0, 5, pages, NULL, status, 0));
    printf("move_pages stat: %ld [%d %d %d %d %d]\n", ret, status[0], status[1], status[2], status[3], status[4]);
    int nodes[5] = { 0, 0, 0, 0, 0 };
    memset(status, 9, sizeof status);
    ret = r(syscall(SYS_move_pages, 0, 5, pages, nodes, status, MPOL_MF_MOVE));
    printf("move_pages to 0: %ld [%d %d %d %d %d]\n", ret, status[0], status[1], status[2], status[3], status[4]);
    nodes[1] = 1;
    printf("move_pages to node 1: %ld\n", r(syscall(SYS_move_pages, 0, 5, pages, nodes, status, MPOL_MF_MOVE)));
    nodes[1] = -1;
    printf("move_pages to node -1: %ld\n", r(syscall(SYS_move_pages, 0, 5, pages, nodes, status, MPOL_MF_MOVE)));
    printf("move_pages bad flags: %ld\n", r(syscall(SYS_move_pages, 0, 1, pages, NULL, status, 1)));
    printf("move_pages bad pages: %ld\n", r(syscall(SYS_move_pages, 0, 1, BAD, NULL, status, 0)));
    printf("move_pages bad status: %ld\n", r(syscall(SYS_move_pages, 0, 1, pages, NULL, BAD, 0)));
    printf("move_pages no such pid: %ld\n", r(syscall(SYS_move_pages, 999999, 1, pages, NULL, status, 0)));
    printf("move_pages 0 pages: %ld\n", r(syscall(SYS_move_pages, 0, 0, pages, NULL, status, 0)));
    printf("migrate_pages {0}->{0}: %ld\n", r(syscall(SYS_migrate_pages, 0, 2, &one, &one)));
    printf("migrate_pages {0}->{1}: %ld\n", r(syscall(SYS_migrate_pages, 0, 3, &one, &two)));
    printf("migrate_pages bad mask: %ld\n", r(syscall(SYS_migrate_pages, 0, 2, BAD, &one)));
    printf("migrate_pages no such pid: %ld\n", r(syscall(SYS_migrate_pages, 999999, 2, &one, &one)));
}

static void pkeys(void)
{
    char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("pkey_alloc: %ld\n", r(syscall(SYS_pkey_alloc, 0, 0)));
    printf("pkey_alloc bad flags: %ld\n", r(syscall(SYS_pkey_alloc, 1, 0)));
    printf("pkey_alloc bad rights: %ld\n", r(syscall(SYS_pkey_alloc, 0, 4)));
    printf("pkey_free 0: %ld\n", r(syscall(SYS_pkey_free, 0)));
    printf("pkey_free 1: %ld\n", r(syscall(SYS_pkey_free, 1)));
    printf("pkey_mprotect -1: %ld\n", r(syscall(SYS_pkey_mprotect, p, 4096, PROT_READ, -1)));
    printf("pkey_mprotect 0: %ld\n", r(syscall(SYS_pkey_mprotect, p, 4096, PROT_READ, 0)));
    printf("pkey_mprotect 1: %ld\n", r(syscall(SYS_pkey_mprotect, p, 4096, PROT_READ, 1)));
    printf("pkey_mprotect 1 len 0: %ld\n", r(syscall(SYS_pkey_mprotect, p, 0, PROT_READ, 1)));
    printf("pkey_mprotect 1 unaligned: %ld\n", r(syscall(SYS_pkey_mprotect, p + 1, 4096, PROT_READ, 1)));
    printf("pkey_mprotect -1 unmapped: %ld\n", r(syscall(SYS_pkey_mprotect, (char *)4096, 4096, PROT_READ, -1)));
    printf("pkey_mprotect -1 bad prot: %ld\n", r(syscall(SYS_pkey_mprotect, p, 4096, 0x100, -1)));
    unsigned char vec = 0;
    mincore(p, 4096, &vec);
    printf("glibc pkey_alloc: %d errno %d\n", pkey_alloc(0, 0), errno);
}

static void pidfds(void)
{
    int go[2], done[2];
    pipe(go);
    pipe(done);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char ch;
        read(go[0], &ch, 1);
        _exit(7);
    }
    int fd = syscall(SYS_pidfd_open, c, 0);
    printf("pidfd_open child: %d\n", fd >= 0);
    printf("close-on-exec: %d\n", fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    char buf[8];
    printf("read: %ld\n", r(read(fd, buf, sizeof buf)));
    printf("process_mrelease live: %ld\n", r(syscall(SYS_process_mrelease, fd, 0)));
    printf("process_mrelease flags: %ld\n", r(syscall(SYS_process_mrelease, fd, 1)));
    printf("process_mrelease bad fd: %ld\n", r(syscall(SYS_process_mrelease, 999, 0)));
    printf("process_mrelease not a pidfd: %ld\n", r(syscall(SYS_process_mrelease, go[0], 0)));
    printf("pidfd_send_signal 0: %ld\n", r(syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0)));
    printf("pidfd_send_signal flags: %ld\n", r(syscall(SYS_pidfd_send_signal, fd, 0, NULL, 99)));
    printf("pidfd_send_signal bad sig: %ld\n", r(syscall(SYS_pidfd_send_signal, fd, 99, NULL, 0)));
    printf("pidfd_send_signal bad info: %ld\n", r(syscall(SYS_pidfd_send_signal, fd, SIGUSR1, BAD, 0)));
    /* the child's end of `done` closes when it exits; a moment later it is a zombie */
    close(done[1]);
    write(go[1], "x", 1);
    while (read(done[0], buf, 1) > 0)
        ;
    usleep(50000);
    printf("process_mrelease zombie: %ld\n", r(syscall(SYS_process_mrelease, fd, 0)));
    printf("pidfd_send_signal zombie: %ld\n", r(syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0)));
    int st;
    waitpid(c, &st, 0);
    printf("child exit %d\n", WEXITSTATUS(st));
    printf("process_mrelease reaped: %ld\n", r(syscall(SYS_process_mrelease, fd, 0)));
    printf("pidfd_open reaped: %ld\n", r(syscall(SYS_pidfd_open, c, 0)));
    close(fd);
    printf("pidfd_open self: %d\n", (int)syscall(SYS_pidfd_open, getpid(), 0) >= 0);
    printf("pidfd_open 0: %ld\n", r(syscall(SYS_pidfd_open, 0, 0)));
    printf("pidfd_open -1: %ld\n", r(syscall(SYS_pidfd_open, -1, 0)));
    printf("pidfd_open bad flags: %ld\n", r(syscall(SYS_pidfd_open, getpid(), 1)));
    printf("pidfd_open no such pid: %ld\n", r(syscall(SYS_pidfd_open, 999999, 0)));
    fd = syscall(SYS_pidfd_open, getpid(), 0);
    signal(SIGUSR1, SIG_IGN);
    printf("pidfd_send_signal self: %ld\n", r(syscall(SYS_pidfd_send_signal, fd, SIGUSR1, NULL, 0)));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    mempolicy();
    pkeys();
    pidfds();
    return 0;
}
