/* max_map_count: map single pages with alternating protections (so none merges) until mmap fails;
 * print the error and how far past /proc/sys/vm/max_map_count the VMA count got. With an argument
 * N, first write N to max_map_count (the guest only: it changes the machine). Then munmap of a
 * page in the middle of a 3-page VMA at the limit fails with ENOMEM, as does anything else that
 * splits a VMA (mprotect of its middle, munmap of its head). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The VMAs of /proc/self/maps that count in map_count (the [vsyscall] gate area does not) */
static long count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    long n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, "[vsyscall]") == NULL;
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    long max;
    FILE *f;
    if (argc > 1) {
        f = fopen("/proc/sys/vm/max_map_count", "w");
        if (!f || fprintf(f, "%s\n", argv[1]) < 0 || fclose(f)) {
            perror("max_map_count");
            return 1;
        }
    }
    f = fopen("/proc/sys/vm/max_map_count", "r");
    if (!f || fscanf(f, "%ld", &max) != 1)
        return 2;
    fclose(f);
    char *three = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long n = 0;
    int err = 0;
    for (;;) {
        void *p = mmap(NULL, 4096, (n & 1) ? PROT_READ : PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            err = errno;
            break;
        }
        n++;
    }
    long maps = count_maps();
    printf("mmap stopped with %s, maps - max_map_count = %ld\n", strerror(err), maps - max);
    int r = munmap(three + 4096, 4096);
    printf("munmap splitting a VMA: %s\n", r ? strerror(errno) : "ok");
    r = mprotect(three + 4096, 4096, PROT_READ);
    printf("mprotect splitting a VMA: %s\n", r ? strerror(errno) : "ok");
    r = munmap(three, 4096);
    printf("munmap of the head of a VMA: %s\n", r ? strerror(errno) : "ok");
    return 0;
}
