/* Commit accounting as /proc/meminfo shows it: how much Committed_AS moves (in units of SIZE MiB,
 * rounded, so that the rest of a busy host does not show; steps that take long enough for the
 * host to move it by more than that are marked ~) for private, MAP_NORESERVE, read-only,
 * shared anonymous and System V memory, mprotect, mremap growth, fork, tmpfs and memfd files; and
 * whether CommitLimit follows mm/util.c vm_commit_limit.
 * Usage: commitacct DIR SIZE_MIB  (DIR on a tmpfs: /dev/shm natively, /tmp in the guest)
 *        commitacct strict SIZE_MIB  (guest only: overcommit_memory 2, fork and shared memory refused) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meminfo.h"

static long size;

static long sysctl_vm(const char *name)
{
    char path[128], buf[64] = "";
    snprintf(path, sizeof path, "/proc/sys/vm/%s", name);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    if (read(fd, buf, sizeof buf - 1) < 0)
        buf[0] = 0;
    close(fd);
    return atol(buf);
}

static int set_sysctl_vm(const char *name, const char *value)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/sys/vm/%s", name);
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    int r = write(fd, value, strlen(value));
    close(fd);
    return r < 0 ? -1 : 0;
}

static long last;

/* read Committed_AS right before a step */
static void mark(void)
{
    last = meminfo("Committed_AS");
}

/* how far Committed_AS moved since mark(), in units of size, rounded to the nearest */
static long step(void)
{
    long kb = meminfo("Committed_AS") - last;
    long unit = size >> 10;
    return (kb + (kb >= 0 ? unit / 2 : -unit / 2)) / unit;
}

