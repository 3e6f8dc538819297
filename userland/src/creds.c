/* Credentials: uid/gid calls, groups, capabilities, the auxv ids and /proc/self/status, as root and
   after dropping to nobody (mlock limits, priorities), per thread. Prints what Linux gives. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/fsuid.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_child.h"

#define BAD ((void *)16)
/* container hosts often run without CAP_SYS_RESOURCE: leave it out of printed sets */
#define CAP_SYS_RESOURCE 24
#define SHOWN(v) ((v) & ~(1ULL << CAP_SYS_RESOURCE))

struct cap_hdr { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };

static long r(long v) { return v < 0 ? -errno : v; }

static void ids(const char *who)
{
    uid_t ru, eu, su; gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    printf("%s: uid %d %d %d gid %d %d %d fsuid %ld fsgid %ld\n", who, ru, eu, su, rg, eg, sg,
           (long)setfsuid(-1), (long)setfsgid(-1));
}

static void caps(const char *who)
{
    struct cap_hdr h = { 0x20080522, 0 };
    struct cap_data d[2];
    long ret = r(syscall(SYS_capget, &h, d));
    unsigned long long e = d[0].effective | (unsigned long long)d[1].effective << 32;
    unsigned long long p = d[0].permitted | (unsigned long long)d[1].permitted << 32;
    unsigned long long i = d[0].inheritable | (unsigned long long)d[1].inheritable << 32;
    printf("%s: capget %ld eff %llx prm %llx inh %llx\n", who, ret, SHOWN(e), SHOWN(p), i);
}

static void status_lines(const char *who)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) || !strncmp(line, "Groups:", 7) ||
            !strncmp(line, "CapInh:", 7) || !strncmp(line, "CapAmb:", 7) || !strncmp(line, "NoNewPrivs:", 11)) {
            printf("%s: %s", who, line);
        } else if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "CapPrm:", 7) || !strncmp(line, "CapBnd:", 7)) {
            unsigned long long v = strtoull(line + 8, NULL, 16);
            printf("%s: %.7s %llx\n", who, line, SHOWN(v));
        }
    }
    if (f)
        fclose(f);
}

static void auxv(const char *who)
{
    printf("%s: auxv uid %lu euid %lu gid %lu egid %lu secure %lu\n", who, getauxval(AT_UID), getauxval(AT_EUID),
           getauxval(AT_GID), getauxval(AT_EGID), getauxval(AT_SECURE));
}

static void capget_errors(void)
{
    struct cap_hdr h = { 0x12345678, 0 };
    struct cap_data d[2];
    long ret = r(syscall(SYS_capget, &h, d));
    printf("capget bad version: %ld, version now %#x\n", ret, h.version);
    h.version = 0x12345678;
    ret = r(syscall(SYS_capget, &h, NULL));
    printf("capget bad version, NULL data: %ld, version now %#x\n", ret, h.version);
    h.version = 0x19980330;
    memset(d, 0, sizeof d);
    ret = r(syscall(SYS_capget, &h, d));
    printf("capget v1: %ld eff %x high word untouched %x\n", ret, (unsigned)SHOWN(d[0].effective), d[1].effective);
    h.version = 0x20071026;
    ret = r(syscall(SYS_capget, &h, d));
    printf("capget v2: %ld eff-high %x\n", ret, d[1].effective);
    h.version = 0x20080522;
    h.pid = -1;
    printf("capget pid -1: %ld\n", r(syscall(SYS_capget, &h, d)));
    h.pid = 999999;
    printf("capget no such pid: %ld\n", r(syscall(SYS_capget, &h, d)));
    h.pid = getpid();
    printf("capget own pid: %ld\n", r(syscall(SYS_capget, &h, d)));
    h.pid = 0;
    printf("capget bad header: %ld\n", r(syscall(SYS_capget, BAD, d)));
    printf("capget bad data: %ld\n", r(syscall(SYS_capget, &h, BAD)));
    printf("capset bad data: %ld\n", r(syscall(SYS_capset, &h, BAD)));
    h.pid = 999999;
    printf("capset other pid: %ld\n", r(syscall(SYS_capset, &h, d)));
}

