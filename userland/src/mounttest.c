/* mount(2)/umount2(2) of tmpfs and hugetlbfs: options, /proc/self/mountinfo and /proc/mounts lines,
 * limits (size=, nr_inodes=), remount, EBUSY/EINVAL/ENOENT/ENODEV/EFAULT/EPERM, MNT_EXPIRE, MNT_DETACH.
 * Mounts go under a fresh directory in /tmp; printed paths are relative to it and mount ids only as
 * relations, so the output can be compared with a native run in a private mount namespace (unshare -m).
 * Usage: mounttest [huge]   ("huge" also mounts hugetlbfs; it needs 2 free 2 MiB pages) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meminfo.h"

static char base[64];

static const char *res(int r) { return r < 0 ? strerror(errno) : "ok"; }

static char *at(const char *rel) {
    static char bufs[4][256];
    static int i;
    char *b = bufs[i++ & 3];
    snprintf(b, 256, "%s/%s", base, rel);
    return b;
}

/* the mountinfo and mounts lines of the mounts below base, base replaced by BASE, ids as relations */
static void show_mounts(const char *label) {
    char line[1024];
    int ids[16], n = 0;
    FILE *f = fopen("/proc/self/mountinfo", "r");
    printf("%s mountinfo:\n", label);
    while (f && fgets(line, sizeof line, f)) {
        int id, parent; unsigned ma, mi; char root[256], mp[256];
        int off;
        if (sscanf(line, "%d %d %u:%u %255s %255s %n", &id, &parent, &ma, &mi, root, mp, &off) < 6) continue;
        if (strncmp(mp, base, strlen(base))) continue;
        int pidx = -1;
        for (int j = 0; j < n; j++) if (ids[j] == parent) pidx = j;
        if (n < 16) ids[n++] = id;
        printf("  #%d parent=%s%d major=%u root=%s mp=BASE%s %s", n - 1, pidx < 0 ? "outside" : "#",
               pidx < 0 ? 0 : pidx, ma, root, mp + strlen(base), line + off);
    }
    if (f) fclose(f);
    f = fopen("/proc/mounts", "r");
    printf("%s mounts:\n", label);
    while (f && fgets(line, sizeof line, f)) {
        char dev[256], mp[256];
        int off;
        if (sscanf(line, "%255s %255s %n", dev, mp, &off) < 2 || strncmp(mp, base, strlen(base))) continue;
        printf("  %s BASE%s %s", dev, mp + strlen(base), line + off);
    }
    if (f) fclose(f);
}

static void show_statfs(const char *label, const char *path) {
    struct statfs s;
    if (statfs(path, &s) < 0) { printf("%s statfs: %s\n", label, strerror(errno)); return; }
    printf("%s statfs: type=%#lx bsize=%ld blocks=%lu bfree=%lu files=%lu ffree=%lu\n", label, (long)s.f_type,
           (long)s.f_bsize, (unsigned long)s.f_blocks, (unsigned long)s.f_bfree, (unsigned long)s.f_files,
           (unsigned long)s.f_ffree);
}

