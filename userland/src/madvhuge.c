/* madvise on a 2-huge-page MAP_HUGETLB mapping: MADV_DONTNEED from a start inside a huge page is
 * EINVAL; from an aligned start with a length short of a huge page it succeeds and frees nothing
 * (the end is rounded down); MADV_FREE, MADV_COLD and MADV_PAGEOUT are EINVAL; MADV_DONTNEED over
 * one whole huge page drops just that one. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define HPAGE (2UL << 20)
#ifndef MADV_COLD
#define MADV_COLD 20
#define MADV_PAGEOUT 21
#endif

static void try(const char *what, char *p, size_t len, int advice)
{
    int r = madvise(p, len, advice);
    printf("%s: %s\n", what, r ? strerror(errno) : "ok");
}

int main(void)
{
    char *p = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p == MAP_FAILED) {
        printf("no huge pages: %s\n", strerror(errno));
        return 1;
    }
    p[0] = 'a';
    p[HPAGE] = 'b';
    try("DONTNEED at +4K", p + 4096, 4096, MADV_DONTNEED);
    try("DONTNEED 4K at 0", p, 4096, MADV_DONTNEED);
    printf("first page kept: %d\n", p[0] == 'a');
    try("FREE", p, HPAGE, MADV_FREE);
    try("COLD", p, HPAGE, MADV_COLD);
    try("PAGEOUT", p, HPAGE, MADV_PAGEOUT);
    try("DONTNEED first huge page", p, HPAGE, MADV_DONTNEED);
    printf("first page now zero: %d, second kept: %d\n", p[0] == 0, p[HPAGE] == 'b');
    return 0;
}
