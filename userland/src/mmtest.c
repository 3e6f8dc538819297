/*
 * mmtest [DIR]
 *
 * Self-checking tests of the memory-management system calls: mmap,
 * munmap, mprotect, mremap, brk, madvise and msync, with anonymous and
 * file-backed mappings.  DIR (default /tmp) is where a scratch file for
 * the file-mapping checks is created; it is removed again at the end.
 *
 * Prints one line "ok N name" per passed check and "all ok" at the end.
 * On the first failed check it prints "FAIL: name: detail" and exits 1.
 * No signal handlers are used: whether an address range is mapped is
 * probed with MAP_FIXED_NOREPLACE, never by touching it.
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

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE_SIZE 4096

static int test_number;
static const char *test_name;

static void begin(const char *name)
{
    test_number++;
    test_name = name;
}

static void pass(void)
{
    printf("ok %d %s\n", test_number, test_name);
    fflush(stdout);
}

static void fail(const char *detail)
{
    printf("FAIL: %s: %s\n", test_name, detail);
    exit(1);
}

static void check(int cond, const char *detail)
{
    if (!cond)
        fail(detail);
}

/* Fails the current check unless errno equals want. */
static void check_errno(int want, const char *detail)
{
    if (errno != want) {
        printf("FAIL: %s: %s (errno %d, expected %d)\n",
               test_name, detail, errno, want);
        exit(1);
    }
}

static void *map_anon(size_t len, int prot, int extra_flags)
{
    void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags,
                   -1, 0);
    if (p == MAP_FAILED)
        fail("mmap failed");
    return p;
}

static void unmap(void *p, size_t len)
{
    if (munmap(p, len) != 0)
        fail("munmap failed");
}

/* Byte pattern used throughout: depends on the offset and a seed. */
static unsigned char pattern(size_t i, unsigned seed)
{
    return (unsigned char)((i * 131 + seed * 7 + (i >> 12)) & 0xff);
}

static void fill(unsigned char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = pattern(i, seed);
}

static int matches(const unsigned char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern(i, seed))
            return 0;
    return 1;
}

static int all_zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/*
 * Returns 1 if [addr, addr+len) is completely unmapped.  Probes by
 * mapping it with MAP_FIXED_NOREPLACE, which fails with EEXIST when any
 * page of the range is already mapped; the probe mapping is removed.
 */
static int range_is_free(void *addr, size_t len)
{
    void *p = mmap(addr, len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        return 0;
    if (p != addr) {
        /* Kernel ignored the flag; treat as a failure of the probe. */
        munmap(p, len);
        return 0;
    }
    munmap(p, len);
    return 1;
}

static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static void test_anon_basic(void)
{
    begin("anonymous mmap zero, write, read back");
    size_t len = 4 * PAGE_SIZE;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE, 0);
    check(((uintptr_t)p & (PAGE_SIZE - 1)) == 0, "address not page aligned");
    check(all_zero(p, len), "new mapping not zero");
    fill(p, len, 1);
    check(matches(p, len, 1), "read back differs");
    unmap(p, len);
    pass();
}

