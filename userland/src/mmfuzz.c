/* mmfuzz: a seeded sequence of mmap/munmap/mprotect/mremap/madvise calls inside a 128-page arena,
 * printing each call, its result, and the arena's lines of /proc/self/maps after it.
 *
 *   mmfuzz SEED N
 *
 * Pages are never touched, so no VMA gets an anon_vma and Linux merges neighbours whenever their flags
 * agree: the test replays the calls in an independent model of the VMA list and compares every step,
 * and compares the whole output with a native run.
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

#define ARENA 0x200000000000UL
#define PAGES 128
#define PG 4096UL

static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static unsigned below(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static void show_maps(void)
{
    static char buf[1 << 16];
    int fd = open("/proc/self/maps", O_RDONLY);
    size_t n = 0;
    ssize_t r;
    while (fd >= 0 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    if (fd >= 0)
        close(fd);
    buf[n] = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(0, "\n")) {
        unsigned long s, e;
        char perms[8];
        if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) != 3)
            continue;
        if (s >= ARENA && s < ARENA + PAGES * PG)
            printf("  %lx-%lx %s\n", s - ARENA, e - ARENA, perms);
    }
}

static const int prots[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC,
                            PROT_READ | PROT_WRITE | PROT_EXEC};
static const int advices[] = {MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED,
                              MADV_DONTFORK, MADV_DOFORK};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mmfuzz SEED N\n");
        return 2;
    }
    rng = strtoull(argv[1], 0, 0) * 0x9E3779B97F4A7C15ULL + 7;
    long n = strtol(argv[2], 0, 0);
    setvbuf(stdout, 0, _IOFBF, 1 << 16);
    for (long i = 0; i < n; i++) {
        unsigned p = below(PAGES), len = 1 + below(16);
        if (p + len > PAGES)
            len = PAGES - p;
        char *addr = (char *)(ARENA + p * PG);
        long ret;
        switch (below(6)) {
        case 0: case 1: {
            int prot = prots[below(5)];
            ret = (long)mmap(addr, len * PG, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            if (ret == -1)
                ret = -errno;
            else
                ret = ret == (long)addr;
            printf("mmap %u %u %d = %ld\n", p, len, prot, ret);
            break;
        }
        case 2:
            ret = munmap(addr, len * PG) ? -errno : 0;
            printf("munmap %u %u = %ld\n", p, len, ret);
            break;
        case 3: {
            int prot = prots[below(5)];
            ret = mprotect(addr, len * PG, prot) ? -errno : 0;
            printf("mprotect %u %u %d = %ld\n", p, len, prot, ret);
            break;
        }
        case 4: {
            unsigned newlen = 1 + below(16), q = below(PAGES);
            int move = below(2);
            if ((move ? q : p) + newlen > PAGES)
                newlen = PAGES - (move ? q : p);
            void *r = move ? mremap(addr, len * PG, newlen * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                                    (void *)(ARENA + q * PG))
                           : mremap(addr, len * PG, newlen * PG, 0);
            ret = r == MAP_FAILED ? -errno : (long)(((unsigned long)r - ARENA) / PG);
            printf("mremap %u %u %u %d %u = %ld\n", p, len, newlen, move, q, ret);
            break;
        }
        default: {
            int adv = advices[below(7)];
            ret = madvise(addr, len * PG, adv) ? -errno : 0;
            printf("madvise %u %u %d = %ld\n", p, len, adv, ret);
            break;
        }
        }
        show_maps();
    }
    printf("mmfuzz done\n");
    return 0;
}
