/*
 * ra_marker: read a cold file with large read() calls, then map it and touch every page.
 *
 *   ra_marker DIR [MIB] [CHUNK_KIB]
 *
 * Creates DIR/ra_marker.dat (MIB MiB, default 4), writes it, fsyncs it and drops it from the page
 * cache (POSIX_FADV_DONTNEED), reads it whole with read() calls of CHUNK_KIB KiB (default 1024), then
 * maps it (MAP_SHARED, PROT_READ, 32 KiB past a 2 MiB boundary) and reads one byte of every page, and prints
 *
 *   pages N
 *   touch_minflt M      (minor faults taken by the touching, from getrusage)
 *   touch_majflt J
 *   sum S
 *
 * Every page is in the page cache when it is touched, so each fault maps what fault-around
 * (filemap_map_pages) finds: M is N/16 + 1 with the default 64 KiB fault_around_bytes when every page
 * may be mapped (the windows are offset by half a window), more when pages still carry the read-ahead marker (PG_readahead), which
 * filemap_map_pages leaves to the next fault.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define PAGE 4096L

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static long faults(int major)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		die("getrusage");
	return major ? ru.ru_majflt : ru.ru_minflt;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: ra_marker DIR [MIB] [CHUNK_KIB]\n");
		return 2;
	}
	long mib = argc > 2 ? atol(argv[2]) : 4;
	long chunk = (argc > 3 ? atol(argv[3]) : 1024) * 1024;
	if (mib <= 0 || chunk <= 0) {
		fprintf(stderr, "ra_marker: bad size\n");
		return 2;
	}
	long size = mib << 20;
	char path[4096];
	snprintf(path, sizeof(path), "%s/ra_marker.dat", argv[1]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open");
	char *buf = malloc(chunk);
	if (!buf)
		die("malloc");
	for (long off = 0; off < size; off += chunk) {
		long n = size - off < chunk ? size - off : chunk;
		for (long i = 0; i < n; i++)
			buf[i] = (char)((off + i) / PAGE + 1);
		if (write(fd, buf, n) != n)
			die("write");
	}
	if (fsync(fd))
		die("fsync");
	if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
		die("posix_fadvise");
	if (lseek(fd, 0, SEEK_SET))
		die("lseek");
	long got = 0, r;
	while ((r = read(fd, buf, chunk)) > 0)
		got += r;
	if (r < 0 || got != size)
		die("read");
	/* 32 KiB past a 2 MiB boundary, wherever the kernel would have put it (ext4 aligns large file
	 * mappings with thp_get_unmapped_area): the 64 KiB fault-around windows (aligned in the address
	 * space) then start in the middle of every 64 KiB of the file, the first and the last are clipped
	 * to 8 pages by the mapping's ends, and a marked page at a 64 KiB boundary of the file lies inside a
	 * window rather than at its first page */
	char *area = mmap(NULL, size + (4L << 20), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		die("mmap");
	unsigned char *at = (unsigned char *)((((unsigned long)area + (2L << 20) - 1) & ~((2UL << 20) - 1)) +
					      (32L << 10));
	unsigned char *p = mmap(at, size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	long min0 = faults(0), maj0 = faults(1);
	unsigned long sum = 0;
	for (long off = 0; off < size; off += PAGE)
		sum += p[off];
	long min1 = faults(0), maj1 = faults(1);
	printf("pages %ld\ntouch_minflt %ld\ntouch_majflt %ld\nsum %lu\n", size / PAGE, min1 - min0, maj1 - maj0, sum);
	munmap(area, size + (4L << 20));
	close(fd);
	unlink(path);
	return 0;
}
