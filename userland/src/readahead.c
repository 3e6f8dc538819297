/*
 * readahead FILE
 *
 * Maps FILE read-only and reads one byte (the first) of every page in
 * address order, the access pattern that file read-ahead is meant for.
 * Prints the file size, the number of pages and the sum of those bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE_SIZE 4096

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: readahead FILE\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        printf("FAIL: open (errno %d)\n", errno);
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        printf("FAIL: fstat (errno %d)\n", errno);
        return 1;
    }
    size_t size = (size_t)st.st_size;
    size_t pages = (size + PAGE_SIZE - 1) / PAGE_SIZE;
    uint64_t sum = 0;
    if (size > 0) {
        const volatile unsigned char *p = mmap(NULL, size, PROT_READ,
                                               MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            printf("FAIL: mmap (errno %d)\n", errno);
            return 1;
        }
        for (size_t i = 0; i < pages; i++)
            sum += p[i * PAGE_SIZE];
        munmap((void *)p, size);
    }
    close(fd);
    printf("size %zu\n", size);
    printf("pages %zu\n", pages);
    printf("sum %llu\n", (unsigned long long)sum);
    return 0;
}
