/* Privileged operations before and after dropping to nobody: a root parent forks, the child calls
 * setgid/setuid(65534) (commoncap clears its capability sets) and tries what needs a capability:
 * mmap below mmap_min_addr (CAP_SYS_RAWIO), vm sysctl writes, raising a hard rlimit
 * (CAP_SYS_RESOURCE), mount (CAP_SYS_ADMIN), setuid/setgroups (CAP_SETUID/CAP_SETGID), signalling
 * root (CAP_KILL), mlock without RLIMIT_MEMLOCK (CAP_IPC_LOCK), negative nice and SCHED_FIFO
 * (CAP_SYS_NICE), the bounding set (CAP_SETPCAP), chown (CAP_CHOWN), System V shm owned by root
 * (CAP_IPC_OWNER, CAP_IPC_LOCK), SCM_CREDENTIALS naming others (CAP_SYS_ADMIN/CAP_SETUID), mbind
 * with MPOL_MF_MOVE_ALL (CAP_SYS_NICE), frame numbers in /proc/self/pagemap (CAP_SYS_ADMIN). Every line must read the same natively (run as root). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, long r)
{
    printf("%s: %s\n", what, r < 0 ? strerror(errno) : "ok");
}

static long map_at_zero(void)
{
    void *p = mmap((void *)0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    munmap(p, 4096);
    return 0;
}

static long write_sysctl(const char *path)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    close(fd);          /* opened only: nothing is changed */
    return 0;
}

static long send_creds(int sock, pid_t pid, uid_t uid, gid_t gid)
{
    struct ucred uc = { pid, uid, gid };
    char buf[CMSG_SPACE(sizeof uc)];
    char byte = 'x';
    struct iovec iov = { &byte, 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    memset(buf, 0, sizeof buf);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof uc);
    memcpy(CMSG_DATA(cm), &uc, sizeof uc);
    return sendmsg(sock, &mh, 0);
}

/* does /proc/self/pagemap show the frame number of a touched page (CAP_SYS_ADMIN)? */
static void pagemap_pfn(const char *who)
{
    static char page[4096] __attribute__((aligned(4096)));
    unsigned long long e = 0;
    page[0] = 1;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0 || pread(fd, &e, 8, (unsigned long)page / 4096 * 8) != 8) {
        printf("%spagemap: %s\n", who, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
    printf("%spagemap: present %d, frame number shown %d\n", who, (int)(e >> 63), (e & ((1ULL << 55) - 1)) != 0);
}

static void cap_eff(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        printf("status: %s\n", strerror(errno));
        return;
    }
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "CapPrm:", 7))
            fputs(line, stdout);
    fclose(f);
}

static void as_nobody(int shmid, pid_t parent)
{
    struct rlimit rl;
    struct sched_param sp = { 1 };
    int sv[2];
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    show("setgid 65534", setgid(65534));
    show("setuid 65534", setuid(65534));
    cap_eff();
    show("mmap at 0", map_at_zero());
    show("open mmap_min_addr for writing", write_sysctl("/proc/sys/vm/mmap_min_addr"));
    show("open overcommit_memory for writing", write_sysctl("/proc/sys/vm/overcommit_memory"));
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY)
        rl.rlim_max += 1;
    show("raise RLIMIT_NOFILE hard limit", setrlimit(RLIMIT_NOFILE, &rl));
    show("mount tmpfs", mount("none", "/tmp", "tmpfs", 0, NULL));
    show("setuid 0", setuid(0));
    show("setgroups", setgroups(0, NULL));
    show("kill root parent, signal 0", kill(parent, 0));
    show("kill root parent, SIGCONT (same session)", kill(parent, SIGCONT));
    rl.rlim_cur = rl.rlim_max = 0;
    show("RLIMIT_MEMLOCK to 0", setrlimit(RLIMIT_MEMLOCK, &rl));
    page[0] = 1;
    show("mlock", mlock(page, 4096));
    show("mlockall", mlockall(MCL_CURRENT));
    show("setpriority -1", setpriority(PRIO_PROCESS, 0, -1));
    show("sched_setscheduler SCHED_FIFO", sched_setscheduler(0, SCHED_FIFO, &sp));
    show("PR_CAPBSET_DROP", prctl(PR_CAPBSET_DROP, 21, 0, 0, 0));
    {
        char name[64];
        snprintf(name, sizeof name, "/tmp/capdrop.%d", (int)getpid());
        int fd = open(name, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        show("create own file", fd);
        show("chown own file to root", fchown(fd, 0, 0));
        show("chown own file to self", fchown(fd, 65534, 65534));
        close(fd);
        unlink(name);
    }
    show("shmat root's 0600 segment", shmat(shmid, NULL, 0) == (void *)-1 ? -1 : 0);
    show("SHM_LOCK root's segment", shmctl(shmid, SHM_LOCK, NULL));
    show("socketpair", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    show("SCM_CREDENTIALS own ids", send_creds(sv[0], getpid(), getuid(), getgid()));
    show("SCM_CREDENTIALS uid 0", send_creds(sv[0], getpid(), 0, getgid()));
    show("SCM_CREDENTIALS gid 0", send_creds(sv[0], getpid(), getuid(), 0));
    show("SCM_CREDENTIALS parent's pid", send_creds(sv[0], parent, getuid(), getgid()));
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);        /* setuid made /proc/self root's; make it ours again */
    pagemap_pfn("");
    show("mbind MPOL_MF_MOVE_ALL", syscall(SYS_mbind, page, 4096, 0, NULL, 0, 4 /* MPOL_MF_MOVE_ALL */));
    fflush(stdout);
}

int main(void)
{
    int status;
    int shmid = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    pid_t parent = getpid(), pid;

    show("root: mmap at 0", map_at_zero());
    show("root: open mmap_min_addr for writing", write_sysctl("/proc/sys/vm/mmap_min_addr"));
    show("root: shmget", shmid);
    pagemap_pfn("root: ");
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        as_nobody(shmid, parent);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    shmctl(shmid, IPC_RMID, NULL);
    printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
