/*
 * shared_write: write faults on a shared mapping of a file, dirty pages and writeback.
 *
 *   shared_write DIR [MIB [SLEEP]]
 *
 * Creates DIR/shared_write.dat (MIB MiB, default 4) with write(), fsyncs it (clean pages, blocks
 * allocated), maps it MAP_SHARED read/write and populates the page tables for reading
 * (MADV_POPULATE_READ: every page mapped, write-protected while clean). Then, per phase, it writes one
 * byte to every page and prints the minor faults the writes took (getrusage), the simulated or real
 * time per page (CLOCK_MONOTONIC) and the change of Dirty in /proc/meminfo (kB):
 *
 *   first   the first writes to clean pages: each takes a write-protect fault (page_mkwrite, the
 *           page becomes dirty)
 *   again   the same writes once more: the pages are dirty and writable, no fault
 *   sleep   (with SLEEP > 0) the program sleeps SLEEP seconds: the flusher writes back the pages
 *           dirtied longer ago than vm.dirty_expire_centisecs (30 s), Dirty falls without msync
 *   msync   msync(MS_SYNC) writes the pages back and waits (Dirty falls), no write fault
 *   after   writes after the writeback: the pages were cleaned and write-protected again
 *           (clear_page_dirty_for_io -> page_mkclean), each write faults again
 *
 * as lines "PHASE minflt M ns_per_page T dirty_kb D". A last phase, private_cow, is the reference
 * without page_mkwrite: the file mapped MAP_PRIVATE, populated for reading, and written once per page:
 * each write takes a write-protect fault that copies the cached page (wp_page_copy). The file is
 * removed at the end.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define PAGE 4096L

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static long minflt(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		die("getrusage");
	return ru.ru_minflt;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long dirty_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Dirty: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void phase(const char *name, volatile char *p, long size, int how, int fd)
{
	long d0 = dirty_kb(), f0 = minflt();
	long long t0 = now_ns();
	if (how == 1) {
		if (msync((void *)p, size, MS_SYNC))
			die("msync");
	} else if (how > 1) {
		struct timespec ts = {how - 1, 0};     /* how = seconds + 1 */
		while (nanosleep(&ts, &ts))
			;
	} else {
		for (long off = 0; off < size; off += PAGE)
			p[off] = (char)(p[off] + 1);
	}
	long long t1 = now_ns();
	long f1 = minflt(), d1 = dirty_kb();
	(void)fd;
	printf("%s minflt %ld ns_per_page %lld dirty_kb %ld\n", name, f1 - f0, (t1 - t0) / (size / PAGE), d1 - d0);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: shared_write DIR [MIB [SLEEP]]\n");
		return 2;
	}
	long mib = argc > 2 ? atol(argv[2]) : 4;
	int sleep_s = argc > 3 ? atoi(argv[3]) : 0;
	if (mib <= 0 || sleep_s < 0) {
		fprintf(stderr, "shared_write: bad size\n");
		return 2;
	}
	long size = mib << 20;
	char path[4096];
	snprintf(path, sizeof(path), "%s/shared_write.dat", argv[1]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open");
	char *buf = calloc(1, 1 << 20);
	if (!buf)
		die("calloc");
	for (long off = 0; off < size; off += 1 << 20)
		if (write(fd, buf, 1 << 20) != 1 << 20)
			die("write");
	if (fsync(fd))
		die("fsync");
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	if (madvise(p, size, MADV_POPULATE_READ))
		die("madvise");
	printf("pages %ld\n", size / PAGE);
	phase("first", p, size, 0, fd);
	phase("again", p, size, 0, fd);
	if (sleep_s > 0)
		phase("sleep", p, size, sleep_s + 1, fd);
	phase("msync", p, size, 1, fd);
	phase("after", p, size, 0, fd);
	long sum = 0;
	for (long off = 0; off < size; off += PAGE)
		sum += p[off];
	char *a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (a == MAP_FAILED)
		die("mmap");
	if (madvise(a, size, MADV_POPULATE_READ))
		die("madvise");
	phase("private_cow", a, size, 0, -1);
	for (long off = 0; off < size; off += PAGE)
		sum += a[off];
	munmap(a, size);
	printf("sum %ld\n", sum);
	munmap(p, size);
	close(fd);
	unlink(path);
	return 0;
}
