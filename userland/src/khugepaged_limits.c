/* khugepaged_limits NONE [DEFRAG BALLAST_MIB]: three aligned 2 MiB ranges faulted with 4 KiB pages (enabled=madvise), one
 * full, one with NONE+1 pages never touched, one with NONE untouched; khugepaged/max_ptes_none is set
 * to NONE, then MADV_HUGEPAGE on all three and a wait for two more full scans of khugepaged
 * (mm/khugepaged.c: a range is collapsed when at most max_ptes_none of its PTEs are empty).
 * Prints `name value` lines: each range's AnonHugePages and whether its data survived, and the
 * khugepaged counters' increase. DEFRAG sets khugepaged/defrag; BALLAST_MIB MiB of memory written
 * first (and kept) leave little free memory for the collapse's huge page. Restores the knobs it
 * changed. Needs root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#define HPAGE (2UL << 20)
#define THP "/sys/kernel/mm/transparent_hugepage/"

static int knob_rw(const char *name, char *old, size_t n, const char *value)
{
    char path[256];
    snprintf(path, sizeof(path), THP "%s", name);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(old, (int)n, f)) {
        perror(path);
        return -1;
    }
    fclose(f);
    old[strcspn(old, "\n")] = 0;
    if (!value)
        return 0;
    f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(value, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static long num(const char *name)
{
    char buf[64];
    return knob_rw(name, buf, sizeof(buf), NULL) ? -1 : atol(buf);
}

static long anon_huge_kb(void *p)
{
    char line[256];
    unsigned long lo, hi, a = (unsigned long)p;
    int in = 0;
    long kb = -1;
    FILE *f = fopen("/proc/self/smaps", "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = lo <= a && a < hi;
        else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    }
    if (f)
        fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    int none = argc > 1 ? atoi(argv[1]) : 64;
    char enabled[64], old_none[32], old_sleep[32], old_scan[32], value[32];
    const char *defrag = argc > 2 ? argv[2] : NULL;
    size_t ballast = argc > 3 ? (size_t)atol(argv[3]) << 20 : 0;
    char old_defrag[32];
    if (none < 0 || none > 510)
        return 2;
    if (defrag && knob_rw("khugepaged/defrag", old_defrag, sizeof(old_defrag), defrag))
        return 1;
    if (ballast) {
        char *b = mmap(NULL, ballast, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED)
            return 1;
        madvise(b, ballast, MADV_NOHUGEPAGE);
        for (size_t off = 0; off < ballast; off += 4096)
            b[off] = 1;
    }
    snprintf(value, sizeof(value), "%d", none);
    if (knob_rw("enabled", enabled, sizeof(enabled), "madvise") ||
        knob_rw("khugepaged/max_ptes_none", old_none, sizeof(old_none), value) ||
        knob_rw("khugepaged/scan_sleep_millisecs", old_sleep, sizeof(old_sleep), "10") ||
        knob_rw("khugepaged/pages_to_scan", old_scan, sizeof(old_scan), "4096"))
        return 1;

    /* one mapping per range, so that each has its own line in smaps */
    char *p[3], *raws[3];
    int untouched[3] = {0, none + 1, none};
    for (int r = 0; r < 3; r++) {
        char *raw = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED)
            return 1;
        raws[r] = raw;
        p[r] = (char *)(((unsigned long)raw + HPAGE - 1) & ~(HPAGE - 1));
        for (int i = untouched[r]; i < 512; i++)
            p[r][i * 4096UL] = (char)(i + r + 1);
    }

    long scans = num("khugepaged/full_scans"), collapsed = num("khugepaged/pages_collapsed");
    for (int r = 0; r < 3; r++)
        madvise(p[r], HPAGE, MADV_HUGEPAGE);
    for (int t = 0; t < 300 && num("khugepaged/full_scans") < scans + 2; t++)
        usleep(10000);

    const char *names[3] = {"full", "over", "limit"};
    for (int r = 0; r < 3; r++) {
        int ok = 1;
        for (int i = 0; i < 512; i++)
            if (p[r][i * 4096UL] != (i < untouched[r] ? 0 : (char)(i + r + 1)))
                ok = 0;
        printf("%s_huge_kb %ld\n%s_data %s\n", names[r], anon_huge_kb(p[r]), names[r], ok ? "ok" : "bad");
    }
    printf("pages_collapsed %ld\n", num("khugepaged/pages_collapsed") - collapsed);
    printf("full_scans_done %d\n", num("khugepaged/full_scans") >= scans + 2);

    for (int r = 0; r < 3; r++)        /* before max_ptes_none goes back: khugepaged would collapse "over" */
        munmap(raws[r], 2 * HPAGE);
    char old[64];
    knob_rw("khugepaged/max_ptes_none", old, sizeof(old), old_none);
    knob_rw("khugepaged/scan_sleep_millisecs", old, sizeof(old), old_sleep);
    knob_rw("khugepaged/pages_to_scan", old, sizeof(old), old_scan);
    if (defrag)
        knob_rw("khugepaged/defrag", old, sizeof(old), old_defrag);
    char *a = strchr(enabled, '['), *b = a ? strchr(a, ']') : NULL;
    if (a && b) {
        *b = 0;
        knob_rw("enabled", old, sizeof(old), a + 1);
    }
    return 0;
}
