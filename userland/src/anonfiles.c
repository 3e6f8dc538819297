/*
 * anonfiles: what each kind of anonymous-inode file (epoll, eventfd, userfaultfd, io_uring) and
 * secretmem does with the generic file calls: read/write (FMODE_CAN_READ/WRITE, eventfd's own size
 * check), lseek (noop_llseek or none), pread, fsync, chmod/chown (anon_inode_setattr), ftruncate,
 * fallocate, fadvise, getdents, mmap. tests/test_errno_native.py compares the lines with a native run.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
static char *volatile bad = (char *)1;       /* never mapped (volatile: no compiler warning) */

static void r(const char *w, long x){ printf("%-28s %s\n", w, x<0?strerrorname_np(errno):"ok"); }
static void probe(const char *n, int fd){
 char b[64], name[64]; struct iovec iov = {b, 8};
 if (fd < 0) { printf("%s: create %s\n", n, strerrorname_np(errno)); return; }
 snprintf(name, 64, "%s read 8", n); r(name, read(fd, b, 8));
 snprintf(name, 64, "%s read 3", n); r(name, read(fd, b, 3));
 snprintf(name, 64, "%s read bad", n); r(name, read(fd, bad, 8));
 snprintf(name, 64, "%s write 3", n); r(name, write(fd, b, 3));
 snprintf(name, 64, "%s write bad", n); r(name, write(fd, bad, 8));
 snprintf(name, 64, "%s writev bad", n); iov.iov_base = bad; r(name, writev(fd, &iov, 1));
 snprintf(name, 64, "%s lseek", n); r(name, lseek(fd, 5, SEEK_SET));
 snprintf(name, 64, "%s pread", n); r(name, pread(fd, b, 8, 0));
 snprintf(name, 64, "%s fsync", n); r(name, fsync(fd));
 snprintf(name, 64, "%s fchmod", n); r(name, fchmod(fd, 0644));
 snprintf(name, 64, "%s fchown", n); r(name, fchown(fd, 1, 1));
 snprintf(name, 64, "%s ftruncate", n); r(name, ftruncate(fd, 0));
 snprintf(name, 64, "%s fallocate", n); r(name, fallocate(fd, 0, 0, 4096));
 snprintf(name, 64, "%s fadvise", n); errno = posix_fadvise(fd, 0, 0, 0); r(name, errno ? -1 : 0);
 snprintf(name, 64, "%s getdents", n); r(name, syscall(SYS_getdents64, fd, b, 64));
 snprintf(name, 64, "%s mmap", n); r(name, (long)syscall(SYS_mmap, 0, 4096, 1, 1, fd, 0) < 0 && errno < 4096 ? -1 : 0);
}
int main(){
 probe("epoll", epoll_create1(0));
 probe("eventfd", eventfd(0, EFD_NONBLOCK));
 probe("uffd", syscall(SYS_userfaultfd, O_NONBLOCK));
 unsigned char params[120] = {0};
 probe("io_uring", syscall(425, 4, params));
 probe("secretmem", syscall(447, 0));
 return 0;
}
