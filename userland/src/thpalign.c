/* Where mmap puts private anonymous mappings: one whose length is a multiple of 2 MiB starts on a 2 MiB
 * boundary when no address is hinted (THP alignment, Linux >= 6.7 and 6.12's PMD-multiple rule); other
 * lengths, shared ones and hinted ones are placed as before. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#define PMD (2UL << 20)

static void *map(void *hint, size_t len, int flags)
{
    return mmap(hint, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
}

static int aligned(void *p)
{
    return ((uintptr_t)p & (PMD - 1)) == 0;
}

int main(void)
{
    size_t sizes[] = {PMD, 2 * PMD, 32 * PMD};
    for (int i = 0; i < 3; i++) {
        void *p = map(NULL, sizes[i], MAP_PRIVATE);
        printf("%zu MiB private: PMD-aligned %d\n", sizes[i] >> 20, aligned(p));
    }
    /* a length that is not a multiple of 2 MiB is not padded: it ends where the search found room */
    char *a = map(NULL, 3 * 4096, MAP_PRIVATE);
    char *b = map(NULL, 5 * 4096, MAP_PRIVATE);
    printf("small mappings adjacent: %d\n", b + 5 * 4096 == a);
    void *hint = (void *)(0x200000000UL + 4096);
    void *h = map(hint, 2 * PMD, MAP_PRIVATE);
    printf("hint kept: %d\n", h == hint);
    return 0;
}
