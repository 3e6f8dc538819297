/*
 * hugepool: an exhausted hugetlb pool of one 2 MiB page (run with faultlab --hugepages 1): mmap cannot
 * reserve two (ENOMEM), MAP_NORESERVE maps them and the fault that finds the pool empty is SIGBUS,
 * shmget(SHM_HUGETLB) of two is ENOMEM, and once everything is given back one page works again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define HPAGE (2UL << 20)

static sigjmp_buf env;
static volatile int got_code;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	got_code = si->si_code;
	siglongjmp(env, 1);
}

static const char *res(long r)
{
	return r < 0 ? strerrorname_np(errno) : "ok";
}

int main(void)
{
	int anon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;
	char *p = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, anon, -1, 0);
	printf("mmap 2 huge pages: %s\n", p == MAP_FAILED ? strerrorname_np(errno) : "ok");
	if (p != MAP_FAILED)
		munmap(p, 2 * HPAGE);

	p = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, anon | MAP_NORESERVE, -1, 0);
	printf("mmap 2 huge pages, MAP_NORESERVE: %s\n", p == MAP_FAILED ? strerrorname_np(errno) : "ok");
	if (p == MAP_FAILED)
		return 1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	volatile int touched = 0;
	if (!sigsetjmp(env, 1)) {
		volatile char *v = p;
		v[0] = 1;
		touched = 1;
		v[HPAGE] = 1;
		touched = 2;
	}
	printf("touched %d, then %s\n", touched, got_code == BUS_ADRERR ? "SIGBUS BUS_ADRERR" : "no signal");
	munmap(p, 2 * HPAGE);

	int id = shmget(IPC_PRIVATE, 2 * HPAGE, SHM_HUGETLB | IPC_CREAT | 0600);
	printf("shmget SHM_HUGETLB 2 huge pages: %s\n", res(id));
	id = shmget(IPC_PRIVATE, HPAGE, SHM_HUGETLB | IPC_CREAT | 0600);
	printf("shmget SHM_HUGETLB 1 huge page: %s\n", res(id));
	if (id >= 0) {
		char *s = shmat(id, NULL, 0);
		if (s != (void *)-1) {
			s[0] = 1;
			shmdt(s);
		}
		printf("mmap while the segment holds the page: %s\n",
		       mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, anon, -1, 0) == MAP_FAILED ? strerrorname_np(errno) : "ok");
		shmctl(id, IPC_RMID, NULL);
	}
	p = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, anon, -1, 0);
	printf("mmap 1 huge page after: %s\n", p == MAP_FAILED ? strerrorname_np(errno) : "ok");
	if (p != MAP_FAILED) {
		memset(p, 2, HPAGE);
		printf("filled it\n");
	}
	return 0;
}
