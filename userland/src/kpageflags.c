/* /proc/self/pagemap PFNs looked up in /proc/kpageflags and /proc/kpagecount: an anonymous page
 * written (ANON, MMAP, UPTODATE, SWAPBACKED; count 1), one only read (the zero page, not in the
 * reverse map: count 0), a page shared with a forked child (count 2), a page-cache page of the
 * program read through a mapping (MMAP, UPTODATE, not ANON); misaligned reads are EINVAL. Only the
 * bits that do not depend on reclaim's timing are printed. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int pagemap, kflags, kcount;

static uint64_t pfn_of(void *addr)
{
    uint64_t e = 0;
    pread(pagemap, &e, 8, (uintptr_t)addr / 4096 * 8);
    return (e >> 63) ? (e & ((1ULL << 55) - 1)) : 0;
}

static void show(const char *what, void *addr, int with_count)
{
    static const char *names[] = {"LOCKED", "ERROR", "REFERENCED", "UPTODATE", "DIRTY", "LRU", "ACTIVE",
                                  "SLAB", "WRITEBACK", "RECLAIM", "BUDDY", "MMAP", "ANON", "SWAPCACHE",
                                  "SWAPBACKED", "COMPOUND_HEAD", "COMPOUND_TAIL", "HUGE", "UNEVICTABLE",
                                  "HWPOISON", "NOPAGE", "KSM", "THP", "OFFLINE", "ZERO_PAGE"};
    static const int shown[] = {3, 11, 12, 14, 15, 16, 17, 20, 24};
    uint64_t pfn = pfn_of(addr), fl = 0, cnt = 0;
    if (!pfn) {
        printf("%s: not present\n", what);
        return;
    }
    pread(kflags, &fl, 8, pfn * 8);
    pread(kcount, &cnt, 8, pfn * 8);
    printf("%s:", what);
    if (with_count)
        printf(" count=%llu", (unsigned long long)cnt);
    for (unsigned i = 0; i < sizeof shown / sizeof shown[0]; i++)
        if (fl >> shown[i] & 1)
            printf(" %s", names[shown[i]]);
    printf("\n");
}

int main(void)
{
    pagemap = open("/proc/self/pagemap", O_RDONLY);
    kflags = open("/proc/kpageflags", O_RDONLY);
    kcount = open("/proc/kpagecount", O_RDONLY);
    if (pagemap < 0 || kflags < 0 || kcount < 0) {
        perror("open");
        return 1;
    }
    char buf[16];
    printf("read at offset 4: %s\n", pread(kflags, buf, 8, 4) < 0 ? strerror(errno) : "ok");
    printf("read of 4 bytes: %s\n", pread(kcount, buf, 4, 0) < 0 ? strerror(errno) : "ok");
    char *anon = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    anon[0] = 1;
    volatile char c = anon[4096];
    (void)c;
    show("written anon", anon, 1);
    show("read anon", anon + 4096, 1);
    show("untouched anon", anon + 8192, 1);
    int fd = open("/proc/self/exe", O_RDONLY);
    char *file = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    c = file[0];
    show("file page", file, 0);
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    show("anon shared with a child", anon, 1);
    kill(pid, 9);
    waitpid(pid, NULL, 0);
    return 0;
}
