/*
 * shmthp: transparent huge pages for shmem (Linux 6.12). Maps MB MiB of shared memory 2 MiB aligned
 * (or 4 KiB off alignment with "unaligned") and touches every page, then prints the faults
 * (ru_minflt), /proc/meminfo's ShmemHugePages and ShmemPmdMapped, the mapping's smaps ShmemPmdMapped
 * and FilePmdMapped and THPeligible, and /proc/vmstat's thp_file_alloc and thp_file_mapped; then
 * unmaps the first 1 MiB (a partial munmap), punches a 4 KiB hole at 2 MiB (MADV_REMOVE), printing the
 * counters after each.
 *
 * Usage: shmthp KIND MODE [MB [DIR [unaligned]]]
 *   KIND  memfd | anon | tmpfs (a file in DIR, default /dev/shm)
 *   MODE  read | write
 * Environment: SHMEM_ENABLED=VALUE writes /sys/kernel/mm/transparent_hugepage/shmem_enabled first (and
 * puts the old value back at the end); TMPFS_HUGE=VALUE mounts a tmpfs with huge=VALUE on DIR first;
 * COLLAPSE=1 asks MADV_COLLAPSE for the whole mapping after the touches.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HPAGE (2UL << 20)

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static long meminfo(const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
            v = atol(line + strlen(key) + 1);
    if (f)
        fclose(f);
    return v;
}

static long vmstat(const char *key)
{
    char name[128];
    long v, r = -1;
    FILE *f = fopen("/proc/vmstat", "r");
    while (f && fscanf(f, "%127s %ld", name, &v) == 2)
        if (!strcmp(name, key))
            r = v;
    if (f)
        fclose(f);
    return r;
}

/* the smaps field of the VMA that starts at addr */
static long smaps(void *addr, const char *key)
{
    char line[256];
    long v = -1;
    int in = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = s == (unsigned long)addr;
            continue;
        }
        if (in && !strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
            v = atol(line + strlen(key) + 1);
    }
    if (f)
        fclose(f);
    return v;
}

static void report(const char *what, char *p, long faults)
{
    printf("%s: faults %ld ShmemHugePages %ld ShmemPmdMapped %ld smaps ShmemPmdMapped %ld FilePmdMapped %ld "
           "THPeligible %ld thp_file_alloc %ld thp_file_mapped %ld\n", what, faults, meminfo("ShmemHugePages"),
           meminfo("ShmemPmdMapped"), smaps(p, "ShmemPmdMapped"), smaps(p, "FilePmdMapped"),
           smaps(p, "THPeligible"), vmstat("thp_file_alloc"), vmstat("thp_file_mapped"));
}

#define KNOB "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

static void knob_write(const char *v)
{
    int fd = open(KNOB, O_WRONLY);
    if (fd < 0 || write(fd, v, strlen(v)) < 0) {
        perror(KNOB);
        exit(1);
    }
    close(fd);
}

/* the selected value of the knob ("always [never] ..." -> "never") */
static void knob_read(char *out, size_t n)
{
    char buf[256] = "";
    int fd = open(KNOB, O_RDONLY);
    ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    char *a = r > 0 ? strchr(buf, '[') : NULL, *b = a ? strchr(a, ']') : NULL;
    if (fd >= 0)
        close(fd);
    snprintf(out, n, "%.*s", b ? (int)(b - a - 1) : 0, a ? a + 1 : "");
}

int main(int argc, char **argv)
{
    char old[64] = "";
    const char *set = getenv("SHMEM_ENABLED"), *huge = getenv("TMPFS_HUGE");
    if (argc < 3) {
        fprintf(stderr, "usage: shmthp KIND MODE [MB [DIR [unaligned]]]\n");
        return 2;
    }
    const char *kind = argv[1], *mode = argv[2];
    size_t len = (argc > 3 ? atol(argv[3]) : 4) << 20;
    const char *dir = argc > 4 ? argv[4] : "/dev/shm";
    size_t off = argc > 5 && !strcmp(argv[5], "unaligned") ? 4096 : 0;
    int fd = -1;
    if (set) {
        knob_read(old, sizeof(old));
        knob_write(set);
    }
    if (huge) {
        char opts[64];
        snprintf(opts, sizeof(opts), "huge=%s", huge);
        if (mount("tmpfs", dir, "tmpfs", 0, opts)) {
            perror("mount");
            return 1;
        }
    }
    if (!strcmp(kind, "memfd")) {
        fd = syscall(SYS_memfd_create, "shmthp", 0);
    } else if (!strcmp(kind, "tmpfs")) {
        char path[512];
        snprintf(path, sizeof(path), "%s/shmthp.%d", dir, (int)getpid());
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        unlink(path);
    }
    if (strcmp(kind, "anon") && (fd < 0 || ftruncate(fd, len))) {
        perror(kind);
        return 1;
    }
    /* a 2 MiB aligned window (plus off) to map into */
    char *r = mmap(NULL, len + 2 * HPAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *at = (char *)(((unsigned long)r + HPAGE - 1) & ~(HPAGE - 1)) + off;
    char *p = fd < 0 ? mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
                     : mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    if (r == MAP_FAILED || p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    long f0 = minflt();
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i += 4096) {
        if (!strcmp(mode, "write"))
            p[i] = 1;
        else
            sum += ((volatile char *)p)[i];
    }
    long f1 = minflt();
    report("touched", p, f1 - f0);
    if (getenv("COLLAPSE")) {                 /* MADV_COLLAPSE (25): huge pages whatever the knobs say */
        long f2 = minflt();
        int rc = madvise(p, len, 25);
        report(rc ? "collapse failed" : "collapsed", p, minflt() - f2);
    }
    munmap(p, 1 << 20);                       /* a partial munmap splits the first PMD */
    report("after munmap of 1 MiB", p + (1 << 20), 0);
    if (len >= 2 * HPAGE) {                   /* a hole punched in the second 2 MiB splits its folio */
        if (madvise(p + HPAGE, 4096, MADV_REMOVE)) {
            perror("madvise(MADV_REMOVE)");
            return 1;
        }
        report("after MADV_REMOVE of 4 KiB", p + (1 << 20), 0);
    }
    for (size_t i = 1 << 20; i < len; i += 4096)
        sum += ((volatile char *)p)[i];
    printf("sum %lu\n", sum);
    if (set && old[0])
        knob_write(old);
    return 0;
}
