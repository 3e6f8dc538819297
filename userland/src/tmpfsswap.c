/* A tmpfs file larger than RAM: write it, read it back with read() and through a shared mapping,
 * change pages through the mapping and read them again; every page carries its index, so a page
 * lost or mixed up on its way to swap and back shows.
 * Usage: tmpfsswap DIR SIZE_MIB [mount]   (mount: first mount a tmpfs of SIZE+8 MiB on DIR)
 *        tmpfsswap DIR SIZE_MIB [mount] map   (only fill a shared mapping of the file, no write())
 * With "meminfo", also show where the file's pages are after writing it: /proc/meminfo's Shmem
 * (in RAM) plus the swap in use (SwapTotal - SwapFree) must cover it, Shmem alone must not. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meminfo.h"

#define PAGE 4096L

static void stamp(char *page, long index, unsigned gen)
{
    for (long i = 0; i < PAGE; i += 8) {
        uint64_t v = ((uint64_t)index << 32) ^ ((uint64_t)gen << 16) ^ (uint64_t)i;
        memcpy(page + i, &v, 8);
    }
}

static long check(const char *page, long index, unsigned gen)
{
    char want[PAGE];
    stamp(want, index, gen);
    return memcmp(page, want, PAGE) ? index : -1;
}

static unsigned gen_of(long index)
{
    return index % 7 == 3 ? 2 : 1;       /* pages changed through the mapping get generation 2 */
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DIR SIZE_MIB [mount] [map]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    long size = atol(argv[2]) << 20, npages = size / PAGE;
    int do_mount = 0, map_only = 0, show = 0;
    for (int i = 3; i < argc; i++) {
        do_mount |= !strcmp(argv[i], "mount");
        map_only |= !strcmp(argv[i], "map");
        show |= !strcmp(argv[i], "meminfo");
    }
    if (do_mount) {
        char opt[64];
        mkdir(dir, 0755);
        snprintf(opt, sizeof opt, "size=%ldm", (size >> 20) + 8);
        if (mount("tmpfs", dir, "tmpfs", 0, opt)) {
            printf("mount: %s\n", strerror(errno));
            return 1;
        }
    }
    char path[256];
    snprintf(path, sizeof path, "%s/tmpfsswap.%d", dir, (int)getpid());
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0) {
        printf("open: %s\n", strerror(errno));
        return 1;
    }
    unlink(path);
    static char buf[64 * PAGE];
    if (map_only) {
        if (ftruncate(fd, size)) {
            printf("ftruncate: %s\n", strerror(errno));
            return 1;
        }
        char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        for (long i = 0; i < npages; i++)
            stamp(m + i * PAGE, i, 1);
        printf("filled %ld MiB through the mapping\n", size >> 20);
        return 0;
    }
    for (long i = 0; i < npages; i += 64) {
        for (long j = 0; j < 64; j++)
            stamp(buf + j * PAGE, i + j, 1);
        ssize_t n = write(fd, buf, sizeof buf);
        if (n != (ssize_t)sizeof buf) {
            printf("write at page %ld: %s\n", i, n < 0 ? strerror(errno) : "short");
            return 1;
        }
    }
    printf("wrote %ld MiB\n", size >> 20);
    if (show) {
        long shmem = meminfo("Shmem"), used = meminfo("SwapTotal") - meminfo("SwapFree");
        printf("Shmem below the file size: %s\n", shmem < size >> 10 ? "yes" : "no");
        printf("Shmem + swap in use cover the file: %s\n", shmem + used >= size >> 10 ? "yes" : "no");
        printf("SwapCached within swap in use: %s\n", meminfo("SwapCached") <= used ? "yes" : "no");
    }
    long bad = -1;
    for (long i = 0; i < npages && bad < 0; i += 64) {
        if (pread(fd, buf, sizeof buf, i * PAGE) != (ssize_t)sizeof buf) {
            printf("read at page %ld: %s\n", i, strerror(errno));
            return 1;
        }
        for (long j = 0; j < 64 && bad < 0; j++)
            bad = check(buf + j * PAGE, i + j, 1);
    }
    printf("read back: %s\n", bad < 0 ? "intact" : "corrupt");
    if (bad >= 0)
        printf("first bad page %ld\n", bad);
    char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        printf("mmap: %s\n", strerror(errno));
        return 1;
    }
    bad = -1;
    for (long i = 0; i < npages && bad < 0; i++)
        bad = check(m + i * PAGE, i, 1);
    printf("through the mapping: %s\n", bad < 0 ? "intact" : "corrupt");
    for (long i = 3; i < npages; i += 7)
        stamp(m + i * PAGE, i, 2);
    munmap(m, size);
    bad = -1;
    for (long i = 0; i < npages && bad < 0; i += 64) {
        if (pread(fd, buf, sizeof buf, i * PAGE) != (ssize_t)sizeof buf)
            return 1;
        for (long j = 0; j < 64 && bad < 0; j++)
            bad = check(buf + j * PAGE, i + j, gen_of(i + j));
    }
    printf("after changes through the mapping: %s\n", bad < 0 ? "intact" : "corrupt");
    if (bad >= 0)
        printf("first bad page %ld\n", bad);
    close(fd);
    return 0;
}
