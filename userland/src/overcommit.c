/* Commit accounting. Under the heuristic (overcommit_memory 0) one private writable mapping larger
 * than RAM + swap is refused (ENOMEM), as is mprotect making such a range writable; MAP_NORESERVE
 * and read-only mappings are not committed. With the argument `never` (the guest only: it changes
 * the machine) overcommit_memory is set to 2 first: then MAP_NORESERVE is ignored and the commit
 * limit (overcommit_ratio% of RAM + swap) refuses what the heuristic allowed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void report(const char *what, void *p, size_t len)
{
    printf("%s: %s\n", what, p == MAP_FAILED ? strerror(errno) : "ok");
    if (p != MAP_FAILED)
        munmap(p, len);
}

static void set(const char *file, const char *value)
{
    FILE *f = fopen(file, "w");
    if (!f || fputs(value, f) < 0 || fclose(f))
        perror(file);
}

int main(int argc, char **argv)
{
    size_t huge = 1UL << 40, mid = 0;
    int never = argc > 1 && !strcmp(argv[1], "never");
    if (never) {
        set("/proc/sys/vm/overcommit_memory", "2\n");
        mid = (size_t)strtoul(argv[2], NULL, 0) << 20;
    }
    int rw = PROT_READ | PROT_WRITE, priv = MAP_PRIVATE | MAP_ANONYMOUS;
    report("1 TiB private writable", mmap(NULL, huge, rw, priv, -1, 0), huge);
    report("1 TiB MAP_NORESERVE", mmap(NULL, huge, rw, priv | MAP_NORESERVE, -1, 0), huge);
    char *ro = mmap(NULL, huge, PROT_READ, priv, -1, 0);
    report("1 TiB read-only", ro, 0);
    int r = mprotect(ro, huge, rw);
    printf("mprotect 1 TiB writable: %s\n", r ? strerror(errno) : "ok");
    munmap(ro, huge);
    report("1 MiB private writable", mmap(NULL, 1 << 20, rw, priv, -1, 0), 1 << 20);
    if (never) {
        report("below the limit", mmap(NULL, mid, rw, priv, -1, 0), mid);
        char *a = mmap(NULL, mid, rw, priv, -1, 0);
        report("twice below the limit, first", a, 0);
        report("twice below the limit, second", mmap(NULL, mid, rw, priv, -1, 0), mid);
        munmap(a, mid);
        report("again after munmap", mmap(NULL, mid, rw, priv, -1, 0), mid);
        set("/proc/sys/vm/overcommit_memory", "1\n");
        report("1 TiB with overcommit_memory 1", mmap(NULL, huge, rw, priv, -1, 0), huge);
    }
    return 0;
}
