/* A transparent huge page seen through /proc/self/pagemap, /proc/kpageflags and /proc/kpagecount:
 * present and exclusive entries for every 4 KiB, consecutive frames from a 2 MiB-aligned head,
 * KPF_THP with COMPOUND_HEAD on the first frame and COMPOUND_TAIL on the others, the huge zero page
 * (ZERO_PAGE|THP, count 0) after a read, the counts and exclusivity after fork. Only bits that do not
 * depend on reclaim's timing are printed. Needs root (frame numbers). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define HPAGE (2UL << 20)
#define KPF_MMAP 11
#define KPF_ANON 12
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define KPF_HUGE 17
#define KPF_THP 22
#define KPF_ZERO_PAGE 24

static int pagemap, kflags, kcount;

static uint64_t pme(void *addr)
{
    uint64_t e = 0;
    pread(pagemap, &e, 8, (uintptr_t)addr / 4096 * 8);
    return e;
}

static void show(const char *what, char *addr)
{
    uint64_t e = pme(addr), pfn = e & ((1ULL << 55) - 1), f = 0, c = 0;
    pread(kflags, &f, 8, pfn * 8);
    pread(kcount, &c, 8, pfn * 8);
    printf("%-14s present %d exclusive %d  mmap %d anon %d head %d tail %d huge %d thp %d zero %d  count %llu\n",
           what, (int)(e >> 63), (int)(e >> 56 & 1), (int)(f >> KPF_MMAP & 1), (int)(f >> KPF_ANON & 1),
           (int)(f >> KPF_COMPOUND_HEAD & 1), (int)(f >> KPF_COMPOUND_TAIL & 1), (int)(f >> KPF_HUGE & 1),
           (int)(f >> KPF_THP & 1), (int)(f >> KPF_ZERO_PAGE & 1), (unsigned long long)c);
}

int main(void)
{
    pagemap = open("/proc/self/pagemap", O_RDONLY);
    kflags = open("/proc/kpageflags", O_RDONLY);
    kcount = open("/proc/kpagecount", O_RDONLY);
    char *p = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(p, 2 * HPAGE, MADV_HUGEPAGE);
    memset(p, 1, HPAGE);
    uint64_t pfn0 = pme(p) & ((1ULL << 55) - 1);
    int consecutive = 1;
    for (int i = 1; i < 512; i++)
        if ((pme(p + i * 4096UL) & ((1ULL << 55) - 1)) != pfn0 + i)
            consecutive = 0;
    printf("head frame 2 MiB-aligned: %d, 512 consecutive frames: %d\n", (int)(pfn0 % 512 == 0), consecutive);
    show("head", p);
    show("tail 1", p + 4096);
    show("tail 511", p + 511 * 4096);
    volatile char sink = p[HPAGE];
    (void)sink;
    show("zero huge", p + HPAGE);
    show("zero huge 7", p + HPAGE + 7 * 4096);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        show("child head", p);
        show("child tail", p + 4096);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    show("after child", p);
    return 0;
}
