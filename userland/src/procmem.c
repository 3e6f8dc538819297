/* /proc/self/mem: reads and writes at the file offset = address, with ptrace's FOLL_FORCE rules:
 * PROT_NONE memory is readable, read-only private mappings (anonymous, zero page, file) take a write
 * that breaks copy-on-write while the mapping stays read-only (a store of the program still faults),
 * shared read-only mappings refuse it (EIO), a transfer stops at an unmapped page (a partial count,
 * EIO when nothing moved), a forked child's write does not reach its parent. Prints what Linux gives. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int fd;
static sigjmp_buf env;

static void on_segv(int sig) { (void)sig; siglongjmp(env, 1); }

static long rd(void *addr, void *buf, size_t n)
{
    long r = pread(fd, buf, n, (off_t)(uintptr_t)addr);
    return r < 0 ? -errno : r;
}

static long wr(void *addr, const void *buf, size_t n)
{
    long r = pwrite(fd, buf, n, (off_t)(uintptr_t)addr);
    return r < 0 ? -errno : r;
}

/* does a store of the program itself fault, and is the byte unchanged then? */
static const char *store(char *p)
{
    char before = *(volatile char *)p;
    if (sigsetjmp(env, 1) == 0) {
        *(volatile char *)p = before + 1;
        return "store ok";
    }
    return *(volatile char *)p == before ? "store SIGSEGV, unchanged" : "store SIGSEGV, changed";
}

/* a forced write, then what the program reads there and whether its own store faults */
static void forced(const char *what, char *p, const char *src, size_t n)
{
    long r = wr(p, src, n);
    printf("%s: %ld '%.*s'", what, r, (int)n, p);
    printf(" %s\n", store(p));
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGSEGV, on_segv);
    fd = open("/proc/self/mem", O_RDWR);
    printf("open: %s\n", fd < 0 ? strerror(errno) : "ok");
    size_t pg = 4096;
    char buf[3 * 4096], msg[] = "hello";

    /* plain memory, read and written, also through lseek + read/write */
    static char data[64] = "static data";
    printf("read data: %ld '%.11s'\n", rd(data, buf, 11), buf);
    printf("write data: %ld now '%s'\n", wr(data, "STATIC", 6), data);
    lseek(fd, (off_t)(uintptr_t)data, SEEK_SET);
    long got = read(fd, buf, 6);
    long moved = (long)(lseek(fd, 0, SEEK_CUR) - (off_t)(uintptr_t)data);
    printf("lseek+read: %ld '%.6s' pos moved %ld\n", got, buf, moved);
    got = write(fd, "St", 2);
    moved = (long)(lseek(fd, 0, SEEK_CUR) - (off_t)(uintptr_t)data);
    printf("write at the position: %ld pos moved %ld data '%s'\n", got, moved, data);
    got = lseek(fd, 0, SEEK_END);
    printf("lseek SEEK_END: %ld %s\n", got, got < 0 ? strerror(errno) : "");

    /* a page followed by a hole: partial transfers, EIO at the hole */
    char *two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(two + pg, pg);
    memset(two, 'a', pg);
    printf("read across the hole: %ld\n", rd(two + pg - 10, buf, 100));
    printf("write across the hole: %ld\n", wr(two + pg - 4, "12345678", 8));
    printf("read in the hole: %ld\n", rd(two + pg, buf, 10));
    printf("write in the hole: %ld\n", wr(two + pg, "x", 1));
    printf("read above user space: %ld\n", rd((void *)0xffff800000000000ul, buf, 1));

    /* PROT_NONE: readable and writable with FOLL_FORCE, still no access for the program */
    char *none = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(none, "secret");
    mprotect(none, pg, PROT_NONE);
    printf("read PROT_NONE: %ld '%.6s'\n", rd(none, buf, 6), buf);
    printf("write PROT_NONE: %ld\n", wr(none, "SECRET", 6));
    mprotect(none, pg, PROT_READ);
    printf("PROT_NONE after: '%.6s'\n", none);
    char *none2 = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    buf[0] = 1;
    got = rd(none2, buf, 1);
    printf("read untouched PROT_NONE: %ld byte %d\n", got, buf[0]);

    /* read-only private anonymous memory: unfaulted, and on the shared zero page */
    char *ro = mmap(NULL, 2 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    forced("write RO untouched", ro, msg, 5);
    printf("zero page read: %d\n", ro[pg]);
    forced("write RO zero page", ro + pg, msg, 5);
    forced("write RO again", ro + pg, "HELLO", 5);

    /* a file mapped privately read-only: the mapping changes, the file does not */
    char path[] = "/tmp/procmemXXXXXX";
    int ffd = mkstemp(path);
    memset(buf, 'f', pg);
    write(ffd, buf, pg);
    char *fro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, ffd, 0);
    forced("write private RO file map", fro, msg, 5);
    pread(ffd, buf, 5, 0);
    printf("file still: '%.5s'\n", buf);
    /* shared mappings: a read-only one refuses, a writable one reaches the file */
    int rofd = open(path, O_RDONLY);
    char *fsh = mmap(NULL, pg, PROT_READ, MAP_SHARED, rofd, 0);
    printf("write shared RO file map: %ld\n", wr(fsh, msg, 5));
    char *fsw = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0);
    printf("write shared RW file map: %ld\n", wr(fsw + 10, "SHARED", 6));
    pread(ffd, buf, 16, 0);
    printf("file now: '%.16s'\n", buf);
    char *fshr = mmap(NULL, pg, PROT_READ, MAP_SHARED, ffd, 0);
    printf("write shared RO map of an RW file: %ld\n", wr(fshr, msg, 5));
    unlink(path);

    /* fork: the child's forced write breaks COW; the parent keeps its page */
    char *cow = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(cow, "parent");
    mprotect(cow, pg, PROT_READ);
    pid_t pid = fork();
    if (pid == 0) {
        int cfd = open("/proc/self/mem", O_RDWR);
        long n = pwrite(cfd, "child!", 6, (off_t)(uintptr_t)cow);
        printf("child write: %ld child sees '%.6s'\n", n, cow);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("parent sees '%.6s'\n", cow);

    /* large read spanning pages */
    char *big = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < 3 * pg; i++)
        big[i] = (char)(i * 7);
    long n = rd(big + 5, buf, 3 * pg - 5);
    printf("big read: %ld match %d\n", n, !memcmp(buf, big + 5, 3 * pg - 5));
    return 0;
}
