/* prctl, getrusage/times, statfs/fstatfs, process groups and sessions, priorities and policies:
   results and errnos for valid and bad input. argv[1]: a directory on a tmpfs. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD ((void *)16)

static long r(long v) { return v < 0 ? -errno : v; }

static void status_field(const char *name, char *out, size_t n)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    out[0] = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, name, strlen(name))) {
            snprintf(out, n, "%s", line + strlen(name) + 1);
            out[strcspn(out, "\n")] = 0;
        }
    if (f)
        fclose(f);
}

static void test_prctl(void)
{
    char name[32] = { 0 }, buf[64];
    printf("SET_NAME: %ld\n", r(prctl(PR_SET_NAME, "a-much-longer-thread-name")));
    long ret = r(prctl(PR_GET_NAME, name));
    printf("GET_NAME: %ld '%s'\n", ret, name);
    FILE *f = fopen("/proc/self/comm", "r");
    if (f && fgets(buf, sizeof buf, f))
        printf("comm: %s", buf);
    if (f)
        fclose(f);
    status_field("Name:", buf, sizeof buf);
    printf("status Name: %s\n", buf);
    printf("SET_NAME bad: %ld\n", r(prctl(PR_SET_NAME, BAD)));
    printf("GET_NAME bad: %ld\n", r(prctl(PR_GET_NAME, BAD)));
    printf("GET_DUMPABLE: %ld\n", r(prctl(PR_GET_DUMPABLE)));
    printf("SET_DUMPABLE 2: %ld\n", r(prctl(PR_SET_DUMPABLE, 2)));
    printf("SET_DUMPABLE 0: %ld\n", r(prctl(PR_SET_DUMPABLE, 0)));
    printf("GET_DUMPABLE: %ld\n", r(prctl(PR_GET_DUMPABLE)));
    prctl(PR_SET_DUMPABLE, 1);
    int sig = -1;
    printf("SET_PDEATHSIG 65: %ld\n", r(prctl(PR_SET_PDEATHSIG, 65)));
    printf("SET_PDEATHSIG 9: %ld\n", r(prctl(PR_SET_PDEATHSIG, 9)));
    ret = r(prctl(PR_GET_PDEATHSIG, &sig));
    printf("GET_PDEATHSIG: %ld %d\n", ret, sig);
    printf("GET_PDEATHSIG bad: %ld\n", r(prctl(PR_GET_PDEATHSIG, BAD)));
    prctl(PR_SET_PDEATHSIG, 0);
    printf("GET_NO_NEW_PRIVS: %ld\n", r(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)));
    printf("GET_NO_NEW_PRIVS extra arg: %ld\n", r(prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0)));
    printf("SET_NO_NEW_PRIVS 2: %ld\n", r(prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0)));
    printf("SET_NO_NEW_PRIVS 1: %ld\n", r(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)));
    printf("GET_NO_NEW_PRIVS: %ld\n", r(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)));
    status_field("NoNewPrivs:", buf, sizeof buf);
    printf("status NoNewPrivs: %s\n", buf);
    printf("GET_THP_DISABLE: %ld\n", r(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0)));
    printf("GET_THP_DISABLE extra arg: %ld\n", r(prctl(PR_GET_THP_DISABLE, 1, 0, 0, 0)));
    printf("SET_THP_DISABLE extra arg: %ld\n", r(prctl(PR_SET_THP_DISABLE, 1, 0, 1, 0)));
    printf("SET_THP_DISABLE 1: %ld\n", r(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)));
    printf("GET_THP_DISABLE: %ld\n", r(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0)));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        long thp = r(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0)), nnp = r(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
        prctl(PR_GET_NAME, name);
        ret = r(prctl(PR_GET_PDEATHSIG, &sig));
        printf("child: THP_DISABLE %ld NO_NEW_PRIVS %ld name '%s' PDEATHSIG %ld %d\n", thp, nnp, name, ret, sig);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
    printf("CAPBSET_READ 0: %ld\n", r(prctl(PR_CAPBSET_READ, 0)));
    printf("CAPBSET_READ 40: %ld\n", r(prctl(PR_CAPBSET_READ, 40)));
    printf("CAPBSET_READ 41: %ld\n", r(prctl(PR_CAPBSET_READ, 41)));
    printf("CAPBSET_READ -1: %ld\n", r(prctl(PR_CAPBSET_READ, -1L)));
    printf("CAPBSET_DROP 64: %ld\n", r(prctl(PR_CAPBSET_DROP, 64)));
    printf("GET_KEEPCAPS: %ld\n", r(prctl(PR_GET_KEEPCAPS)));
    printf("SET_KEEPCAPS 2: %ld\n", r(prctl(PR_SET_KEEPCAPS, 2)));
    ret = r(prctl(PR_SET_KEEPCAPS, 1));
    printf("SET_KEEPCAPS 1: %ld then %ld\n", ret, r(prctl(PR_GET_KEEPCAPS)));
    prctl(PR_SET_KEEPCAPS, 0);
    printf("CAP_AMBIENT IS_SET 0: %ld\n", r(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 0, 0, 0)));
    printf("CAP_AMBIENT RAISE 0: %ld\n", r(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, 0, 0, 0)));
    printf("CAP_AMBIENT IS_SET 99: %ld\n", r(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 99, 0, 0)));
    printf("CAP_AMBIENT CLEAR_ALL: %ld\n", r(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)));
    printf("CAP_AMBIENT 9: %ld\n", r(prctl(PR_CAP_AMBIENT, 9, 0, 0, 0)));
    int *tidaddr = NULL;
    ret = r(prctl(PR_GET_TID_ADDRESS, &tidaddr));
    printf("GET_TID_ADDRESS: %ld, set %d\n", ret, tidaddr != NULL);
    printf("GET_TID_ADDRESS bad: %ld\n", r(prctl(PR_GET_TID_ADDRESS, BAD)));
    unsigned long auxv[128];
    long n = prctl(0x41555856 /* PR_GET_AUXV */, auxv, sizeof auxv, 0, 0);
    int found = 0;
    for (long i = 0; n > 0 && i + 1 < n / 8; i += 2)
        if (auxv[i] == AT_UID || auxv[i] == AT_PAGESZ)
            found += auxv[i + 1] == getauxval(auxv[i]);
    printf("GET_AUXV: %d, AT_UID and AT_PAGESZ as getauxval: %d\n", n > 0 && n % 16 == 0, found);
    printf("GET_AUXV bad: %ld\n", r(prctl(0x41555856, BAD, sizeof auxv, 0, 0)));
    printf("GET_AUXV extra arg: %ld\n", r(prctl(0x41555856, auxv, sizeof auxv, 1, 0)));
    char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("SET_VMA anon name: %ld\n", r(prctl(0x53564d41, 0, (unsigned long)p, 4096, (unsigned long)"x")));
    printf("unknown option: %ld\n", r(prctl(9999, 0, 0, 0, 0)));
}

