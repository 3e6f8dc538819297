/* System V shared memory: shmget/shmat/shmdt/shmctl, their errors, the kernel.shm* sysctls,
 * /proc/sysvipc/shm, fork, the destroy-on-last-detach rule and SHM_HUGETLB.
 * Prints only what does not depend on pids, times or where the kernel places mappings, so the output
 * can be compared with a native run in a fresh IPC namespace (unshare -i).
 * Usage: shmtest [huge]   ("huge" also runs the SHM_HUGETLB part; it needs 4 free 2 MiB pages) */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meminfo.h"

#ifndef SHM_HUGE_SHIFT
#define SHM_HUGE_SHIFT 26
#endif
#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#define PG 4096L
#define HUGE (2L << 20)

static sigjmp_buf jb;
static void on_segv(int sig) { (void)sig; siglongjmp(jb, 1); }

static const char *err(long r) {
    static char buf[64];
    if (r >= 0) { snprintf(buf, sizeof buf, "%ld", r); return buf; }
    return strerror(errno);
}

#define SHOW(label, expr) do { errno = 0; long _r = (long)(expr); \
    printf("%-44s %s\n", label, _r < 0 ? strerror(errno) : "ok"); } while (0)

static long sysctl_get(const char *name) {
    char path[128], buf[64] = "";
    snprintf(path, sizeof path, "/proc/sys/kernel/%s", name);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
    return (long)strtoul(buf, NULL, 10);
}