static void *map(int prot, int flags)
{
    void *p = mmap(NULL, size, prot, flags | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        printf("mmap: %s\n", strerror(errno));
    return p;
}

static void fill(int fd)
{
    static char buf[1 << 20];
    memset(buf, 0x5a, sizeof buf);
    for (long done = 0; done < size; done += sizeof buf)
        if (write(fd, buf, sizeof buf) != sizeof buf) {
            printf("write: %s\n", strerror(errno));
            return;
        }
}

static void commit_limit_rule(void)
{
    long total = meminfo("MemTotal"), swap = meminfo("SwapTotal"), limit = meminfo("CommitLimit");
    long huge = meminfo("HugePages_Total") * meminfo("Hugepagesize");
    long kbytes = sysctl_vm("overcommit_kbytes"), ratio = sysctl_vm("overcommit_ratio");
    long pages = kbytes ? kbytes / 4 : (total / 4 - huge / 4) * ratio / 100;
    printf("CommitLimit = %s + SwapTotal: %s\n", kbytes ? "overcommit_kbytes" : "(MemTotal - hugetlb) * ratio%",
           limit == pages * 4 + swap ? "yes" : "no");
}

/* a shared anonymous mapping: charged when mapped, touching every page and unmapping it */
static void shared_anonymous(const char *label, int flags)
{
    mark();
    char *p = map(PROT_READ | PROT_WRITE, MAP_SHARED | flags);
    printf("%s: %+ld\n", label, step());
    mark();
    memset(p, 1, size);
    printf("  ~every page touched: %+ld\n", step());
    mark();
    munmap(p, size);
    printf("  ~unmapped: %+ld\n", step());
}

static void accounting(const char *dir)
{
    char *p, *q;
    int status;

    commit_limit_rule();
    mark();
    p = map(PROT_READ | PROT_WRITE, MAP_PRIVATE);
    printf("private writable: %+ld\n", step());
    mark();
    memset(p, 1, 4096);
    printf("  touched: %+ld\n", step());
    mark();
    q = mremap(p, size, 2 * size, MREMAP_MAYMOVE);
    printf("  mremap to twice the size: %+ld\n", q == MAP_FAILED ? -9 : step());
    mark();
    munmap(q, 2 * size);
    printf("  unmapped: %+ld\n", step());
    mark();
    p = map(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE);
    printf("private MAP_NORESERVE: %+ld\n", step());
    munmap(p, size);
    mark();
    p = map(PROT_READ, MAP_PRIVATE);
    printf("private read-only: %+ld\n", step());
    mark();
    mprotect(p, size, PROT_READ | PROT_WRITE);
    printf("  mprotect writable: %+ld\n", step());
    munmap(p, size);
    shared_anonymous("shared anonymous", 0);
    shared_anonymous("shared anonymous MAP_NORESERVE", MAP_NORESERVE);

    p = map(PROT_READ | PROT_WRITE, MAP_PRIVATE);
    fflush(stdout);
    mark();
    pid_t pid = fork();
    if (pid == 0) {
        printf("fork, in the child: %+ld\n", step());
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    printf("  after the child exited: %+ld\n", step());
    munmap(p, size);

    char path[256];
    snprintf(path, sizeof path, "%s/commitacct.%d", dir, (int)getpid());
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    mark();
    ftruncate(fd, size);
    printf("tmpfs file, size set: %+ld\n", step());
    mark();
    fill(fd);
    printf("  ~written: %+ld\n", step());
    mark();
    ftruncate(fd, 0);
    printf("  ~truncated: %+ld\n", step());
    close(fd);
    unlink(path);

    fd = memfd_create("commitacct", 0);
    mark();
    ftruncate(fd, size);
    printf("memfd, size set: %+ld\n", step());
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    mark();
    memset(p, 1, size);
    printf("  ~mapped and touched: %+ld\n", step());
    mark();
    munmap(p, size);
    close(fd);
    printf("  ~unmapped and closed: %+ld\n", step());

    mark();
    int id = shmget(IPC_PRIVATE, size, IPC_CREAT | 0600);
    printf("System V segment: %+ld\n", step());
    mark();
    shmctl(id, IPC_RMID, NULL);
    printf("  removed: %+ld\n", step());
    mark();
    id = shmget(IPC_PRIVATE, size, IPC_CREAT | SHM_NORESERVE | 0600);
    printf("System V segment SHM_NORESERVE: %+ld\n", step());
    shmctl(id, IPC_RMID, NULL);
}

/* overcommit_memory 2: everything committed must stay below CommitLimit */
static void strict(void)
{
    int status;
    long limit = meminfo("CommitLimit") << 10;

    if (set_sysctl_vm("overcommit_memory", "2")) {
        printf("overcommit_memory: %s\n", strerror(errno));
        return;
    }
    /* a private mapping of more than half of what is left: the child's copy cannot be committed */
    long big = ((limit - (meminfo("Committed_AS") << 10)) / 2 + size) & ~4095L;
    void *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("more than half of the room: %s\n", p == MAP_FAILED ? strerror(errno) : "ok");
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    printf("fork: %s\n", pid < 0 ? strerror(errno) : "ok");
    if (pid > 0)
        waitpid(pid, &status, 0);
    void *s = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    printf("shared anonymous as large: %s\n", s == MAP_FAILED ? strerror(errno) : "ok");
    s = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("  with MAP_NORESERVE (ignored): %s\n", s == MAP_FAILED ? strerror(errno) : "ok");
    int id = shmget(IPC_PRIVATE, big, IPC_CREAT | 0600);
    printf("System V segment as large: %s\n", id < 0 ? strerror(errno) : "ok");
    munmap(p, big);
    pid = fork();
    if (pid == 0)
        _exit(0);
    printf("fork after munmap: %s\n", pid < 0 ? strerror(errno) : "ok");
    if (pid > 0)
        waitpid(pid, &status, 0);
    s = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    printf("shared anonymous after munmap: %s\n", s == MAP_FAILED ? strerror(errno) : "ok");
    set_sysctl_vm("overcommit_memory", "0");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DIR|strict SIZE_MIB\n", argv[0]);
        return 2;
    }
    size = atol(argv[2]) << 20;
    if (!strcmp(argv[1], "strict"))
        strict();
    else
        accounting(argv[1]);
    return 0;
}
