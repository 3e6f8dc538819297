/* Huge page pool accounting, as mm/hugetlb.c and fs/hugetlbfs keep it: /proc/meminfo's HugePages_*,
 * /sys/kernel/mm/hugepages/hugepages-2048kB/ files and /proc/sys/vm/nr_(overcommit_)hugepages after each
 * step: private reservations (restored by MADV_DONTNEED), a writable mapping growing a hugetlbfs file,
 * hole punching and MADV_REMOVE reaching private copies, surplus pages under nr_overcommit_hugepages,
 * shrinking the pool under use, the knobs' parsing, and an O_TMPFILE | O_DIRECT file written from a
 * huge page. Start it with a pool of exactly 4 free 2 MiB pages and no overcommit.
 * Usage: hugeacct TMPFS_DIR */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HPS (2UL << 20)
#define SYS "/sys/kernel/mm/hugepages/hugepages-2048kB/"

static long meminfo(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

static long readnum(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	if (read(fd, buf, sizeof buf - 1) < 0)
		buf[0] = 0;
	close(fd);
	return strtol(buf, NULL, 10);
}

static const char *writestr(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return strerror(errno);
	n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? strerror(errno) : "ok";
}

static void show(const char *what)
{
	printf("%-34s meminfo T%ld F%ld R%ld S%ld | sys nr%ld free%ld resv%ld surp%ld oc%ld mp%ld | "
	       "node nr%ld free%ld surp%ld | proc nr%ld oc%ld\n", what,
	       meminfo("HugePages_Total"), meminfo("HugePages_Free"), meminfo("HugePages_Rsvd"),
	       meminfo("HugePages_Surp"), readnum(SYS "nr_hugepages"), readnum(SYS "free_hugepages"),
	       readnum(SYS "resv_hugepages"), readnum(SYS "surplus_hugepages"),
	       readnum(SYS "nr_overcommit_hugepages"), readnum(SYS "nr_hugepages_mempolicy"),
	       readnum("/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"),
	       readnum("/sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages"),
	       readnum("/sys/devices/system/node/node0/hugepages/hugepages-2048kB/surplus_hugepages"),
	       readnum("/proc/sys/vm/nr_hugepages"), readnum("/proc/sys/vm/nr_overcommit_hugepages"));
}

static char *map(size_t n, int prot, int flags, int fd)
{
	char *p = mmap(NULL, n * HPS, prot, flags | (fd < 0 ? MAP_ANONYMOUS | MAP_HUGETLB : 0), fd, 0);

	if (p == MAP_FAILED) {
		printf("mmap %zu pages: %s\n", n, strerror(errno));
		return NULL;
	}
	return p;
}

static void touch(char *p, size_t n, char c)
{
	for (size_t i = 0; i < n; i++)
		p[i * HPS] = c;
}

static void private_reservations(void)
{
	char *p = map(2, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);

	show("private 2 mapped");
	touch(p, 1, 'a');
	show("private 1 touched");
	printf("dontneed: %s\n", madvise(p, HPS, MADV_DONTNEED) ? strerror(errno) : "ok");
	show("private dontneed (resv restored)");
	printf("after refault: %d\n", p[0]);
	touch(p, 2, 'b');
	show("private both touched");
	munmap(p, 2 * HPS);
	show("private unmapped");
	p = map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, -1);
	show("noreserve mapped");
	touch(p, 1, 'c');
	madvise(p, HPS, MADV_DONTNEED);
	show("noreserve dontneed");
	munmap(p, HPS);
}

static void hugetlbfs_file(void)
{
	struct stat st;
	int fd = memfd_create("hugeacct", MFD_HUGETLB);
	char *s, *q;

	s = map(2, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
	fstat(fd, &st);
	printf("size after writable shared mmap: %lld\n", (long long)st.st_size);
	show("file shared mapped");
	touch(s, 2, 's');
	show("file shared written");
	q = map(2, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd);
	printf("private sees: %c %c\n", q[0], q[HPS]);
	touch(q, 2, 'p');
	show("file private copies");
	printf("punch page 0: %s\n", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, HPS) ?
	       strerror(errno) : "ok");
	show("after punch (private copy too)");
	printf("after punch: shared %d private %d, page 1 shared %c private %c\n", s[0], q[0], s[HPS], q[HPS]);
	printf("MADV_REMOVE private: %s\n", madvise(q, HPS, MADV_REMOVE) ? strerror(errno) : "ok");
	printf("MADV_REMOVE shared page 1: %s\n", madvise(s + HPS, HPS, MADV_REMOVE) ? strerror(errno) : "ok");
	show("after MADV_REMOVE");
	printf("after remove: shared %d private %d\n", s[HPS], q[HPS]);
	munmap(q, 2 * HPS);
	munmap(s, 2 * HPS);
	q = map(1, PROT_READ, MAP_PRIVATE, fd);
	printf("readonly private map of the file: %s\n", q ? "ok" : "failed");
	printf("ftruncate to 1 page: %s\n", ftruncate(fd, HPS) ? strerror(errno) : "ok");
	fstat(fd, &st);
	printf("size after ftruncate: %lld\n", (long long)st.st_size);
	munmap(q, HPS);
	close(fd);
	show("file closed");
	q = map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	printf("MADV_REMOVE anonymous: %s\n", madvise(q, HPS, MADV_REMOVE) ? strerror(errno) : "ok");
	munmap(q, HPS);
}

