/* thp_bench MODE MIB: touch MIB MiB of anonymous memory with the transparent huge page policy MODE
 * (never, madvise, always), or (MODE collapse) touch it with 4 KiB pages and let khugepaged collapse
 * it after MADV_HUGEPAGE. Prints `name value` lines: the faults of the touch (getrusage minflt),
 * its CLOCK_MONOTONIC time, the AnonHugePages of the range (/proc/self/smaps), and for collapse the
 * time until khugepaged made the whole range huge and its counters. Needs to write
 * /sys/kernel/mm/transparent_hugepage (root); restores what it changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define HPAGE (2UL << 20)
#define THP "/sys/kernel/mm/transparent_hugepage/"

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int read_knob(const char *name, char *buf, size_t n)
{
    char path[256];
    snprintf(path, sizeof(path), THP "%s", name);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(buf, (int)n, f))
        buf[0] = 0;
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

static int write_knob(const char *name, const char *value)
{
    char path[256];
    snprintf(path, sizeof(path), THP "%s", name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    int ok = fputs(value, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* the selected word of "always [madvise] never" */
static void selected(const char *line, char *out, size_t n)
{
    const char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
    if (!a || !b || (size_t)(b - a - 1) >= n) {
        out[0] = 0;
        return;
    }
    memcpy(out, a + 1, b - a - 1);
    out[b - a - 1] = 0;
}

static long anon_huge_kb(void *p)
{
    char line[256];
    unsigned long start = (unsigned long)p, lo, hi;
    int in = 0;
    long kb = -1;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = lo <= start && start < hi;
        else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

static long knob_num(const char *name)
{
    char buf[64];
    return read_knob(name, buf, sizeof(buf)) ? -1 : atol(buf);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s never|madvise|always|collapse MIB\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    size_t len = (size_t)atol(argv[2]) << 20;
    int collapse = !strcmp(mode, "collapse");
    if (!len || len % HPAGE || (!collapse && strcmp(mode, "never") && strcmp(mode, "madvise") &&
                                strcmp(mode, "always"))) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    char line[128], old_enabled[32], old_sleep[32], old_scan[32];
    if (read_knob("enabled", line, sizeof(line)) || read_knob("khugepaged/scan_sleep_millisecs", old_sleep,
            sizeof(old_sleep)) || read_knob("khugepaged/pages_to_scan", old_scan, sizeof(old_scan)))
        return 1;
    selected(line, old_enabled, sizeof(old_enabled));
    if (write_knob("enabled", collapse ? "madvise" : mode))
        return 1;

    char *raw = mmap(NULL, len + HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return 1;
    char *p = (char *)(((unsigned long)raw + HPAGE - 1) & ~(HPAGE - 1));
    if (!strcmp(mode, "madvise"))
        madvise(p, len, MADV_HUGEPAGE);

    long f0 = minflt();
    long long t0 = now_ns();
    for (size_t off = 0; off < len; off += 4096)
        p[off] = (char)(off >> 12) | 1;
    long long t1 = now_ns();
    printf("faults %ld\n", minflt() - f0);
    printf("touch_ns %lld\n", t1 - t0);
    printf("anon_huge_kb %ld\n", anon_huge_kb(p));

    int rc = 0;
    if (collapse) {
        char pages[32];
        long scans0 = knob_num("khugepaged/full_scans"), coll0 = knob_num("khugepaged/pages_collapsed");
        snprintf(pages, sizeof(pages), "%zu", len >> 12);
        write_knob("khugepaged/pages_to_scan", pages);
        write_knob("khugepaged/scan_sleep_millisecs", "100");
        long long c0 = now_ns();
        madvise(p, len, MADV_HUGEPAGE);
        long kb = 0;
        int tries;
        for (tries = 0; tries < 200; tries++) {
            kb = anon_huge_kb(p);
            if (kb == (long)(len >> 10))
                break;
            usleep(10000);
        }
        long long c1 = now_ns();
        printf("collapse_ns %lld\n", c1 - c0);
        printf("collapsed_kb %ld\n", kb);
        printf("full_scans %ld\n", knob_num("khugepaged/full_scans") - scans0);
        printf("pages_collapsed %ld\n", knob_num("khugepaged/pages_collapsed") - coll0);
        for (size_t off = 0; off < len; off += 4096)
            if (p[off] != ((char)(off >> 12) | 1))
                rc = 1;
        f0 = minflt();
        for (size_t off = 0; off < len; off += 4096)
            p[off] ^= 2;
        printf("faults_after %ld\n", minflt() - f0);
        write_knob("khugepaged/scan_sleep_millisecs", old_sleep);
        write_knob("khugepaged/pages_to_scan", old_scan);
    }
    printf("check %s\n", rc ? "bad" : "ok");
    write_knob("enabled", old_enabled);
    return rc;
}
