/*
 * The cgroup v2 hugetlb controller as charge_reserved_hugetlb.sh sees it: a child cgroup with
 * hugetlb.2MB.max = 2 pages and rsvd.max = 3 pages, a process moved into it through cgroup.procs,
 * reservations charged at mmap (over rsvd.max: ENOMEM), faults charged at allocation (over max:
 * SIGBUS, counted in hugetlb.2MB.events), MAP_NORESERVE pages charged to both at the fault, and
 * everything given back at munmap, truncation and when a hugetlbfs file goes; rmdir of a populated
 * cgroup is EBUSY; bad writes are EINVAL or ESRCH. Needs root; uses the first cgroup2 mount, or
 * mounts one.
 * Sets vm.nr_hugepages to 4 for the run and puts the old value back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HP (2UL << 20)
#define NAME "faultlab_cgtest"

static char root[512], cg[600];
static sigjmp_buf env;

static void on_bus(int sig) { (void)sig; siglongjmp(env, 1); }

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case ESRCH: return "ESRCH";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENOMEM: return "ENOMEM";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	default: return strerror(e);
	}
}

static int put(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return errno;
	int r = write(fd, val, strlen(val)) < 0 ? errno : 0;
	close(fd);
	return r;
}

static void get(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	ssize_t r = fd < 0 ? -1 : read(fd, buf, n - 1);
	buf[r < 0 ? 0 : r] = 0;
	if (fd >= 0)
		close(fd);
	char *nl = strchr(buf, '\n');
	if (nl && nl[1] == 0)
		*nl = 0;
}

static void show(const char *file)
{
	char path[700], buf[256];
	snprintf(path, sizeof(path), "%s/%s", cg, file);
	get(path, buf, sizeof(buf));
	printf("%s: %s\n", file, buf);
}

static void setting(const char *file, const char *val)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", cg, file);
	printf("write '%s' to %s: %s\n", val, file, ename(put(path, val)));
}

static int find_cgroup2(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[1024];
	while (f && fgets(line, sizeof(line), f)) {
		char mnt[512], type[64];
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 || sscanf(dash + 3, "%63s", type) != 1)
			continue;
		if (!strcmp(type, "cgroup2")) {
			strcpy(root, mnt);
			fclose(f);
			return 1;
		}
	}
	if (f)
		fclose(f);
	return 0;
}

static void child(int go, int ready)
{
	char c;
	char buf[256];
	setting("cgroup.procs", "0");
	FILE *f = fopen("/proc/self/cgroup", "r");
	while (f && fgets(buf, sizeof(buf), f))
		if (!strncmp(buf, "0::", 3))
			printf("/proc/self/cgroup: %s", buf);
	if (f)
		fclose(f);
	fflush(stdout);
	if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 1)
		_exit(3);

	signal(SIGBUS, on_bus);
	char *big = mmap(NULL, 4 * HP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	printf("mmap of 4 huge pages over rsvd.max: %s\n", big == MAP_FAILED ? ename(errno) : "mapped");
	char *p = mmap(NULL, 2 * HP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	printf("mmap of 2 private huge pages: %s\n", p == MAP_FAILED ? ename(errno) : "mapped");
	if (p == MAP_FAILED)
		_exit(1);
	show("hugetlb.2MB.rsvd.current");
	show("hugetlb.2MB.current");
	p[0] = 1;
	printf("touched the first\n");
	show("hugetlb.2MB.current");

	int mfd = memfd_create("cgtest", MFD_HUGETLB);
	if (mfd < 0 || ftruncate(mfd, 2 * HP))
		_exit(2);
	char *s = mmap(NULL, HP, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	printf("mmap of 1 shared huge page of a hugetlbfs file: %s\n", s == MAP_FAILED ? ename(errno) : "mapped");
	show("hugetlb.2MB.rsvd.current");
	s[0] = 1;
	show("hugetlb.2MB.current");
	if (sigsetjmp(env, 1) == 0) {
		p[HP] = 1;
		printf("touched the second private page\n");
	} else {
		printf("the fault over hugetlb.2MB.max: SIGBUS\n");
	}
	show("hugetlb.2MB.current");
	show("hugetlb.2MB.events");
	show("hugetlb.2MB.events.local");
	munmap(p, 2 * HP);
	printf("munmap of the private mapping\n");
	show("hugetlb.2MB.current");
	show("hugetlb.2MB.rsvd.current");
	munmap(s, HP);
	printf("munmap of the shared mapping (the file keeps its page)\n");
	show("hugetlb.2MB.current");
	printf("ftruncate to 0: %s\n", ename(ftruncate(mfd, 0) ? errno : 0));
	show("hugetlb.2MB.current");
	show("hugetlb.2MB.rsvd.current");
	close(mfd);
	printf("close of the file\n");
	show("hugetlb.2MB.current");
	show("hugetlb.2MB.rsvd.current");

	char *n = mmap(NULL, HP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE,
		       -1, 0);
	printf("mmap MAP_NORESERVE: %s\n", n == MAP_FAILED ? ename(errno) : "mapped");
	show("hugetlb.2MB.rsvd.current");
	n[0] = 1;
	show("hugetlb.2MB.current");
	show("hugetlb.2MB.rsvd.current");
	munmap(n, HP);
	show("hugetlb.2MB.current");
	show("hugetlb.2MB.rsvd.current");
	fflush(stdout);
	_exit(0);
}

int main(void)
{
	char old[64], buf[256], path[700];
	int mounted = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (geteuid() != 0) {
		printf("needs root\n");
		return 4;
	}
	if (!find_cgroup2()) {
		strcpy(root, "/tmp/cgXXXXXX");
		if (!mkdtemp(root) || mount("none", root, "cgroup2", 0, NULL)) {
			printf("cannot mount cgroup2: %s\n", strerror(errno));
			return 4;
		}
		mounted = 1;
	}
	get("/proc/sys/vm/nr_hugepages", old, sizeof(old));
	put("/proc/sys/vm/nr_hugepages", "4");
	get("/proc/sys/vm/nr_hugepages", buf, sizeof(buf));
	if (atoi(buf) < 4) {
		printf("no 4 huge pages\n");
		put("/proc/sys/vm/nr_hugepages", old);
		return 4;
	}

	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	printf("+hugetlb in the root's subtree_control: %s\n", ename(put(path, "+hugetlb")));
	printf("+nosuch: %s\n", ename(put(path, "+nosuch")));
	printf("hugetlb without a sign: %s\n", ename(put(path, "hugetlb")));
	snprintf(cg, sizeof(cg), "%s/" NAME, root);
	rmdir(cg);
	printf("mkdir: %s\n", ename(mkdir(cg, 0755) ? errno : 0));
	printf("mkdir again: %s\n", ename(mkdir(cg, 0755) ? errno : 0));
	show("cgroup.controllers");
	show("cgroup.procs");
	show("cgroup.events");
	show("hugetlb.2MB.max");
	show("hugetlb.2MB.rsvd.max");
	show("hugetlb.2MB.current");
	show("hugetlb.2MB.rsvd.current");
	show("hugetlb.2MB.events");
	show("hugetlb.2MB.numa_stat");
	setting("hugetlb.2MB.max", "abc");
	setting("hugetlb.2MB.max", "12x");
	setting("hugetlb.2MB.max", "-1");
	setting("hugetlb.2MB.max", "3M");
	show("hugetlb.2MB.max");
	setting("hugetlb.2MB.max", "max");
	show("hugetlb.2MB.max");
	setting("hugetlb.2MB.max", "4194304");
	setting("hugetlb.2MB.rsvd.max", "6M");
	show("hugetlb.2MB.max");
	show("hugetlb.2MB.rsvd.max");
	setting("cgroup.procs", "abc");
	setting("cgroup.procs", "999999999");

	int go[2], ready[2];
	char c;
	if (pipe(go) || pipe(ready))
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(ready[0]);
		child(go[0], ready[1]);
	}
	close(go[0]);
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		return 1;
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	get(path, buf, sizeof(buf));
	printf("cgroup.procs lists the child: %s\n", atoi(buf) == pid ? "yes" : buf);
	show("cgroup.events");
	printf("rmdir while populated: %s\n", ename(rmdir(cg) ? errno : 0));
	if (write(go[1], "g", 1) != 1)
		return 1;
	int st;
	waitpid(pid, &st, 0);
	printf("child: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	show("cgroup.events");
	printf("rmdir: %s\n", ename(rmdir(cg) ? errno : 0));
	put("/proc/sys/vm/nr_hugepages", old);
	if (mounted) {
		umount(root);
		rmdir(root);
	}
	return 0;
}