static struct rusage ru(int who)
{
    struct rusage u;
    memset(&u, 0, sizeof u);
    getrusage(who, &u);
    return u;
}

static double secs(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

static void test_rusage(void)
{
    struct rusage a = ru(RUSAGE_SELF), ta = ru(RUSAGE_THREAD);
    size_t n = 200;
    char *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < n; i++)
        p[i * 4096] = 1;
    /* Linux splits the runtime into user and system time by tick samples (cputime_adjust), so a short
       loop can show no user time at all: spin until a tick has seen user mode (or 2 s) */
    volatile unsigned long x = 0;
    for (int tries = 0; tries < 2000; tries++) {
        for (long i = 0; i < 1000000; i++)
            x += i;
        if (secs(ru(RUSAGE_SELF).ru_utime) > 0)
            break;
    }
    struct rusage b = ru(RUSAGE_SELF), tb = ru(RUSAGE_THREAD);
    printf("self minflt grew by >= %zu: %d\n", n, b.ru_minflt - a.ru_minflt >= (long)n);
    printf("thread minflt grew by >= %zu: %d\n", n, tb.ru_minflt - ta.ru_minflt >= (long)n);
    printf("majflt: %ld\n", b.ru_majflt - a.ru_majflt);
    printf("maxrss >= %zu KiB: %d\n", n * 4, b.ru_maxrss >= (long)n * 4);
    printf("cpu time grew: %d\n", secs(b.ru_utime) + secs(b.ru_stime) > secs(a.ru_utime) + secs(a.ru_stime));
    printf("user time > 0: %d\n", secs(b.ru_utime) > 0);
    struct rusage c0 = ru(RUSAGE_CHILDREN);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *q = mmap(NULL, 2 * n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        for (size_t i = 0; i < 2 * n; i++)
            q[i * 4096] = 1;
        _exit(0);
    }
    struct rusage w;
    int st;
    printf("wait4: %d\n", wait4(pid, &st, 0, &w) == pid);
    struct rusage c1 = ru(RUSAGE_CHILDREN);
    printf("wait4 rusage minflt >= %zu: %d maxrss >= %zu KiB: %d\n", 2 * n, w.ru_minflt >= 2 * (long)n, 2 * n * 4,
           w.ru_maxrss >= 2 * (long)n * 4);
    printf("children minflt grew by >= %zu: %d maxrss >= %zu KiB: %d\n", 2 * n, c1.ru_minflt - c0.ru_minflt >= 2 * (long)n,
           2 * n * 4, c1.ru_maxrss >= 2 * (long)n * 4);
    struct rusage u;
    printf("getrusage 2: %ld\n", r(getrusage(2, &u)));
    printf("getrusage -2: %ld\n", r(getrusage(-2, &u)));
    printf("getrusage bad: %ld\n", r(syscall(SYS_getrusage, RUSAGE_SELF, BAD)));
    struct tms t;
    clock_t now = times(&t);
    printf("times: %d\n", now != (clock_t)-1);
    printf("times bad: %ld\n", r(syscall(SYS_times, BAD)));
}

