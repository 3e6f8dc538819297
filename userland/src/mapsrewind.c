#include <stdio.h>
#include <sys/mman.h>
#include <string.h>
/* /proc/self/maps opened once, read again after a rewind: it shows mappings made after the open */
static int lines(FILE *f) { char b[512]; int n = 0; rewind(f); while (fgets(b, sizeof b, f)) n++; return n; }
int main(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    int before = lines(f);
    char *p = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p + 4096, 4096);          /* two more VMAs than before (one new, split in two) */
    int after = lines(f);
    printf("maps after rewind grew by %d\n", after - before);
    return 0;
}
