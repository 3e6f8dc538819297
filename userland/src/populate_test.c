/*
 * populate_test: madvise(MADV_POPULATE_READ / MADV_POPULATE_WRITE) checked through /proc/self/pagemap
 * (present, swapped, soft-dirty, exclusive, file bits and PFNs) and /proc/self/clear_refs.
 *
 * Cases 27-34 use 2 MiB huge pages (MAP_HUGETLB, memfd_create(MFD_HUGETLB)); they ask for a few in
 * /proc/sys/vm/nr_hugepages and are SKIPped where the pool stays empty (not root, no hugetlb).
 *
 * Usage: populate_test [DIR] [--hwpoison]
 *   DIR         where the file-mapping tests create their file (default /tmp)
 *   --hwpoison  also run the MADV_HWPOISON case (it poisons a real page on a real machine)
 *
 * TAP output. A check this machine cannot make (PFNs hidden, no soft-dirty tracking, no swap space)
 * is reported as SKIP with the reason; exit status 1 if any test failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif
#ifndef EHWPOISON
#define EHWPOISON 133
#endif

#define PM_PFN_MASK ((1ULL << 55) - 1)
#define PM_SOFT_DIRTY (1ULL << 55)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_FILE (1ULL << 61)
#define PM_SWAP (1ULL << 62)
#define PM_PRESENT (1ULL << 63)

#define NPAGES 8
#define NTESTS 34
#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4U
#endif
#define MAP_HUGE_SHIFT_ 26
#define HPAGE (2UL << 20)
#define HUGE_TESTS 8

static long psize;
static int pagemap_fd = -1;
static int pagemap_err;
static int have_pfn, have_softdirty;
static int failures, test_no;

static void report(int ok, const char *fmt, ...)
{
    va_list ap;
    printf("%s %d ", ok ? "ok" : "not ok", ++test_no);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!ok)
        failures++;
    fflush(stdout);
}

static void skip(const char *why, const char *what)
{
    printf("ok %d %s # SKIP %s\n", ++test_no, what, why);
    fflush(stdout);
}

static void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* the pagemap entry of the page holding addr (0 and pagemap_err set when it cannot be read) */
static uint64_t pm_entry(const void *addr)
{
    uint64_t e = 0;
    off_t off = (off_t)((uintptr_t)addr / psize) * 8;
    if (pread(pagemap_fd, &e, 8, off) != 8) {
        pagemap_err = 1;
        return 0;
    }
    return e;
}

static uint64_t pm_pfn(const void *addr)
{
    return pm_entry(addr) & PM_PFN_MASK;
}

/* every page of [p, p + n pages) has (entry & mask) == want */
static int range_is(const char *p, int n, uint64_t mask, uint64_t want)
{
    for (int i = 0; i < n; i++)
        if ((pm_entry(p + i * psize) & mask) != want)
            return 0;
    return !pagemap_err;
}

