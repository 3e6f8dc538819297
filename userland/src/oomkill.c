/*
 * oomkill: the OOM killer's choice and its /proc files.
 *
 *   oomkill files [keepcap]  /proc/self/oom_score_adj and oom_score: the values written, refused
 *                            (EINVAL; EACCES below the minimum without CAP_SYS_RESOURCE, which root
 *                            drops first unless keepcap), inherited by fork
 *   oomkill kill HOG_MIB SMALL_MIB SMALL_ADJ HOG_ADJ
 *                            two children: "small" touches SMALL_MIB MiB with oom_score_adj SMALL_ADJ and
 *                            waits; "hog" touches HOG_MIB MiB (anonymous, more than RAM + swap holds
 *                            with the other) with HOG_ADJ. Prints how each ended: the one oom_badness
 *                            ranks highest is killed by SIGKILL, the other finishes, and so does the parent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_adj(const char *val)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd < 0)
		return -errno;
	int r = write(fd, val, strlen(val)) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static long read_long(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return strtol(buf, NULL, 10);
}

static const char *res(int r)
{
	return r ? strerrorname_np(-r) : "ok";
}

static void touch(size_t mib)
{
	for (size_t i = 0; i < mib; i++) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			_exit(4);
		for (size_t off = 0; off < (1 << 20); off += 4096)
			p[off] = (char)(i + off);
	}
}

static void status(const char *who, int st)
{
	if (WIFSIGNALED(st))
		printf("%s: killed by %s\n", who, sigabbrev_np(WTERMSIG(st)));
	else
		printf("%s: exited %d\n", who, WEXITSTATUS(st));
}

/* capset: CAP_SYS_RESOURCE out of the effective set (a container's root may not have it at all) */
static int drop_sys_resource(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[0].effective &= ~(1u << CAP_SYS_RESOURCE);
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

static int files(int keepcap)
{
	if (!keepcap)
		printf("drop CAP_SYS_RESOURCE: %s\n", res(drop_sys_resource()));
	printf("oom_score_adj at start: %ld\n", read_long("/proc/self/oom_score_adj"));
	long score = read_long("/proc/self/oom_score");
	printf("oom_score at start in 1..1000: %s\n", score >= 1 && score <= 1000 ? "yes" : "no");
	printf("write 1001: %s\n", res(write_adj("1001")));
	printf("write -1001: %s\n", res(write_adj("-1001")));
	printf("write abc: %s\n", res(write_adj("abc")));
	printf("write 0x10: %s", res(write_adj("0x10")));
	printf(", now %ld\n", read_long("/proc/self/oom_score_adj"));
	printf("write 1000: %s\n", res(write_adj("1000\n")));
	printf("oom_score with 1000 above 1300: %s\n", read_long("/proc/self/oom_score") > 1300 ? "yes" : "no");
	printf("write -1000: %s\n", res(write_adj("-1000")));
	long s = read_long("/proc/self/oom_score");
	printf("oom_score now: %s\n", s == 0 ? "0" : s > 1300 ? "above 1300" : "other");
	printf("write 300: %s\n", res(write_adj("300")));
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		printf("child inherits: %ld\n", read_long("/proc/self/oom_score_adj"));
		/* a process without CAP_SYS_RESOURCE may not go below its minimum (300 if root set it with
		 * CAP_SYS_RESOURCE, else 0) */
		if (setresuid(65534, 65534, 65534) || prctl(PR_SET_DUMPABLE, 1))   /* its /proc files stay its own */
			_exit(3);
		printf("nobody writes 200: %s\n", res(write_adj("200")));
		printf("nobody writes 500: %s\n", res(write_adj("500")));
		printf("nobody writes 300: %s", res(write_adj("300")));
		printf(", now %ld\n", read_long("/proc/self/oom_score_adj"));
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	status("child", st);
	return 0;
}

static int kill_case(size_t hog_mib, size_t small_mib, const char *small_adj, const char *hog_adj)
{
	int ready[2], go[2];
	if (pipe(ready) || pipe(go))
		return 1;
	fflush(stdout);
	pid_t small = fork();
	if (small == 0) {
		if (write_adj(small_adj))
			_exit(5);
		touch(small_mib);
		char c;
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(6);
		_exit(0);
	}
	char c;
	if (read(ready[0], &c, 1) != 1)
		return 1;
	pid_t hog = fork();
	if (hog == 0) {
		if (write_adj(hog_adj))
			_exit(5);
		touch(hog_mib);
		_exit(0);
	}
	int st_small = 0, st_hog;
	waitpid(hog, &st_hog, 0);
	/* the small one is either dead already or waiting for the word to finish */
	if (waitpid(small, &st_small, WNOHANG) == 0) {
		if (write(go[1], "g", 1) != 1)
			return 1;
		waitpid(small, &st_small, 0);
	}
	status("hog", st_hog);
	status("small", st_small);
	printf("parent goes on\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "files"))
		return files(argc == 3 && !strcmp(argv[2], "keepcap"));
	if (argc == 6 && !strcmp(argv[1], "kill"))
		return kill_case(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0), argv[4], argv[5]);
	fprintf(stderr, "usage: oomkill files | oomkill kill HOG_MIB SMALL_MIB SMALL_ADJ HOG_ADJ\n");
	return 2;
}
