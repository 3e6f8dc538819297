/*
 * mprotect_tlb: a page that was just used (its translation hot in the TLB) must obey a new protection at
 * once: a write after mprotect(PROT_READ) and a read after mprotect(PROT_NONE) fault with SIGSEGV
 * (SEGV_ACCERR), a read after munmap with SIGSEGV (SEGV_MAPERR); restoring the rights lets the access
 * through again. Prints one line per case with how the accesses ended; the same natively.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define ROUNDS 50

static sigjmp_buf env;
static volatile int code;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	code = si->si_code;
	siglongjmp(env, 1);
}

/* 0 when the access went through, else the SIGSEGV's si_code */
static int try_access(volatile char *p, int write)
{
	code = 0;
	if (!sigsetjmp(env, 1)) {
		if (write)
			*p = 1;
		else
			(void)*p;
	}
	return code;
}

static void hot(volatile char *p)
{
	for (int i = 0; i < 1000; i++)
		p[(i * 64) % 4096] += 1;
}

static void report(const char *what, int *counts)
{
	printf("%-32s ok %d  SEGV_MAPERR %d  SEGV_ACCERR %d\n", what, counts[0], counts[SEGV_MAPERR],
	       counts[SEGV_ACCERR]);
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);

	int ro[3] = {0}, ro_back[3] = {0}, none[3] = {0}, none_w[3] = {0}, gone[3] = {0};
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int r = 0; r < ROUNDS; r++) {
		hot(p);
		mprotect(p, 4096, PROT_READ);
		ro[try_access(p, 1)]++;
		mprotect(p, 4096, PROT_READ | PROT_WRITE);
		ro_back[try_access(p, 1)]++;
		hot(p);
		mprotect(p, 4096, PROT_NONE);
		none[try_access(p, 0)]++;
		none_w[try_access(p, 1)]++;
		mprotect(p, 4096, PROT_READ | PROT_WRITE);
	}
	report("write after PROT_READ", ro);
	report("write after PROT_READ|WRITE", ro_back);
	report("read after PROT_NONE", none);
	report("write after PROT_NONE", none_w);
	for (int r = 0; r < ROUNDS; r++) {
		char *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		hot(q);
		munmap(q, 4096);
		gone[try_access(q, 0)]++;
	}
	report("read after munmap", gone);
	return 0;
}