static void show_statfs(const char *what, long ret, struct statfs *s)
{
    if (ret < 0) {
        printf("%s: %ld\n", what, ret);
        return;
    }
    printf("%s: type %#lx bsize %ld namelen %ld frsize %ld blocks>0 %d bfree<=blocks %d bavail<=bfree %d\n", what,
           (long)s->f_type, (long)s->f_bsize, (long)s->f_namelen, (long)s->f_frsize, s->f_blocks > 0,
           s->f_bfree <= s->f_blocks, s->f_bavail <= s->f_bfree);
}

static void test_statfs(const char *tmpdir)
{
    struct statfs s;
    long ret = r(statfs("/", &s));
    show_statfs("/", ret, &s);
    ret = r(statfs("/proc", &s));
    printf("/proc: type %#lx\n", (long)s.f_type);
    ret = r(statfs(tmpdir, &s));
    printf("tmpfs: %ld type %#lx bsize %ld namelen %ld\n", ret, (long)s.f_type, (long)s.f_bsize, (long)s.f_namelen);
    printf("statfs missing: %ld\n", r(statfs("/no/such/file", &s)));
    printf("statfs bad path: %ld\n", r(statfs(BAD, &s)));
    printf("statfs bad buf: %ld\n", r(statfs("/", BAD)));
    printf("statfs empty path: %ld\n", r(statfs("", &s)));
    printf("fstatfs -1: %ld\n", r(fstatfs(-1, &s)));
    int fds[2];
    pipe(fds);
    ret = r(fstatfs(fds[0], &s));
    printf("pipe: %ld type %#lx\n", ret, (long)s.f_type);
    int fd = memfd_create("m", 0);
    ret = r(fstatfs(fd, &s));
    printf("memfd: %ld type %#lx bsize %ld\n", ret, (long)s.f_type, (long)s.f_bsize);
    printf("fstatfs bad buf: %ld\n", r(fstatfs(fd, BAD)));
    fd = memfd_create("h", MFD_HUGETLB);
    ret = r(fstatfs(fd, &s));
    printf("hugetlb memfd: %ld type %#lx bsize %ld frsize %ld\n", ret, (long)s.f_type, (long)s.f_bsize,
           (long)s.f_frsize);
}

