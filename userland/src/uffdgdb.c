/*
 * uffdgdb: three userfaultfd faults for a debugger, one after the other, each resolved by a handler
 * thread: a MISSING fault on anonymous memory (UFFDIO_COPY), a WP fault on a write-protected
 * anonymous page (UFFDIO_WRITEPROTECT) and a MINOR fault on a memfd page already in the page cache
 * (UFFDIO_CONTINUE). One userfaultfd (O_NONBLOCK, waited for with poll as in userfaultfd(2)'s
 * example) is registered for all three ranges. The handler calls uffd_got_message() when poll()
 * reports a message, before reading it, and uffd_resolving() after reading it, before the ioctl:
 * breakpoints there see the message queued and being resolved.
 * Prints the descriptor, then one line per fault: its mode and the byte read back after it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PS 4096L

static int uffd;
static char modes[3][8];

static void fail(const char *what)
{
    fprintf(stderr, "FAIL: %s (%s)\n", what, strerror(errno));
    exit(1);
}

void __attribute__((noinline)) uffd_got_message(int n)
{
    __asm__ volatile("" ::"r"(n) : "memory");
}

void __attribute__((noinline)) uffd_resolving(uint64_t address, uint64_t flags)
{
    __asm__ volatile("" ::"r"(address), "r"(flags) : "memory");
}

static void *handler(void *arg)
{
    static char src[PS] __attribute__((aligned(4096)));
    (void)arg;
    for (int n = 0; n < 3;) {
        struct pollfd p = { uffd, POLLIN, 0 };
        if (poll(&p, 1, -1) != 1)
            continue;
        uffd_got_message(n);
        struct uffd_msg msg;
        if (read(uffd, &msg, sizeof msg) != sizeof msg) {
            if (errno == EAGAIN)
                continue;
            fail("read");
        }
        uint64_t addr = msg.arg.pagefault.address & ~(PS - 1), fl = msg.arg.pagefault.flags;
        uffd_resolving(addr, fl);
        int r;
        if (fl & UFFD_PAGEFAULT_FLAG_WP) {
            strcpy(modes[n], "WP");
            struct uffdio_writeprotect w = { .range = { addr, PS }, .mode = 0 };
            r = ioctl(uffd, UFFDIO_WRITEPROTECT, &w);
        } else if (fl & UFFD_PAGEFAULT_FLAG_MINOR) {
            strcpy(modes[n], "MINOR");
            struct uffdio_continue c = { .range = { addr, PS } };
            r = ioctl(uffd, UFFDIO_CONTINUE, &c);
        } else {
            strcpy(modes[n], "MISSING");
            memset(src, 0x11, PS);
            struct uffdio_copy c = { .dst = addr, .src = (uintptr_t)src, .len = PS };
            r = ioctl(uffd, UFFDIO_COPY, &c);
        }
        if (r)
            fail("resolve");
        n++;
    }
    return NULL;
}

static void reg(void *addr, uint64_t mode)
{
    struct uffdio_register r = { .range = { (uintptr_t)addr, PS }, .mode = mode };
    if (ioctl(uffd, UFFDIO_REGISTER, &r))
        fail("UFFDIO_REGISTER");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0)
        fail("userfaultfd");
    struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_MINOR_SHMEM };
    if (ioctl(uffd, UFFDIO_API, &api))
        fail("UFFDIO_API");

    char *missing = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *wp = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fd = memfd_create("uffdgdb", MFD_CLOEXEC);
    if (missing == MAP_FAILED || wp == MAP_FAILED || fd < 0 || ftruncate(fd, PS))
        fail("set-up");
    char *first = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *minor = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (first == MAP_FAILED || minor == MAP_FAILED)
        fail("mmap the memfd");
    first[0] = 0x33;                    /* the page is in the page cache, not mapped at minor */
    wp[0] = 0x22;
    reg(missing, UFFDIO_REGISTER_MODE_MISSING);
    reg(wp, UFFDIO_REGISTER_MODE_WP);
    reg(minor, UFFDIO_REGISTER_MODE_MINOR);
    struct uffdio_writeprotect w = { .range = { (uintptr_t)wp, PS }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
    if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w))
        fail("UFFDIO_WRITEPROTECT");
    printf("uffd fd %d\n", uffd);

    pthread_t th;
    if (pthread_create(&th, NULL, handler, NULL))
        fail("pthread_create");
    missing[1] = 1;                     /* MISSING: the handler copies a page of 0x11 */
    int a = missing[0];
    wp[1] = 2;                          /* WP: the handler unprotects */
    int b = wp[0];
    int c = ((volatile char *)minor)[0];        /* MINOR: the handler maps the cached page */
    pthread_join(th, NULL);
    printf("fault 1 %s byte %#x\n", modes[0], a);
    printf("fault 2 %s byte %#x\n", modes[1], b);
    printf("fault 3 %s byte %#x\n", modes[2], c);
    return 0;
}