static int sysctl_set(const char *name, const char *value) {
    char path[128];
    snprintf(path, sizeof path, "/proc/sys/kernel/%s", name);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(value, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void stat_seg(const char *label, int id) {
    struct shmid_ds ds;
    memset(&ds, 0xa5, sizeof ds);
    if (shmctl(id, IPC_STAT, &ds) < 0) {
        printf("%s: IPC_STAT %s\n", label, strerror(errno));
        return;
    }
    printf("%s: key=%#x mode=%#o segsz=%zu nattch=%lu uid=%u gid=%u cuid=%u cgid=%u seq=%u cpid=%s lpid=%s "
           "atime=%s dtime=%s ctime=%s\n", label, ds.shm_perm.__key, ds.shm_perm.mode, ds.shm_segsz,
           (unsigned long)ds.shm_nattch, ds.shm_perm.uid, ds.shm_perm.gid, ds.shm_perm.cuid, ds.shm_perm.cgid,
           ds.shm_perm.__seq, ds.shm_cpid == getpid() ? "self" : ds.shm_cpid ? "other" : "0",
           ds.shm_lpid == getpid() ? "self" : ds.shm_lpid ? "other" : "0",
           ds.shm_atime ? "set" : "0", ds.shm_dtime ? "set" : "0", ds.shm_ctime ? "set" : "0");
}

static int mapped(void *p) {
    unsigned char v;
    return mincore(p, PG, &v) == 0;
}

static void sysvipc(const char *label) {
    FILE *f = fopen("/proc/sysvipc/shm", "r");
    char line[512];
    printf("%s /proc/sysvipc/shm:\n", label);
    if (!f) { printf("  open: %s\n", strerror(errno)); return; }
    if (fgets(line, sizeof line, f)) printf("  header: %s", line);
    while (fgets(line, sizeof line, f)) {
        long key, id, cpid, lpid, nattch, uid, gid, cuid, cgid, at, dt, ct; unsigned perms;
        unsigned long size, rss, swp;
        if (sscanf(line, "%ld %ld %o %lu %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %lu %lu", &key, &id, &perms, &size,
                   &cpid, &lpid, &nattch, &uid, &gid, &cuid, &cgid, &at, &dt, &ct, &rss, &swp) != 16) {
            printf("  bad line: %s", line);
            continue;
        }
        /* the columns are fixed-width: check the widths of the first ones too */
        printf("  key=%ld shmid=%ld perms=%o size=%lu nattch=%ld uid=%ld gid=%ld rss=%lu swap=%lu width=%d\n",
               key, id, perms, size, nattch, uid, gid, rss, swp, (int)(strchr(line, '\n') - line));
    }
    fclose(f);
}

static void info(const char *label) {
    struct shm_info si;
    struct shminfo sh;
    int r1 = shmctl(0, SHM_INFO, (struct shmid_ds *)&si);
    int r2 = shmctl(0, IPC_INFO, (struct shmid_ds *)&sh);
    printf("%s: SHM_INFO=%d used_ids=%d shm_tot=%lu shm_rss=%lu shm_swp=%lu; IPC_INFO=%d shmmax=%lu shmmin=%lu "
           "shmmni=%lu shmseg=%lu shmall=%lu\n", label, r1, si.used_ids, si.shm_tot, si.shm_rss, si.shm_swp, r2,
           sh.shmmax, sh.shmmin, sh.shmmni, sh.shmseg, sh.shmall);
}

static void basics(void) {
    printf("sysctls: shmmax=%ld shmall=%ld shmmni=%ld shm_rmid_forced=%ld\n", sysctl_get("shmmax"),
           sysctl_get("shmall"), sysctl_get("shmmni"), sysctl_get("shm_rmid_forced"));
    info("empty");
    errno = 0;
    printf("shmget(IPC_PRIVATE, 0): %s\n", err(shmget(IPC_PRIVATE, 0, 0600)));
    printf("shmget(key absent): %s\n", err(shmget(0x5157, 4096, 0600)));
    int a = shmget(0x5157, 10000, IPC_CREAT | 0640);
    printf("shmget(key, IPC_CREAT): %s\n", err(a));
    printf("shmget(key, IPC_CREAT|IPC_EXCL): %s\n", err(shmget(0x5157, 10000, IPC_CREAT | IPC_EXCL | 0640)));
    printf("shmget(key, larger): %s\n", err(shmget(0x5157, 20000, 0640)));
    printf("shmget(key, smaller, no flags): %s\n", err(shmget(0x5157, 100, 0)));
    printf("shmget(key, size 0): %s\n", err(shmget(0x5157, 0, 0)));
    stat_seg("new", a);
    int b = shmget(IPC_PRIVATE, 3 * PG, IPC_CREAT | 0600);
    printf("shmget(IPC_PRIVATE, 3 pages): %s\n", err(b));
    printf("shmget(1 TiB): %s\n", err(shmget(IPC_PRIVATE, 1UL << 40, 0600)));
    int nr = shmget(IPC_PRIVATE, 1UL << 40, SHM_NORESERVE | 0600);
    printf("shmget(1 TiB, SHM_NORESERVE): %s\n", err(nr));
    info("with 1 TiB");
    printf("IPC_RMID 1 TiB: %s\n", err(shmctl(nr, IPC_RMID, NULL)));
    printf("shmget(SHM_HUGETLB, bad size log): %s\n",
           err(shmget(IPC_PRIVATE, HUGE, SHM_HUGETLB | (25 << SHM_HUGE_SHIFT) | 0600)));

    /* the limits, through the sysctls */
    sysctl_set("shmmax", "8192");
    printf("shmmax=8192: read back %ld, shmget(12288): %s\n", sysctl_get("shmmax"),
           err(shmget(IPC_PRIVATE, 12288, 0600)));
    sysctl_set("shmmax", "18446744073692774399");
    char buf[64];
    struct shm_info si;
    shmctl(0, SHM_INFO, (struct shmid_ds *)&si);
    snprintf(buf, sizeof buf, "%lu", si.shm_tot + 2);
    sysctl_set("shmall", buf);
    printf("shmall=tot+2: shmget(3 pages): %s, shmget(2 pages): ", err(shmget(IPC_PRIVATE, 3 * PG, 0600)));
    int c = shmget(IPC_PRIVATE, 2 * PG, 0600);
    printf("%s\n", err(c));
    shmctl(c, IPC_RMID, NULL);
    sysctl_set("shmall", "18446744073692774399");
    sysctl_set("shmmni", "2");
    printf("shmmni=2: shmget: %s\n", err(shmget(IPC_PRIVATE, PG, 0600)));
    sysctl_set("shmmni", "4096");
    printf("shmmni=-1: %s, shm_rmid_forced=2: %s, shmmax=abc: %s\n", sysctl_set("shmmni", "-1") ? strerror(errno) : "ok",
           sysctl_set("shm_rmid_forced", "2") ? strerror(errno) : "ok",
           sysctl_set("shmmax", "abc") ? strerror(errno) : "ok");

    /* shmat */
    char *p = shmat(b, NULL, 0);
    printf("shmat: %s aligned=%d\n", p == (void *)-1 ? strerror(errno) : "ok", ((uintptr_t)p & (PG - 1)) == 0);
    memset(p, 'x', 3 * PG);
    char *q = shmat(b, NULL, 0);
    printf("second shmat sees the data: %d, distinct=%d\n", q != (void *)-1 && q[2 * PG + 7] == 'x', p != q);
    stat_seg("attached twice", b);
    char *r = shmat(b, NULL, SHM_RDONLY);
    signal(SIGSEGV, on_segv);
    int faulted = 0;
    if (sigsetjmp(jb, 1) == 0) r[10] = 'y';
    else faulted = 1;
    signal(SIGSEGV, SIG_DFL);
    printf("SHM_RDONLY: reads %c, write faults %d\n", r[10], faulted);
    printf("shmdt(rdonly): %s\n", err(shmdt(r)));
    printf("shmdt(rdonly again): %s\n", err(shmdt(r)));
    printf("shmdt(unaligned): %s\n", err(shmdt(p + 1)));
    printf("shmdt(inside): %s\n", err(shmdt(p + PG)));
    printf("shmdt(NULL): %s\n", err(shmdt(NULL)));
    errno = 0;
    printf("shmat(bad id): %s\n", shmat(12345, NULL, 0) == (void *)-1 ? strerror(errno) : "ok");
    printf("shmat(-1): %s\n", shmat(-1, NULL, 0) == (void *)-1 ? strerror(errno) : "ok");
    printf("shmat(SHM_REMAP, NULL): %s\n", shmat(b, NULL, SHM_REMAP) == (void *)-1 ? strerror(errno) : "ok");
    printf("shmat(unaligned): %s\n", shmat(b, p + 100, 0) == (void *)-1 ? strerror(errno) : "ok");
    printf("shmat(1, SHM_RND|SHM_REMAP): %s\n",
           shmat(b, (void *)1, SHM_RND | SHM_REMAP) == (void *)-1 ? strerror(errno) : "ok");
    printf("shmat(over a mapping): %s\n", shmat(b, q, 0) == (void *)-1 ? strerror(errno) : "ok");
    /* a free range: map and unmap it */
    char *hole = mmap(NULL, 8 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole, 8 * PG);
    char *s = shmat(b, hole + 100, SHM_RND);
    printf("shmat(SHM_RND): %s at rounded address %d\n", s == (void *)-1 ? strerror(errno) : "ok", s == hole);
    char *t = shmat(b, s, SHM_REMAP);
    printf("shmat(SHM_REMAP over itself): %s same=%d data=%c\n", t == (void *)-1 ? strerror(errno) : "ok", t == s,
           t != (void *)-1 ? t[5] : '-');
    stat_seg("four attaches", b);
    shmdt(t);
    /* fragments: munmap the middle page, shmdt unmaps the rest */
    printf("munmap middle: %d\n", munmap(q + PG, PG));
    stat_seg("fragments", b);
    printf("shmdt(fragmented): %s;", err(shmdt(q)));
    printf(" mapped after: %d %d\n", mapped(q), mapped(q + 2 * PG));
    stat_seg("one attach", b);

    /* fork: the child has the attachment */
    pid_t pid = fork();
    if (pid == 0) {
        struct shmid_ds ds;
        shmctl(b, IPC_STAT, &ds);
        printf("child: sees %c, nattch=%lu\n", p[PG], (unsigned long)ds.shm_nattch);
        p[PG] = 'c';
        shmdt(p);
        shmctl(b, IPC_STAT, &ds);
        printf("child: after shmdt nattch=%lu\n", (unsigned long)ds.shm_nattch);
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("parent: child wrote %c\n", p[PG]);
    stat_seg("after child", b);

    /* SHM_LOCK, IPC_SET */
    printf("SHM_LOCK: %s\n", err(shmctl(b, SHM_LOCK, NULL)));
    stat_seg("locked", b);
    printf("SHM_UNLOCK: %s\n", err(shmctl(b, SHM_UNLOCK, NULL)));
    struct shmid_ds ds;
    shmctl(b, IPC_STAT, &ds);
    ds.shm_perm.mode = 0404;
    ds.shm_segsz = 1;
    printf("IPC_SET mode 0404: %s\n", err(shmctl(b, IPC_SET, &ds)));
    stat_seg("set", b);
    ds.shm_perm.uid = (uid_t)-1;
    printf("IPC_SET uid -1: %s\n", err(shmctl(b, IPC_SET, &ds)));
    printf("IPC_SET NULL: %s\n", err(shmctl(b, IPC_SET, NULL)));
    printf("IPC_STAT NULL: %s\n", err(shmctl(b, IPC_STAT, NULL)));
    printf("IPC_STAT (void *)8: %s\n", err(shmctl(b, IPC_STAT, (struct shmid_ds *)8)));
    printf("IPC_INFO NULL: %s\n", err(shmctl(0, IPC_INFO, NULL)));
    printf("shmctl(cmd 99): %s\n", err(shmctl(b, 99, &ds)));
    printf("shmctl(-1, IPC_STAT): %s\n", err(shmctl(-1, IPC_STAT, &ds)));
    printf("shmctl(bad id, IPC_RMID): %s\n", err(shmctl(b + 32768, IPC_RMID, NULL)));
    printf("SHM_STAT index 0: %s\n", err(shmctl(0, SHM_STAT, &ds)));
    printf("SHM_STAT index 1: %s\n", err(shmctl(1, SHM_STAT, &ds)));
    printf("SHM_STAT_ANY index 1: %s\n", err(shmctl(1, SHM_STAT_ANY, &ds)));
    printf("SHM_STAT index 77: %s\n", err(shmctl(77, SHM_STAT, &ds)));
    info("two segments");
    sysvipc("two segments");

    /* IPC_RMID while attached: SHM_DEST, key private, still attachable; gone at the last detach */
    printf("IPC_RMID key segment: %s\n", err(shmctl(a, IPC_RMID, NULL)));
    printf("IPC_STAT removed: %s\n", err(shmctl(a, IPC_STAT, &ds)));
    printf("IPC_RMID attached: %s\n", err(shmctl(b, IPC_RMID, NULL)));
    stat_seg("removed", b);
    char *u = shmat(b, NULL, 0);
    printf("shmat after IPC_RMID: %s sees %c\n", u == (void *)-1 ? strerror(errno) : "ok", u[0]);
    shmdt(u);
    stat_seg("still there", b);
    shmdt(p);
    stat_seg("after last shmdt", b);
    info("none left");

    /* new ids continue cyclically */
    int d = shmget(IPC_PRIVATE, PG, 0600);
    printf("next id: %d\n", d);

    /* shm_rmid_forced: the last detach destroys even without IPC_RMID */
    printf("shm_rmid_forced=1: %s\n", sysctl_set("shm_rmid_forced", "1") ? strerror(errno) : "ok");
    char *v = shmat(d, NULL, 0);
    v[0] = 1;
    stat_seg("forced, attached", d);
    shmdt(v);
    stat_seg("forced, detached", d);
    sysctl_set("shm_rmid_forced", "0");
}

static void huge(void) {
    long rsvd0 = meminfo("HugePages_Rsvd"), free0 = meminfo("HugePages_Free");
    int h = shmget(IPC_PRIVATE, 3L << 20, SHM_HUGETLB | 0600);
    printf("huge: shmget(3 MiB, SHM_HUGETLB): %s, reserved %ld\n", h < 0 ? strerror(errno) : "ok",
           meminfo("HugePages_Rsvd") - rsvd0);
    stat_seg("huge", h);
    printf("huge: shmget(16 MiB, SHM_HUGETLB): %s\n", err(shmget(IPC_PRIVATE, 16L << 20, SHM_HUGETLB | 0600)));
    int nr = shmget(IPC_PRIVATE, 16L << 20, SHM_HUGETLB | SHM_NORESERVE | 0600);
    printf("huge: shmget(16 MiB, SHM_HUGETLB|SHM_NORESERVE): %s\n", err(nr));
    errno = 0;
    printf("huge: shmat(NORESERVE one): %s\n", shmat(nr, NULL, 0) == (void *)-1 ? strerror(errno) : "ok");
    shmctl(nr, IPC_RMID, NULL);
    char *p = shmat(h, NULL, 0);
    printf("huge: shmat: %s 2M-aligned=%d\n", p == (void *)-1 ? strerror(errno) : "ok",
           ((uintptr_t)p & (HUGE - 1)) == 0);
    printf("huge: shmat(unaligned fixed): %s\n", shmat(h, p + PG, SHM_REMAP) == (void *)-1 ? strerror(errno) : "ok");
    p[0] = 'h';
    p[HUGE + 5] = 'i';
    printf("huge: in use after touching %ld, reserved %ld\n", free0 - meminfo("HugePages_Free"),
           meminfo("HugePages_Rsvd") - rsvd0);
    info("huge");
    printf("huge: SHM_LOCK: %s\n", err(shmctl(h, SHM_LOCK, NULL)));
    stat_seg("huge locked", h);
    printf("huge: munmap inside a huge page: %s\n", err(munmap(p + PG, PG)));
    pid_t pid = fork();
    if (pid == 0) {
        printf("huge child: %c %c\n", p[0], p[HUGE + 5]);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    shmctl(h, IPC_RMID, NULL);
    stat_seg("huge removed", h);
    shmdt(p);
    printf("huge: after last detach in use=%ld reserved=%ld, IPC_STAT: %s\n", free0 - meminfo("HugePages_Free"),
           meminfo("HugePages_Rsvd") - rsvd0, err(shmctl(h, IPC_STAT, &(struct shmid_ds){0})));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    basics();
    if (argc > 1 && !strcmp(argv[1], "huge")) huge();
    return 0;
}