static void test_remap_fixed(void)
{
    begin("munmap and mmap MAP_FIXED at same address");
    size_t len = 4 * PAGE_SIZE;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE, 0);
    fill(p, len, 2);
    unmap(p, len);
    check(range_is_free(p, len), "range still mapped after munmap");
    unsigned char *q = mmap(p, len, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    check(q != MAP_FAILED, "mmap MAP_FIXED failed");
    check(q == p, "MAP_FIXED returned another address");
    check(all_zero(q, len), "remapped memory not zero");
    fill(q, len, 3);
    check(matches(q, len, 3), "read back differs");

    /* MAP_FIXED over the middle of a live mapping replaces just that part. */
    unsigned char *r = mmap(q + PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    check(r == q + PAGE_SIZE, "MAP_FIXED over existing mapping failed");
    check(all_zero(r, PAGE_SIZE), "replaced page not zero");
    check(matches(q, PAGE_SIZE, 3), "page before replaced page changed");
    for (size_t i = 2 * PAGE_SIZE; i < len; i++)
        check(q[i] == pattern(i, 3), "pages after replaced page changed");
    unmap(q, len);
    pass();
}

static void test_fixed_noreplace(void)
{
    begin("MAP_FIXED_NOREPLACE over existing mapping gives EEXIST");
    size_t len = 4 * PAGE_SIZE;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE, 0);
    fill(p, len, 4);
    errno = 0;
    void *q = mmap(p + PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    check(q == MAP_FAILED, "mmap succeeded");
    check_errno(EEXIST, "wrong errno");
    /* Overlapping only the last page, from below the mapping, too. */
    unmap(p, PAGE_SIZE);
    errno = 0;
    q = mmap(p, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    check(q == MAP_FAILED, "partially overlapping mmap succeeded");
    check_errno(EEXIST, "wrong errno for partial overlap");
    for (size_t i = PAGE_SIZE; i < len; i++)
        check(p[i] == pattern(i, 4), "contents changed by failed mmap");
    /* The hole left by munmap can be filled with NOREPLACE. */
    q = mmap(p, PAGE_SIZE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    check(q == p, "NOREPLACE into free hole failed");
    check(all_zero(p, PAGE_SIZE), "hole page not zero");
    unmap(p, len);
    pass();
}

static void test_munmap_unaligned(void)
{
    begin("munmap unaligned address gives EINVAL");
    size_t len = 2 * PAGE_SIZE;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE, 0);
    fill(p, len, 5);
    errno = 0;
    check(munmap(p + 1, PAGE_SIZE) == -1, "munmap succeeded");
    check_errno(EINVAL, "wrong errno");
    errno = 0;
    check(munmap(p, 0) == -1, "munmap of length 0 succeeded");
    check_errno(EINVAL, "wrong errno for length 0");
    check(matches(p, len, 5), "contents changed");
    /* An unaligned length is rounded up: this removes both pages. */
    check(munmap(p, PAGE_SIZE + 1) == 0, "munmap with unaligned length failed");
    check(range_is_free(p, len), "range still mapped");
    pass();
}

static void test_mprotect(void)
{
    begin("mprotect PROT_READ and back to RW keeps contents");
    size_t len = 3 * PAGE_SIZE;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE, 0);
    fill(p, len, 6);
    check(mprotect(p, len, PROT_READ) == 0, "mprotect PROT_READ failed");
    check(matches(p, len, 6), "contents changed under PROT_READ");
    /* Split: only the middle page back to RW. */
    check(mprotect(p + PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE) == 0,
          "mprotect middle page RW failed");
    p[PAGE_SIZE] ^= 0xff;
    p[PAGE_SIZE] ^= 0xff;
    check(mprotect(p, len, PROT_READ | PROT_WRITE) == 0,
          "mprotect RW failed");
    check(matches(p, len, 6), "contents changed after mprotect");
    fill(p, len, 7);
    check(matches(p, len, 7), "write after mprotect RW failed");
    errno = 0;
    check(mprotect(p + 1, PAGE_SIZE, PROT_READ) == -1,
          "mprotect unaligned succeeded");
    check_errno(EINVAL, "wrong errno for unaligned mprotect");
    unmap(p, len);
    pass();
}

static void test_mremap_grow_in_place(void)
{
    begin("mremap grow in place");
    size_t small = 4 * PAGE_SIZE, big = 8 * PAGE_SIZE;
    /* Reserve the full range, then free the top half so there is room. */
    unsigned char *p = map_anon(big, PROT_READ | PROT_WRITE, 0);
    unmap(p + small, big - small);
    fill(p, small, 8);
    unsigned char *q = mremap(p, small, big, 0);
    check(q != MAP_FAILED, "mremap failed");
    check(q == p, "mapping moved without MREMAP_MAYMOVE");
    check(matches(q, small, 8), "old contents lost");
    check(all_zero(q + small, big - small), "grown part not zero");
    q[big - 1] = 0x5a;
    check(q[big - 1] == 0x5a, "write to grown part failed");
    unmap(q, big);
    pass();
}

static void test_mremap_maymove(void)
{
    begin("mremap maymove");
    size_t small = 4 * PAGE_SIZE, big = 16 * PAGE_SIZE;
    /*
     * Map 8 pages; the upper 4 stay mapped as a neighbour, so the lower 4
     * cannot grow in place and have to move.
     */
    unsigned char *p = map_anon(2 * small, PROT_READ | PROT_WRITE, 0);
    unsigned char *neighbour = p + small;
    fill(p, small, 9);
    fill(neighbour, small, 10);
    errno = 0;
    check(mremap(p, small, big, 0) == MAP_FAILED,
          "grow without MAYMOVE over neighbour succeeded");
    check_errno(ENOMEM, "wrong errno for blocked grow");
    unsigned char *q = mremap(p, small, big, MREMAP_MAYMOVE);
    check(q != MAP_FAILED, "mremap MAYMOVE failed");
    check(q != p, "mapping grew in place over its neighbour");
    check(matches(q, small, 9), "contents not preserved by move");
    check(all_zero(q + small, big - small), "grown part not zero");
    check(matches(neighbour, small, 10), "neighbour changed");
    check(range_is_free(p, small), "old range still mapped after move");
    fill(q, big, 11);
    check(matches(q, big, 11), "write to moved mapping failed");
    unmap(neighbour, small);
    unmap(q, big);
    pass();
}

static void test_mremap_shrink(void)
{
    begin("mremap shrink");
    size_t big = 8 * PAGE_SIZE, small = 2 * PAGE_SIZE;
    unsigned char *p = map_anon(big, PROT_READ | PROT_WRITE, 0);
    fill(p, big, 12);
    unsigned char *q = mremap(p, big, small, 0);
    check(q == p, "shrink moved the mapping");
    check(matches(q, small, 12), "contents not preserved");
    check(range_is_free(p + small, big - small), "tail still mapped");
    unmap(q, small);
    pass();
}

static void test_brk(void)
{
    begin("brk/sbrk grow and shrink");
    const intptr_t grow = 64 * 1024 + 100;
    unsigned char *start = sbrk(0);
    check(start != (void *)-1, "sbrk(0) failed");
    unsigned char *old = sbrk(grow);
    check(old != (void *)-1, "sbrk grow failed");
    check(old == start, "sbrk returned the wrong old break");
    check((unsigned char *)sbrk(0) == start + grow, "break not moved by grow");
    fill(start, (size_t)grow, 13);
    check(matches(start, (size_t)grow, 13), "heap read back differs");

    check(sbrk(-grow) != (void *)-1, "sbrk shrink failed");
    check((unsigned char *)sbrk(0) == start, "break not restored by shrink");

    /* Grow again: whole pages that were released must come back zeroed. */
    check(sbrk(grow) == start, "sbrk regrow failed");
    uintptr_t first_page = ((uintptr_t)start + PAGE_SIZE - 1) & ~(uintptr_t)(PAGE_SIZE - 1);
    uintptr_t end = ((uintptr_t)start + (uintptr_t)grow) & ~(uintptr_t)(PAGE_SIZE - 1);
    check(all_zero((unsigned char *)first_page, end - first_page),
          "released heap pages not zero after regrow");
    check(brk(start) == 0, "brk() back to start failed");
    check((unsigned char *)sbrk(0) == start, "brk() did not set the break");
    pass();
}

static void test_madvise_dontneed(void)
{
    begin("madvise MADV_DONTNEED zeroes private anonymous memory");
    size_t len = 4 * PAGE_SIZE;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE, 0);
    fill(p, len, 14);
    check(madvise(p + PAGE_SIZE, 2 * PAGE_SIZE, MADV_DONTNEED) == 0,
          "madvise failed");
    check(matches(p, PAGE_SIZE, 14), "page before range changed");
    check(all_zero(p + PAGE_SIZE, 2 * PAGE_SIZE), "range not zero");
    for (size_t i = 3 * PAGE_SIZE; i < len; i++)
        check(p[i] == pattern(i, 14), "page after range changed");
    p[PAGE_SIZE] = 1;
    check(p[PAGE_SIZE] == 1, "write after madvise failed");
    unmap(p, len);
    pass();
}

