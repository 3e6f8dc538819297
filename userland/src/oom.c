/*
 * oom
 *
 * Maps private anonymous memory 16 MiB at a time and writes one byte to
 * every page, until mmap fails or the process is killed.  When mmap fails
 * with ENOMEM it prints "mmap failed: ENOMEM" and exits 0.  The amount of
 * memory obtained is not printed, because it depends on the machine.
 *
 * Natively, run it under an address-space limit, e.g.
 *   (ulimit -v 262144; ./oom)
 * otherwise it keeps going until the kernel's OOM killer stops it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>

#define CHUNK (16UL << 20)
#define PAGE_SIZE 4096

int main(void)
{
    printf("allocating in 16 MiB chunks\n");
    fflush(stdout);
    for (;;) {
        unsigned char *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            if (errno == ENOMEM) {
                printf("mmap failed: ENOMEM\n");
                return 0;
            }
            printf("FAIL: mmap failed with errno %d\n", errno);
            return 1;
        }
        for (unsigned long off = 0; off < CHUNK; off += PAGE_SIZE)
            p[off] = 1;
    }
}