static void groups(void)
{
    gid_t list[8] = { 7, 3, 5 };
    printf("setgroups 3: %ld\n", r(setgroups(3, list)));
    int n = getgroups(0, NULL);
    int minus_one = -1;
    printf("getgroups(0): %d\n", n);
    printf("getgroups(1): %ld\n", r(getgroups(1, list)));
    memset(list, 0, sizeof list);
    n = getgroups(8, list);
    printf("getgroups(8): %d [%d %d %d]\n", n, list[0], list[1], list[2]);
    printf("getgroups(-1): %ld\n", r(syscall(SYS_getgroups, minus_one, list)));
    printf("getgroups bad pointer: %ld\n", r(syscall(SYS_getgroups, 8, BAD)));
    printf("setgroups bad pointer: %ld\n", r(syscall(SYS_setgroups, 2, BAD)));
    printf("setgroups too many: %ld\n", r(syscall(SYS_setgroups, 65537, list)));
    gid_t bad[1] = { (gid_t)-1 };
    printf("setgroups -1: %ld\n", r(syscall(SYS_setgroups, 1, bad)));
}

static void *thread_setuid(void *arg)
{
    /* the raw system call changes only this thread's credentials (glibc's setuid would change all) */
    printf("thread: setresuid %ld\n", r(syscall(SYS_setresuid, 1234, 1234, 1234)));
    printf("thread: getuid %d geteuid %d\n", (int)syscall(SYS_getuid), (int)syscall(SYS_geteuid));
    return arg;
}

static void per_thread(void)
{
    pthread_t th;
    pthread_create(&th, NULL, thread_setuid, NULL);
    pthread_join(th, NULL);
    printf("main after thread: getuid %d geteuid %d\n", getuid(), geteuid());
}

static void saved_ids(void)
{
    /* root -> euid 1000 keeps the saved root uid: the effective set empties, the permitted stays */
    printf("setreuid(-1, 1000): %ld\n", r(setreuid(-1, 1000)));
    ids("seteuid 1000");
    caps("seteuid 1000");
    printf("setuid(2000) without CAP_SETUID: %ld\n", r(setuid(2000)));
    printf("setreuid(-1, 0): %ld\n", r(setreuid(-1, 0)));
    caps("back to euid 0");
    printf("setfsuid(1000) -> %d\n", setfsuid(1000));
    caps("fsuid 1000");
    printf("setfsuid(0) -> %d\n", setfsuid(0));
    caps("fsuid 0");
    printf("setresuid(1000, 0, 1000): %ld\n", r(setresuid(1000, 0, 1000)));
    ids("res");
    printf("setreuid(1000, 1000) drops root: %ld\n", r(setreuid(1000, 1000)));
    ids("dropped");
    caps("dropped");
    printf("setreuid(0, -1): %ld\n", r(setreuid(0, -1)));
    printf("setresuid(-1, 1000, -1) no-op: %ld\n", r(setresuid(-1, 1000, -1)));
    printf("setuid(-1): %ld\n", r(syscall(SYS_setuid, -1)));
    printf("setgid(-1): %ld\n", r(syscall(SYS_setgid, -1)));
}

static void nobody(void)
{
    struct rlimit rl = { 4 * 4096, 4 * 4096 };
    printf("RLIMIT_MEMLOCK 16K: %ld\n", r(setrlimit(RLIMIT_MEMLOCK, &rl)));
    printf("setgroups 0: %ld\n", r(setgroups(0, NULL)));
    printf("setresgid nobody: %ld\n", r(setresgid(65534, 65534, 65534)));
    printf("setresuid nobody: %ld\n", r(setresuid(65534, 65534, 65534)));
    ids("nobody");
    caps("nobody");
    status_lines("nobody");
    printf("setuid(0): %ld\n", r(setuid(0)));
    printf("setgid(0): %ld\n", r(setgid(0)));
    printf("setresuid(0,-1,-1): %ld\n", r(setresuid(0, -1, -1)));
    printf("setgroups: %ld\n", r(setgroups(0, NULL)));
    printf("setuid(65534) own uid: %ld\n", r(setuid(65534)));
    int old = setfsuid(0);
    printf("setfsuid(0) -> %d, now %d\n", old, setfsuid(-1));
    printf("capbset drop: %ld\n", r(prctl(PR_CAPBSET_DROP, 1)));
    printf("capbset read 1: %ld\n", r(prctl(PR_CAPBSET_READ, 1)));
    struct cap_hdr h = { 0x20080522, 0 };
    struct cap_data d[2] = { { 1, 1, 0 }, { 0, 0, 0 } };
    printf("capset raise: %ld\n", r(syscall(SYS_capset, &h, d)));
    char *p = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mlock 4 pages: %ld\n", r(mlock(p, 4 * 4096)));
    printf("mlock the same 4 again: %ld\n", r(mlock(p, 4 * 4096)));
    printf("mlock 1 more page: %ld\n", r(mlock(p + 4 * 4096, 4096)));
    printf("munlock: %ld\n", r(munlock(p, 4 * 4096)));
    printf("mlock 5 pages: %ld\n", r(mlock(p, 5 * 4096)));
    printf("mlock2 onfault 4 pages: %ld\n", r(syscall(SYS_mlock2, p, 4 * 4096, 1)));
    printf("mlockall current: %ld\n", r(mlockall(MCL_CURRENT)));
    printf("mlockall future: %ld\n", r(mlockall(MCL_FUTURE)));
    munlockall();
    printf("raise RLIMIT_MEMLOCK: %ld\n", r(setrlimit(RLIMIT_MEMLOCK, &(struct rlimit){ 1 << 20, 1 << 20 })));
    rl.rlim_cur = 0;
    printf("RLIMIT_MEMLOCK 0: %ld\n", r(setrlimit(RLIMIT_MEMLOCK, &rl)));
    printf("mlock with limit 0: %ld\n", r(mlock(p, 4096)));
    printf("mlockall with limit 0: %ld\n", r(mlockall(MCL_CURRENT)));
    printf("setpriority +5: %ld\n", r(setpriority(PRIO_PROCESS, 0, 5)));
    errno = 0;
    printf("getpriority: %d %d\n", getpriority(PRIO_PROCESS, 0), errno);
    printf("setpriority back to 0: %ld\n", r(setpriority(PRIO_PROCESS, 0, 0)));
    printf("setpriority of init: %ld\n", r(setpriority(PRIO_PROCESS, 1, 5)));
    printf("AT_SECURE after drop (auxv is from exec): %lu\n", getauxval(AT_SECURE));
    fflush(stdout);
    /* a program it runs starts with the new ids in its auxv; setreuid leaves euid != ruid: AT_SECURE */
    char *args[] = { "creds", "exec", NULL };
    execv("/proc/self/exe", args);
    printf("execv: %d\n", errno);
}

