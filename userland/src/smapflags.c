/* The VmFlags line of /proc/self/smaps for the flags a program can set itself (fs/proc/task_mmu.c
 * show_smap_vma_flags: "wf" after MADV_WIPEONFORK, "dc" after MADV_DONTFORK, "dd" after
 * MADV_DONTDUMP, "lo"/"lf" for mlock, "um"/"uw"/"ui" for userfaultfd registrations), and FIONREAD on
 * regular files (fs/ioctl.c do_vfs_ioctl answers it before the file's own ioctl: i_size - f_pos as an
 * int, so /proc/self/pagemap, whose i_size is 0, gives 0 and then minus the position). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PS 4096

/* Print the VmFlags line of the mapping that starts at addr. */
static void vmflags(const char *what, void *addr)
{
	char line[512], want[32];
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, want, strlen(want)))
			in = 1;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			printf("%s: %s", what, line);
			break;
		}
	}
	fclose(f);
}

static char *anon(size_t len)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void uffd_register(const char *what, void *addr, size_t len, unsigned long long mode)
{
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC);
	struct uffdio_api api = { .api = UFFD_API,
				  .features = mode & UFFDIO_REGISTER_MODE_MINOR ? UFFD_FEATURE_MINOR_SHMEM : 0 };
	struct uffdio_register reg = { .range = { (unsigned long)addr, len }, .mode = mode };
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		printf("%s: %s\n", what, strerrorname_np(errno));
		return;
	}
	vmflags(what, addr);
	close(uffd);
	vmflags("after close", addr);
}

/* FIONREAD at a position; with `rel`, the count is printed relative to -pos (an address). */
static void fionread(const char *what, int fd, off_t pos, int rel)
{
	int n = -1;
	lseek(fd, pos, SEEK_SET);
	int r = ioctl(fd, FIONREAD, &n);
	if (rel)
		printf("FIONREAD %s: %d %s is minus the position: %d\n", what, r, r ? strerrorname_np(errno) : "",
		       n == (int)-pos);
	else
		printf("FIONREAD %s at %ld: %d %s %d\n", what, (long)pos, r, r ? strerrorname_np(errno) : "", n);
}

int main(void)
{
	char *p = anon(4 * PS);
	vmflags("anon", p);
	madvise(p, PS, MADV_WIPEONFORK);
	vmflags("wipeonfork", p);
	madvise(p, PS, MADV_KEEPONFORK);
	vmflags("keeponfork", p);
	madvise(p + PS, PS, MADV_DONTFORK);
	vmflags("dontfork", p + PS);
	madvise(p + 2 * PS, PS, MADV_DONTDUMP);
	vmflags("dontdump", p + 2 * PS);
	if (!mlock2(p + 3 * PS, PS, MLOCK_ONFAULT))
		vmflags("mlock onfault", p + 3 * PS);

	char *q = anon(2 * PS);
	uffd_register("uffd missing", q, 2 * PS, UFFDIO_REGISTER_MODE_MISSING);
	uffd_register("uffd wp", q, 2 * PS, UFFDIO_REGISTER_MODE_WP);
	uffd_register("uffd missing+wp", q, 2 * PS, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
	int mfd = memfd_create("smapflags", 0);
	ftruncate(mfd, 2 * PS);
	char *s = mmap(NULL, 2 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	vmflags("memfd", s);
	uffd_register("uffd minor", s, 2 * PS, UFFDIO_REGISTER_MODE_MINOR);

	int pm = open("/proc/self/pagemap", O_RDONLY);
	fionread("pagemap", pm, 0, 0);
	fionread("pagemap", pm, (unsigned long)p / PS * 8, 1);
	fionread("memfd", mfd, 100, 0);
	fionread("memfd", mfd, 3 * PS, 0);
	char tmpl[] = "/tmp/smapflagsXXXXXX";
	int tf = mkstemp(tmpl);
	unlink(tmpl);
	write(tf, tmpl, 20);
	fionread("tmp file", tf, 5, 0);
	int pfd[2];
	pipe(pfd);
	write(pfd[1], "abc", 3);
	fionread("pipe", pfd[0], 0, 0);
	int d = open("/tmp", O_RDONLY | O_DIRECTORY);
	fionread("directory", d, 0, 0);
	return 0;
}
