/*
 * diskkeep write PATH KIB | diskkeep check PATH KIB
 *
 * write: creates PATH (and writes KIB KiB of a pattern that depends on
 * the offset, in writes of 3000 bytes so that pages are filled in parts),
 * then a second file PATH.link as a symbolic link to PATH, and exits
 * without fsync (the data may still be in the page cache).
 * check: reads PATH back through the symbolic link and through mmap and
 * prints its size, mode and a checksum; exits 1 when the data differs
 * from the pattern or the file is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned char pattern(long off)
{
	return (unsigned char)((off * 7 + (off >> 12) * 13) & 0xff);
}

static int fail(const char *what)
{
	printf("FAIL: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	char link[4096];
	long size, off;
	unsigned char buf[3000];

	if (argc != 4 || (strcmp(argv[1], "write") && strcmp(argv[1], "check"))) {
		fprintf(stderr, "usage: diskkeep write|check PATH KIB\n");
		return 2;
	}
	size = atol(argv[3]) * 1024;
	snprintf(link, sizeof link, "%s.link", argv[2]);
	if (!strcmp(argv[1], "write")) {
		int fd = open(argv[2], O_CREAT | O_TRUNC | O_WRONLY, 0640);
		if (fd < 0)
			return fail("open");
		for (off = 0; off < size;) {
			long n = size - off < (long)sizeof buf ? size - off : (long)sizeof buf;
			for (long i = 0; i < n; i++)
				buf[i] = pattern(off + i);
			if (write(fd, buf, n) != n)
				return fail("write");
			off += n;
		}
		close(fd);
		unlink(link);
		if (symlink(argv[2], link))
			return fail("symlink");
		printf("wrote %ld bytes\n", size);
		return 0;
	}
	int fd = open(link, O_RDONLY);
	if (fd < 0)
		return fail("open");
	struct stat st;
	if (fstat(fd, &st))
		return fail("fstat");
	if (st.st_size != size) {
		printf("FAIL: size %ld, expected %ld\n", (long)st.st_size, size);
		return 1;
	}
	unsigned char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap");
	unsigned long sum = 0;
	for (off = 0; off < size; off++) {
		if (p[off] != pattern(off)) {
			printf("FAIL: byte %ld is %d, expected %d\n", off, p[off], pattern(off));
			return 1;
		}
		sum = sum * 31 + p[off];
	}
	printf("size %ld mode %o sum %lx\n", (long)st.st_size, (unsigned)(st.st_mode & 07777), sum);
	return 0;
}
