/* Multi-size THP for anonymous memory (Documentation/admin-guide/mm/transhuge.rst): with
 * hugepages-64kB/enabled set to "always", one write fault in a private anonymous mapping maps a whole
 * naturally aligned 64 KiB folio (alloc_anon_folio): ru_minflt grows by 1 and /proc/self/pagemap shows
 * 16 present pages. After fork both see their data, and a write in either copies only its own view.
 * The knob's previous value is restored before exit. Needs root (writes sysfs). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "mthp_knobs.h"

#define SZ (64 << 10)

static char saved[32];

static long minflt(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static uint64_t pfn_of(char *p)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;
	pread(fd, &e, 8, ((uintptr_t)p / PG) * 8);
	close(fd);
	return e & ((1ULL << 55) - 1);
}

static uint64_t kpf(uint64_t pfn)
{
	int fd = open("/proc/kpageflags", O_RDONLY);
	uint64_t f = 0;
	pread(fd, &f, 8, pfn * 8);
	close(fd);
	return f;
}

/* KPF_ANON 12, KPF_COMPOUND_HEAD 15, KPF_COMPOUND_TAIL 16, KPF_THP 22 */
static void show_kpf(const char *what, char *p)
{
	uint64_t f = kpf(pfn_of(p));
	printf("%s: anon %d head %d tail %d thp %d\n", what, (int)(f >> 12) & 1, (int)(f >> 15) & 1,
	       (int)(f >> 16) & 1, (int)(f >> 22) & 1);
}

static int check(char *p, int n, int base)
{
	for (int i = 0; i < n; i++)
		if (p[i * PG] != (char)(base + i) || p[i * PG + PG - 1] != (char)(base + i))
			return 0;
	return 1;
}

int main(void)
{
	if (knob_read(64, saved) || knob(64, "always")) {
		printf("no hugepages-64kB/enabled\n");
		return 1;
	}
	char *raw = mmap(NULL, 4 * SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p = (char *)(((uintptr_t)raw + SZ - 1) & ~(uintptr_t)(SZ - 1));
	long f0 = minflt();
	p[5 * PG + 7] = 1;                 /* a write into the middle of the folio */
	long f1 = minflt();
	int here = present(p, 16), next = present(p + SZ, 16);
	long f2 = minflt();
	for (int i = 0; i < 16; i++)
		memset(p + i * PG, 10 + i, PG);
	long f3 = minflt();
	printf("one write: %ld fault(s), %d of 16 pages present, next 64 KiB: %d present\n", f1 - f0, here, next);
	printf("filling the folio: %ld more fault(s)\n", f3 - f2);
	uint64_t first = pfn_of(p);
	int contiguous = first % 16 == 0;
	for (int i = 1; i < 16; i++)
		contiguous = contiguous && pfn_of(p + i * PG) == first + i;
	printf("frames naturally aligned and contiguous: %s\n", contiguous ? "yes" : "no");
	show_kpf("first page", p);
	show_kpf("page 5", p + 5 * PG);
	p[SZ + SZ - 1] = 2;                /* the last byte of the next aligned 64 KiB */
	printf("write at the end of the next 64 KiB: %d present there\n", present(p + SZ, 16));

	pid_t pid = fork();
	if (pid == 0) {
		int ok = check(p, 16, 10);
		p[3 * PG] = 99;                /* COW in the child */
		ok = ok && p[3 * PG] == 99 && p[2 * PG] == 12 && p[4 * PG] == 14;
		_exit(ok ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	printf("child saw the parent's data and its own write: %s\n",
	       WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "yes" : "no");
	printf("parent data after the child's write: %s\n", check(p, 16, 10) ? "intact" : "changed");
	p[7 * PG] = 77;                    /* COW in the parent */
	printf("parent write after fork: page 7 %d, page 6 %d, page 8 %d\n", p[7 * PG], p[6 * PG], p[8 * PG]);
	munmap(p + 4 * PG, 4 * PG);        /* a partial unmap leaves the rest mapped */
	printf("after unmapping 4 pages: %d of 16 present, data %s\n", present(p, 4) + present(p + 8 * PG, 8),
	       check(p, 4, 10) && check(p + 8 * PG + PG, 7, 19) ? "intact" : "changed");
	/* knob back to the saved value */
	knob(64, saved);
	printf("restored\n");
	return 0;
}