static void test_pgrp(void)
{
    char buf[64];
    pid_t me = getpid();
    printf("getpgrp == getpgid(0): %d\n", getpgrp() == getpgid(0));
    printf("setsid: %d\n", setsid() == me);
    printf("sid %d pgrp %d\n", getsid(0) == me, getpgrp() == me);
    status_field("NSpgid:", buf, sizeof buf);
    printf("status NSpgid is pgrp: %d\n", atoi(buf) == getpgrp());
    status_field("NSsid:", buf, sizeof buf);
    printf("status NSsid is sid: %d\n", atoi(buf) == getsid(0));
    printf("setsid again: %ld\n", r(setsid()));
    printf("setpgid(0,0) as session leader: %ld\n", r(setpgid(0, 0)));
    printf("setpgid(0,-1): %ld\n", r(setpgid(0, -1)));
    printf("setpgid(999999,0): %ld\n", r(setpgid(999999, 0)));
    printf("getpgid(999999): %ld\n", r(getpgid(999999)));
    printf("getsid(999999): %ld\n", r(getsid(999999)));
    int go[2], done[2];
    pipe(go);
    pipe(done);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char ch;
        printf("child: pgrp is parent's %d sid is parent's %d\n", getpgrp() == me, getsid(0) == me);
        long ret = r(setpgid(0, 0));
        printf("child: setpgid(0,0): %ld pgrp is own pid %d\n", ret, getpgrp() == getpid());
        printf("child: setpgid(0, parent): %ld\n", r(setpgid(0, me)));
        printf("child: setpgid(0, 999999): %ld\n", r(setpgid(0, 999999)));
        printf("child: setpgid(parent, 0): %ld\n", r(setpgid(me, 0)));
        fflush(stdout);
        write(done[1], "x", 1);
        read(go[0], &ch, 1);
        printf("child: after parent's setpgid, pgrp is %s\n", getpgrp() == getpid() ? "own" : "parent's");
        printf("child: setsid: %d\n", setsid() == getpid());
        fflush(stdout);
        write(done[1], "x", 1);
        read(go[0], &ch, 1);
        _exit(3);
    }
    char ch;
    read(done[0], &ch, 1);
    printf("getpgid(child) is child: %d\n", getpgid(c) == c);
    printf("setpgid(child, own group): %ld\n", r(setpgid(c, me)));
    write(go[1], "x", 1);
    read(done[0], &ch, 1);
    printf("setpgid(child in another session): %ld\n", r(setpgid(c, c)));
    printf("getsid(child) is child: %d\n", getsid(c) == c);
    printf("waitpid(0) for a child in my group: %ld\n", r(waitpid(0, NULL, WNOHANG)));
    printf("waitpid(-child) (its group): %d\n", waitpid(-c, NULL, WNOHANG) == 0);
    write(go[1], "x", 1);
    int st = 0;
    printf("waitpid(-child) reaps it: %d status %d\n", waitpid(-c, &st, 0) == c, WEXITSTATUS(st));
}