static void tmpfs(void) {
    mkdir(at("t"), 0755);
    printf("mount tmpfs: %s\n", res(mount("mytmp", at("t"), "tmpfs", MS_NOSUID | MS_NODEV,
                                          "size=1m,mode=700,nr_inodes=4")));
    struct stat st;
    stat(at("t"), &st);
    printf("root mode %o\n", st.st_mode);
    show_mounts("tmpfs");
    show_statfs("tmpfs", at("t"));
    /* nr_inodes=4: the root and three more */
    int made = 0;
    char name[32];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "t/f%d", i);
        int fd = open(at(name), O_CREAT | O_RDWR, 0644);
        if (fd < 0) { printf("file %d: %s\n", i, strerror(errno)); break; }
        close(fd);
        made++;
    }
    printf("files made: %d; mkdir: %s\n", made, res(mkdir(at("t/d"), 0755)));
    /* size=1m: 256 pages */
    int fd = open(at("t/f0"), O_RDWR);
    static char page[4096];
    memset(page, 'z', sizeof page);
    long written = 0;
    int e = 0;
    for (int i = 0; i < 300; i++) {
        ssize_t n = write(fd, page, sizeof page);
        if (n < 0) { e = errno; break; }
        written += n;
    }
    printf("wrote %ld bytes, then %s\n", written, e ? strerror(e) : "no error");
    show_statfs("full", at("t"));
    printf("remount size=4k (too small): %s\n", res(mount(NULL, at("t"), NULL, MS_REMOUNT, "size=4k")));
    printf("remount size=2m: %s\n", res(mount(NULL, at("t"), NULL, MS_REMOUNT | MS_NOSUID, "size=2m")));
    printf("write after growing: %zd\n", write(fd, page, sizeof page));
    printf("remount ro with a file open for writing: %s\n", res(mount(NULL, at("t"), NULL, MS_REMOUNT | MS_RDONLY, NULL)));
    close(fd);
    printf("remount ro: %s\n", res(mount(NULL, at("t"), NULL, MS_REMOUNT | MS_RDONLY, NULL)));
    errno = 0;
    printf("create on ro: %s\n", res(open(at("t/new"), O_CREAT | O_RDWR, 0644)));
    show_mounts("remounted");
    printf("remount rw: %s\n", res(mount(NULL, at("t"), NULL, MS_REMOUNT, NULL)));
    printf("remount of a non-mount: %s\n", res(mount(NULL, base, NULL, MS_REMOUNT, NULL)));
    printf("MS_PRIVATE: %s\n", res(mount(NULL, at("t"), NULL, MS_PRIVATE, NULL)));

    /* busy, expire, detach */
    fd = open(at("t/f1"), O_RDWR);
    write(fd, "hello", 5);
    printf("umount with an open file: %s\n", res(umount(at("t"))));
    close(fd);
    chdir(at("t"));
    printf("umount with cwd inside: %s\n", res(umount(at("t"))));
    chdir("/");
    fd = open(at("t/f1"), O_RDONLY);
    char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    printf("umount with a mapping: %s\n", res(umount(at("t"))));
    munmap(m, 4096);
    printf("umount2(MNT_EXPIRE): %s\n", res(umount2(at("t"), MNT_EXPIRE)));
    printf("umount2(MNT_EXPIRE|MNT_DETACH): %s\n", res(umount2(at("t"), MNT_EXPIRE | MNT_DETACH)));
    printf("umount2(MNT_EXPIRE) again: %s\n", res(umount2(at("t"), MNT_EXPIRE)));
    printf("f1 after unmount: %s\n", res(access(at("t/f1"), F_OK)));

    mkdir(at("u"), 0755);
    mount("none", at("u"), "tmpfs", 0, NULL);
    mkdir(at("u/inner"), 0755);
    printf("nested mount: %s\n", res(mount("inner", at("u/inner"), "tmpfs", MS_NOEXEC | MS_RDONLY, "mode=0555")));
    show_mounts("nested");
    printf("umount parent of a mount: %s\n", res(umount(at("u"))));
    fd = open(at("u/kept"), O_CREAT | O_RDWR, 0600);
    write(fd, "kept", 4);
    printf("umount2(MNT_DETACH) in use: %s\n", res(umount2(at("u"), MNT_DETACH)));
    char buf[8] = "";
    pread(fd, buf, 4, 0);
    printf("open file after detach reads %s; inner: %s\n", buf, res(access(at("u/inner"), F_OK)));
    close(fd);
    show_mounts("detached");
}

