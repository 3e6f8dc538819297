/* File permissions, signals and process calls under changed credentials: a root process sets up
 * a directory of chmod'ed files under argv[1], then children drop to nobody (65534), to a real
 * uid of nobody with euid 0, to fsuid nobody, or into a supplementary group, and print the
 * result (or -errno) of open, access/faccessat2, stat, mkdir, unlink, rename in plain and sticky
 * directories, execve, chmod/chown/utimensat, the /proc and /proc/sys files' modes, and kill.
 * Then waitid, rlimits across fork, PR_SET_PDEATHSIG, poll on a pidfd and memfd_secret.
 * Every line must be the same natively (run as root) and under faultlab. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run_child.h"

#define NOBODY 65534
static char D[256];

static long R(long ret) { return ret < 0 ? -errno : ret; }

static const char *P(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) & 3;
    snprintf(buf[i], sizeof buf[i], "%s/%s", D, name);
    return buf[i];
}

static void put(const char *name, const char *data, int mode)
{
    int fd = open(P(name), O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0) { perror(name); exit(1); }
    if (data) write(fd, data, strlen(data));
    close(fd);
    chmod(P(name), mode);
}

static void copy_self(const char *name, int mode)
{
    char buf[65536];
    int in = open("/proc/self/exe", O_RDONLY), out = open(P(name), O_CREAT | O_WRONLY | O_TRUNC, 0700);
    ssize_t n;
    if (in < 0 || out < 0) { perror("copy"); exit(1); }
    while ((n = read(in, buf, sizeof buf)) > 0)
        write(out, buf, n);
    close(in);
    close(out);
    chmod(P(name), mode);
}

static int mode_of(const char *name)
{
    struct stat st;
    return lstat(P(name), &st) < 0 ? -errno : (int)(st.st_mode & 07777);
}

static void become(uid_t ruid, uid_t euid, gid_t gid, int ngroups, gid_t *groups)
{
    if (setgroups(ngroups, groups) || setresgid(gid, gid, gid) || setresuid(ruid, euid, euid)) {
        perror("become");
        _exit(1);
    }
}

/* run fn in a child and wait for it */
static void in_child(const char *title, void (*fn)(void))
{
    printf("== %s\n", title);
    int st = run_in_child(fn);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        printf("child failed: %#x\n", st);
}

