/* escape: try every way out of the guest's filesystem and print what each attempt got.
 *
 *   escape HOST_SECRET_PATH HOST_PID
 *
 * Expects --mount HOSTDIR:/mnt/rw:rw (holding abs_link -> /etc/shadow, rel_link -> ../../../../etc/shadow,
 * root_link -> /, file.txt) and --mount ROHOSTDIR:/mnt/ro (holding data.txt). Each line is
 * "name: ret=R errno=E" (or the bytes read).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRY(name, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%s: ret=%ld errno=%d\n", name, r_ < 0 ? -1L : r_ >= 0 ? (r_ > 0 ? 1L : 0L) : r_, r_ < 0 ? errno : 0); } while (0)

static void show_file(const char *name, const char *path)
{
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%s: ret=-1 errno=%d\n", name, errno);
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n')
            buf[i] = '|';
    printf("%s: read %zd [%s]\n", name, n, buf);
}

int main(int argc, char **argv)
{
    char path[512], link[256];
    if (argc < 3)
        return 2;
    /* host files that were not mounted */
    TRY("host_secret", open(argv[1], O_RDONLY));
    /* the default view shows /etc/passwd and /etc/group read-only (for user names), never /etc/shadow */
    TRY("etc_shadow", open("/etc/shadow", O_RDONLY));
    TRY("etc_passwd_write", open("/etc/passwd", O_WRONLY));
    snprintf(path, sizeof path, "/proc/%s/status", argv[2]);
    TRY("proc_host_pid", open(path, O_RDONLY));
    snprintf(path, sizeof path, "/proc/%s/mem", argv[2]);
    TRY("proc_host_pid_mem", open(path, O_RDONLY));
    /* /proc/self/mem is the guest's own address space, as in Linux: it reads this process's memory */
    {
        static const char marker[] = "guest memory marker";
        char got[sizeof marker] = {0};
        int fd = open("/proc/self/mem", O_RDONLY);
        long n = fd < 0 ? -1 : pread(fd, got, sizeof got, (off_t)(unsigned long)marker);
        printf("proc_self_mem_reads_guest: %d\n", n == (long)sizeof got && !memcmp(got, marker, sizeof got));
        n = fd < 0 ? -1 : pread(fd, got, sizeof got, (off_t)0x7fff00000000UL);   /* unmapped: EIO */
        printf("proc_self_mem_unmapped: ret=%ld errno=%d\n", n < 0 ? -1L : n, n < 0 ? errno : 0);
        if (fd >= 0)
            close(fd);
    }
    TRY("dev_mem", open("/dev/mem", O_RDONLY));
    TRY("dev_kmem", open("/dev/kmem", O_RDONLY));
    /* .. beyond the root, from the root, from a mount, from a cwd */
    TRY("dotdot_root", open("/../../../../etc/shadow", O_RDONLY));
    show_file("dotdot_root_hostname", "/../../../etc/hostname");
    show_file("dotdot_mount", "/mnt/rw/../../../../etc/hostname");
    TRY("chdir_mount", chdir("/mnt/rw"));
    show_file("dotdot_cwd", "../../../../../etc/hostname");
    TRY("chdir_up", chdir("../../../../.."));
    printf("cwd_after_up: %s\n", getcwd(path, sizeof path) ? path : "?");
    /* symlinks inside the host directory */
    TRY("abs_link", open("/mnt/rw/abs_link", O_RDONLY));
    TRY("rel_link", open("/mnt/rw/rel_link", O_RDONLY));
    show_file("root_link_hostname", "/mnt/rw/root_link/etc/hostname");
    snprintf(path, sizeof path, "/mnt/rw/root_link%s", argv[1]);
    TRY("root_link_secret", open(path, O_RDONLY));
    /* symlinks made by the guest */
    TRY("mk_loop_a", symlink("/tmp/loop_b", "/tmp/loop_a"));
    TRY("mk_loop_b", symlink("/tmp/loop_a", "/tmp/loop_b"));
    TRY("loop", open("/tmp/loop_a", O_RDONLY));
    TRY("mk_self", symlink("self", "/tmp/self"));
    TRY("self_loop", open("/tmp/self", O_RDONLY));
    for (int i = 0; i < 41; i++) {
        char from[64], to[64];
        snprintf(from, sizeof from, "/tmp/chain%d", i);
        snprintf(to, sizeof to, "/tmp/chain%d", i + 1);
        symlink(to, from);
    }
    close(open("/tmp/chain41", O_CREAT | O_WRONLY, 0644));
    TRY("chain_41", open("/tmp/chain0", O_RDONLY));
    TRY("chain_40", open("/tmp/chain1", O_RDONLY));
    TRY("mk_guest_link", symlink(argv[1], "/tmp/to_host"));
    TRY("guest_link_to_host", open("/tmp/to_host", O_RDONLY));
    TRY("mk_link_in_mount", symlink("/etc/shadow", "/mnt/rw/guest_made"));
    TRY("link_in_mount", open("/mnt/rw/guest_made", O_RDONLY));
    /* /proc/self */
    ssize_t n = readlink("/proc/self/root", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("proc_self_root: %s\n", link);
    TRY("proc_self_root_shadow", open("/proc/self/root/etc/shadow", O_RDONLY));
    show_file("proc_self_root_hostname", "/proc/self/root/etc/hostname");
    snprintf(path, sizeof path, "/proc/self/root%s", argv[1]);
    TRY("proc_self_root_secret", open(path, O_RDONLY));
    n = readlink("/proc/self/exe", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("proc_self_exe: %s\n", link);
    /* moving files out of a mount */
    TRY("rename_out", rename("/mnt/rw/file.txt", "/tmp/stolen"));
    TRY("rename_in", rename("/tmp/chain41", "/mnt/rw/planted"));
    /* the read-only mount */
    TRY("ro_open_write", open("/mnt/ro/data.txt", O_WRONLY));
    TRY("ro_open_rdwr", open("/mnt/ro/data.txt", O_RDWR));
    TRY("ro_create", open("/mnt/ro/new.txt", O_CREAT | O_WRONLY, 0644));
    TRY("ro_trunc", open("/mnt/ro/data.txt", O_RDONLY | O_TRUNC));
    TRY("ro_unlink", unlink("/mnt/ro/data.txt"));
    TRY("ro_mkdir", mkdir("/mnt/ro/d", 0755));
    TRY("ro_rmdir", rmdir("/mnt/ro"));
    TRY("ro_rename", rename("/mnt/ro/data.txt", "/mnt/ro/moved.txt"));
    TRY("ro_symlink", symlink("x", "/mnt/ro/l"));
    TRY("ro_truncate", truncate("/mnt/ro/data.txt", 0));
    int fd = open("/mnt/ro/data.txt", O_RDONLY);
    TRY("ro_ftruncate", ftruncate(fd, 0));
    TRY("ro_write_rdonly_fd", write(fd, "x", 1));
    void *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("ro_mmap_shared_write: ret=%d errno=%d\n", p == MAP_FAILED ? -1 : 1, p == MAP_FAILED ? errno : 0);
    char *q = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("ro_mmap_private_write: ret=%d errno=%d\n", q == MAP_FAILED ? -1 : 1, q == MAP_FAILED ? errno : 0);
    if (q != MAP_FAILED) {
        memcpy(q, "PRIVATE", 7);
        msync(q, 4096, MS_SYNC);
        munmap(q, 4096);
    }
    show_file("ro_data_after", "/mnt/ro/data.txt");
    return 0;
}