static void exec_setid(void)
{
    /* real uid 1000, effective 0, saved 1000: exec sets the saved id to the effective one, the auxv
       says AT_SECURE, and root's capabilities come back from the bounding set */
    printf("setresuid(1000, 0, 1000): %ld\n", r(setresuid(1000, 0, 1000)));
    struct cap_hdr h = { 0x20080522, 0 };
    struct cap_data d[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
    printf("capset empty: %ld\n", r(syscall(SYS_capset, &h, d)));
    caps("before exec");
    fflush(stdout);
    char *args[] = { "creds", "exec", NULL };
    execv("/proc/self/exe", args);
    printf("execv: %d\n", errno);
}

static void in_child(void (*fn)(void), const char *name)
{
    int st = run_in_child(fn);
    printf("%s child: exit %d\n", name, WEXITSTATUS(st));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1) {
        auxv("after exec");
        ids("after exec");
        caps("after exec");
        return 0;
    }
    ids("root");
    caps("root");
    auxv("root");
    capget_errors();
    in_child(groups, "groups");
    in_child(per_thread, "per-thread");
    in_child(saved_ids, "saved ids");
    in_child(nobody, "nobody");
    in_child(exec_setid, "exec set-id");
    /* the parent kept its credentials */
    ids("parent");
    caps("parent");
    /* capset: drop CAP_NET_RAW (13) from the effective set, then from the permitted set */
    struct cap_hdr h = { 0x20080522, 0 };
    struct cap_data d[2];
    syscall(SYS_capget, &h, d);
    d[0].effective &= ~(1u << 13);
    printf("capset drop eff: %ld\n", r(syscall(SYS_capset, &h, d)));
    caps("eff dropped");
    d[0].effective |= 1u << 13;
    printf("capset raise eff again: %ld\n", r(syscall(SYS_capset, &h, d)));
    d[0].permitted &= ~(1u << 13);
    printf("capset eff beyond prm: %ld\n", r(syscall(SYS_capset, &h, d)));
    d[0].effective &= ~(1u << 13);
    printf("capset drop prm: %ld\n", r(syscall(SYS_capset, &h, d)));
    d[0].permitted |= 1u << 13;
    printf("capset raise prm: %ld\n", r(syscall(SYS_capset, &h, d)));
    d[0].permitted &= ~(1u << 13);
    d[0].inheritable = 1u << 13;
    printf("capset inh beyond prm (CAP_SETPCAP held): %ld\n", r(syscall(SYS_capset, &h, d)));
    caps("final");
    h.version = 0x19980330;
    struct cap_data v1 = { 0, 0, 0 };
    printf("capset v1 empty: %ld\n", r(syscall(SYS_capset, &h, &v1)));
    caps("v1 empty");
    return 0;
}
