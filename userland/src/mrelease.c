/* process_mrelease (mm/oom_kill.c) on a child in each state of its life: EBADF for a bad descriptor,
 * EINVAL for bad flags and for a live child with no SIGKILL pending, 0 (its memory reaped) once it
 * has been sent SIGKILL and has not yet exited (as the mm selftest mrelease_test: a child whose exit
 * races the call is retried with more memory), ESRCH for a zombie and for a reaped child. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_process_mrelease
#define __NR_process_mrelease 448
#endif

static long mrelease(int pidfd, unsigned flags)
{
	return syscall(__NR_process_mrelease, pidfd, flags);
}

static const char *res(long r)
{
	static char buf[32];
	if (r == 0)
		return "0";
	snprintf(buf, sizeof(buf), "-1 %s", strerrorname_np(errno));
	return buf;
}

/* MemFree of the machine in kB. */
static long mem_free_kb(void)
{
	char line[256];
	long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		sscanf(line, "MemFree: %ld", &kb);
	fclose(f);
	return kb;
}

/* A child that touches `mb` MiB, says so on the pipe, then sleeps until killed. */
static pid_t spawn(size_t mb, int *pidfd)
{
	int p[2];
	char c;
	if (pipe(p))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		size_t len = mb << 20;
		char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (size_t i = 0; i < len; i += 4096)
			buf[i] = 1;
		write(p[1], "", 1);
		for (int i = 0; i < 20; i++)
			sleep(1);
		_exit(3);
	}
	close(p[1]);
	read(p[0], &c, 1);
	close(p[0]);
	*pidfd = syscall(__NR_pidfd_open, pid, 0);
	return pid;
}

static int vm_child(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++)
		sleep(1);
	return 0;
}

/* A process sharing the caller's mm (CLONE_VM, not a thread) is killed: its memory is not going away
 * while the caller lives (task_will_free_mem), EINVAL; a child that exits first gives ESRCH, and
 * is tried again. */
static void shared_mm(void)
{
	static char stack[10][65536];
	long r = -1;
	int e = 0, st;
	for (int i = 0; i < 10; i++) {
		pid_t pid = clone(vm_child, stack[i] + sizeof(stack[i]), CLONE_VM | SIGCHLD, NULL);
		int pidfd = syscall(__NR_pidfd_open, pid, 0);
		kill(pid, SIGKILL);
		r = mrelease(pidfd, 0);
		e = errno;
		waitpid(pid, &st, 0);
		close(pidfd);
		if (r || e != ESRCH)
			break;
	}
	printf("shared mm: %s\n", r ? strerrorname_np(e) : "0");
}

int main(int argc, char **argv)
{
	int show_free = argc > 1 && !strcmp(argv[1], "-f");
	int pidfd = -1, st, signaled = 0, termsig = 0;
	size_t mb;
	pid_t pid;

	printf("bad fd: %s\n", res(mrelease(-1, 0)));
	printf("not a pidfd: %s\n", res(mrelease(0, 0)));
	for (mb = 1; mb <= 256; mb *= 2) {
		pid = spawn(mb, &pidfd);
		if (mb == 1) {
			printf("bad flags: %s\n", res(mrelease(pidfd, ~0u)));
			printf("live: %s\n", res(mrelease(pidfd, 0)));
		}
		long free_before = mem_free_kb();
		kill(pid, SIGKILL);
		long r = mrelease(pidfd, 0);
		int e = errno;
		if (r == 0 && show_free)	/* a quiet machine only: the reap gave the child's memory back */
			printf("the reap freed most of the child's %zu MiB: %s\n", mb,
			       mem_free_kb() - free_before >= (long)(mb << 10) * 3 / 4 ? "yes" : "no");
		waitpid(pid, &st, 0);
		signaled = WIFSIGNALED(st);
		termsig = WTERMSIG(st);
		long after = mrelease(pidfd, 0);
		close(pidfd);
		if (r == 0) {
			printf("reaped: %s\n", res(after));
			break;
		}
		if (e != ESRCH) {
			printf("killed: -1 %s\n", strerrorname_np(e));
			break;
		}
	}
	printf("child: signaled %d sig %d\n", signaled, termsig);
	printf("killed and reaped: %s\n", mb <= 256 ? "yes" : "no");

	shared_mm();

	/* a zombie: exited, not yet waited for */
	pid = fork();
	if (pid == 0)
		_exit(0);
	pidfd = syscall(__NR_pidfd_open, pid, 0);
	siginfo_t si;
	waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
	printf("zombie: %s\n", res(mrelease(pidfd, 0)));
	waitpid(pid, &st, 0);
	printf("gone: %s\n", res(mrelease(pidfd, 0)));
	return 0;
}
