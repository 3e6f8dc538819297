/*
 * timehog: runs until it is stopped, keeping the kernel busy in one way or another, for the tests of
 * faultlab's --timeout (tests/test_timeout.py).
 *
 *   timehog spin              a user-mode loop, no traps
 *   timehog touch MIB         map MIB MiB, write every page, unmap; again
 *   timehog populate MIB      map MIB MiB, MADV_POPULATE_WRITE it in one call, unmap; again
 *   timehog pageout MIB       write MIB MiB once, then MADV_PAGEOUT and MADV_POPULATE_WRITE it, again
 *   timehog fork MIB          write MIB MiB once, then fork a child that exits at once, again
 *   timehog share MIB N       write MIB MiB once, fork N children that wait, then write it again and again
 *                             (every write breaks copy-on-write: N+1 address spaces map MIB MiB each)
 *
 * With more memory than RAM, touch and populate keep reclaim and swap busy inside single system calls.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static char *map(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static void touch(volatile char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 4096)
		p[i]++;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: timehog spin|touch|populate|pageout|fork|share [MIB [N]]\n");
		return 2;
	}
	const char *mode = argv[1];
	size_t len = (argc > 2 ? strtoul(argv[2], NULL, 0) : 64) << 20;
	if (!strcmp(mode, "spin")) {
		for (volatile unsigned long n = 0;; n++)
			;
	}
	if (!strcmp(mode, "touch") || !strcmp(mode, "populate")) {
		for (;;) {
			char *p = map(len);
			if (mode[0] == 't')
				touch(p, len);
			else
				madvise(p, len, MADV_POPULATE_WRITE);
			munmap(p, len);
		}
	}
	char *p = map(len);
	touch(p, len);
	if (!strcmp(mode, "pageout")) {
		for (;;) {
			madvise(p, len, MADV_PAGEOUT);
			madvise(p, len, MADV_POPULATE_WRITE);
		}
	}
	if (!strcmp(mode, "fork")) {
		for (;;) {
			pid_t c = fork();
			if (c == 0)
				_exit(0);
			waitpid(c, NULL, 0);
		}
	}
	if (!strcmp(mode, "share")) {
		int n = argc > 3 ? atoi(argv[3]) : 4;
		for (int i = 0; i < n; i++)
			if (fork() == 0)
				for (;;)
					pause();
		for (;;)
			touch(p, len);
	}
	fprintf(stderr, "timehog: unknown mode %s\n", mode);
	return 2;
}
