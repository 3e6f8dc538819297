/* The credentials the program starts with (faultlab run --user, natively under sudo -u / setpriv):
 * real/effective/saved/filesystem ids, groups, capability sets (capget and /proc/self/status, the
 * bounding set left out: container hosts differ), the auxv ids, and what they allow: mlock within
 * and beyond RLIMIT_MEMLOCK, mlockall(MCL_ONFAULT | MCL_FUTURE) then a populated mapping larger
 * than the limit (the mm selftest on-fault-limit), writing a root-only sysctl, a root-owned file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct cap_hdr { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };

static const char *err(int ok) { return ok ? "ok" : strerror(errno); }

int main(void)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("uid %u %u %u fsuid %d\n", r, e, s, setfsuid(-1));
    printf("gid %u %u %u fsgid %d\n", gr, ge, gs, setfsgid(-1));
    gid_t groups[64];
    int n = getgroups(64, groups);
    printf("groups %d:", n);
    for (int i = 0; i < n; i++)
        printf(" %u", groups[i]);
    printf("\n");
    printf("auxv uid %lu euid %lu gid %lu egid %lu secure %lu\n", getauxval(AT_UID), getauxval(AT_EUID),
           getauxval(AT_GID), getauxval(AT_EGID), getauxval(AT_SECURE));

    struct cap_hdr h = { 0x20080522, 0 };      /* _LINUX_CAPABILITY_VERSION_3 */
    struct cap_data d[2];
    long rc = syscall(SYS_capget, &h, d);
    printf("capget %ld: eff %08x%08x prm %08x%08x inh %08x%08x\n", rc, d[1].effective, d[0].effective,
           d[1].permitted, d[0].permitted, d[1].inheritable, d[0].inheritable);

    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) || !strncmp(line, "Groups:", 7) ||
            !strncmp(line, "CapInh:", 7) || !strncmp(line, "CapPrm:", 7) || !strncmp(line, "CapEff:", 7) ||
            !strncmp(line, "CapAmb:", 7))
            printf("status %s", line);
    if (f)
        fclose(f);

    struct rlimit lim;
    getrlimit(RLIMIT_MEMLOCK, &lim);
    size_t small = 4096, big = lim.rlim_cur == RLIM_INFINITY ? (size_t)1 << 30 : lim.rlim_cur * 2;
    char *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mlock one page: %s\n", err(mlock(p, small) == 0));
    munlock(p, small);
    printf("mlock twice the limit: %s\n", err(mlock(p, big) == 0));
    munlock(p, big);
    munmap(p, big);
    printf("mlockall onfault|future: %s\n", err(mlockall(MCL_ONFAULT | MCL_FUTURE) == 0));
    p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    printf("populated map of twice the limit: %s\n", p == MAP_FAILED ? strerror(errno) : "mapped");
    if (p != MAP_FAILED)
        munmap(p, big);
    munlockall();

    int fd = open("/proc/sys/vm/swappiness", O_WRONLY);
    printf("open swappiness for writing: %s\n", err(fd >= 0));
    if (fd >= 0)
        close(fd);
    return 0;
}