static void errors(void) {
    mkdir(at("e"), 0755);
    int fd = open(at("file"), O_CREAT | O_RDWR, 0644);
    close(fd);
    printf("unknown type: %s\n", res(mount("x", at("e"), "nosuchfs", 0, NULL)));
    printf("NULL type: %s\n", res(mount("x", at("e"), NULL, 0, NULL)));
    printf("missing target: %s\n", res(mount("x", at("nope"), "tmpfs", 0, NULL)));
    printf("file target: %s\n", res(mount("x", at("file"), "tmpfs", 0, NULL)));
    printf("bad option: %s\n", res(mount("x", at("e"), "tmpfs", 0, "bogus=1")));
    printf("bad size: %s\n", res(mount("x", at("e"), "tmpfs", 0, "size=abc")));
    printf("uid=-1: %s\n", res(mount("x", at("e"), "tmpfs", 0, "uid=4294967295")));
    printf("bad type pointer: %s\n", res(mount("x", at("e"), (const char *)8, 0, NULL)));
    printf("bad target pointer: %s\n", res(mount("x", (const char *)8, "tmpfs", 0, NULL)));
    printf("NULL target: %s\n", res(mount("x", NULL, "tmpfs", 0, NULL)));
    printf("bad data pointer: %s\n", res(mount("x", at("e"), "tmpfs", 0, (void *)8)));
    printf("MS_NOUSER: %s\n", res(mount("x", at("e"), "tmpfs", 1u << 31, NULL)));
    printf("umount not a mount: %s\n", res(umount(at("e"))));
    printf("umount missing: %s\n", res(umount(at("nope"))));
    printf("umount2 bad flags: %s\n", res(umount2(at("e"), 0x100)));
    printf("umount NULL: %s\n", res(umount(NULL)));
    printf("magic MS_MGC_VAL: %s\n", res(mount("x", at("e"), "tmpfs", 0xC0ED0000, "size=8k")));
    show_mounts("magic");
    printf("umount: %s\n", res(umount(at("e"))));
    pid_t pid = fork();
    if (pid == 0) {
        if (setuid(65534) < 0) printf("setuid: %s\n", strerror(errno));
        printf("unprivileged mount: %s\n", res(mount("x", at("e"), "tmpfs", 0, NULL)));
        printf("unprivileged umount: %s\n", res(umount(at("e"))));
        printf("unprivileged mount of a missing target: %s\n", res(mount("x", at("nope"), "tmpfs", 0, NULL)));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void huge(void) {
    long rsvd0 = meminfo("HugePages_Rsvd"), free0 = meminfo("HugePages_Free");
    mkdir(at("h"), 0755);
    printf("hugetlbfs pagesize=4M: %s\n", res(mount("none", at("h"), "hugetlbfs", 0, "pagesize=4M")));
    printf("hugetlbfs pagesize=4K: %s\n", res(mount("none", at("h"), "hugetlbfs", 0, "pagesize=4K")));
    printf("hugetlbfs min_size > size: %s\n", res(mount("none", at("h"), "hugetlbfs", 0, "size=2M,min_size=4M")));
    printf("hugetlbfs min_size beyond the pool: %s\n", res(mount("none", at("h"), "hugetlbfs", 0, "min_size=1G")));
    printf("hugetlbfs: %s\n", res(mount("none", at("h"), "hugetlbfs", 0,
                                        "pagesize=2M,size=5M,min_size=2M,mode=1770,nr_inodes=3")));
    printf("reserved by min_size: %ld\n", meminfo("HugePages_Rsvd") - rsvd0);
    show_mounts("hugetlbfs");
    show_statfs("hugetlbfs", at("h"));
    int fd = open(at("h/a"), O_CREAT | O_RDWR, 0600);
    printf("open: %s; write: %s\n", res(fd), res(write(fd, "x", 1)));
    printf("ftruncate 3M: %s; ftruncate 4M: %s\n", res(ftruncate(fd, 3 << 20)), res(ftruncate(fd, 4 << 20)));
    char *p = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("mmap: %s\n", p == MAP_FAILED ? strerror(errno) : "ok");
    p[0] = 'a';
    p[(2 << 20) + 1] = 'b';
    printf("in use %ld, reserved %ld\n", free0 - meminfo("HugePages_Free"), meminfo("HugePages_Rsvd") - rsvd0);
    munmap(p, 4 << 20);
    p = mmap(NULL, 4 << 20, PROT_READ, MAP_SHARED, fd, 0);
    printf("mapped again: %c %c\n", p[0], p[(2 << 20) + 1]);
    munmap(p, 4 << 20);
    show_statfs("used", at("h"));
    int fd2 = open(at("h/b"), O_CREAT | O_RDWR, 0600);
    printf("fallocate past size=: %s\n", res(fallocate(fd2, 0, 0, 2 << 20)));
    int n = 0;
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "h/n%d", i);
        int f = open(at(name), O_CREAT | O_RDWR, 0600);
        if (f < 0) { printf("inode %d: %s\n", i, strerror(errno)); break; }
        close(f);
        n++;
    }
    printf("more files: %d\n", n);
    printf("umount busy: %s\n", res(umount(at("h"))));
    close(fd);
    close(fd2);
    printf("umount: %s\n", res(umount(at("h"))));
    printf("after umount in use %ld, reserved %ld\n", free0 - meminfo("HugePages_Free"), meminfo("HugePages_Rsvd") - rsvd0);
}

/* "show": the whole mount table as the program sees it, and a hugetlbfs of 1 GiB pages */
static void show(void) {
    char line[1024];
    FILE *f = fopen("/proc/self/mountinfo", "r");
    while (f && fgets(line, sizeof line, f)) printf("mountinfo: %s", line);
    if (f) fclose(f);
    f = fopen("/proc/mounts", "r");
    while (f && fgets(line, sizeof line, f)) printf("mounts: %s", line);
    if (f) fclose(f);
    mkdir(at("g"), 0755);
    printf("hugetlbfs pagesize=1G: %s\n", res(mount("none", at("g"), "hugetlbfs", 0, "pagesize=1G")));
    umount(at("g"));
    rmdir(at("g"));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    strcpy(base, "/tmp/mounttest.XXXXXX");
    if (!mkdtemp(base)) { perror("mkdtemp"); return 1; }
    chmod(base, 0755);
    if (argc > 1 && !strcmp(argv[1], "show")) {
        show();
        return rmdir(base);
    }
    tmpfs();
    errors();
    if (argc > 1 && !strcmp(argv[1], "huge")) huge();
    unlink(at("file"));
    const char *dirs[] = {"t", "u", "e", "h"};
    for (int i = 0; i < 4; i++) rmdir(at(dirs[i]));
    return rmdir(base);
}
