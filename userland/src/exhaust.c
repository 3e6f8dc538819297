/*
 * exhaust: run out of a resource and report how Linux says so, then go on.
 *
 *   exhaust tmpfs DIR MIB   DIR is a tmpfs smaller than MIB MiB: write(2) until it fails, fallocate, a
 *                           shared mapping's MADV_POPULATE_WRITE and plain stores past the space left
 *   exhaust nofile N        RLIMIT_NOFILE = N: open until it fails, then close one and open again
 *   exhaust disk DIR        DIR is on a small disk filesystem: fill it with write(2), then mkdir, creat,
 *                           fallocate, fsync and stores through a shared mapping of a hole, then free
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static sigjmp_buf env;
static volatile int got_sig, got_code;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got_sig = sig;
	got_code = si->si_code;
	siglongjmp(env, 1);
}

static const char *err(long r)
{
	return r < 0 ? strerrorname_np(errno) : "ok";
}

/* create path afresh and write(2) buf to it until that fails; the descriptor */
static int write_until_full(const char *path, const char *buf, size_t size)
{
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ssize_t n;
	size_t total = 0;
	while ((n = write(fd, buf, size)) > 0)
		total += n;
	printf("write until full: %s (wrote something: %s)\n", err(n), total ? "yes" : "no");
	return fd;
}

static int tmpfs(const char *dir, size_t len)
{
	char path[256];
	static char buf[65536];
	memset(buf, 'x', sizeof(buf));
	snprintf(path, sizeof(path), "%s/exhaust.fill", dir);

	int fd = write_until_full(path, buf, sizeof(buf));
	printf("write when full: %s\n", err(write(fd, buf, 4096)));
	close(fd);
	unlink(path);

	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	printf("fallocate past the size: %s\n", err(fallocate(fd, 0, 0, (off_t)len)));
	printf("ftruncate past the size: %s\n", err(ftruncate(fd, (off_t)len)));
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	printf("MADV_POPULATE_WRITE past the size: %s\n", err(madvise(p, len, MADV_POPULATE_WRITE)));
	munmap(p, len);
	close(fd);
	unlink(path);

	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (ftruncate(fd, (off_t)len))
		return 1;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	size_t off = 0;
	if (!sigsetjmp(env, 1))
		for (; off < len; off += 4096)
			p[off] = 1;
	printf("stores past the size: %s %s\n", got_sig == SIGBUS ? "SIGBUS" : "no signal",
	       got_code == BUS_ADRERR ? "BUS_ADRERR" : "");
	munmap(p, len);
	close(fd);
	unlink(path);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	printf("write after freeing: %s\n", err(write(fd, buf, 4096)));
	close(fd);
	unlink(path);
	return 0;
}

static int nofile(int n)
{
	struct rlimit rl = {n, n};
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return 1;
	int fd, count = 0, last = -1;
	while ((fd = open("/", O_RDONLY)) >= 0) {
		count++;
		last = fd;
	}
	printf("open until EMFILE: %s, highest fd %d\n", strerrorname_np(errno), last);
	printf("dup when full: %s\n", err(dup(0)));
	printf("fcntl(F_DUPFD) at the limit: %s\n", err(fcntl(0, F_DUPFD, n)));
	printf("dup2 to the limit: %s\n", err(dup2(0, n)));
	int p[2];
	printf("pipe when full: %s\n", err(pipe(p)));
	close(last);
	printf("open after a close: %s\n", err(open("/", O_RDONLY)));
	return 0;
}

static int disk(const char *dir)
{
	char fill[256], hole[256], sub[256], empty[256];
	static char buf[65536];
	memset(buf, 'x', sizeof(buf));
	snprintf(fill, sizeof(fill), "%s/exhaust.fill", dir);
	snprintf(hole, sizeof(hole), "%s/exhaust.hole", dir);
	snprintf(sub, sizeof(sub), "%s/exhaust.dir", dir);
	snprintf(empty, sizeof(empty), "%s/exhaust.empty", dir);

	/* the file with a hole exists before the disk fills: its pages need blocks only when stored to */
	int hfd = open(hole, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (hfd < 0 || ftruncate(hfd, 1 << 20))
		return 1;
	int fd = write_until_full(fill, buf, sizeof(buf));
	/* a few blocks may still be free after a partial write: fill them one page at a time */
	while (write(fd, buf, 4096) > 0)
		;
	printf("write when full: %s\n", err(write(fd, buf, 4096)));
	printf("fsync after ENOSPC: %s\n", err(fsync(fd)));
	printf("mkdir when full: %s\n", err(mkdir(sub, 0700)));
	int efd = open(empty, O_CREAT | O_RDWR | O_TRUNC, 0600);
	printf("creat when full: %s\n", err(efd));
	printf("fallocate when full: %s\n", err(efd < 0 ? -1 : fallocate(efd, 0, 0, 1 << 20)));
	char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, hfd, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	if (!getenv("EXHAUST_NO_HANDLER"))      /* else the store's SIGBUS ends the program */
		sigaction(SIGBUS, &sa, NULL);
	got_sig = got_code = 0;
	size_t off = 0;
	if (!sigsetjmp(env, 1))
		for (; off < (1 << 20); off += 4096)
			p[off] = 1;
	printf("stores to a hole when full: %s %s\n", got_sig == SIGBUS ? "SIGBUS" : "no signal",
	       got_code == BUS_ADRERR ? "BUS_ADRERR" : "");
	munmap(p, 1 << 20);
	close(hfd);
	close(fd);
	unlink(fill);
	sync();
	printf("mkdir after freeing: %s\n", err(mkdir(sub, 0700)));
	printf("write after freeing: %s\n", err(efd < 0 ? -1 : write(efd, buf, 4096)));
	printf("fsync after freeing: %s\n", err(efd < 0 ? -1 : fsync(efd)));
	close(efd);
	rmdir(sub);
	unlink(empty);
	unlink(hole);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "tmpfs"))
		return tmpfs(argv[2], strtoul(argv[3], NULL, 0) << 20);
	if (argc == 3 && !strcmp(argv[1], "nofile"))
		return nofile(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "disk"))
		return disk(argv[2]);
	fprintf(stderr, "usage: exhaust tmpfs DIR MIB | exhaust nofile N | exhaust disk DIR\n");
	return 2;
}
