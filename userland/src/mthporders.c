/* Which order a write fault maps under the per-size knobs (mm/memory.c alloc_anon_folio,
 * __thp_vma_allowable_orders): "madvise" needs MADV_HUGEPAGE, "inherit" follows the top-level
 * "enabled" (left as it is), the largest allowed order whose aligned range fits inside the VMA and
 * has no present PTE wins. Prints how many pages one write fault made present. Saves and restores
 * the knobs it writes (32 kB, 64 kB, 128 kB). Needs root. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "mthp_knobs.h"

static const int sizes[] = {32, 64, 128};
static char saved[3][32];

static int save(void)
{
	for (int i = 0; i < 3; i++)
		if (knob_read(sizes[i], saved[i]))
			return -1;
	return 0;
}

static void set3(const char *a, const char *b, const char *c)
{
	knob(32, a);
	knob(64, b);
	knob(128, c);
}

/* len bytes at a 1 MiB aligned address; hint 1: MADV_HUGEPAGE, 2: MADV_NOHUGEPAGE */
static char *area(size_t len, int hint)
{
	char *raw = mmap(NULL, 2 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p = (char *)(((uintptr_t)raw + (1 << 20) - 1) & ~(uintptr_t)((1 << 20) - 1));
	p = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (hint)
		madvise(p, len, hint == 1 ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return p;
}

/* smaps' THPeligible of the VMA at p (show_smap: thp_vma_allowable_orders with TVA_SMAPS) */
static int eligible(char *p)
{
	char line[256], want[32];
	int found = 0, v = -1;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)p);
	FILE *f = fopen("/proc/self/smaps", "r");
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strncmp(line, want, strlen(want)) == 0)
			found = 1;
		else if (found && sscanf(line, "THPeligible: %d", &v) == 1)
			break;
	}
	fclose(f);
	return v;
}

static void one(const char *what, size_t len, int hint, int pre, int at)
{
	char *p = area(len, hint);
	if (pre >= 0)                      /* a read fault: the zero page, one PTE */
		(void)*(volatile char *)(p + pre * PG);
	int before = present(p, len / PG);
	p[at * PG] = 2;
	printf("%-40s %d pages, THPeligible %d\n", what, present(p, len / PG) - before, eligible(p));
}

int main(void)
{
	if (save()) {
		printf("no per-size knobs\n");
		return 1;
	}
	set3("never", "always", "never");
	one("64k always", 1 << 20, 0, -1, 3);
	set3("never", "madvise", "never");
	one("64k madvise, no MADV_HUGEPAGE", 1 << 20, 0, -1, 3);
	one("64k madvise, MADV_HUGEPAGE", 1 << 20, 1, -1, 3);
	set3("always", "always", "always");
	one("all always, VMA of 64k", 64 << 10, 0, -1, 9);
	one("all always, VMA of 96k, fault at 70k", 96 << 10, 0, -1, 17);
	one("all always, page 20 read, fault at 0", 1 << 20, 0, 20, 0);
	one("all always, page 1 read, fault at 0", 1 << 20, 0, 1, 0);
	one("all always, MADV_NOHUGEPAGE", 1 << 20, 2, -1, 40);
	set3("always", "never", "never");
	one("32k always", 1 << 20, 0, -1, 40);
	for (int i = 0; i < 3; i++)
		knob(sizes[i], saved[i]);
	printf("restored\n");
	return 0;
}