static long try_open(const char *path, int flags)
{
    int fd = open(path, flags, 0644);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

static long try_exec(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)path, "--exit42", NULL};
        execv(path, argv);
        _exit(100 + errno);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void as_nobody(void)
{
    struct stat st;
    struct timespec now2[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    struct timespec omit2[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    struct timespec fixed[2] = {{1000000, 0}, {2000000, 500}};

    become(NOBODY, NOBODY, NOBODY, 0, NULL);
    printf("open rootonly r: %ld\n", try_open(P("rootonly"), O_RDONLY));
    printf("open public r: %ld", try_open(P("public"), O_RDONLY));
    printf(" w: %ld", try_open(P("public"), O_WRONLY));
    printf(" rw: %ld", try_open(P("public"), O_RDWR));
    printf(" trunc: %ld", try_open(P("public"), O_RDONLY | O_TRUNC));
    printf("\n");
    printf("open rwall w: %ld\n", try_open(P("rwall"), O_WRONLY));
    printf("access public R %ld", R(access(P("public"), R_OK)));
    printf(" W %ld", R(access(P("public"), W_OK)));
    printf(" X %ld", R(access(P("public"), X_OK)));
    printf(" F %ld", R(access(P("rootonly"), F_OK)));
    printf("\n");
    printf("access prog755 X %ld", R(access(P("prog755"), X_OK)));
    printf(" prog700 X %ld", R(access(P("prog700"), X_OK)));
    printf("\n");
    printf("nosearch open %ld", try_open(P("nosearch/f"), O_RDONLY));
    printf(" stat %ld", R(stat(P("nosearch/f"), &st)));
    printf(" access %ld", R(access(P("nosearch/f"), F_OK)));
    printf(" opendir %ld", try_open(P("nosearch"), O_RDONLY | O_DIRECTORY));
    printf("\n");
    printf("chdir nosearch %ld", R(chdir(P("nosearch"))));
    printf(" readable-only dir list %ld", try_open(P("noexecdir"), O_RDONLY | O_DIRECTORY));
    printf("\n");
    printf("noexecdir stat %ld\n", R(stat(P("noexecdir/f"), &st)));
    printf("ro_dir mkdir %ld", R(mkdir(P("ro_dir/x"), 0755)));
    printf(" creat %ld", try_open(P("ro_dir/new"), O_CREAT | O_WRONLY));
    printf(" unlink %ld", R(unlink(P("ro_dir/f"))));
    printf(" rename-out %ld", R(rename(P("ro_dir/f"), P("wdir/f"))));
    printf(" rmdir %ld", R(rmdir(P("ro_dir/sub"))));
    printf(" symlink %ld", R(symlink("x", P("ro_dir/ln"))));
    printf("\n");
    printf("wdir creat %ld", try_open(P("wdir/mine"), O_CREAT | O_WRONLY));
    printf(" mkdir %ld", R(mkdir(P("wdir/mydir"), 0755)));
    printf(" unlink rootfile %ld", R(unlink(P("wdir/rootfile"))));
    printf(" rename mine %ld", R(rename(P("wdir/mine"), P("wdir/mine2"))));
    printf(" unlink mine %ld", R(unlink(P("wdir/mine2"))));
    printf("\n");
    printf("sticky unlink rootfile %ld", R(unlink(P("sticky/rootfile"))));
    printf(" rename rootfile %ld", R(rename(P("sticky/rootfile"), P("sticky/x"))));
    printf(" creat mine %ld", try_open(P("sticky/mine"), O_CREAT | O_WRONLY));
    printf(" unlink mine %ld", R(unlink(P("sticky/mine"))));
    printf("\n");
    printf("sticky open rootfile w %ld\n", try_open(P("sticky/rootfile"), O_WRONLY));
    printf("truncate public %ld", R(truncate(P("public"), 0)));
    printf(" rwall %ld", R(truncate(P("rwall"), 1)));
    printf("\n");
    printf("exec prog700 %ld", try_exec(P("prog700")));
    printf(" prog755 %ld", try_exec(P("prog755")));
    printf(" public %ld", try_exec(P("public")));
    printf(" dir %ld", try_exec(P("wdir")));
    printf("\n");
    printf("chmod public %ld", R(chmod(P("public"), 0777)));
    printf(" chown own->root %ld", R(chown(P("wdir/mydir"), 0, -1)));
    printf(" chgrp own->nobody %ld", R(chown(P("wdir/mydir"), -1, NOBODY)));
    printf(" chgrp own->0 %ld", R(chown(P("wdir/mydir"), -1, 0)));
    printf("\n");
    printf("chmod own 2755 %ld", R(chmod(P("wdir/mydir"), 02755)));
    printf(" mode %o", mode_of("wdir/mydir"));
    printf("\n");
    int fd = open(P("wdir/mydir"), O_RDONLY | O_DIRECTORY);
    printf("fchmod own %ld", R(fchmod(fd, 0700)));
    printf(" mode %o", mode_of("wdir/mydir"));
    printf(" fchown own->nobody %ld", R(fchown(fd, NOBODY, NOBODY)));
    printf(" fchown ->0 %ld", R(fchown(fd, 0, 0)));
    printf("\n");
    close(fd);
    printf("chown -1 -1 public %ld", R(chown(P("public"), -1, -1)));
    printf(" suidroot %ld", R(chown(P("suid"), -1, -1)));
    printf("\n");
    printf("utimensat public NULL %ld", R(utimensat(AT_FDCWD, P("public"), NULL, 0)));
    printf(" now,now %ld", R(utimensat(AT_FDCWD, P("public"), now2, 0)));
    printf(" fixed %ld", R(utimensat(AT_FDCWD, P("public"), fixed, 0)));
    printf(" omit %ld", R(utimensat(AT_FDCWD, P("public"), omit2, 0)));
    printf("\n");
    printf("utimensat rwall NULL %ld", R(utimensat(AT_FDCWD, P("rwall"), NULL, 0)));
    printf(" now,now %ld", R(utimensat(AT_FDCWD, P("rwall"), now2, 0)));
    printf(" fixed %ld", R(utimensat(AT_FDCWD, P("rwall"), fixed, 0)));
    printf("\n");
    printf("proc drop_caches r %ld", try_open("/proc/sys/vm/drop_caches", O_RDONLY));
    printf(" w %ld", try_open("/proc/sys/vm/drop_caches", O_WRONLY));
    printf(" kpageflags r %ld", try_open("/proc/kpageflags", O_RDONLY));
    printf(" meminfo r %ld", try_open("/proc/meminfo", O_RDONLY));
    printf(" self/status r %ld", try_open("/proc/self/status", O_RDONLY));
    printf("\n");
    printf("proc overcommit_memory r %ld", try_open("/proc/sys/vm/overcommit_memory", O_RDONLY));
    printf(" w %ld", try_open("/proc/sys/vm/overcommit_memory", O_WRONLY));
    printf(" access W %ld", R(access("/proc/sys/vm/overcommit_memory", W_OK)));
    printf("\n");
    printf("proc self pagemap r %ld", try_open("/proc/self/pagemap", O_RDONLY));
    printf(" clear_refs w %ld", try_open("/proc/self/clear_refs", O_WRONLY));
    printf(" comm w %ld", try_open("/proc/self/comm", O_WRONLY));
    printf(" status owner %ld", R(stat("/proc/self/status", &st)) ? -1L : (long)st.st_uid);
    printf(" meminfo owner %ld\n", R(stat("/proc/meminfo", &st)) ? -1L : (long)st.st_uid);
    printf("dumpable %d", prctl(PR_GET_DUMPABLE));
    prctl(PR_SET_DUMPABLE, 1);
    printf(" -> %d: pagemap r %ld", prctl(PR_GET_DUMPABLE), try_open("/proc/self/pagemap", O_RDONLY));
    printf(" clear_refs w %ld", try_open("/proc/self/clear_refs", O_WRONLY));
    printf(" comm w %ld", try_open("/proc/self/comm", O_WRONLY));
    printf(" status owner %ld\n", R(stat("/proc/self/status", &st)) ? -1L : (long)st.st_uid);
    pid_t parent = getppid();
    printf("kill parent 0 %ld", R(kill(parent, 0)));
    printf(" SIGCONT %ld", R(kill(parent, SIGCONT)));
    printf(" tgkill %ld", R(syscall(SYS_tgkill, parent, parent, 0)));
    printf(" sigqueue %ld", R(sigqueue(parent, 0, (union sigval){0})));
    printf(" self %ld", R(kill(getpid(), 0)));
    printf("\n");
}

static void real_nobody_euid_root(void)
{
    become(NOBODY, 0, 0, 0, NULL);
    printf("uid %d", getuid());
    printf(" euid %d", geteuid());
    printf("\n");
    printf("open rootonly %ld", try_open(P("rootonly"), O_RDONLY));
    printf(" access R %ld", R(access(P("rootonly"), R_OK)));
    printf(" eaccess R %ld", R(syscall(SYS_faccessat2, AT_FDCWD, P("rootonly"), R_OK, AT_EACCESS)));
    printf(" faccessat2 bad flag %ld", R(syscall(SYS_faccessat2, AT_FDCWD, P("rootonly"), R_OK, 0x8)));
    printf("\n");
    printf("access nosearch/f %ld", R(access(P("nosearch/f"), F_OK)));
    printf(" eaccess %ld", R(syscall(SYS_faccessat2, AT_FDCWD, P("nosearch/f"), F_OK, AT_EACCESS)));
    printf("\n");
    printf("access public W %ld", R(access(P("public"), W_OK)));
    printf(" eaccess W %ld", R(syscall(SYS_faccessat2, AT_FDCWD, P("public"), W_OK, AT_EACCESS)));
    printf("\n");
}

static void fsuid_nobody(void)
{
    setfsuid(NOBODY);
    printf("fsuid %d", setfsuid(-1));
    printf(" euid %d", geteuid());
    printf("\n");
    printf("open rootonly %ld", try_open(P("rootonly"), O_RDONLY));
    printf(" public w %ld", try_open(P("public"), O_WRONLY));
    printf(" creat in ro_dir %ld", try_open(P("ro_dir/fs"), O_CREAT | O_WRONLY));
    printf("\n");
    int fd = open(P("wdir/fsfile"), O_CREAT | O_WRONLY, 0600);
    struct stat st;
    fstat(fd, &st);
    printf("created by fsuid: uid %d gid %d\n", st.st_uid, st.st_gid);
    close(fd);
    unlink(P("wdir/fsfile"));
}

static void in_group(void)
{
    gid_t g = 1234;
    become(NOBODY, NOBODY, NOBODY, 1, &g);
    printf("grpfile r %ld", try_open(P("grpfile"), O_RDONLY));
    printf(" w %ld", try_open(P("grpfile"), O_WRONLY));
    printf(" grpdir creat %ld", try_open(P("grpdir/x"), O_CREAT | O_WRONLY));
    printf("\n");
    printf("chgrp own file to 1234 %ld\n", R(chown(P("grpdir/x"), -1, 1234)));
    unlink(P("grpdir/x"));
}

static void not_in_group(void)
{
    become(NOBODY, NOBODY, NOBODY, 0, NULL);
    printf("grpfile r %ld", try_open(P("grpfile"), O_RDONLY));
    printf(" grpdir creat %ld", try_open(P("grpdir/y"), O_CREAT | O_WRONLY));
    printf("\n");
}

static void root_checks(void)
{
    printf("== root\n");
    printf("drop_caches r %ld", try_open("/proc/sys/vm/drop_caches", O_RDONLY));
    printf(" w %ld", try_open("/proc/sys/vm/drop_caches", O_WRONLY));
    printf(" kpageflags r %ld", try_open("/proc/kpageflags", O_RDONLY));
    printf("\n");
    printf("rootonly r %ld", try_open(P("rootonly"), O_RDONLY));
    printf(" nosearch/f %ld", try_open(P("nosearch/f"), O_RDONLY));
    printf(" exec public %ld", try_exec(P("public")));
    printf(" prog700 %ld", try_exec(P("prog700")));
    printf("\n");
    put("suid2", "x", 04755);
    put("sgidx", "x", 02755);
    put("sgidnx", "x", 02745);
    printf("modes before %o", mode_of("suid2"));
    printf(" %o", mode_of("sgidx"));
    printf(" %o", mode_of("sgidnx"));
    printf("\n");
    printf("chown %ld", R(chown(P("suid2"), 1000, -1)));
    printf(" %ld", R(chown(P("sgidx"), -1, 1000)));
    printf(" %ld", R(chown(P("sgidnx"), 1000, 1000)));
    printf("\n");
    printf("modes after chown %o", mode_of("suid2"));
    printf(" %o", mode_of("sgidx"));
    printf(" %o", mode_of("sgidnx"));
    printf("\n");
    chmod(P("suid2"), 06755);
    printf("chown -1 -1: %ld", R(chown(P("suid2"), -1, -1)));
    printf(" mode %o", mode_of("suid2"));
    printf("\n");
    symlink("public", P("ln"));
    printf("lchown %ld", R(lchown(P("ln"), 7, 8)));
    printf(" fchownat nofollow %ld", R(fchownat(AT_FDCWD, P("ln"), 9, 10, AT_SYMLINK_NOFOLLOW)));
    printf(" fchmodat2 nofollow %ld", R(syscall(452, AT_FDCWD, P("ln"), 0600, AT_SYMLINK_NOFOLLOW)));
    printf(" fchmodat2 bad %ld", R(syscall(452, AT_FDCWD, P("ln"), 0600, 0x4)));
    printf("\n");
    struct stat st;
    lstat(P("ln"), &st);
    printf("link owner %d:%d target owner ", st.st_uid, st.st_gid);
    stat(P("ln"), &st);
    printf("%d:%d\n", st.st_uid, st.st_gid);
    printf("fchownat bad flags %ld", R(fchownat(AT_FDCWD, P("ln"), 1, 1, 0x2)));
    printf(" chown missing %ld", R(chown(P("missing"), 1, 1)));
    printf("\n");
    struct timespec ts[2] = {{1000000, 0}, {2000000, 500}};
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    printf("utimensat fixed %ld", R(utimensat(AT_FDCWD, P("public"), ts, 0)));
    stat(P("public"), &st);
    printf(" atime %ld", (long)st.st_atim.tv_sec);
    printf(".%09ld", st.st_atim.tv_nsec);
    printf(" mtime %ld", (long)st.st_mtim.tv_sec);
    printf(".%09ld", st.st_mtim.tv_nsec);
    printf("\n");
    printf("utimensat bad nsec %ld", R(utimensat(AT_FDCWD, P("public"), bad, 0)));
    printf(" bad flags %ld", R(utimensat(AT_FDCWD, P("public"), ts, 0x4)));
    printf(" NULL path AT_FDCWD %ld", R(syscall(SYS_utimensat, AT_FDCWD, NULL, ts, 0)));
    printf("\n");
    int fd = open(P("public"), O_RDONLY);
    printf("futimens %ld", R(syscall(SYS_utimensat, fd, NULL, ts, 0)));
    printf(" with flags %ld\n", R(syscall(SYS_utimensat, fd, NULL, ts, AT_SYMLINK_NOFOLLOW)));
    close(fd);
}

/* ---- waitid ---------------------------------------------------------------------------------- */
static void show_si(const char *what, long ret, siginfo_t *si)
{
    printf("%s: %ld signo %d code %d status %d uid %d pid_is_child %d\n", what, ret, si->si_signo, si->si_code,
           si->si_status, si->si_uid, si->si_pid != 0);
}

static pid_t spawn_exit(int code, int drop)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (drop)
            become(NOBODY, NOBODY, NOBODY, 0, NULL);
        _exit(code);
    }
    return pid;
}

