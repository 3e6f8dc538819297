/*
 * fcntllock: POSIX record locks and OFD locks between a parent and a forked child (fcntl F_GETLK,
 * F_SETLK, F_SETLKW, F_OFD_*): conflicts, splitting and merging, release on close and exit, a
 * waiter woken by an unlock, and the deadlock that F_SETLKW refuses with EDEADLK.
 * tests/test_fcntl_locks.py compares the output with a native run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *path = "/tmp/fcntllock.dat";

static int lk(int fd, int cmd, int type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	return fcntl(fd, cmd, &fl) ? -errno : 0;
}

/* F_GETLK for [start, start+len): "unlocked" or the lock found, with whose it is */
static void show(const char *what, int fd, int cmd, int type, off_t start, off_t len, pid_t who)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	if (fcntl(fd, cmd, &fl)) {
		printf("%s: %s\n", what, strerrorname_np(errno));
		return;
	}
	if (fl.l_type == F_UNLCK)
		printf("%s: unlocked\n", what);
	else
		printf("%s: %s [%ld, +%ld) by %s\n", what, fl.l_type == F_RDLCK ? "read" : "write", (long)fl.l_start,
		       (long)fl.l_len, fl.l_pid == who ? "the other process" : fl.l_pid == -1 ? "an OFD (-1)" : "someone else");
	fflush(stdout);
}

static const char *res(int r)
{
	return r ? strerrorname_np(-r) : "ok";
}

static void sync_read(int p)
{
	char c;
	if (read(p, &c, 1) != 1)
		exit(3);
}

int main(void)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 1000))
		return 1;
	int to_child[2], to_parent[2];
	if (pipe(to_child) || pipe(to_parent))
		return 1;
	pid_t parent = getpid();

	/* the parent's locks: write [0,100), read [200,300) and [300,400) (merged), then a hole punched */
	printf("parent write [0,100): %s\n", res(lk(fd, F_SETLK, F_WRLCK, 0, 100)));
	printf("parent read [200,300): %s\n", res(lk(fd, F_SETLK, F_RDLCK, 200, 100)));
	printf("parent read [300,400): %s\n", res(lk(fd, F_SETLK, F_RDLCK, 300, 100)));
	printf("parent unlock [40,60): %s\n", res(lk(fd, F_SETLK, F_UNLCK, 40, 20)));
	show("parent tests its own range", fd, F_GETLK, F_WRLCK, 0, 100, 0);
	fflush(stdout);

	pid_t child = fork();
	if (child == 0) {
		int cfd = open(path, O_RDWR);
		show("child tests [0,10)", cfd, F_GETLK, F_RDLCK, 0, 10, parent);
		show("child tests [40,60)", cfd, F_GETLK, F_WRLCK, 40, 20, parent);
		show("child tests [50,70)", cfd, F_GETLK, F_WRLCK, 50, 20, parent);
		show("child tests [250,260) for reading", cfd, F_GETLK, F_RDLCK, 250, 10, parent);
		show("child tests [250,260) for writing", cfd, F_GETLK, F_WRLCK, 250, 10, parent);
		show("child tests to the end from 150", cfd, F_GETLK, F_WRLCK, 150, 0, parent);
		printf("child write [10,20): %s\n", res(lk(cfd, F_SETLK, F_WRLCK, 10, 20)));
		printf("child read [350,360): %s\n", res(lk(cfd, F_SETLK, F_RDLCK, 350, 10)));
		printf("child write [40,60): %s\n", res(lk(cfd, F_SETLK, F_WRLCK, 40, 20)));
		printf("child write [500,600): %s\n", res(lk(cfd, F_SETLK, F_WRLCK, 500, 100)));
		fflush(stdout);
		if (write(to_parent[1], "a", 1) != 1)
			return 3;
		/* wait for the parent's [0,100) write lock: the parent unlocks it after this message */
		int r = lk(cfd, F_SETLKW, F_WRLCK, 0, 10);
		printf("child waited for [0,10): %s\n", res(r));
		fflush(stdout);
		if (write(to_parent[1], "b", 1) != 1)
			return 3;
		/* deadlock: the child holds [0,10) and waits for the parent's [700,710) */
		sync_read(to_child[0]);
		r = lk(cfd, F_SETLKW, F_WRLCK, 700, 10);
		close(cfd);                     /* lets the parent have [0,10) if it is waiting */
		_exit(r == -EDEADLK ? 1 : r ? 2 : 0);
	}
	sync_read(to_parent[0]);
	show("parent tests [500,510)", fd, F_GETLK, F_WRLCK, 500, 10, child);
	usleep(100000);
	int unlocked = lk(fd, F_SETLK, F_UNLCK, 0, 100);
	sync_read(to_parent[0]);                /* the child has its lock and said so */
	printf("parent unlock [0,100): %s\n", res(unlocked));
	printf("parent write [700,710): %s\n", res(lk(fd, F_SETLK, F_WRLCK, 700, 10)));
	fflush(stdout);
	if (write(to_child[1], "c", 1) != 1)
		return 3;
	usleep(100000);
	int r = lk(fd, F_SETLKW, F_WRLCK, 0, 10);
	if (r == -EDEADLK)                  /* lets the child have [700,710) */
		lk(fd, F_SETLK, F_UNLCK, 700, 10);
	int st;
	waitpid(child, &st, 0);
	/* exactly one of the two waits is refused with EDEADLK; the other gets its lock */
	printf("deadlock: %d EDEADLK, other errors %d\n", (r == -EDEADLK) + (WEXITSTATUS(st) == 1),
	       (r && r != -EDEADLK) + (WEXITSTATUS(st) == 2));
	show("after the child exited, [500,510)", fd, F_GETLK, F_WRLCK, 500, 10, child);

	/* OFD locks belong to the open file description: a second open conflicts, a dup does not */
	int o1 = open(path, O_RDWR), o2 = open(path, O_RDWR), o1dup = dup(o1);
	printf("ofd write [800,900) on o1: %s\n", res(lk(o1, F_OFD_SETLK, F_WRLCK, 800, 100)));
	printf("ofd write [850,860) on o2: %s\n", res(lk(o2, F_OFD_SETLK, F_WRLCK, 850, 10)));
	printf("ofd write [850,860) on dup(o1): %s\n", res(lk(o1dup, F_OFD_SETLK, F_WRLCK, 850, 10)));
	show("ofd test on o2", o2, F_OFD_GETLK, F_RDLCK, 800, 10, 0);
	close(o1);
	printf("after closing o1, o2: %s\n", res(lk(o2, F_OFD_SETLK, F_WRLCK, 850, 10)));
	close(o1dup);
	printf("after closing its dup too, o2: %s\n", res(lk(o2, F_OFD_SETLK, F_WRLCK, 850, 10)));
	/* a POSIX lock goes when the process closes any descriptor of the file */
	int other = open(path, O_RDONLY);
	printf("parent write [900,950): %s\n", res(lk(fd, F_SETLK, F_WRLCK, 900, 50)));
	close(other);
	fflush(stdout);
	pid_t c2 = fork();
	if (c2 == 0) {
		int cfd = open(path, O_RDWR);
		printf("child after the parent closed another fd: %s\n", res(lk(cfd, F_SETLK, F_WRLCK, 900, 50)));
		fflush(stdout);
		_exit(0);
	}
	waitpid(c2, &st, 0);
	unlink(path);
	return 0;
}