static void overcommit(void)
{
	char *p;

	printf("set overcommit 2: %s\n", writestr(SYS "nr_overcommit_hugepages", "2\n"));
	show("overcommit 2");
	p = map(7, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	show("7 pages refused");
	p = map(6, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	show("6 pages mapped");
	touch(p, 6, 'o');
	show("6 pages touched");
	munmap(p, 6 * HPS);
	show("6 pages unmapped");
	p = map(3, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	touch(p, 3, 'x');
	printf("shrink pool to 1: %s\n", writestr("/proc/sys/vm/nr_hugepages", "1"));
	show("pool shrunk under use");
	munmap(p, 3 * HPS);
	show("in-use pages freed");
	printf("grow pool to 4: %s\n", writestr(SYS "nr_hugepages", "+4\n"));
	show("pool grown");
	printf("proc overcommit 0: %s\n", writestr("/proc/sys/vm/nr_overcommit_hugepages", " 0 \n"));
	printf("sys nr_hugepages 'abc': %s\n", writestr(SYS "nr_hugepages", "abc"));
	printf("sys nr_hugepages ' 4': %s\n", writestr(SYS "nr_hugepages", " 4"));
	printf("sys nr_hugepages '-1': %s\n", writestr(SYS "nr_hugepages", "-1"));
	printf("sys free_hugepages: %s\n", writestr(SYS "free_hugepages", "1"));
	printf("proc nr_hugepages 'x': %s\n", writestr("/proc/sys/vm/nr_hugepages", "x"));
	show("after bad writes");
}

static void tmpfile_direct(const char *dir)
{
	char name[256], back[4096 * 4];
	long before = meminfo("HugePages_Free");
	int fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT, 0664);
	struct stat st;
	char *buf;
	ssize_t n;

	if (fd < 0) {
		printf("O_TMPFILE|O_DIRECT: %s\n", strerror(errno));
		return;
	}
	buf = map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	memset(buf + 2048, 'D', 3 * 4096);
	printf("write from huge page at +2048: %zd\n", write(fd, buf + 2048, 3 * 4096));
	fstat(fd, &st);
	printf("tmpfile: regular %d nlink %lu size %lld mode %o\n", S_ISREG(st.st_mode), (unsigned long)st.st_nlink,
	       (long long)st.st_size, st.st_mode & 07777);
	n = pread(fd, back, sizeof back, 0);
	printf("read back: %zd, same %d\n", n, !memcmp(back, buf + 2048, 3 * 4096));
	munmap(buf, HPS);
	close(fd);
	printf("free huge pages back: %d\n", meminfo("HugePages_Free") == before);
	snprintf(name, sizeof name, "%s/missing-dir", dir);
	printf("O_TMPFILE missing dir: %s\n", open(name, O_TMPFILE | O_RDWR, 0600) < 0 ? strerror(errno) : "ok");
	printf("O_TMPFILE read-only: %s\n", open(dir, O_TMPFILE | O_RDONLY, 0600) < 0 ? strerror(errno) : "ok");
	printf("O_TMPFILE|O_CREAT: %s\n", open(dir, O_TMPFILE | O_CREAT | O_RDWR, 0600) < 0 ? strerror(errno) : "ok");
	printf("O_TMPFILE in /proc: %s\n", open("/proc", O_TMPFILE | O_RDWR, 0600) < 0 ? strerror(errno) : "ok");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	show("start");
	private_reservations();
	hugetlbfs_file();
	overcommit();
	tmpfile_direct(argc > 1 ? argv[1] : "/tmp");
	show("end");
	return 0;
}
