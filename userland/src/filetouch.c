/* filetouch: map a file read-only and read one byte of every page, in address order or in a fixed
 * pseudo-random order, so the same pages are first touched in a different order.
 *
 *   filetouch FILE [seq|rand]
 *
 * Prints the number of pages and the sum of the bytes read (the same for both orders). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "seq") && strcmp(argv[2], "rand"))) {
        fprintf(stderr, "usage: filetouch FILE [seq|rand]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0)
        fail("open");
    struct stat st;
    if (fstat(fd, &st))
        fail("fstat");
    long pages = (st.st_size + 4095) / 4096;
    if (pages == 0)
        return 0;
    const volatile unsigned char *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        fail("mmap");
    long *order = malloc(pages * sizeof(*order));
    if (!order)
        fail("malloc");
    for (long k = 0; k < pages; k++)
        order[k] = k;
    if (argc == 3 && !strcmp(argv[2], "rand")) {
        uint64_t x = 88172645463325252ull;
        for (long k = pages - 1; k > 0; k--) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            long j = x % (k + 1), t = order[k];
            order[k] = order[j]; order[j] = t;
        }
    }
    unsigned long sum = 0;
    for (long k = 0; k < pages; k++)
        sum += p[order[k] << 12];
    printf("%ld pages, sum %lu\n", pages, sum);
    return 0;
}
