/*
 * fileio DIR
 *
 * Self-checking tests of file system calls in DIR: open(O_CREAT|O_RDWR),
 * write, pwrite, pread, read, lseek (SEEK_SET/CUR/END), fstat, ftruncate
 * (grow and shrink), fsync, fallocate (mode 0), close, newfstatat,
 * getdents64, unlink.  All files it makes are named "fileio_*" and are
 * removed again; the directory listing prints only those names (sorted),
 * so other files in DIR do not change the output.
 *
 * Prints "ok N name" per passed check and "all ok" at the end; on the
 * first failure prints "FAIL: name: detail" and exits 1.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int test_number;
static const char *test_name;

static void begin(const char *name)
{
    test_number++;
    test_name = name;
}

static void pass(void)
{
    printf("ok %d %s\n", test_number, test_name);
}

static void check(int cond, const char *detail)
{
    if (!cond) {
        printf("FAIL: %s: %s (errno %d)\n", test_name, detail, errno);
        exit(1);
    }
}

static char dir_path[4096];

static void path_of(char *out, size_t size, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir_path, name);
    if (n < 0 || (size_t)n >= size) {
        printf("FAIL: path too long\n");
        exit(1);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Creates a small file with the given contents; used to fill the listing. */
static void make_file(const char *name, const char *text)
{
    char path[4200];
    path_of(path, sizeof path, name);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    check(fd >= 0, "open extra file");
    check(write(fd, text, strlen(text)) == (ssize_t)strlen(text),
          "write extra file");
    check(close(fd) == 0, "close extra file");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fileio DIR\n");
        return 2;
    }
    snprintf(dir_path, sizeof dir_path, "%s", argv[1]);

    char path[4200];
    path_of(path, sizeof path, "fileio_main.dat");
    char buf[8192];
    struct stat st;

    begin("open O_CREAT|O_RDWR");
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    check(fd >= 0, "open failed");
    check(fstat(fd, &st) == 0, "fstat failed");
    check(S_ISREG(st.st_mode), "not a regular file");
    check(st.st_size == 0, "new file not empty");
    pass();

    begin("write");
    const char text[] = "The quick brown fox jumps over the lazy dog.\n";
    size_t tlen = strlen(text);
    check(write(fd, text, tlen) == (ssize_t)tlen, "write failed");
    check(write(fd, text, tlen) == (ssize_t)tlen, "second write failed");
    check(lseek(fd, 0, SEEK_CUR) == (off_t)(2 * tlen), "offset after writes");
    pass();

    begin("pwrite past end leaves a hole");
    const char tail[] = "TAIL";
    check(pwrite(fd, tail, 4, 5000) == 4, "pwrite failed");
    check(lseek(fd, 0, SEEK_CUR) == (off_t)(2 * tlen),
          "pwrite moved the file offset");
    check(fstat(fd, &st) == 0, "fstat failed");
    check(st.st_size == 5004, "size after pwrite");
    printf("size %lld\n", (long long)st.st_size);
    pass();

    begin("pread");
    memset(buf, 'x', sizeof buf);
    check(pread(fd, buf, 10, 4) == 10, "pread failed");
    check(memcmp(buf, "quick brow", 10) == 0, "pread contents");
    check(pread(fd, buf, 100, 4990) == 14, "pread at end not short");
    for (int i = 0; i < 10; i++)
        check(buf[i] == 0, "hole not zero");
    check(memcmp(buf + 10, "TAIL", 4) == 0, "pread tail contents");
    check(pread(fd, buf, 10, 6000) == 0, "pread past end not 0");
    pass();

    begin("lseek SEEK_SET/SEEK_CUR/SEEK_END and read");
    check(lseek(fd, 10, SEEK_SET) == 10, "SEEK_SET");
    check(read(fd, buf, 5) == 5, "read after SEEK_SET");
    check(memcmp(buf, "brown", 5) == 0, "read contents after SEEK_SET");
    check(lseek(fd, 0, SEEK_CUR) == 15, "SEEK_CUR 0");
    check(lseek(fd, 5, SEEK_CUR) == 20, "SEEK_CUR +5");
    check(read(fd, buf, 5) == 5 && memcmp(buf, "jumps", 5) == 0,
          "read after SEEK_CUR");
    check(lseek(fd, -4, SEEK_END) == 5000, "SEEK_END -4");
    check(read(fd, buf, 100) == 4 && memcmp(buf, "TAIL", 4) == 0,
          "read after SEEK_END");
    check(read(fd, buf, 100) == 0, "read at end of file not 0");
    errno = 0;
    check(lseek(fd, -1, SEEK_SET) == -1 && errno == EINVAL,
          "negative SEEK_SET not EINVAL");
    pass();

    begin("ftruncate grow");
    check(ftruncate(fd, 12000) == 0, "ftruncate failed");
    check(fstat(fd, &st) == 0 && st.st_size == 12000, "size after grow");
    check(pread(fd, buf, 8192, 5000) == 7000, "pread grown part");
    check(memcmp(buf, "TAIL", 4) == 0, "old tail lost");
    for (int i = 4; i < 7000; i++)
        check(buf[i] == 0, "grown part not zero");
    printf("size %lld\n", (long long)st.st_size);
    pass();

    begin("ftruncate shrink");
    check(ftruncate(fd, 20) == 0, "ftruncate failed");
    check(fstat(fd, &st) == 0 && st.st_size == 20, "size after shrink");
    check(pread(fd, buf, 100, 0) == 20, "pread after shrink");
    check(memcmp(buf, text, 20) == 0, "contents after shrink");
    /* Growing again must not bring back the old bytes. */
    check(ftruncate(fd, 100) == 0, "ftruncate regrow failed");
    check(pread(fd, buf, 100, 0) == 100, "pread after regrow");
    for (int i = 20; i < 100; i++)
        check(buf[i] == 0, "old data visible after shrink and regrow");
    check(fstat(fd, &st) == 0 && st.st_size == 100, "size after regrow");
    printf("size %lld\n", (long long)st.st_size);
    pass();

    begin("fsync");
    check(fsync(fd) == 0, "fsync failed");
    check(fdatasync(fd) == 0, "fdatasync failed");
    pass();

    begin("fallocate mode 0");
    check(fallocate(fd, 0, 0, 65536) == 0, "fallocate failed");
    check(fstat(fd, &st) == 0 && st.st_size == 65536, "size after fallocate");
    check(pread(fd, buf, 100, 0) == 100, "pread after fallocate");
    check(memcmp(buf, text, 20) == 0, "data changed by fallocate");
    check(pread(fd, buf, 100, 65000) == 100, "pread allocated part");
    for (int i = 0; i < 100; i++)
        check(buf[i] == 0, "allocated part not zero");
    /* Allocating inside the file does not change its size. */
    check(fallocate(fd, 0, 4096, 4096) == 0, "fallocate inside failed");
    check(fstat(fd, &st) == 0 && st.st_size == 65536, "size changed");
    printf("size %lld\n", (long long)st.st_size);
    pass();

    begin("close");
    check(close(fd) == 0, "close failed");
    errno = 0;
    check(close(fd) == -1 && errno == EBADF, "second close not EBADF");
    pass();

    begin("newfstatat");
    memset(&st, 0, sizeof st);
    check(syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0,
          "newfstatat failed");
    check(S_ISREG(st.st_mode), "not a regular file");
    check(st.st_size == 65536, "size");
    check(fstatat(AT_FDCWD, path, &st, 0) == 0 && st.st_size == 65536,
          "fstatat failed");
    check(stat(dir_path, &st) == 0 && S_ISDIR(st.st_mode),
          "DIR is not a directory");
    errno = 0;
    char missing[4200];
    path_of(missing, sizeof missing, "fileio_missing");
    check(fstatat(AT_FDCWD, missing, &st, 0) == -1 && errno == ENOENT,
          "missing file not ENOENT");
    pass();

    begin("getdents64");
    make_file("fileio_b.txt", "bee\n");
    make_file("fileio_a.txt", "ay\n");
    make_file("fileio_c.txt", "sea\n");
    int dfd = open(dir_path, O_RDONLY | O_DIRECTORY);
    check(dfd >= 0, "open DIR failed");
    char *names[64];
    int count = 0, dots = 0;
    char dbuf[4096];
    for (;;) {
        ssize_t n = getdents64(dfd, dbuf, sizeof dbuf);
        check(n >= 0, "getdents64 failed");
        if (n == 0)
            break;
        for (ssize_t pos = 0; pos < n;) {
            struct dirent64 *d = (struct dirent64 *)(dbuf + pos);
            if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
                dots++;
            else if (strncmp(d->d_name, "fileio_", 7) == 0 && count < 64)
                names[count++] = strdup(d->d_name);
            pos += d->d_reclen;
        }
    }
    check(close(dfd) == 0, "close DIR failed");
    check(dots == 2, "'.' and '..' not both listed");
    qsort(names, (size_t)count, sizeof names[0], cmp_str);
    for (int i = 0; i < count; i++) {
        printf("entry %s\n", names[i]);
        free(names[i]);
    }
    check(count == 4, "wrong number of fileio_ entries");
    pass();

    begin("unlink");
    const char *extra[] = { "fileio_a.txt", "fileio_b.txt", "fileio_c.txt" };
    for (int i = 0; i < 3; i++) {
        char p2[4200];
        path_of(p2, sizeof p2, extra[i]);
        check(unlink(p2) == 0, "unlink extra file failed");
    }
    check(unlink(path) == 0, "unlink failed");
    errno = 0;
    check(open(path, O_RDWR) == -1, "open after unlink succeeded");
    check(errno == ENOENT, "open after unlink not ENOENT");
    errno = 0;
    check(unlink(path) == -1 && errno == ENOENT, "second unlink not ENOENT");
    pass();

    printf("all ok\n");
    return 0;
}
