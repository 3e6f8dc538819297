/* ksmmerge: kernel same-page merging as a program sees it (needs root for /sys/kernel/mm/ksm).
 * Identical pages merge after two full scans (pages_shared, pages_sharing, /proc/self/ksm_stat,
 * one PFN in pagemap, RssAnon unchanged); a write breaks the merge (data right); MADV_UNMERGEABLE,
 * run=2 and PR_SET_MEMORY_MERGE 0 unmerge; use_zero_pages merges zero pages with the zero page;
 * bad input gets its errno. The KSM knobs are saved first and restored at the end. Lines that start
 * with "global" show the whole machine's counters, which other processes of a host change too. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif
#define KSM "/sys/kernel/mm/ksm/"
#define NPAGES 16

static long psz;

static long rd(const char *name)
{
	char path[128], buf[64];
	snprintf(path, sizeof(path), KSM "%s", name);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	int n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

static int wr(const char *name, const char *val)
{
	char path[128];
	snprintf(path, sizeof(path), KSM "%s", name);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	int r = write(fd, val, strlen(val));
	int e = errno;
	close(fd);
	return r < 0 ? -e : 0;
}

static int wait_scans(int n)
{
	long start = rd("full_scans");
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (rd("full_scans") < start + n) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 30)
			return -1;
	}
	return 0;
}

static long proc_val(const char *file, const char *key)
{
	char buf[4096];
	FILE *f = fopen(file, "r");
	if (!f)
		return -1;
	long v = -1;
	while (fgets(buf, sizeof(buf), f))
		if (!strncmp(buf, key, strlen(key))) {
			v = strtol(buf + strlen(key) + strcspn(buf + strlen(key), "0123456789"), NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static uint64_t pfn_of(int pm, void *p)
{
	uint64_t e;
	if (pread(pm, &e, 8, (uintptr_t)p / psz * 8) != 8 || !(e & (1ULL << 63)))
		return 0;
	return e & ((1ULL << 55) - 1);
}

static int duplicates(int pm, char *map, int n)
{
	int d = 0;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++) {
			uint64_t a = pfn_of(pm, map + i * psz), b = pfn_of(pm, map + j * psz);
			if (a && a == b)
				d++;
		}
	return d;
}

/* the KSM: line and the mg flag of the smaps entry that starts at map */
static void smaps_of(char *map)
{
	char buf[512], head[32];
	FILE *f = fopen("/proc/self/smaps", "r");
	int in = 0;
	long ksm = -1;
	snprintf(head, sizeof(head), "%lx-", (unsigned long)map);
	while (f && fgets(buf, sizeof(buf), f)) {
		if (strchr(buf, '-') && strchr(buf, ' ') && strchr(buf, '-') < strchr(buf, ' '))
			in = !strncmp(buf, head, strlen(head));
		if (in && !strncmp(buf, "KSM:", 4))
			ksm = strtol(buf + 4, NULL, 10);
		if (in && !strncmp(buf, "VmFlags:", 8))
			printf("smaps: KSM=%ld kB mg=%d\n", ksm, strstr(buf, " mg") != NULL);
	}
	if (f)
		fclose(f);
}

static void counters(const char *when)
{
	printf("%s: merging=%ld rmap_items=%ld\n", when, proc_val("/proc/self/ksm_merging_pages", ""),
	       proc_val("/proc/self/ksm_stat", "ksm_rmap_items"));
	/* the whole machine's counters: other processes of the host may merge pages too */
	printf("global %s: shared=%ld sharing=%ld\n", when, rd("pages_shared"), rd("pages_sharing"));
}

static char *fill(void)
{
	char *m = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < NPAGES; i++)
		memset(m + i * psz, i < 8 ? 'A' : i < 12 ? 'B' : i, psz);   /* 8 x A, 4 x B, 4 unique */
	return m;
}

