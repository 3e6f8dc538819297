/* Transparent huge pages under memory pressure: 32 MiB of MADV_HUGEPAGE memory written with a pattern
 * on a machine with less RAM; reclaim splits the huge pages and swaps their 4 KiB pages, the pattern
 * reads back intact; MADV_PAGEOUT of one huge page splits it and pages it out. Prints the count of
 * bad pages (0). */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#define HPAGE (2UL<<20)
int main(void)
{
    size_t len = 16 * HPAGE;
    char *p = mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    madvise(p, len, MADV_HUGEPAGE);
    for (size_t o=0;o<len;o+=4096) p[o]=(char)(o>>12);
    int bad=0;
    for (size_t o=0;o<len;o+=4096) if (p[o]!=(char)(o>>12)) bad++;
    madvise(p, HPAGE, 21 /*MADV_PAGEOUT*/);
    for (size_t o=0;o<HPAGE;o+=4096) if (p[o]!=(char)(o>>12)) bad++;
    printf("bad %d\n", bad);
    return 0;
}