static void waitid_checks(void)
{
    siginfo_t si;
    printf("== waitid\n");
    fflush(stdout);
    pid_t a = spawn_exit(7, 1);
    memset(&si, 0x55, sizeof si);
    long r = R(waitid(P_PID, a, &si, WEXITED | WNOWAIT));
    show_si("nowait", r, &si);
    memset(&si, 0x55, sizeof si);
    r = R(waitid(P_ALL, 0, &si, WEXITED));
    show_si("reap", r, &si);
    printf("same pid %d\n", si.si_pid == a);
    memset(&si, 0x55, sizeof si);
    r = R(waitid(P_PID, a, &si, WEXITED));
    printf("again: %ld si_signo %d\n", r, si.si_signo);
    int pfd[2];
    pipe(pfd);
    pid_t b = fork();
    if (b == 0) {
        char c;
        read(pfd[0], &c, 1);
        _exit(3);
    }
    memset(&si, 0x55, sizeof si);
    r = R(waitid(P_PID, b, &si, WEXITED | WNOHANG));
    show_si("wnohang running", r, &si);
    printf("einval which %ld", R(waitid(7, 0, &si, WEXITED)));
    printf(" options %ld", R(waitid(P_ALL, 0, &si, 0)));
    printf(" pid0 %ld", R(waitid(P_PID, 0, &si, WEXITED)));
    printf(" pgid-1 %ld", R(waitid(P_PGID, -1, &si, WEXITED)));
    printf("\n");
    printf("efault %ld", R(waitid(P_PID, b, (siginfo_t *)8, WEXITED | WNOHANG)));
    printf(" null infop nohang %ld", R(waitid(P_PID, b, NULL, WEXITED | WNOHANG)));
    printf("\n");
    printf("no such pid %ld\n", R(waitid(P_PID, 999999, &si, WEXITED)));
    /* a pidfd: poll says nothing until the child ends, then readable; hung up once reaped */
    int pidfd = syscall(SYS_pidfd_open, b, 0);
    struct pollfd p = {pidfd, POLLIN, 0};
    r = poll(&p, 1, 0);
    printf("pidfd poll running: %ld revents %#x\n", r, p.revents);
    write(pfd[1], "x", 1);
    p.revents = 0;
    r = poll(&p, 1, 5000);
    printf("pidfd poll after exit: %ld revents %#x\n", r, p.revents);
    memset(&si, 0x55, sizeof si);
    r = R(waitid(P_PIDFD, pidfd, &si, WEXITED));
    show_si("pidfd", r, &si);
    p.revents = 0;
    r = poll(&p, 1, 0);
    printf("pidfd poll reaped: %ld revents %#x\n", r, p.revents);
    printf("pidfd waitid reaped %ld", R(waitid(P_PIDFD, pidfd, &si, WEXITED)));
    printf(" bad fd %ld", R(waitid(P_PIDFD, 0, &si, WEXITED)));
    printf("\n");
    close(pidfd);
    /* killed, with rusage */
    pid_t c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    pidfd = syscall(SYS_pidfd_open, c, O_NONBLOCK);
    printf("nonblock pidfd running %ld\n", R(waitid(P_PIDFD, pidfd, &si, WEXITED)));
    kill(c, SIGTERM);
    struct rusage ru;
    memset(&si, 0x55, sizeof si);
    r = R(syscall(SYS_waitid, P_PGID, 0, &si, WEXITED, &ru));
    show_si("killed pgid", r, &si);
    close(pidfd);
    printf("echild %ld\n", R(waitid(P_ALL, 0, &si, WEXITED)));
}

