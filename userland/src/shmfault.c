/*
 * shmfault: page faults taken by first touches of empty shared memory (MAP_SHARED|MAP_ANONYMOUS,
 * memfd_create, a tmpfs file), counted by getrusage's ru_minflt, and by a second mapping of memory
 * that is already populated (fault-around maps the cached pages next to the faulting one).
 *
 * Usage: shmfault [KIND [MODE [DIR]]]
 *   KIND  anon | memfd | tmpfs | all (default all)
 *   MODE  read | write | rw | popread | popwrite | remap | all (default all), or map: map and touch
 *         nothing (the baseline of the others' counters)
 *   DIR   where the tmpfs file is created (default /dev/shm)
 * rw reads every page, then writes it (a read fault maps shared writable shmem writable: the writes
 * take no fault). One line per case: "KIND MODE: F faults for N pages, sum S" (S the sum of the bytes read back).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define NPAGES 256
static const char *dir = "/dev/shm";

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static int open_kind(const char *kind, size_t len)
{
    int fd = -1;
    if (!strcmp(kind, "memfd")) {
        fd = syscall(SYS_memfd_create, "shmfault", 0);
    } else if (!strcmp(kind, "tmpfs")) {
        char path[512];
        snprintf(path, sizeof(path), "%s/shmfault.%d", dir, (int)getpid());
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            unlink(path);
    } else {
        return -1;
    }
    if (fd < 0 || ftruncate(fd, len)) {
        perror(kind);
        exit(1);
    }
    return fd;
}

static char *map_kind(const char *kind, int fd, size_t len)
{
    char *p;
    if (!strcmp(kind, "anon"))
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    else
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static void run(const char *kind, const char *mode)
{
    long ps = sysconf(_SC_PAGESIZE);
    size_t len = NPAGES * ps;
    int fd = open_kind(kind, len);
    char *p = map_kind(kind, fd, len);
    char *q = p;
    unsigned long sum = 0;
    long f0, f1;

    if (!strcmp(mode, "remap")) {
        if (fd < 0) {                        /* a shared anonymous region: fork's child maps it again */
            printf("%s %s: not applicable\n", kind, mode);
            munmap(p, len);
            return;
        }
        memset(p, 1, len);                   /* populate the page cache through the first mapping */
        /* the second mapping 64 KiB aligned: fault-around's windows (fault_around_bytes) are aligned */
        char *r = mmap(NULL, len + (64 << 10), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        char *at = (char *)(((unsigned long)r + (64 << 10) - 1) & ~((64UL << 10) - 1));
        if (r == MAP_FAILED)
            exit(1);
        q = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
        if (q == MAP_FAILED) {
            perror("mmap");
            exit(1);
        }
    }
    f0 = minflt();
    if (!strcmp(mode, "read") || !strcmp(mode, "remap")) {
        for (size_t i = 0; i < len; i += ps)
            sum += ((volatile char *)q)[i];
    } else if (!strcmp(mode, "rw")) {
        for (size_t i = 0; i < len; i += ps)
            sum += ((volatile char *)q)[i];
        for (size_t i = 0; i < len; i += ps)
            q[i] = 2;
    } else if (!strcmp(mode, "write")) {
        for (size_t i = 0; i < len; i += ps)
            q[i] = 2;
    } else if (!strcmp(mode, "popread") || !strcmp(mode, "popwrite")) {
        if (madvise(q, len, !strcmp(mode, "popread") ? MADV_POPULATE_READ : MADV_POPULATE_WRITE)) {
            perror("madvise");
            exit(1);
        }
    }
    f1 = minflt();
    for (size_t i = 0; strcmp(mode, "map") && i < len; i += ps)  /* everything reads back (zero, or what was written) */
        sum += ((volatile char *)q)[i];
    printf("%s %s: %ld faults for %d pages, sum %lu\n", kind, mode, f1 - f0, NPAGES, sum);
    if (q != p)
        munmap(q, len);
    munmap(p, len);
    if (fd >= 0)
        close(fd);
}

int main(int argc, char **argv)
{
    static const char *kinds[] = {"anon", "memfd", "tmpfs"};
    static const char *modes[] = {"read", "write", "rw", "popread", "popwrite", "remap", "map"};
    const char *kind = argc > 1 ? argv[1] : "all";
    const char *mode = argc > 2 ? argv[2] : "all";
    if (argc > 3)
        dir = argv[3];
    for (unsigned k = 0; k < 3; k++) {
        if (strcmp(kind, "all") && strcmp(kind, kinds[k]))
            continue;
        for (unsigned m = 0; m < 7; m++)
            if (!strcmp(mode, "all") || !strcmp(mode, modes[m]))
                run(kinds[k], modes[m]);
    }
    return 0;
}