static int write_proc(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    int r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

static int clear_softdirty(void)
{
    return write_proc("/proc/self/clear_refs", "4");
}

static char *map_anon(int npages, int prot, int flags)
{
    char *p = mmap(NULL, npages * psize, prot, flags | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int madv_err(void *p, size_t len, int advice)
{
    return madvise(p, len, advice) ? errno : 0;
}

static void detect(void)
{
    char *p = map_anon(1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    if (!p)
        return;
    p[0] = 1;
    have_pfn = pm_pfn(p) != 0;
    /* with soft-dirty tracking a new, written page always reads as soft-dirty (no clear_refs here, so
       that a kernel whose tracking is broken fails the tests below instead of skipping them) */
    have_softdirty = (pm_entry(p) & PM_SOFT_DIRTY) != 0;
    munmap(p, psize);
    if (!have_pfn)
        diag("pagemap shows no PFNs here (needs CAP_SYS_ADMIN): PFN checks are skipped");
    if (!have_softdirty)
        diag("no soft-dirty tracking here: soft-dirty checks are skipped");
}

/* ---- pagemap and clear_refs themselves ---------------------------------------------------------------- */
static void test_pagemap_alignment(void)
{
    uint64_t e[2];
    errno = 0;
    report(pread(pagemap_fd, e, 8, 4) == -1 && errno == EINVAL, "pagemap: unaligned offset is EINVAL");
    errno = 0;
    report(pread(pagemap_fd, e, 12, 0) == -1 && errno == EINVAL, "pagemap: unaligned size is EINVAL");
}

static void test_pagemap_unmapped(void)
{
    char *p = map_anon(1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    int ok = p != NULL;
    if (ok) {
        p[0] = 1;
        ok = (pm_entry(p) & PM_PRESENT) != 0;
        munmap(p, psize);
        ok = ok && pm_entry(p) == 0 && !pagemap_err;
    }
    report(ok, "pagemap: a written page is present, an unmapped one is 0");
}

static void test_clear_refs_invalid(void)
{
    static const char *bad[] = {"0", "6", "x", "-4", ""};
    int ok = 1;
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = open("/proc/self/clear_refs", O_WRONLY);
        errno = 0;
        ssize_t r = fd >= 0 ? write(fd, bad[i], strlen(bad[i]) ? strlen(bad[i]) : 1) : -1;
        if (!(r == -1 && errno == EINVAL)) {
            diag("clear_refs \"%s\": %zd errno %d", bad[i], r, errno);
            ok = 0;
        }
        if (fd >= 0)
            close(fd);
    }
    report(ok, "clear_refs: values other than 1-5 are EINVAL");
}

/* ---- invalid requests ---------------------------------------------------------------------------- */
static void test_invalid(void)
{
    char *p = map_anon(2, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    report(p && madv_err(p + 1, psize, MADV_POPULATE_READ) == EINVAL &&
           madv_err(p + 1, psize, MADV_POPULATE_WRITE) == EINVAL, "invalid: unaligned start is EINVAL");
    report(p && madv_err(p, psize, 99) == EINVAL, "invalid: unknown advice is EINVAL");
    if (p)
        munmap(p, 2 * psize);

    p = map_anon(2, PROT_NONE, MAP_PRIVATE);
    report(p && madv_err(p, 2 * psize, MADV_POPULATE_READ) == EINVAL &&
           madv_err(p, 2 * psize, MADV_POPULATE_WRITE) == EINVAL && range_is(p, 2, PM_PRESENT, 0),
           "invalid: PROT_NONE mapping is EINVAL for read and write, nothing populated");
    if (p)
        munmap(p, 2 * psize);

    p = map_anon(2, PROT_READ, MAP_PRIVATE);
    report(p && madv_err(p, 2 * psize, MADV_POPULATE_WRITE) == EINVAL && range_is(p, 2, PM_PRESENT, 0) &&
           madv_err(p, 2 * psize, MADV_POPULATE_READ) == 0 && range_is(p, 2, PM_PRESENT, PM_PRESENT),
           "read-only mapping: POPULATE_WRITE is EINVAL, POPULATE_READ populates");
    if (p)
        munmap(p, 2 * psize);

    p = map_anon(2, PROT_WRITE, MAP_PRIVATE);
    report(p && madv_err(p, 2 * psize, MADV_POPULATE_READ) == EINVAL &&
           madv_err(p, 2 * psize, MADV_POPULATE_WRITE) == 0 && range_is(p, 2, PM_PRESENT, PM_PRESENT),
           "write-only mapping: POPULATE_READ is EINVAL, POPULATE_WRITE populates");
    if (p)
        munmap(p, 2 * psize);
}

/* ---- holes --------------------------------------------------------------------------------------- */
static void test_holes(void)
{
    char *p = map_anon(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    int ok = p != NULL;
    if (ok) {
        /* pages 0-1 written, page 4 unmapped */
        memset(p, 'h', 2 * psize);
        ok = munmap(p + 4 * psize, psize) == 0 && madv_err(p, NPAGES * psize, MADV_POPULATE_WRITE) == ENOMEM &&
             range_is(p, 4, PM_PRESENT, PM_PRESENT) && pm_entry(p + 4 * psize) == 0 &&
             range_is(p + 5 * psize, 3, PM_PRESENT, 0);
        for (long i = 0; ok && i < 2 * psize; i++)
            ok = p[i] == 'h';
        for (long i = 2 * psize; ok && i < 4 * psize; i++)
            ok = p[i] == 0;
        munmap(p, NPAGES * psize);
    }
    report(ok, "holes: ENOMEM, the pages before the hole populated with their data intact, none after");

    p = map_anon(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    ok = p != NULL;
    if (ok) {
        ok = munmap(p, psize) == 0 && madv_err(p, NPAGES * psize, MADV_POPULATE_READ) == ENOMEM &&
             range_is(p + psize, NPAGES - 1, PM_PRESENT, 0);
        munmap(p + psize, (NPAGES - 1) * psize);
    }
    report(ok, "holes: a hole at the start is ENOMEM and populates nothing");
}

/* ---- private anonymous memory ------------------------------------------------------------------------ */
static void test_anon(void)
{
    char *p = map_anon(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    if (!p) {
        report(0, "mmap anonymous");
        return;
    }
    uint64_t zero_pfn = 0;
    int ok = madv_err(p, NPAGES * psize, MADV_POPULATE_READ) == 0 &&
             range_is(p, NPAGES, PM_PRESENT | PM_SWAP | PM_FILE | PM_EXCLUSIVE, PM_PRESENT);
    if (have_pfn) {
        zero_pfn = pm_pfn(p);
        ok = ok && zero_pfn && range_is(p, NPAGES, PM_PFN_MASK, zero_pfn);
        report(ok, "anon POPULATE_READ: present, every page on the one shared zero page, not exclusive");
    } else {
        report(ok, "anon POPULATE_READ: present and not exclusive (PFNs not shown)");
    }

    ok = madv_err(p, NPAGES * psize, MADV_POPULATE_WRITE) == 0 &&
         range_is(p, NPAGES, PM_PRESENT | PM_SWAP | PM_FILE | PM_EXCLUSIVE, PM_PRESENT | PM_EXCLUSIVE);
    for (long i = 0; ok && i < NPAGES * psize; i++)
        ok = p[i] == 0;
    if (have_pfn) {
        for (int i = 0; ok && i < NPAGES; i++) {
            uint64_t f = pm_pfn(p + i * psize);
            ok = f != zero_pfn;
            for (int j = 0; ok && j < i; j++)
                ok = f != pm_pfn(p + j * psize);
        }
    }
    report(ok, "anon POPULATE_WRITE after READ: COW broken, exclusive private pages%s, zero-filled",
           have_pfn ? " on distinct new frames" : "");

    /* populating again changes nothing: data and frames stay */
    uint64_t pfn[NPAGES];
    for (int i = 0; i < NPAGES; i++) {
        p[i * psize] = (char)('a' + i);
        pfn[i] = pm_pfn(p + i * psize);
    }
    ok = madv_err(p, NPAGES * psize, MADV_POPULATE_WRITE) == 0 &&
         madv_err(p, NPAGES * psize, MADV_POPULATE_READ) == 0;
    for (int i = 0; ok && i < NPAGES; i++)
        ok = p[i * psize] == (char)('a' + i) && pm_pfn(p + i * psize) == pfn[i];
    report(ok, "anon populate of present pages keeps their data and frames");
    munmap(p, NPAGES * psize);
}

/* ---- shared anonymous memory --------------------------------------------------------------------------- */
static void test_shared_anon(void)
{
    char *p = map_anon(NPAGES, PROT_READ | PROT_WRITE, MAP_SHARED);
    int ok = p != NULL && madv_err(p, NPAGES * psize, MADV_POPULATE_READ) == 0 &&
             range_is(p, NPAGES, PM_PRESENT | PM_SWAP | PM_FILE, PM_PRESENT | PM_FILE);
    uint64_t pfn[NPAGES];
    for (int i = 0; ok && i < NPAGES; i++)
        pfn[i] = pm_pfn(p + i * psize);
    ok = ok && madv_err(p, NPAGES * psize, MADV_POPULATE_WRITE) == 0 &&
         range_is(p, NPAGES, PM_PRESENT | PM_FILE, PM_PRESENT | PM_FILE);
    for (int i = 0; ok && i < NPAGES; i++) {
        ok = pm_pfn(p + i * psize) == pfn[i] && p[i * psize] == 0;
        p[i * psize] = 's';
        ok = ok && pm_pfn(p + i * psize) == pfn[i];
    }
    report(ok, "shared anon: populated pages are shmem (file bit), POPULATE_WRITE and writes keep the frames");
    if (p)
        munmap(p, NPAGES * psize);
}

/* ---- file mappings --------------------------------------------------------------------------------- */
static void test_file(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/populate_test.%d", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    char *buf = malloc(NPAGES * psize);
    int ok = fd >= 0 && buf != NULL;
    if (ok) {
        for (long i = 0; i < NPAGES * psize; i++)
            buf[i] = (char)('A' + (i / psize));
        ok = write(fd, buf, NPAGES * psize) == NPAGES * psize;
    }
    unlink(path);
    if (!ok) {
        report(0, "create %s", path);
        report(0, "create %s", path);
        report(0, "create %s", path);
        return;
    }
    char *priv = mmap(NULL, NPAGES * psize, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *shr = mmap(NULL, NPAGES * psize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (priv == MAP_FAILED || shr == MAP_FAILED) {
        report(0, "mmap the file");
        report(0, "mmap the file");
        report(0, "mmap the file");
        close(fd);
        return;
    }

    /* POPULATE_READ of a private mapping maps the page-cache pages themselves */
    ok = madv_err(priv, NPAGES * psize, MADV_POPULATE_READ) == 0 &&
         madv_err(shr, NPAGES * psize, MADV_POPULATE_READ) == 0 &&
         range_is(priv, NPAGES, PM_PRESENT | PM_FILE, PM_PRESENT | PM_FILE);
    for (int i = 0; ok && have_pfn && i < NPAGES; i++)
        ok = pm_pfn(priv + i * psize) == pm_pfn(shr + i * psize);
    report(ok, "private file POPULATE_READ: present file pages%s", have_pfn ? ", the page-cache frames" : "");

    /* POPULATE_WRITE breaks COW: private anonymous copies; the file does not change */
    ok = madv_err(priv, NPAGES * psize, MADV_POPULATE_WRITE) == 0 &&
         range_is(priv, NPAGES, PM_PRESENT | PM_FILE | PM_EXCLUSIVE, PM_PRESENT | PM_EXCLUSIVE) &&
         memcmp(priv, buf, NPAGES * psize) == 0;
    for (int i = 0; ok && have_pfn && i < NPAGES; i++)
        ok = pm_pfn(priv + i * psize) != pm_pfn(shr + i * psize);
    memset(priv, 'x', NPAGES * psize);
    char *back = malloc(NPAGES * psize);
    ok = ok && back && pread(fd, back, NPAGES * psize, 0) == NPAGES * psize &&
         memcmp(back, buf, NPAGES * psize) == 0 && memcmp(shr, buf, NPAGES * psize) == 0;
    report(ok, "private file POPULATE_WRITE: COW broken into exclusive anonymous pages, the file unchanged");

    /* POPULATE_WRITE of a shared mapping keeps the page-cache pages; writes reach the file */
    uint64_t pfn[NPAGES];
    for (int i = 0; i < NPAGES; i++)
        pfn[i] = pm_pfn(shr + i * psize);
    ok = madv_err(shr, NPAGES * psize, MADV_POPULATE_WRITE) == 0 &&
         range_is(shr, NPAGES, PM_PRESENT | PM_FILE, PM_PRESENT | PM_FILE);
    for (int i = 0; ok && i < NPAGES; i++)
        ok = pm_pfn(shr + i * psize) == pfn[i];
    memset(shr + psize, 'y', 16);
    ok = ok && back && pread(fd, back, 16, psize) == 16 && memcmp(back, "yyyyyyyyyyyyyyyy", 16) == 0;
    report(ok, "shared file POPULATE_WRITE: the page-cache pages stay mapped, writes reach the file");
    free(back);
    munmap(priv, NPAGES * psize);
    munmap(shr, NPAGES * psize);
    close(fd);
    free(buf);
}

/* ---- soft-dirty ------------------------------------------------------------------------------------ */
static void test_softdirty(void)
{
    static const char *names[] = {
        "soft-dirty: a new mapping is soft-dirty",
        "soft-dirty: clear_refs 4 clears it",
        "soft-dirty: POPULATE_READ does not set it",
        "soft-dirty: POPULATE_WRITE sets it",
        "soft-dirty: after clear_refs 4 a write sets it again on the same frame, data intact",
        "soft-dirty: after clear_refs 4 POPULATE_WRITE of present pages sets it, same frames",
    };
    if (!have_softdirty) {
        for (int i = 0; i < 6; i++)
            skip("no soft-dirty tracking", names[i]);
        return;
    }
    char *p = map_anon(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    report(p && range_is(p, NPAGES, PM_SOFT_DIRTY, PM_SOFT_DIRTY), "%s", names[0]);
    report(p && clear_softdirty() == 0 && range_is(p, NPAGES, PM_SOFT_DIRTY, 0), "%s", names[1]);
    report(p && madv_err(p, NPAGES * psize, MADV_POPULATE_READ) == 0 &&
           range_is(p, NPAGES, PM_PRESENT | PM_SOFT_DIRTY, PM_PRESENT), "%s", names[2]);
    report(p && madv_err(p, NPAGES * psize, MADV_POPULATE_WRITE) == 0 &&
           range_is(p, NPAGES, PM_PRESENT | PM_SOFT_DIRTY, PM_PRESENT | PM_SOFT_DIRTY), "%s", names[3]);

    /* write protection by clear_refs: the next write faults, reuses the exclusive page, marks it */
    int ok = p != NULL;
    uint64_t pfn[NPAGES];
    for (int i = 0; ok && i < NPAGES; i++) {
        p[i * psize + 1] = (char)(i + 1);
        pfn[i] = pm_pfn(p + i * psize);
    }
    ok = ok && clear_softdirty() == 0 && range_is(p, NPAGES, PM_PRESENT | PM_SOFT_DIRTY, PM_PRESENT);
    for (int i = 0; ok && i < NPAGES; i += 2)
        p[i * psize] = 'w';
    for (int i = 0; ok && i < NPAGES; i++) {
        uint64_t e = pm_entry(p + i * psize);
        ok = !!(e & PM_SOFT_DIRTY) == !(i & 1) && (e & PM_PRESENT) && (e & PM_PFN_MASK) == pfn[i] &&
             p[i * psize + 1] == (char)(i + 1) && p[i * psize] == (i & 1 ? 0 : 'w');
    }
    report(ok, "%s", names[4]);

    ok = p && clear_softdirty() == 0 && range_is(p, NPAGES, PM_SOFT_DIRTY, 0) &&
         madv_err(p, NPAGES * psize, MADV_POPULATE_WRITE) == 0 &&
         range_is(p, NPAGES, PM_PRESENT | PM_SOFT_DIRTY | PM_EXCLUSIVE, PM_PRESENT | PM_SOFT_DIRTY | PM_EXCLUSIVE);
    for (int i = 0; ok && i < NPAGES; i++)
        ok = pm_pfn(p + i * psize) == pfn[i] && p[i * psize + 1] == (char)(i + 1);
    report(ok, "%s", names[5]);
    if (p)
        munmap(p, NPAGES * psize);
}

/* ---- swap ------------------------------------------------------------------------------------------ */
static void test_swap(void)
{
    const char *what = "swapped pages: pagemap swap bit and type/offset, POPULATE_READ swaps them in intact";
    char *p = map_anon(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    if (!p) {
        report(0, "%s", what);
        return;
    }
    for (int i = 0; i < NPAGES; i++)
        memset(p + i * psize, 'a' + i, psize);
    if (madv_err(p, NPAGES * psize, MADV_PAGEOUT) || !(pm_entry(p) & PM_SWAP)) {
        skip("pages were not swapped out (no swap space?)", what);
        munmap(p, NPAGES * psize);
        return;
    }
    int ok = range_is(p, NPAGES, PM_PRESENT | PM_SWAP, PM_SWAP);
    for (int i = 0; ok && have_pfn && i < NPAGES; i++)
        ok = (pm_entry(p + i * psize) & PM_PFN_MASK) >> 5 != 0;       /* a swap offset (slot 0 is the header) */
    ok = ok && madv_err(p, NPAGES * psize, MADV_POPULATE_READ) == 0 &&
         range_is(p, NPAGES, PM_PRESENT | PM_SWAP, PM_PRESENT);
    for (long i = 0; ok && i < NPAGES * psize; i++)
        ok = p[i] == 'a' + i / psize;
    report(ok, "%s", what);
    munmap(p, NPAGES * psize);
}

/* ---- hardware poison ----------------------------------------------------------------------------------- */
static void test_hwpoison(int enabled)
{
    const char *what = "hwpoison: POPULATE_READ is EHWPOISON, the other pages keep their data";
    if (!enabled) {
        skip("MADV_HWPOISON poisons a real page: run with --hwpoison", what);
        return;
    }
    char *p = map_anon(4, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    int ok = p != NULL;
    if (ok) {
        memset(p, 'k', 4 * psize);
        int e = madv_err(p + 2 * psize, psize, MADV_HWPOISON);
        if (e == EPERM || e == EINVAL) {
            skip("MADV_HWPOISON not available", what);
            return;
        }
        ok = e == 0 && madv_err(p, 4 * psize, MADV_POPULATE_READ) == EHWPOISON &&
             (pm_entry(p + 2 * psize) & (PM_PRESENT | PM_SWAP)) == PM_SWAP;
        for (long i = 0; ok && i < 2 * psize; i++)
            ok = p[i] == 'k';
    }
    report(ok, "%s", what);
}

/* ---- 2 MiB huge pages ------------------------------------------------------------------------------------ */
/* a "Name:   N" line of /proc/meminfo, -1 when missing */
static long meminfo(const char *name)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    size_t n = strlen(name);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, name, n) && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* the value of a "Name:   N kB" line of this mapping's /proc/self/smaps entry, -1 when missing */
static long smaps_field(const void *start, const char *name)
{
    char line[512], want[32];
    long v = -1;
    int in = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    snprintf(want, sizeof(want), "%lx-", (unsigned long)start);
    size_t n = strlen(name);
    while (fgets(line, sizeof(line), f)) {
        if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' ') && line[0] != ' ' &&
            strncmp(line, "VmFlags", 7) && strchr(line, ':') > strchr(line, ' '))
            in = !strncmp(line, want, strlen(want)) || !strncmp(line + strspn(line, "0"), want, strlen(want));
        else if (in && !strncmp(line, name, n) && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static long pool_was = -1;        /* nr_hugepages before this test raised it (restored at the end) */

static void restore_pool(void)
{
    char buf[32];
    if (pool_was < 0)
        return;
    snprintf(buf, sizeof(buf), "%ld", pool_was);
    write_proc("/proc/sys/vm/nr_hugepages", buf);
}

static void test_hugetlb(void)
{
    long total = meminfo("HugePages_Total");
    if (total < 0) {
        for (int i = 0; i < HUGE_TESTS; i++)
            skip("no HugePages_* in /proc/meminfo", "hugetlb");
        return;
    }
    if (meminfo("HugePages_Free") < 4) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%ld", total + 4);
        if (write_proc("/proc/sys/vm/nr_hugepages", buf) == 0)    /* works as root; otherwise the pool stays */
            pool_was = total;
    }
    long nfree = meminfo("HugePages_Free");

    /* 27: more huge pages than are free cannot be reserved: ENOMEM (an empty pool: any size) */
    errno = 0;
    void *q = mmap(NULL, (nfree + 1) * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    report(q == MAP_FAILED && errno == ENOMEM, "hugetlb: MAP_HUGETLB beyond the free pool (%ld pages) is ENOMEM",
           nfree);
    if (q != MAP_FAILED)
        munmap(q, (nfree + 1) * HPAGE);

    /* 28: a huge page size the machine does not have (64 KiB), and MAP_HUGETLB on a regular file: EINVAL */
    errno = 0;
    q = mmap(NULL, HPAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (16 << MAP_HUGE_SHIFT_), -1, 0);
    int ok = q == MAP_FAILED && errno == EINVAL;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    errno = 0;
    q = mmap(NULL, HPAGE, PROT_READ, MAP_PRIVATE | MAP_HUGETLB, fd, 0);
    ok = ok && q == MAP_FAILED && errno == EINVAL;
    close(fd);
    report(ok, "hugetlb: unsupported MAP_HUGE size and MAP_HUGETLB on a non-hugetlbfs file are EINVAL");

    if (nfree < 3) {
        for (int i = 2; i < HUGE_TESTS; i++)
            skip("fewer than 3 free huge pages (set /proc/sys/vm/nr_hugepages as root)", "hugetlb");
        return;
    }

    /* 29: POPULATE_WRITE maps both huge pages: 1024 present, exclusive, anonymous entries on 2 aligned runs */
    char *p = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p == MAP_FAILED) {
        for (int i = 2; i < HUGE_TESTS; i++)
            report(0, "hugetlb: mmap 2 huge pages (errno %d)", errno);
        return;
    }
    long before = meminfo("HugePages_Free");
    ok = ((uintptr_t)p & (HPAGE - 1)) == 0 && madv_err(p, 2 * HPAGE, MADV_POPULATE_WRITE) == 0 &&
         range_is(p, 2 * HPAGE / psize, PM_PRESENT | PM_SWAP | PM_FILE | PM_EXCLUSIVE, PM_PRESENT | PM_EXCLUSIVE);
    if (have_pfn)
        for (int h = 0; ok && h < 2; h++) {
            uint64_t f0 = pm_pfn(p + h * HPAGE);
            ok = f0 % (HPAGE / psize) == 0;
            for (long i = 1; ok && i < (long)(HPAGE / psize); i++)
                ok = pm_pfn(p + h * HPAGE + i * psize) == f0 + i;
        }
    report(ok && meminfo("HugePages_Free") == before - 2,
           "hugetlb: POPULATE_WRITE maps 2 huge pages: present, exclusive, anon%s; 2 fewer free",
           have_pfn ? ", PFNs contiguous and 2 MiB-aligned" : "");

    /* 30: data written through the mapping reads back, the rest is zero */
    for (long i = 0; i < (long)(2 * HPAGE); i += 4093)
        p[i] = (char)(i * 7 + 1);
    ok = 1;
    for (long i = 0; ok && i < (long)(2 * HPAGE); i++)
        ok = p[i] == (i % 4093 ? 0 : (char)(i * 7 + 1));
    report(ok, "hugetlb: writes through the huge mapping read back; unwritten bytes are zero");

    /* 31: smaps reports a 2 MiB page size and the pages as Private_Hugetlb */
    long kps = smaps_field(p, "KernelPageSize"), ph = smaps_field(p, "Private_Hugetlb");
    report(kps == 2048 && ph == 4096, "hugetlb: smaps KernelPageSize %ld kB (2048), Private_Hugetlb %ld kB (4096)",
           kps, ph);

    /* 32: munmap/mprotect inside a huge page are EINVAL and change nothing; an aligned munmap works */
    errno = 0;
    ok = munmap(p + psize, psize) == -1 && errno == EINVAL;
    errno = 0;
    ok = ok && munmap(p, psize) == -1 && errno == EINVAL;
    errno = 0;
    ok = ok && mprotect(p + HPAGE - psize, 2 * psize, PROT_READ) == -1 && errno == EINVAL;
    ok = ok && p[0] == 1 && munmap(p + HPAGE, HPAGE) == 0 && p[4093] == (char)(4093 * 7 + 1);
    report(ok && meminfo("HugePages_Free") == before - 1,
           "hugetlb: munmap/mprotect inside a huge page are EINVAL; munmap of one huge page frees it");
    munmap(p, HPAGE);

    /* 33: POPULATE_READ of a fresh private mapping allocates (cleared) huge pages, as the CPU's read would */
    before = meminfo("HugePages_Free");
    p = mmap(NULL, HPAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    ok = p != MAP_FAILED && madv_err(p, HPAGE, MADV_POPULATE_READ) == 0 &&
         range_is(p, HPAGE / psize, PM_PRESENT | PM_SWAP, PM_PRESENT) && meminfo("HugePages_Free") == before - 1 &&
         p[12345] == 0;
    report(ok, "hugetlb: POPULATE_READ maps a cleared huge page (read-only private mapping)");
    if (p != MAP_FAILED)
        munmap(p, HPAGE);

    /* 34: memfd_create(MFD_HUGETLB): fallocate takes a pool page; a shared mapping sees it as a file page
       and its writes reach a second mapping */
    fd = (int)syscall(SYS_memfd_create, "populate_test", MFD_HUGETLB);
    ok = fd >= 0 && ftruncate(fd, HPAGE) == 0;
    before = meminfo("HugePages_Free");
    ok = ok && fallocate(fd, 0, 0, HPAGE) == 0 && meminfo("HugePages_Free") == before - 1;
    char *a = ok ? mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    char *b = ok ? mmap(NULL, HPAGE, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    ok = ok && a != MAP_FAILED && b != MAP_FAILED && madv_err(a, HPAGE, MADV_POPULATE_READ) == 0 &&
         range_is(a, HPAGE / psize, PM_PRESENT | PM_FILE, PM_PRESENT | PM_FILE);
    if (ok) {
        a[HPAGE - 1] = 'h';
        ok = b[HPAGE - 1] == 'h' && (!have_pfn || pm_pfn(a) == pm_pfn(b));
    }
    report(ok, "hugetlb: MFD_HUGETLB memfd: fallocate takes a huge page, shared mappings see one file page");
    if (a != MAP_FAILED)
        munmap(a, HPAGE);
    if (b != MAP_FAILED)
        munmap(b, HPAGE);
    if (fd >= 0)
        close(fd);
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp";
    int hwpoison = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--hwpoison"))
            hwpoison = 1;
        else
            dir = argv[i];
    }
    psize = sysconf(_SC_PAGESIZE);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("TAP version 13\n");
    pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
    if (pagemap_fd < 0) {
        printf("1..0 # SKIP cannot open /proc/self/pagemap\n");
        return 0;
    }
    printf("1..%d\n", NTESTS);
    detect();

    test_pagemap_alignment();
    test_pagemap_unmapped();
    test_clear_refs_invalid();
    test_invalid();
    test_holes();
    test_anon();
    test_shared_anon();
    test_file(dir);
    test_softdirty();
    test_swap();
    test_hwpoison(hwpoison);
    test_hugetlb();
    restore_pool();

    if (pagemap_err)
        diag("reading /proc/self/pagemap failed at least once");
    if (test_no != NTESTS) {
        printf("not ok %d plan mismatch: %d tests ran\n", test_no + 1, test_no);
        failures++;
    }
    diag("%d failed", failures);
    return failures ? 1 : 0;
}