/* ---- rlimits are per process ------------------------------------------------------------------ */
static void rlimit_checks(void)
{
    struct rlimit rl = {100, 200}, got;
    printf("== rlimit\n");
    setrlimit(RLIMIT_NOFILE, &rl);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit mine = {50, 60};
        setrlimit(RLIMIT_NOFILE, &mine);
        getrlimit(RLIMIT_NOFILE, &mine);
        printf("child %ld", (long)mine.rlim_cur);
        printf(" %ld", (long)mine.rlim_max);
        printf("\n");
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    getrlimit(RLIMIT_NOFILE, &got);
    printf("parent %ld", (long)got.rlim_cur);
    printf(" %ld", (long)got.rlim_max);
    printf("\n");
}

/* ---- PR_SET_PDEATHSIG --------------------------------------------------------------------------- */
static int report_fd;
static volatile sig_atomic_t got_sig, got_pid_nonzero;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    got_sig = sig;
    got_pid_nonzero = si->si_pid != 0;
}

static void pdeath_child(int ready_fd)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGUSR1);
    write(ready_fd, "r", 1);
    for (int i = 0; i < 2000 && !got_sig; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    char line[80];
    int n = snprintf(line, sizeof line, "pdeath signal %d code si_pid set %d\n", (int)got_sig, (int)got_pid_nonzero);
    write(report_fd, line, n);
    _exit(0);
}

