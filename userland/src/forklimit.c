/*
 * forklimit: the limits on new tasks, each refusing fork with EAGAIN, and the run going on after.
 *
 *   forklimit nproc N        as root with RLIMIT_NPROC = 1 (root is exempt), then as user 54321 with
 *                            RLIMIT_NPROC = N: fork until it fails, let the children go, fork again
 *   forklimit pidmax N       /proc/sys/kernel/pid_max: its range, then N; from pid 101 (ns_last_pid)
 *                            fork until the pids run out
 *   forklimit threadsmax N   /proc/sys/kernel/threads-max: its range, then N and fork until it fails
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *res(int r)
{
	return r < 0 ? strerrorname_np(errno) : "ok";
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	int r = write(fd, val, strlen(val)) < 0 ? -1 : 0;
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

/* fork children that wait on a pipe until fork fails; then let them all end and reap them */
static void fork_until_refused(const char *what)
{
	int p[2];
	if (pipe(p))
		exit(3);
	int n = 0, err = 0;
	for (;;) {
		pid_t c = fork();
		if (c < 0) {
			err = errno;
			break;
		}
		if (c == 0) {
			char ch;
			close(p[1]);
			if (read(p[0], &ch, 1) < 0)
				_exit(1);
			_exit(0);
		}
		if (++n > 100000)
			break;
	}
	printf("%s: %d forks, then %s\n", what, n, err ? strerrorname_np(err) : "no error");
	close(p[1]);
	close(p[0]);
	int reaped = 0;
	while (wait(NULL) > 0)
		reaped++;
	printf("%s: reaped %d\n", what, reaped);
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	printf("%s: fork after reaping: %s\n", what, c < 0 ? strerrorname_np(errno) : "ok");
	if (c > 0)
		waitpid(c, NULL, 0);
	fflush(stdout);
}

static int nproc(int n)
{
	struct rlimit one = {1, 1}, rl = {n, n};
	pid_t c = fork();
	if (c == 0) {                    /* root: exempt from RLIMIT_NPROC (copy_process) */
		if (setrlimit(RLIMIT_NPROC, &one))
			_exit(3);
		pid_t g = fork();
		if (g == 0)
			_exit(0);
		printf("root with RLIMIT_NPROC 1 forks: %s\n", g < 0 ? strerrorname_np(errno) : "ok");
		if (g > 0)
			waitpid(g, NULL, 0);
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, NULL, 0);
	c = fork();
	if (c == 0) {
		if (setresgid(54321, 54321, 54321) || setresuid(54321, 54321, 54321) || setrlimit(RLIMIT_NPROC, &rl))
			_exit(3);
		fork_until_refused("user 54321");
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	printf("exit status %d\n", WEXITSTATUS(st));
	return 0;
}

static int sysctl_limit(const char *path, const char *low, const char *high, const char *n, const char *what)
{
	char before[32] = "";
	int fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, before, sizeof(before) - 1) < 0)
		return 3;
	close(fd);
	printf("write %s: %s\n", low, res(write_file(path, low)));
	printf("write %s: %s\n", high, res(write_file(path, high)));
	printf("write %s: %s\n", n, res(write_file(path, n)));
	/* the next pid is 101 (the native run's setup used some pids of its namespace before) */
	if (!strcmp(what, "pid_max"))
		printf("ns_last_pid 100: %s\n", res(write_file("/proc/sys/kernel/ns_last_pid", "100")));
	fflush(stdout);
	fork_until_refused(what);
	write_file(path, before);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "nproc"))
		return nproc(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "pidmax"))
		return sysctl_limit("/proc/sys/kernel/pid_max", "300", "4194305", argv[2], "pid_max");
	if (argc == 3 && !strcmp(argv[1], "threadsmax"))
		return sysctl_limit("/proc/sys/kernel/threads-max", "19", "1073741824", argv[2], "threads-max");
	fprintf(stderr, "usage: forklimit nproc N | pidmax N | threadsmax N\n");
	return 2;
}
