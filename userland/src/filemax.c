/*
 * filemax: the system-wide limit on open files. As root, /proc/sys/fs/file-nr and file-max are read
 * and file-max is set to the files in use + N; then a user without CAP_SYS_ADMIN opens until ENFILE
 * (open, pipe, socket and memfd_create are all refused), closes one and opens again, while root may
 * still open past the limit (alloc_empty_file).
 *
 *   filemax N
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static long nr_files(long *max)
{
	char buf[128] = "";
	int fd = open("/proc/sys/fs/file-nr", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0)
		return -1;
	close(fd);
	long used = -1, zero = -1;
	sscanf(buf, "%ld %ld %ld", &used, &zero, max);
	return zero == 0 ? used : -1;
}

static int set_max(long v)
{
	char buf[32];
	int fd = open("/proc/sys/fs/file-max", O_WRONLY);
	int n = snprintf(buf, sizeof(buf), "%ld\n", v);
	int r = fd < 0 || write(fd, buf, n) != n ? -1 : 0;
	close(fd);
	return r;
}

static const char *res(long r)
{
	return r < 0 ? strerrorname_np(errno) : "ok";
}

int main(int argc, char **argv)
{
	long max_before, max_now;
	long used = nr_files(&max_before);
	printf("file-nr: in use > 0: %s, file-max >= 8192: %s\n", used > 0 ? "yes" : "no",
	       max_before >= 8192 ? "yes" : "no");
	printf("file-max -1: %s\n", res(set_max(-1)));
	long n = argc > 1 ? atol(argv[1]) : 16;
	int p[2];
	if (pipe(p))
		return 1;
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (setresuid(65534, 65534, 65534))
			_exit(3);
		char go;
		if (read(p[0], &go, 1) != 1)
			_exit(3);
		int count = 0, fd, last = -1;
		while ((fd = open("/", O_RDONLY)) >= 0) {
			last = fd;
			if (++count > 100000)
				break;
		}
		printf("nobody opens %d more, then %s\n", count, strerrorname_np(errno));
		int q[2];
		printf("pipe: %s\n", res(pipe(q)));
		printf("socket: %s\n", res(socket(AF_UNIX, SOCK_STREAM, 0)));
		printf("memfd_create: %s\n", res(memfd_create("x", 0)));
		printf("dup (no new file): %s\n", res(dup(0)));
		close(last);
		printf("open after a close: %s\n", res(open("/", O_RDONLY)));
		fflush(stdout);
		_exit(0);
	}
	/* the child exists with its descriptors: the limit is the files in use now + n */
	used = nr_files(&max_now);
	printf("file-max used + %ld: %s\n", n, res(set_max(used + n)));
	fflush(stdout);
	if (write(p[1], "g", 1) != 1)
		return 1;
	int st;
	waitpid(c, &st, 0);
	long max_after;
	nr_files(&max_after);
	printf("root opens past the limit: %s\n", res(open("/", O_RDONLY)));
	printf("file-nr shows the new limit: %s\n", max_after == used + n ? "yes" : "no");
	set_max(max_before);
	return WEXITSTATUS(st);
}
