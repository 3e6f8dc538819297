/*
 * filemap FILE
 *
 * Maps a whole file read-only and private, prints its size and an FNV-1a
 * 64-bit checksum of its contents, and checks that read() returns the
 * same bytes as the mapping.  Then maps the file again, private and
 * writable, writes the first byte of every page (copy-on-write) and
 * checks with pread() that the file itself did not change.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE_SIZE 4096

static void fail(const char *what)
{
    printf("FAIL: %s (errno %d)\n", what, errno);
    exit(1);
}

static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* read() until n bytes or end of file; returns the number of bytes read. */
static size_t read_all(int fd, unsigned char *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, buf + done, n - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fail("read");
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return done;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: filemap FILE\n");
        return 2;
    }

    int fd = open(argv[1], O_RDONLY);
    if (fd < 0)
        fail("open");

    struct stat st;
    if (fstat(fd, &st) != 0)
        fail("fstat");
    size_t size = (size_t)st.st_size;
    size_t pages = (size + PAGE_SIZE - 1) / PAGE_SIZE;
    printf("size %zu\n", size);
    printf("pages %zu\n", pages);

    if (size == 0) {
        /* mmap of length 0 is invalid; nothing more to check. */
        printf("fnv1a64 %016llx\n", (unsigned long long)fnv1a64(NULL, 0));
        printf("ok\n");
        return 0;
    }

    /* 1. Read-only private mapping and its checksum. */
    unsigned char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        fail("mmap PROT_READ");
    uint64_t sum = fnv1a64(map, size);
    printf("fnv1a64 %016llx\n", (unsigned long long)sum);

    /* 2. read() the file and compare with the mapping. */
    unsigned char *buf = malloc(size);
    if (!buf)
        fail("malloc");
    size_t got = read_all(fd, buf, size);
    if (got != size)
        fail("short read");
    if (memcmp(buf, map, size) != 0)
        fail("read() differs from mapping");
    printf("read matches mapping\n");

    /* 3. Writable private mapping: copy-on-write must not reach the file. */
    unsigned char *cow = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                              fd, 0);
    if (cow == MAP_FAILED)
        fail("mmap PROT_READ|PROT_WRITE");
    for (size_t i = 0; i < size; i += PAGE_SIZE)
        cow[i] = (unsigned char)~buf[i];

    size_t changed = 0;
    for (size_t i = 0; i < size; i++) {
        unsigned char want = (i % PAGE_SIZE == 0) ? (unsigned char)~buf[i] : buf[i];
        if (cow[i] != want)
            fail("private mapping contents after write");
        if (cow[i] != buf[i])
            changed++;
    }
    printf("private write changed %zu bytes\n", changed);

    if (memcmp(map, buf, size) != 0)
        fail("private write leaked into the other mapping");

    unsigned char *check = malloc(size);
    if (!check)
        fail("malloc");
    size_t off = 0;
    while (off < size) {
        ssize_t r = pread(fd, check + off, size - off, (off_t)off);
        if (r < 0)
            fail("pread");
        if (r == 0)
            break;
        off += (size_t)r;
    }
    if (off != size)
        fail("short pread");
    if (memcmp(check, buf, size) != 0)
        fail("file changed after private write");
    printf("file unchanged\n");

    if (munmap(cow, size) != 0)
        fail("munmap cow");
    if (munmap(map, size) != 0)
        fail("munmap");
    free(check);
    free(buf);
    close(fd);
    printf("ok\n");
    return 0;
}