static void *thread_forks(void *arg)
{
    int ready[2];
    pipe(ready);
    pid_t pid = fork();
    if (pid == 0)
        pdeath_child(ready[1]);
    char c;
    read(ready[0], &c, 1);
    *(pid_t *)arg = pid;
    return NULL;                     /* the thread ends: its child gets SIGUSR1 */
}

static void pdeath_checks(void)
{
    int rep[2];
    printf("== pdeathsig\n");
    fflush(stdout);
    pipe(rep);
    report_fd = rep[1];
    /* the parent process ends */
    pid_t mid = fork();
    if (mid == 0) {
        int ready[2];
        pipe(ready);
        if (fork() == 0)
            pdeath_child(ready[1]);
        char c;
        read(ready[0], &c, 1);
        _exit(0);
    }
    waitpid(mid, NULL, 0);
    char buf[128];
    ssize_t n = read(rep[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("process: %s", buf);
    /* the parent thread ends while its process lives on */
    pthread_t th;
    pid_t child = 0;
    pthread_create(&th, NULL, thread_forks, &child);
    pthread_join(th, NULL);
    n = read(rep[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("thread: %s", buf);
    int st;
    printf("reaped %d", waitpid(child, &st, 0) == child);
    printf(" status %d", WEXITSTATUS(st));
    printf("\n");
    int v = -1;
    prctl(PR_GET_PDEATHSIG, &v);
    printf("own pdeathsig %d bad signal %ld\n", v, R(prctl(PR_SET_PDEATHSIG, 65)));
}

/* ---- memfd_secret -------------------------------------------------------------------------------- */
static void secret_checks(void)
{
    printf("== memfd_secret\n");
    printf("bad flags %ld\n", R(syscall(447, 1)));
    int fd = syscall(447, O_CLOEXEC);
    printf("fd ok %d cloexec %d\n", fd >= 0, fd >= 0 ? (fcntl(fd, F_GETFD) & FD_CLOEXEC) : -1);
    struct stat st;
    fstat(fd, &st);
    printf("fstat mode %o size %ld\n", st.st_mode, (long)st.st_size);
    void *z = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("mmap of size 0 %ld\n", z == MAP_FAILED ? -errno : 0L);
    if (z != MAP_FAILED)
        munmap(z, 4096);
    printf("ftruncate %ld", R(ftruncate(fd, 8192)));
    printf(" again %ld", R(ftruncate(fd, 4096)));
    printf("\n");
    void *priv = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("mmap private %ld\n", priv == MAP_FAILED ? -errno : 0L);
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("mmap shared %ld\n", m == MAP_FAILED ? -errno : 0L);
    strcpy(m, "secret");
    strcpy(m + 4096, "page two");
    char *m2 = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    printf("second mapping sees %s / %s\n", m2, m2 + 4096);
    char buf[16];
    printf("read %ld", R(read(fd, buf, 4)));
    printf(" write %ld", R(write(fd, "x", 1)));
    printf(" pread %ld", R(pread(fd, buf, 4, 0)));
    printf("\n");
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, maps)) {
        char *name = strstr(line, "/secretmem");
        if (name) {
            char perms[8];
            sscanf(line, "%*s %7s", perms);
            printf("maps %s %s", perms, name);
            n++;
        }
    }
    fclose(maps);
    printf("maps lines %d\n", n);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        printf("child sees %s\n", m);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    munmap(m2, 8192);
    munmap(m, 8192);
    fflush(stdout);
    /* the pages are locked: RLIMIT_MEMLOCK bounds them without CAP_IPC_LOCK */
    pid = fork();
    if (pid == 0) {
        become(NOBODY, NOBODY, NOBODY, 0, NULL);
        struct rlimit rl = {4096, 4096};
        printf("setrlimit %ld\n", R(setrlimit(RLIMIT_MEMLOCK, &rl)));
        void *a = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        printf("nobody 2 pages %ld\n", a == MAP_FAILED ? -errno : 0L);
        void *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        printf("nobody 1 page %ld\n", b == MAP_FAILED ? -errno : 0L);
        void *c = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4096);
        printf("nobody another page %ld\n", c == MAP_FAILED ? -errno : 0L);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--exit42"))
        return 42;
    if (argc < 2) {
        fprintf(stderr, "usage: credfiles DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    snprintf(D, sizeof D, "%s/credfilesXXXXXX", argv[1]);
    if (!mkdtemp(D)) {
        perror("mkdtemp");
        return 1;
    }
    chmod(D, 0755);
    umask(0);
    put("rootonly", "secret", 0600);
    put("public", "hello", 0644);
    put("rwall", "data", 0666);
    put("suid", "x", 04755);
    copy_self("prog700", 0700);
    copy_self("prog755", 0755);
    mkdir(P("nosearch"), 0700);
    put("nosearch/f", "f", 0644);
    mkdir(P("noexecdir"), 0744);
    put("noexecdir/f", "f", 0644);
    mkdir(P("ro_dir"), 0755);
    put("ro_dir/f", "f", 0666);
    mkdir(P("ro_dir/sub"), 0777);
    mkdir(P("wdir"), 0777);
    put("wdir/rootfile", "r", 0666);
    mkdir(P("sticky"), 01777);
    put("sticky/rootfile", "r", 0666);
    put("grpfile", "g", 0640);
    chown(P("grpfile"), 0, 1234);
    mkdir(P("grpdir"), 0770);
    chown(P("grpdir"), 0, 1234);

    in_child("nobody", as_nobody);
    in_child("real nobody, effective root", real_nobody_euid_root);
    in_child("fsuid nobody", fsuid_nobody);
    in_child("supplementary group", in_group);
    in_child("not in the group", not_in_group);
    root_checks();
    waitid_checks();
    rlimit_checks();
    pdeath_checks();
    secret_checks();
    fflush(stdout);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s", D);
    /* clean up (depth-first) */
    const char *files[] = {"rootonly", "public", "rwall", "suid", "prog700", "prog755", "nosearch/f", "noexecdir/f",
                           "ro_dir/f", "wdir/rootfile", "sticky/rootfile", "grpfile", "suid2", "sgidx", "sgidnx", "ln",
                           "wdir/mine", "wdir/mine2", "sticky/mine", "grpdir/x", "grpdir/y", NULL};
    for (int i = 0; files[i]; i++)
        unlink(P(files[i]));
    const char *dirs[] = {"nosearch", "noexecdir", "ro_dir/sub", "ro_dir", "wdir/mydir", "wdir", "sticky", "grpdir",
                          NULL};
    for (int i = 0; dirs[i]; i++)
        rmdir(P(dirs[i]));
    rmdir(D);
    return 0;
}
