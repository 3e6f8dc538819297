/*
 * prefetch_test: checks __vdso_prefetch_page() from the vDSO announced in AT_SYSINFO_EHDR.
 * The vDSO is parsed by vdso_lookup.h (program headers, dynamic section, SysV hash, version LINUX_2.6).
 * TAP output. On a kernel whose vDSO has no prefetch_page, every test is skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vdso_lookup.h"

typedef long (*prefetch_fn)(const void *);

static int failures;
static int test_no;

static void report(int ok, const char *what)
{
    printf("%s %d %s\n", ok ? "ok" : "not ok", ++test_no, what);
    if (!ok)
        failures++;
}

static int resident(void *p)
{
    unsigned char v = 0;
    if (mincore(p, 4096, &v))
        return -1;
    return v & 1;
}

static int drop_caches(void)
{
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0)
        return -1;
    int ok = write(fd, "1", 1) == 1;
    close(fd);
    return ok ? 0 : -1;
}

static char present_data[4096] = {1};

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/home";
    prefetch_fn prefetch = (prefetch_fn)vdso_sym("LINUX_2.6", "__vdso_prefetch_page");

    printf("TAP version 13\n1..8\n");
    if (!prefetch) {
        for (int i = 1; i <= 8; i++)
            printf("ok %d # SKIP no __vdso_prefetch_page in the vDSO\n", i);
        return 0;
    }

    report(prefetch(NULL) != 0, "NULL returns non-zero without a signal");

    present_data[0]++;
    report(prefetch(present_data) == 0, "present page returns 0");

    char *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report(anon != MAP_FAILED && prefetch(anon) == 0 && resident(anon) == 1,
           "fresh anonymous page returns 0 and is then resident");

    /* a file page made cold: the call starts the read and fails; once mincore says it is resident, 0 */
    char path[256];
    snprintf(path, sizeof(path), "%s/prefetch_test.dat", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    static char buf[4 * 4096];
    memset(buf, 'p', sizeof(buf));
    int ok = fd >= 0 && write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) && fsync(fd) == 0 &&
             drop_caches() == 0;
    char *map = ok ? mmap(NULL, sizeof(buf), PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    long first = map != MAP_FAILED ? prefetch(map + 4096) : 0;
    int was_resident = map != MAP_FAILED ? resident(map + 4096) : 1;
    long spins = 0;
    while (map != MAP_FAILED && resident(map + 4096) != 1 && spins < 100000000)
        spins++;
    long second = map != MAP_FAILED ? prefetch(map + 4096) : -1;
    report(ok && first != 0 && was_resident == 0 && second == 0 && map[4096] == 'p',
           "cold file page returns non-zero, then 0 once resident");
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }

    void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report(none != MAP_FAILED && prefetch(none) != 0, "PROT_NONE page returns non-zero without a signal");

    report(prefetch((void *)0xffff880000000000UL) != 0 && prefetch((void *)0x7fff00000000UL) != 0,
           "kernel-half and unmapped addresses return non-zero without a signal");

    /* an anonymous page paged out (MADV_PAGEOUT): once its swap write is done and the page freed,
     * prefetch starts the swap-in and fails; once mincore says it is resident, 0 */
    char *sw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int sw_ok = sw != MAP_FAILED;
    if (sw_ok) {
        memset(sw, 's', 4096);
        sw_ok = madvise(sw, 4096, MADV_PAGEOUT) == 0;
    }
    spins = 0;
    while (sw_ok && resident(sw) != 0 && spins < 100000000)
        spins++;
    long sw_first = sw_ok ? prefetch(sw) : 0;
    spins = 0;
    while (sw_ok && resident(sw) != 1 && spins < 100000000)
        spins++;
    long sw_second = sw_ok ? prefetch(sw) : -1;
    report(sw_ok && sw_first != 0 && sw_second == 0 && sw[100] == 's',
           "swapped-out page returns non-zero, then 0 after the swap-in completes");

    /* under memory pressure the call fails fast instead of reclaiming: see the kernel tests */
    report(prefetch(present_data) == 0, "present page still returns 0 after all of the above");

    return failures ? 1 : 0;
}
