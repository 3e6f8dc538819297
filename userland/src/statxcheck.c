/* statx(2) against fstatat(2) and /proc/self/mountinfo, and its errors; every line printed is the
 * same natively and under faultlab for the same files.
 * usage: statxcheck FILE... (each is compared with fstatat; a missing one prints its errno) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

static int sx(int dfd, const char *path, int flags, unsigned mask, struct statx *buf)
{
    long r = syscall(SYS_statx, dfd, path, flags, mask, buf);
    return r < 0 ? -errno : 0;
}

static int same_ts(struct statx_timestamp a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == (unsigned)b.tv_nsec;
}

/* statx and fstat(at) describe the same file the same way */
static const char *agree(const struct statx *x, const struct stat *s)
{
    if ((x->stx_mask & STATX_BASIC_STATS) != STATX_BASIC_STATS) return "mask";
    if (x->stx_mode != s->st_mode || x->stx_ino != s->st_ino || x->stx_nlink != s->st_nlink) return "mode/ino/nlink";
    if (x->stx_uid != s->st_uid || x->stx_gid != s->st_gid) return "ids";
    if ((off_t)x->stx_size != s->st_size || (blkcnt_t)x->stx_blocks != s->st_blocks) return "size/blocks";
    if ((blksize_t)x->stx_blksize != s->st_blksize) return "blksize";
    if (makedev(x->stx_dev_major, x->stx_dev_minor) != s->st_dev) return "dev";
    if (makedev(x->stx_rdev_major, x->stx_rdev_minor) != s->st_rdev) return "rdev";
    if (!same_ts(x->stx_atime, s->st_atim) || !same_ts(x->stx_mtime, s->st_mtim) || !same_ts(x->stx_ctime, s->st_ctim))
        return "times";
    return "yes";
}

static long mountinfo_id(const char *mountpoint)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096], mp[4096];
    long id, found = -1;
    if (!f) return -2;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%ld %*d %*s %*s %4095s", &id, mp) == 2 && !strcmp(mp, mountpoint))
            found = id;                      /* the last (top-most) mount there */
    fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    struct statx x;
    struct stat s;
    for (int i = 1; i < argc; i++) {
        int r = sx(AT_FDCWD, argv[i], AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &x);
        if (r) { printf("%s: statx errno %d\n", argv[i], -r); continue; }
        if (fstatat(AT_FDCWD, argv[i], &s, AT_SYMLINK_NOFOLLOW)) { printf("%s: fstatat failed\n", argv[i]); continue; }
        printf("%s: agrees with fstatat: %s; mode %o size %lld nlink %u\n", argv[i], agree(&x, &s),
               x.stx_mode, (long long)x.stx_size, x.stx_nlink);
        int fd = open(argv[i], O_RDONLY | O_NOFOLLOW);
        if (fd >= 0) {
            r = sx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &x);
            fstat(fd, &s);
            printf("  by descriptor (AT_EMPTY_PATH): %d %s\n", r, r ? "" : agree(&x, &s));
            close(fd);
        }
    }

    /* a new file on /tmp: ext4 natively, tmpfs under faultlab; both record a birth time */
    char tmp[] = "/tmp/statxcheck-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) { perror("mkstemp"); return 1; }
    int r = sx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &x);
    printf("new file: %d btime reported %d, btime == ctime %d\n", r, !!(x.stx_mask & STATX_BTIME),
           x.stx_btime.tv_sec == x.stx_ctime.tv_sec && x.stx_btime.tv_nsec == x.stx_ctime.tv_nsec);
    /* (a multigrain-timestamp filesystem of Linux >= 6.13 leaves out mtime and ctime when not asked) */
    unsigned basic = STATX_BASIC_STATS & ~(STATX_MTIME | STATX_CTIME);
    r = sx(AT_FDCWD, tmp, 0, 0, &x);
    printf("mask 0 still fills the basic stats: %d %d\n", r, (x.stx_mask & basic) == basic);

    /* a pipe, by descriptor */
    int p[2];
    if (pipe(p) == 0) {
        r = sx(p[0], "", AT_EMPTY_PATH, STATX_BASIC_STATS, &x);
        fstat(p[0], &s);
        printf("pipe: %d fifo %d agrees %s\n", r, S_ISFIFO(x.stx_mode), agree(&x, &s));
    }

    /* the mount id is mountinfo's first column; the root of a mount says so */
    r = sx(AT_FDCWD, "/proc", 0, STATX_BASIC_STATS, &x);
    printf("/proc: %d mnt_id reported %d, equals mountinfo %d, mount root %d (mask has it %d)\n", r,
           !!(x.stx_mask & STATX_MNT_ID), (long)x.stx_mnt_id == mountinfo_id("/proc"),
           !!(x.stx_attributes & STATX_ATTR_MOUNT_ROOT), !!(x.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT));
    r = sx(AT_FDCWD, "/proc/self/status", 0, STATX_BASIC_STATS, &x);
    printf("/proc/self/status: %d same mount %d, mount root %d\n", r, (long)x.stx_mnt_id == mountinfo_id("/proc"),
           !!(x.stx_attributes & STATX_ATTR_MOUNT_ROOT));

    /* errors */
    printf("reserved mask bit: %d\n", sx(AT_FDCWD, tmp, 0, 0x80000000u, &x));
    printf("both sync types: %d\n", sx(AT_FDCWD, tmp, AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, 0, &x));
    printf("unknown flag: %d\n", sx(AT_FDCWD, tmp, 0x80000, STATX_BASIC_STATS, &x));
    printf("sync flags alone: %d %d\n", sx(AT_FDCWD, tmp, AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &x),
           sx(AT_FDCWD, tmp, AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &x));
    printf("empty path: %d\n", sx(AT_FDCWD, "", 0, STATX_BASIC_STATS, &x));
    printf("bad path pointer: %d\n", sx(AT_FDCWD, (const char *)8, 0, STATX_BASIC_STATS, &x));
    printf("bad buffer: %d\n", sx(AT_FDCWD, tmp, 0, STATX_BASIC_STATS, (struct statx *)8));
    printf("missing: %d\n", sx(AT_FDCWD, "/tmp/statxcheck-missing/x", 0, STATX_BASIC_STATS, &x));
    char notdir[64];
    snprintf(notdir, sizeof notdir, "%s/x", tmp);
    printf("not a directory: %d\n", sx(AT_FDCWD, notdir, 0, STATX_BASIC_STATS, &x));
    printf("bad descriptor: %d\n", sx(999, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &x));
    printf("relative to a file: %d\n", sx(fd, "x", 0, STATX_BASIC_STATS, &x));
    close(fd);
    unlink(tmp);
    return 0;
}