int main(void)
{
	psz = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IONBF, 0);
	if (access(KSM "run", W_OK)) {
		printf("no writable " KSM "run\n");
		return 0;
	}
	static const char *knobs[] = {"run", "sleep_millisecs", "pages_to_scan", "use_zero_pages",
				      "max_page_sharing", "smart_scan"};
	long saved[6];
	for (int i = 0; i < 6; i++)
		saved[i] = rd(knobs[i]);
	int pm = open("/proc/self/pagemap", O_RDONLY);

	wr("run", "2");
	printf("global after run=2: full_scans=%ld shared=%ld\n", rd("full_scans"), rd("pages_shared"));
	wr("sleep_millisecs", "0");
	wr("pages_to_scan", "64");
	wr("use_zero_pages", "0");

	/* bad input */
	printf("run=3: %s\n", strerror(-wr("run", "3")));
	printf("pages_to_scan=abc: %s\n", strerror(-wr("pages_to_scan", "abc")));
	printf("max_page_sharing=1: %s\n", strerror(-wr("max_page_sharing", "1")));
	printf("use_zero_pages=x: %s\n", strerror(-wr("use_zero_pages", "x")));
	printf("advisor_mode=foo: %s\n", strerror(-wr("advisor_mode", "foo")));
	printf("pages_shared write: %s\n", strerror(-wr("pages_shared", "1")));
	char *sh = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	printf("MADV_MERGEABLE on MAP_SHARED: %d\n", madvise(sh, psz, MADV_MERGEABLE));
	int r = madvise((void *)0x10000, psz, MADV_MERGEABLE);
	printf("MADV_MERGEABLE unmapped: %d %s\n", r, strerror(errno));
	r = prctl(PR_SET_MEMORY_MERGE, 1, 1, 0, 0);
	printf("PR_SET_MEMORY_MERGE 1,1: %d %s\n", r, strerror(errno));
	r = prctl(PR_GET_MEMORY_MERGE, 1, 0, 0, 0);
	printf("PR_GET_MEMORY_MERGE 1: %d %s\n", r, strerror(errno));

	/* merge */
	char *m = fill();
	long rss0 = proc_val("/proc/self/status", "RssAnon:");
	printf("madvise MERGEABLE: %d\n", madvise(m, NPAGES * psz, MADV_MERGEABLE));
	wr("run", "1");
	if (wait_scans(2))
		printf("timeout\n");
	counters("merged");
	printf("duplicates=%d rss_change_kb=%ld\n", duplicates(pm, m, NPAGES),
	       proc_val("/proc/self/status", "RssAnon:") - rss0);
	smaps_of(m);
	printf("ksm_stat profit>0: %d\n", proc_val("/proc/self/ksm_stat", "ksm_process_profit") > 0);

	/* a write breaks the merge: COW */
	m[0] = 'x';
	m[9 * psz + 5] = 'y';
	printf("after write: %c %c %c %c\n", m[0], m[1], m[psz], m[9 * psz + 5]);
	wait_scans(2);   /* the second one started after the change */
	counters("after write+scan");

	/* fork: the child maps the same KSM pages */
	pid_t pid = fork();
	if (!pid) {
		printf("child sees %c %c\n", m[2 * psz], m[8 * psz]);
		m[2 * psz] = 'c';
		_exit(m[3 * psz] == 'A' ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child exit=%d parent sees %c\n", WEXITSTATUS(st), m[2 * psz]);

	/* MADV_UNMERGEABLE */
	printf("madvise UNMERGEABLE: %d\n", madvise(m, NPAGES * psz, MADV_UNMERGEABLE));
	printf("duplicates after unmerge=%d data %c %c\n", duplicates(pm, m, NPAGES), m[psz], m[10 * psz]);
	smaps_of(m);
	wait_scans(2);   /* the second one started after the change */
	counters("after unmerge+scan");

	/* run=2 unmerges everything */
	munmap(m, NPAGES * psz);
	m = fill();
	madvise(m, NPAGES * psz, MADV_MERGEABLE);
	wait_scans(2);
	printf("merged again: duplicates=%d\n", duplicates(pm, m, NPAGES));
	wr("run", "2");
	counters("after run=2");
	printf("duplicates=%d\n", duplicates(pm, m, NPAGES));
	printf("global full_scans=%ld\n", rd("full_scans"));
	munmap(m, NPAGES * psz);

	/* PR_SET_MEMORY_MERGE */
	int g0 = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
	int s1 = prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	printf("get=%d set=%d get=%d\n", g0, s1, prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));
	m = fill();
	wr("run", "1");
	wait_scans(2);
	printf("prctl merged: duplicates=%d\n", duplicates(pm, m, NPAGES));
	pid = fork();
	if (!pid)
		_exit(prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));
	waitpid(pid, &st, 0);
	printf("child get=%d\n", WEXITSTATUS(st));
	s1 = prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	g0 = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
	printf("set 0=%d get=%d duplicates=%d\n", s1, g0, duplicates(pm, m, NPAGES));
	munmap(m, NPAGES * psz);

	/* use_zero_pages */
	wr("run", "2");
	wr("use_zero_pages", "1");
	m = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(m, 0, NPAGES * psz);
	rss0 = proc_val("/proc/self/status", "RssAnon:");
	madvise(m, NPAGES * psz, MADV_MERGEABLE);
	wr("run", "1");
	wait_scans(2);
	printf("zero: ksm_zero_pages=%ld merging=%ld rss_change_kb=%ld\n",
	       proc_val("/proc/self/ksm_stat", "ksm_zero_pages"), proc_val("/proc/self/ksm_merging_pages", ""),
	       proc_val("/proc/self/status", "RssAnon:") - rss0);
	printf("global zero: ksm_zero_pages=%ld shared=%ld\n", rd("ksm_zero_pages"), rd("pages_shared"));
	m[0] = 1;
	madvise(m + psz, psz, MADV_UNMERGEABLE);
	printf("zero after write+unmerge: ksm_zero_pages=%ld\n", proc_val("/proc/self/ksm_stat", "ksm_zero_pages"));
	munmap(m, NPAGES * psz);

	wr("run", "2");
	for (int i = 5; i >= 0; i--) {
		char v[32];
		snprintf(v, sizeof(v), "%ld", saved[i]);
		if (wr(knobs[i], v))
			printf("restore %s=%s failed\n", knobs[i], v);
	}
	printf("done\n");
	return 0;
}
