/*
 * ptfull: run out of frames for page tables (and pages) in a child, and go on in the parent.
 *
 *   ptfull fault     the child touches one byte every 2 MiB of a 64 GiB MAP_NORESERVE mapping: every
 *                    touch needs a new page table, until a fault finds no frame (the OOM killer)
 *   ptfull mlock     mlock of the same mapping populates it until no frame is left: ENOMEM
 *   ptfull populate  mmap(MAP_POPULATE) of it: the mapping is made, its population stops short
 *                    (mm_populate's errors are not reported), and the memory comes back at munmap
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (64UL << 30)

static int child(const char *mode)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	if (!strcmp(mode, "populate"))
		flags |= MAP_POPULATE;
	char *p = mmap(NULL, BIG, PROT_READ | PROT_WRITE, flags, -1, 0);
	printf("mmap: %s\n", p == MAP_FAILED ? strerrorname_np(errno) : "ok");
	fflush(stdout);
	if (p == MAP_FAILED)
		return 1;
	if (!strcmp(mode, "fault")) {
		for (size_t off = 0; off < BIG; off += 2UL << 20)
			p[off] = 1;
		printf("touched everything\n");
	} else if (!strcmp(mode, "mlock")) {
		printf("mlock: %s\n", mlock(p, BIG) ? strerrorname_np(errno) : "ok");
		printf("munlock: %s\n", munlock(p, BIG) ? strerrorname_np(errno) : "ok");
	}
	printf("munmap: %s\n", munmap(p, BIG) ? strerrorname_np(errno) : "ok");
	/* the frames are back: a few MiB can be touched again */
	char *q = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q == MAP_FAILED)
		return 1;
	memset(q, 1, 4 << 20);
	printf("4 MiB after munmap: ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: ptfull fault|mlock|populate\n");
		return 2;
	}
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		int r = child(argv[1]);
		fflush(stdout);
		_exit(r);
	}
	int st;
	waitpid(c, &st, 0);
	if (WIFSIGNALED(st))
		printf("child: killed by %s\n", sigabbrev_np(WTERMSIG(st)));
	else
		printf("child: exited %d\n", WEXITSTATUS(st));
	printf("parent goes on\n");
	return 0;
}