static void test_priority(void)
{
    errno = 0;
    int p = getpriority(PRIO_PROCESS, 0);
    printf("getpriority: %d errno %d\n", p, errno);
    printf("setpriority 5: %ld\n", r(setpriority(PRIO_PROCESS, 0, 5)));
    printf("nice now: %d\n", getpriority(PRIO_PROCESS, getpid()));
    long ret = r(setpriority(PRIO_PROCESS, 0, -5));
    printf("setpriority -5 (root): %ld nice %d\n", ret, getpriority(PRIO_PROCESS, 0));
    ret = r(setpriority(PRIO_PROCESS, 0, 100));
    printf("setpriority 100 clamps: %ld nice %d\n", ret, getpriority(PRIO_PROCESS, 0));
    printf("raw getpriority: %ld\n", r(syscall(SYS_getpriority, PRIO_PROCESS, 0)));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        printf("child inherits nice: %d\n", getpriority(PRIO_PROCESS, 0));
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    setpriority(PRIO_PROCESS, 0, 0);
    printf("PRIO_PGRP: %d\n", getpriority(PRIO_PGRP, 0));
    printf("getpriority which 3: %ld\n", r(syscall(SYS_getpriority, 3, 0)));
    printf("setpriority which -1: %ld\n", r(setpriority(-1, 0, 0)));
    printf("getpriority no such pid: %ld\n", r(syscall(SYS_getpriority, PRIO_PROCESS, 999999)));
    printf("setpriority no such pid: %ld\n", r(setpriority(PRIO_PROCESS, 999999, 0)));
    printf("sched_getscheduler: %ld\n", r(sched_getscheduler(0)));
    printf("sched_getscheduler -1: %ld\n", r(sched_getscheduler(-1)));
    printf("sched_getscheduler no such pid: %ld\n", r(sched_getscheduler(999999)));
    printf("max FIFO %d RR %d OTHER %d BATCH %d IDLE %d\n", sched_get_priority_max(SCHED_FIFO),
           sched_get_priority_max(SCHED_RR), sched_get_priority_max(SCHED_OTHER), sched_get_priority_max(SCHED_BATCH),
           sched_get_priority_max(SCHED_IDLE));
    printf("min FIFO %d RR %d OTHER %d\n", sched_get_priority_min(SCHED_FIFO), sched_get_priority_min(SCHED_RR),
           sched_get_priority_min(SCHED_OTHER));
    printf("max policy 42: %ld min policy -1: %ld\n", r(sched_get_priority_max(42)), r(sched_get_priority_min(-1)));
    struct sched_param sp = { 0 };
    ret = r(sched_setscheduler(0, SCHED_BATCH, &sp));
    printf("setscheduler BATCH: %ld now %d\n", ret, sched_getscheduler(0));
    sp.sched_priority = 5;
    printf("setscheduler BATCH prio 5: %ld\n", r(sched_setscheduler(0, SCHED_BATCH, &sp)));
    sp.sched_priority = 0;
    printf("setscheduler FIFO prio 0: %ld\n", r(sched_setscheduler(0, SCHED_FIFO, &sp)));
    sp.sched_priority = 100;
    printf("setscheduler RR prio 100: %ld\n", r(sched_setscheduler(0, SCHED_RR, &sp)));
    printf("setscheduler policy 42: %ld\n", r(syscall(SYS_sched_setscheduler, 0, 42, &sp)));
    printf("setscheduler NULL param: %ld\n", r(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL)));
    printf("setscheduler bad param: %ld\n", r(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, BAD)));
    sp.sched_priority = 0;
    ret = r(sched_setscheduler(0, SCHED_OTHER, &sp));
    printf("setscheduler OTHER: %ld now %d\n", ret, sched_getscheduler(0));
    sp.sched_priority = 7;
    ret = r(sched_getparam(0, &sp));
    printf("getparam: %ld prio %d\n", ret, sp.sched_priority);
    printf("getparam bad: %ld\n", r(syscall(SYS_sched_getparam, 0, BAD)));
    printf("getparam NULL: %ld\n", r(syscall(SYS_sched_getparam, 0, NULL)));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_prctl();
    test_rusage();
    test_statfs(argc > 1 ? argv[1] : "/tmp");
    test_priority();
    test_pgrp();
    return 0;
}
