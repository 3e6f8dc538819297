/* Transparent huge pages for anonymous memory, with the host's THP policy "madvise": each step prints
 * what a program can see of it (page faults counted by getrusage, AnonHugePages of the mapping in
 * /proc/self/smaps, THPeligible, the contents), so the run compares with the native one.
 * Steps: MADV_HUGEPAGE + write touch (one fault per 2 MiB), a read of untouched memory (huge zero page,
 * then a write into it), a partial munmap (the huge page is split), mprotect of part of one, fork and
 * copy-on-write in the child, MADV_NOHUGEPAGE, PR_SET_THP_DISABLE. With the argument "never" it sets the
 * policy to never first (not natively: that is the host's setting). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define HPAGE (2UL << 20)

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* AnonHugePages and THPeligible of the smaps entry that contains addr */
static void smaps_of(void *addr, long *ahp, int *elig)
{
    char line[512];
    unsigned long lo, hi, a = (unsigned long)addr;
    int in = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    *ahp = -1;
    *elig = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = lo <= a && a < hi;
            continue;
        }
        if (in) {
            sscanf(line, "AnonHugePages: %ld", ahp);
            sscanf(line, "THPeligible: %d", elig);
        }
    }
    fclose(f);
}

static void report(const char *what, void *addr)
{
    long ahp;
    int elig;
    smaps_of(addr, &ahp, &elig);
    printf("%-28s AnonHugePages %5ld kB  THPeligible %d\n", what, ahp, elig);
}

static char *map_aligned(size_t len)
{
    /* a PMD-multiple anonymous mapping: Linux places it on a 2 MiB boundary */
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || (unsigned long)p % HPAGE) {
        printf("mapping not aligned\n");
        exit(1);
    }
    return p;
}

/* with THP "never" (written to the knob first) MADV_HUGEPAGE changes nothing: 4 KiB faults */
static int never(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "w");
    if (!f || fputs("never", f) < 0 || fclose(f)) {
        printf("cannot write the knob\n");
        return 1;
    }
    char *p = map_aligned(2 * HPAGE);
    madvise(p, 2 * HPAGE, MADV_HUGEPAGE);
    long f0 = minflt();
    memset(p, 1, 2 * HPAGE);
    printf("never: %ld faults\n", minflt() - f0);
    report("never", p);
    return 0;
}

int main(int argc, char **argv)
{
    size_t len = 4 * HPAGE;
    long f0, sum = 0;
    if (argc > 1 && !strcmp(argv[1], "never"))
        return never();
    char *p = map_aligned(len);

    report("fresh", p);
    madvise(p, len, MADV_HUGEPAGE);
    report("MADV_HUGEPAGE", p);
    f0 = minflt();
    for (size_t off = 0; off < len; off += 4096)
        p[off] = 1;
    printf("write touch of 8 MiB: %ld faults\n", minflt() - f0);
    report("touched", p);

    /* read faults: the huge zero page (nothing resident), then a write into it */
    char *r = map_aligned(2 * HPAGE);
    madvise(r, 2 * HPAGE, MADV_HUGEPAGE);
    f0 = minflt();
    for (size_t off = 0; off < 2 * HPAGE; off += 4096)
        sum += r[off];
    printf("read of 4 MiB: %ld faults, sum %ld\n", minflt() - f0, sum);
    report("read only", r);
    f0 = minflt();
    r[4096] = 7;
    printf("write into the huge zero page: %ld faults, r[4096]=%d r[0]=%d r[8192]=%d\n",
           minflt() - f0, r[4096], r[0], r[8192]);
    report("written after read", r);
    munmap(r, 2 * HPAGE);

    /* contents survive a split: partial munmap of the second huge page */
    for (size_t off = 0; off < len; off += 4096)
        p[off] = (char)(off >> 12);
    munmap(p + HPAGE + 4096 * 10, 4096);
    report("partial munmap", p);
    int ok = 1;
    for (size_t off = 0; off < len; off += 4096)
        if (off != HPAGE + 4096 * 10 && p[off] != (char)(off >> 12))
            ok = 0;
    printf("contents after split: %s\n", ok ? "intact" : "CORRUPT");

    /* mprotect of part of the third huge page */
    mprotect(p + 2 * HPAGE, 4096, PROT_READ);
    report("mprotect part", p + 3 * HPAGE);
    printf("read after mprotect: %d %d\n", p[2 * HPAGE], p[2 * HPAGE + 4096]);

    /* fork: the child writes into the shared huge page, the parent keeps its data */
    char *c = map_aligned(2 * HPAGE);
    madvise(c, 2 * HPAGE, MADV_HUGEPAGE);
    memset(c, 'p', 2 * HPAGE);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        report("child before write", c);
        c[100] = 'c';
        report("child after write", c);
        printf("child sees %c %c\n", c[100], c[HPAGE + 100]);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("parent sees %c %c\n", c[100], c[HPAGE + 100]);
    report("parent after child", c);
    c[200] = 'q';
    report("parent after write", c);

    /* MADV_NOHUGEPAGE and PR_SET_THP_DISABLE */
    char *n = map_aligned(2 * HPAGE);
    madvise(n, 2 * HPAGE, MADV_NOHUGEPAGE);
    f0 = minflt();
    memset(n, 1, 2 * HPAGE);
    printf("NOHUGEPAGE touch: %s\n", minflt() - f0 >= 512 ? "4 KiB faults" : "few faults");
    report("NOHUGEPAGE", n);
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    char *d = map_aligned(2 * HPAGE);
    madvise(d, 2 * HPAGE, MADV_HUGEPAGE);
    memset(d, 1, 2 * HPAGE);
    report("THP disabled", d);
    printf("prctl get: %d\n", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
    return 0;
}
