/* mlockall(MCL_FUTURE | MCL_ONFAULT), then a new mapping: it is locked on fault (VmFlags lo lf,
 * smaps Locked: only what was touched), munlock of its middle splits it in three, and
 * munlockall leaves later mappings unlocked. Prints what /proc/self/smaps and maps say. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int n_vmas_in(char *lo, char *hi)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < (unsigned long)hi && e > (unsigned long)lo)
            n++;
    }
    fclose(f);
    return n;
}

static void smaps_of(const char *what, char *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, ' ') - line < 40 && line[8] != ':') {
            in = (unsigned long)addr >= s && (unsigned long)addr < e;
            if (in)
                printf("%s: vma of %lu kB\n", what, (e - s) >> 10);
            continue;
        }
        if (!in)
            continue;
        if (!strncmp(line, "Locked:", 7) || !strncmp(line, "Rss:", 4))
            printf("%s: %s", what, line);
        if (!strncmp(line, "VmFlags:", 8)) {
            printf("%s: locked=%d lockonfault=%d\n", what, strstr(line, " lo ") != NULL,
                   strstr(line, " lf ") != NULL);
        }
    }
    fclose(f);
}

static char *arena;
static int slot;

/* A new mapping in its own place inside a PROT_NONE arena, so that nothing merges with it */
static char *new_map(long len)
{
    char *p = mmap(arena + (slot++) * 64 * 4096, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

int main(void)
{
    long pg = 4096;
    arena = mmap(NULL, 256 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED)
        return 2;
    if (mlockall(MCL_FUTURE | MCL_ONFAULT)) {
        perror("mlockall");
        return 1;
    }
    char *p = new_map(8 * pg);
    p[0] = 1;
    p[5 * pg] = 1;
    smaps_of("future", p);
    printf("vmas before munlock: %d\n", n_vmas_in(p, p + 8 * pg));
    if (munlock(p + 2 * pg, 2 * pg))
        perror("munlock");
    printf("vmas after munlock: %d\n", n_vmas_in(p, p + 8 * pg));
    smaps_of("head", p);
    smaps_of("middle", p + 2 * pg);
    if (mlockall(MCL_FUTURE)) {
        perror("mlockall");
        return 3;
    }
    char *q = new_map(4 * pg);
    smaps_of("future-populated", q);
    munlockall();
    char *r = new_map(4 * pg);
    r[0] = 1;
    smaps_of("after-munlockall", r);
    smaps_of("old-after-munlockall", p);
    return 0;
}