static void test_shared_anon(void)
{
    begin("MAP_SHARED|MAP_ANONYMOUS");
    size_t len = 4 * PAGE_SIZE;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    check(p != MAP_FAILED, "mmap failed");
    check(all_zero(p, len), "new mapping not zero");
    fill(p, len, 15);
    check(matches(p, len, 15), "read back differs");
    /* Shared memory keeps its contents across MADV_DONTNEED. */
    check(madvise(p, len, MADV_DONTNEED) == 0, "madvise failed");
    check(matches(p, len, 15), "contents lost after MADV_DONTNEED");
    unmap(p, len);
    pass();
}

static void test_populate(void)
{
    begin("MAP_POPULATE");
    size_t len = 16 * PAGE_SIZE;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE, MAP_POPULATE);
    check(all_zero(p, len), "populated mapping not zero");
    fill(p, len, 16);
    check(matches(p, len, 16), "read back differs");
    unmap(p, len);
    pass();
}

static void test_noreserve(void)
{
    begin("MAP_NORESERVE");
    size_t len = 64 * 1024 * 1024;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE, MAP_NORESERVE);
    /* Touch a handful of pages spread over the range. */
    for (size_t off = 0; off < len; off += len / 8)
        p[off] = (unsigned char)(off >> 20);
    p[len - 1] = 0x77;
    for (size_t off = 0; off < len; off += len / 8)
        check(p[off] == (unsigned char)(off >> 20), "read back differs");
    check(p[len - 1] == 0x77, "last byte differs");
    check(p[PAGE_SIZE] == 0, "untouched page not zero");
    unmap(p, len);
    pass();
}

