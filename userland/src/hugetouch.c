/*
 * hugetouch: map one 2 MiB huge page (MAP_HUGETLB), write a marker into it at offset 0x12345 and print
 * where it is: "addr ADDR pfn PFN" (PFN of the 4 KiB frame holding the marker, from /proc/self/pagemap).
 * The mapping is left in place at exit so that a test can look at the page tables.
 * Exit status 2 when huge pages cannot be mapped (errno printed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif

int main(void)
{
    char *p = mmap(NULL, 2UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p == MAP_FAILED) {
        printf("mmap errno %d\n", errno);
        return 2;
    }
    strcpy(p + 0x12345, "huge-marker");
    uint64_t e = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)(p + 0x12345) / 4096) * 8) != 8)
        return 1;
    printf("addr %lx pfn %llx\n", (unsigned long)(uintptr_t)p, (unsigned long long)(e & ((1ULL << 55) - 1)));
    return 0;
}
