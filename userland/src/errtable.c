/*
 * errtable: system calls with one bad argument each, through syscall(2) (no glibc checks in between),
 * printing the call and the errno it failed with. tests/test_errno_native.py compares the lines with
 * the same program run natively.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/ipc.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#define BAD ((void *)1)                 /* an address that is never mapped */
#define KADDR ((void *)0xffffffff81000000UL)   /* a kernel address */

static void row(const char *what, long ret)
{
	printf("%-44s %s\n", what, ret < 0 ? strerrorname_np(errno) : ret == 0 ? "0" : "ok");
}

#define T(what, call) do { errno = 0; row(what, (long)(call)); } while (0)

int main(void)
{
	struct stat st;
	struct timespec ts;
	struct rlimit rl;
	char buf[64];
	int p[2];
	if (pipe(p))
		return 1;
	int fd = open("/proc/self/maps", O_RDONLY);

	T("fstat(bad fd)", syscall(SYS_fstat, 999, &st));
	T("fstat(-1)", syscall(SYS_fstat, -1, &st));
	T("fstat(NULL buf)", syscall(SYS_fstat, 0, NULL));
	T("fstat(unmapped buf)", syscall(SYS_fstat, 0, BAD));
	T("fstat(kernel buf)", syscall(SYS_fstat, 0, KADDR));
	T("newfstatat(NULL path)", syscall(SYS_newfstatat, AT_FDCWD, NULL, &st, 0));
	T("newfstatat(bad flags)", syscall(SYS_newfstatat, AT_FDCWD, "/", &st, 0x40000000));
	T("stat(missing)", syscall(SYS_stat, "/no/such/file", &st));
	T("stat(NULL buf)", syscall(SYS_stat, "/", NULL));
	T("stat(empty path)", syscall(SYS_stat, "", &st));
	T("open(NULL)", syscall(SYS_open, NULL, O_RDONLY));
	T("open(empty)", syscall(SYS_open, "", O_RDONLY));
	T("open(missing)", syscall(SYS_open, "/no/such/file", O_RDONLY));
	T("open(dir for write)", syscall(SYS_open, "/", O_WRONLY));
	T("open(file as dir)", syscall(SYS_open, "/proc/self/maps/x", O_RDONLY));
	T("read(bad fd)", syscall(SYS_read, 999, buf, 1));
	T("read(write end)", syscall(SYS_read, p[1], buf, 1));
	T("read(NULL buf)", syscall(SYS_read, fd, NULL, 16));
	T("write(read end)", syscall(SYS_write, p[0], "x", 1));
	T("write(unmapped buf)", syscall(SYS_write, p[1], BAD, 1));
	T("pread64(pipe)", syscall(SYS_pread64, p[0], buf, 1, 0));
	T("pread64(negative offset)", syscall(SYS_pread64, fd, buf, 1, -1));
	T("readv(NULL iov)", syscall(SYS_readv, fd, NULL, 1));
	T("readv(too many iov)", syscall(SYS_readv, fd, buf, 100000));
	T("lseek(pipe)", syscall(SYS_lseek, p[0], 0, SEEK_SET));
	T("lseek(bad whence)", syscall(SYS_lseek, fd, 0, 99));
	T("lseek(negative)", syscall(SYS_lseek, fd, -10, SEEK_SET));
	T("close(bad fd)", syscall(SYS_close, 999));
	T("dup(bad fd)", syscall(SYS_dup, 999));
	T("dup2(to negative)", syscall(SYS_dup2, 0, -1));
	T("dup3(same fd)", syscall(SYS_dup3, 0, 0, 0));
	T("dup3(bad flags)", syscall(SYS_dup3, 0, 5, 1));
	T("fcntl(bad cmd)", syscall(SYS_fcntl, 0, 9999));
	T("fcntl(bad fd)", syscall(SYS_fcntl, 999, F_GETFD));
	T("pipe(NULL)", syscall(SYS_pipe, NULL));
	T("pipe2(bad flags)", syscall(SYS_pipe2, p, 0x7fff));
	T("ioctl(pipe, TCGETS)", syscall(SYS_ioctl, p[0], 0x5401, buf));
	T("mmap(len 0)", syscall(SYS_mmap, 0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	T("mmap(no type)", syscall(SYS_mmap, 0, 4096, PROT_READ, MAP_ANONYMOUS, -1, 0));
	T("mmap(bad fd)", syscall(SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE, 999, 0));
	T("mmap(unaligned offset)", syscall(SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE, fd, 1));
	T("mmap(huge)", syscall(SYS_mmap, 0, 1UL << 62, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	T("mmap(pipe)", syscall(SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE, p[0], 0));
	T("munmap(unaligned)", syscall(SYS_munmap, 4097, 4096));
	T("munmap(len 0)", syscall(SYS_munmap, 0x10000000, 0));
	T("mprotect(unaligned)", syscall(SYS_mprotect, 4097, 4096, PROT_READ));
	T("mprotect(unmapped)", syscall(SYS_mprotect, 0x10000000, 4096, PROT_READ));
	T("mprotect(bad prot)", syscall(SYS_mprotect, 0x10000000, 4096, 0x100));
	T("madvise(bad advice)", syscall(SYS_madvise, 0x10000000, 4096, 9999));
	T("madvise(unmapped)", syscall(SYS_madvise, 0x10000000, 4096, MADV_DONTNEED));
	T("mremap(unaligned)", syscall(SYS_mremap, 4097, 4096, 8192, 0, 0));
	T("msync(bad flags)", syscall(SYS_msync, 0x10000000, 4096, 0xff));
	T("brk(0)", syscall(SYS_brk, 0) > 0 ? 1 : -1);
	T("clock_gettime(bad clock)", syscall(SYS_clock_gettime, 999, &ts));
	T("clock_gettime(NULL)", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, NULL));
	T("clock_getres(bad clock)", syscall(SYS_clock_getres, 999, &ts));
	T("nanosleep(NULL)", syscall(SYS_nanosleep, NULL, NULL));
	ts.tv_sec = 0;
	ts.tv_nsec = 2000000000;
	T("nanosleep(bad nsec)", syscall(SYS_nanosleep, &ts, NULL));
	T("gettimeofday(unmapped)", syscall(SYS_gettimeofday, BAD, NULL));
	T("uname(NULL)", syscall(SYS_uname, NULL));
	T("getcwd(NULL)", syscall(SYS_getcwd, NULL, 64));
	T("getcwd(size 1)", syscall(SYS_getcwd, buf, 1));
	T("chdir(missing)", syscall(SYS_chdir, "/no/such/dir"));
	T("chdir(file)", syscall(SYS_chdir, "/proc/self/maps"));
	T("chdir(NULL)", syscall(SYS_chdir, NULL));
	T("getrlimit(bad resource)", syscall(SYS_getrlimit, 999, &rl));
	T("getrlimit(NULL)", syscall(SYS_getrlimit, RLIMIT_NOFILE, NULL));
	T("prlimit64(bad pid)", syscall(SYS_prlimit64, 999999, RLIMIT_NOFILE, NULL, &rl));
	T("rt_sigaction(SIGKILL)", syscall(SYS_rt_sigaction, SIGKILL, BAD, NULL, 8));
	T("rt_sigaction(bad signal)", syscall(SYS_rt_sigaction, 999, NULL, NULL, 8));
	T("rt_sigaction(bad sigsetsize)", syscall(SYS_rt_sigaction, SIGUSR1, NULL, NULL, 4));
	T("rt_sigprocmask(bad how)", syscall(SYS_rt_sigprocmask, 99, buf, NULL, 8));
	T("rt_sigprocmask(unmapped set)", syscall(SYS_rt_sigprocmask, SIG_BLOCK, BAD, NULL, 8));
	T("kill(bad signal)", syscall(SYS_kill, getpid(), 999));
	T("kill(no such pid)", syscall(SYS_kill, 999999, 0));
	T("tgkill(bad tgid)", syscall(SYS_tgkill, 0, 1, SIGUSR1));
	T("wait4(no children)", syscall(SYS_wait4, -1, NULL, 0, NULL));
	T("wait4(bad options)", syscall(SYS_wait4, -1, NULL, 0x7fff, NULL));
	T("sched_getaffinity(size 0)", syscall(SYS_sched_getaffinity, 0, 0, buf));
	T("sched_getaffinity(NULL)", syscall(SYS_sched_getaffinity, 0, 64, NULL));
	T("getrandom(NULL)", syscall(SYS_getrandom, NULL, 16, 0));
	T("getrandom(bad flags)", syscall(SYS_getrandom, buf, 16, 0xff));
	T("futex(bad op)", syscall(SYS_futex, buf, 99, 0, NULL, NULL, 0));
	T("futex(unmapped)", syscall(SYS_futex, BAD, 0 /* WAIT */, 0, NULL, NULL, 0));
	T("execve(NULL)", syscall(SYS_execve, NULL, NULL, NULL));
	T("execve(missing)", syscall(SYS_execve, "/no/such/prog", NULL, NULL));
	T("unlink(missing)", syscall(SYS_unlink, "/no/such/file"));
	T("unlink(NULL)", syscall(SYS_unlink, NULL));
	T("mkdir(NULL)", syscall(SYS_mkdir, NULL, 0755));
	T("rmdir(missing)", syscall(SYS_rmdir, "/no/such/dir"));
	T("readlink(NULL buf)", syscall(SYS_readlink, "/proc/self/exe", NULL, 64));
	T("readlink(size 0)", syscall(SYS_readlink, "/proc/self/exe", buf, 0));
	T("fstatfs(NULL)", syscall(SYS_fstatfs, fd, NULL));
	T("statfs(missing)", syscall(SYS_statfs, "/no/such", buf));
	T("poll(unmapped fds)", syscall(SYS_poll, BAD, 1, 0));
	T("sigaltstack(unmapped)", syscall(SYS_sigaltstack, BAD, NULL));
	T("set_tid_address(any)", syscall(SYS_set_tid_address, BAD) > 0 ? 1 : -1);

	/* the order of checks: which bad argument a call reports first */
	T("symlink(empty target, kernel linkpath)", syscall(SYS_symlink, "", KADDR));
	T("readlink(empty path)", syscall(SYS_readlink, "", buf, sizeof(buf)));
	T("sendto(kernel buf, bad fd)", syscall(SYS_sendto, 999, KADDR, 16, 0, NULL, 0));
	T("madvise(kernel addr, len 0)", syscall(SYS_madvise, KADDR, 0, MADV_DONTNEED));
	T("shmget(size above LLONG_MAX)", syscall(SYS_shmget, IPC_PRIVATE, 1UL << 63, IPC_CREAT | 0600));
	T("mmap(anonymous MAP_SHARED_VALIDATE)", syscall(SYS_mmap, 0, 4096, PROT_READ,
	                                                 MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0));
	void *taken = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int nullfd = open("/dev/null", O_RDWR);
	T("mmap(/dev/null, NOREPLACE on a mapping)", syscall(SYS_mmap, taken, 4096, PROT_READ,
	                                                     MAP_SHARED | MAP_FIXED_NOREPLACE, nullfd, 0));
	T("mmap(unknown flag, NOREPLACE on a mapping)", syscall(SYS_mmap, taken, 4096, PROT_READ,
	                                                       MAP_SHARED_VALIDATE | MAP_FIXED_NOREPLACE | 0x800000,
	                                                       nullfd, 0));
	T("fcntl(F_GETSIG)", syscall(SYS_fcntl, fd, F_GETSIG));
	T("fcntl(F_SETSIG 65)", syscall(SYS_fcntl, fd, F_SETSIG, 65));
	T("fcntl(F_GETLK, unmapped)", syscall(SYS_fcntl, fd, F_GETLK, BAD));
	struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
	T("fcntl(F_GETLK, F_UNLCK)", syscall(SYS_fcntl, fd, F_GETLK, &fl));
	fl.l_type = F_RDLCK;
	fl.l_whence = 7;
	T("fcntl(F_SETLK, bad whence)", syscall(SYS_fcntl, fd, F_SETLK, &fl));
	fl.l_whence = SEEK_SET;
	fl.l_type = F_WRLCK;
	T("fcntl(F_SETLK, write lock, read-only fd)", syscall(SYS_fcntl, fd, F_SETLK, &fl));
	fl.l_type = F_RDLCK;
	fl.l_pid = 1;
	T("fcntl(F_OFD_SETLK, l_pid set)", syscall(SYS_fcntl, fd, F_OFD_SETLK, &fl));
	fl.l_pid = 0;
	fl.l_start = -1;
	T("fcntl(F_SETLK, negative start)", syscall(SYS_fcntl, fd, F_SETLK, &fl));
	fl.l_start = 0x7fffffffffffffffL;
	fl.l_len = 2;
	T("fcntl(F_SETLK, end overflows)", syscall(SYS_fcntl, fd, F_SETLK, &fl));
	T("fcntl(O_PATH fd, F_GETLK)", syscall(SYS_fcntl, open("/", O_PATH), F_GETLK, &fl));
	T("fcntl(F_SETOWN, no such process group)", syscall(SYS_fcntl, fd, F_SETOWN, -999999));
	int ep = epoll_create1(0);
	T("read(epoll fd)", syscall(SYS_read, ep, buf, 8));
	T("write(epoll fd, unmapped buf)", syscall(SYS_write, ep, BAD, 8));
	T("fsync(epoll fd)", syscall(SYS_fsync, ep));
	T("ioctl(epoll fd, unknown)", syscall(SYS_ioctl, ep, 0x1234, 0));
	T("ioctl(FIGETBSZ, NULL)", syscall(SYS_ioctl, ep, 2, NULL));
	T("fadvise64(pipe, bad advice)", syscall(SYS_fadvise64, p[0], 0, 0, 99));
	T("fadvise64(advice in the high half)", syscall(SYS_fadvise64, fd, 0, 0, 1UL << 40));
	T("mmap(bad map type, NOREPLACE on a mapping)", syscall(SYS_mmap, taken, 4096, PROT_READ,
	                                                       7 | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
	T("mmap(pipe write end, shared read)", syscall(SYS_mmap, 0, 4096, PROT_READ, MAP_SHARED, p[1], 0));
	int afd = open("/tmp/errtable.append", O_RDWR | O_CREAT | O_APPEND | O_TRUNC, 0600);
	T("ftruncate(O_APPEND file)", syscall(SYS_ftruncate, afd, 4096));
	T("mmap(O_APPEND file, shared write)", syscall(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, afd, 0)
	                                        > 0 ? 1 : -1);
	unlink("/tmp/errtable.append");
	T("mincore(mapped, then a hole; read-only vec)", syscall(SYS_mincore, taken, 2 << 20, (void *)main));
	T("openat(O_TMPFILE | O_TRUNC, read-only)", syscall(SYS_openat, AT_FDCWD, "/tmp", O_TMPFILE | O_TRUNC, 0600));
	int opath = open("/tmp", O_PATH);
	T("lseek(O_PATH fd)", syscall(SYS_lseek, opath, 0, SEEK_SET));
	T("getdents64(O_PATH fd)", syscall(SYS_getdents64, opath, buf, sizeof(buf)));
	T("fsync(O_PATH fd)", syscall(SYS_fsync, opath));
	T("ioctl(O_PATH fd)", syscall(SYS_ioctl, opath, 0x5401, buf));
	T("getpeername(O_PATH fd)", syscall(SYS_getpeername, opath, buf, &(socklen_t){16}));
	T("fstat(O_PATH fd)", syscall(SYS_fstat, opath, &st));
	T("fcntl(F_GETFL) of a new file", syscall(SYS_fcntl, afd = open("/tmp/errtable.fl", O_RDWR | O_CREAT | O_TRUNC, 0600),
	                                          F_GETFL) == (O_RDWR | 0100000) ? 1 : -1);  /* O_LARGEFILE as the kernel sets it */
	unlink("/tmp/errtable.fl");
	T("fcntl(F_SETOWN_EX, unmapped)", syscall(SYS_fcntl, fd, F_SETOWN_EX, BAD));
	T("fcntl(F_GETOWN_EX, unmapped)", syscall(SYS_fcntl, fd, F_GETOWN_EX, BAD));
	T("mmap(/dev/null, SHARED_VALIDATE|NOREPLACE)", syscall(SYS_mmap, 0x10000000, 4096, PROT_READ,
	                                                         MAP_SHARED_VALIDATE | MAP_FIXED_NOREPLACE, nullfd, 0));
	T("unlink(/proc/self/maps)", syscall(SYS_unlink, "/proc/self/maps"));
	T("newfstatat(bad dirfd, \"\", bad flags)", syscall(SYS_newfstatat, 999, "", &st, -1));
	T("newfstatat(bad dirfd, NULL, AT_EMPTY_PATH)", syscall(SYS_newfstatat, 999, NULL, &st, AT_EMPTY_PATH));
	T("newfstatat(unmapped path, AT_EMPTY_PATH, bad flags)", syscall(SYS_newfstatat, 999, BAD, &st, -1));
	T("mmap(MAP_HUGETLB 128 TiB, bad map type)", syscall(SYS_mmap, 0, 1UL << 47, PROT_READ,
	                                                    0xa | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0));
	int maps = open("/proc/self/maps", O_RDONLY);
	T("mmap(/proc/self/maps, PROT_EXEC)", syscall(SYS_mmap, 0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, maps, 0));
	T("mmap(/proc/self/maps)", syscall(SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE, maps, 0));
	T("mprotect(PROT_GROWSUP)", syscall(SYS_mprotect, taken, 4096, PROT_READ | PROT_GROWSUP));
	T("mprotect(PROT_GROWSDOWN, not a stack)", syscall(SYS_mprotect, taken, 4096, PROT_READ | PROT_GROWSDOWN));
	T("mmap(MAP_LOCKED over RLIMIT_MEMLOCK, NOREPLACE)", syscall(SYS_mmap, taken, 64 << 20, PROT_READ,
	                                                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED |
	                                                            MAP_FIXED_NOREPLACE, -1, 0));
	return 0;
}