static void test_shared_file(int fd)
{
    begin("shared file mapping, msync, read() sees writes");
    size_t len = 3 * PAGE_SIZE;
    check(ftruncate(fd, (off_t)len) == 0, "ftruncate failed");
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
                            fd, 0);
    check(p != MAP_FAILED, "mmap failed");
    check(all_zero(p, len), "fresh file not zero");
    fill(p, len, 17);
    check(msync(p, len, MS_SYNC) == 0, "msync failed");

    unsigned char *buf = malloc(len);
    check(buf != NULL, "malloc failed");
    check(lseek(fd, 0, SEEK_SET) == 0, "lseek failed");
    size_t done = 0;
    while (done < len) {
        ssize_t r = read(fd, buf + done, len - done);
        check(r > 0, "read failed");
        done += (size_t)r;
    }
    check(matches(buf, len, 17), "read() does not see mapping writes");

    /* And the other way round: write() is visible through the mapping. */
    const char msg[] = "written with pwrite";
    check(pwrite(fd, msg, sizeof msg, PAGE_SIZE + 10) == (ssize_t)sizeof msg,
          "pwrite failed");
    check(memcmp(p + PAGE_SIZE + 10, msg, sizeof msg) == 0,
          "mapping does not see pwrite");
    free(buf);
    unmap(p, len);
    pass();
}

static void test_private_file(int fd)
{
    begin("private file mapping write leaves file unchanged");
    size_t len = 3 * PAGE_SIZE;
    /* File contents from the previous check: pattern 17 plus the message. */
    unsigned char *before = malloc(len);
    unsigned char *after = malloc(len);
    check(before && after, "malloc failed");
    check(pread_full(fd, before, len, 0) == (ssize_t)len, "pread failed");

    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                            fd, 0);
    check(p != MAP_FAILED, "mmap failed");
    check(memcmp(p, before, len) == 0, "mapping differs from file");
    fill(p, len, 18);
    check(matches(p, len, 18), "read back differs");
    check(msync(p, len, MS_SYNC) == 0, "msync failed");
    check(pread_full(fd, after, len, 0) == (ssize_t)len, "pread failed");
    check(memcmp(before, after, len) == 0, "file changed");
    unmap(p, len);
    free(before);
    free(after);
    pass();
}

static void test_bad_fd(void)
{
    begin("mmap with bad fd gives EBADF");
    errno = 0;
    void *p = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE, -1, 0);
    check(p == MAP_FAILED, "mmap succeeded");
    check_errno(EBADF, "wrong errno");
    errno = 0;
    p = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_SHARED, 1000, 0);
    check(p == MAP_FAILED, "mmap of unopened fd succeeded");
    check_errno(EBADF, "wrong errno for unopened fd");
    pass();
}

static void test_zero_length(void)
{
    begin("mmap length 0 gives EINVAL");
    errno = 0;
    void *p = mmap(NULL, 0, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(p == MAP_FAILED, "mmap succeeded");
    check_errno(EINVAL, "wrong errno");
    pass();
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/faultlab-mmtest.tmp", dir);

    /* Let stdio allocate its buffer before the brk test moves the break. */
    printf("mmtest\n");
    fflush(stdout);

    test_anon_basic();
    test_remap_fixed();
    test_fixed_noreplace();
    test_munmap_unaligned();
    test_mprotect();
    test_mremap_grow_in_place();
    test_mremap_maymove();
    test_mremap_shrink();
    test_brk();
    test_madvise_dontneed();
    test_shared_anon();
    test_populate();
    test_noreserve();

    begin("create scratch file");
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    check(fd >= 0, "open failed");
    pass();
    test_shared_file(fd);
    test_private_file(fd);
    close(fd);
    begin("remove scratch file");
    check(unlink(path) == 0, "unlink failed");
    pass();

    test_bad_fd();
    test_zero_length();

    printf("all ok\n");
    return 0;
}
