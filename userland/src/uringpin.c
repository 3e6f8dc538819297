/* IORING_REGISTER_BUFFERS pins with FOLL_WRITE | FOLL_LONGTERM (io_uring/rsrc.c): a MAP_SHARED mapping
 * of a file whose filesystem writes pages back (ext4 natively, the simulated disk here) is refused
 * with EFAULT (mm/gup.c check_vma_flags, writable_file_mapping_allowed), as the mm selftest
 * gup_longterm expects for its "local tmpfile"; a private mapping of the same file, a memfd (shmem)
 * and anonymous memory are pinned. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define SZ 4096

static void try_pin(const char *what, int fd, int flags)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	int ring = syscall(__NR_io_uring_setup, 1, &p);
	char *mem = mmap(NULL, SZ, PROT_READ | PROT_WRITE, flags, fd, 0);
	memset(mem, 0, SZ);
	struct iovec iov = { mem, SZ };
	long r = syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1);
	printf("%s: %s\n", what, r ? strerrorname_np(errno) : "pinned");
	if (!r)
		syscall(__NR_io_uring_register, ring, IORING_UNREGISTER_BUFFERS, NULL, 0);
	munmap(mem, SZ);
	close(ring);
}

int main(void)
{
	char name[] = "uringpin_tmpfile_XXXXXX";
	int fd = mkstemp(name);
	if (fd < 0 || ftruncate(fd, SZ) || fallocate(fd, 0, 0, SZ)) {
		perror("local file");
		return 1;
	}
	unlink(name);
	try_pin("local file MAP_SHARED", fd, MAP_SHARED);
	try_pin("local file MAP_PRIVATE", fd, MAP_PRIVATE);
	int mfd = memfd_create("uringpin", 0);
	ftruncate(mfd, SZ);
	try_pin("memfd MAP_SHARED", mfd, MAP_SHARED);
	try_pin("anonymous", -1, MAP_PRIVATE | MAP_ANONYMOUS);
	return 0;
}
