/*
 * populate_bench: how long it takes to prefault a whole mapping, per backing and per method.
 *
 *   populate_bench [-r REPS] [-s private|shared|both] [-b BACKING,...] [-m METHOD,...]
 *                  [-t TMPDIR] [-f FILEDIR] SIZE
 *
 * SIZE is a byte count with an optional K/M/G suffix (2M, 64M, ...). For every sharing
 * (MAP_PRIVATE, then MAP_SHARED), every backing and every method, the mapping is created afresh
 * (mmap), the method is timed with clock_gettime(CLOCK_MONOTONIC), and the mapping is removed
 * (munmap); the shortest of REPS repetitions (default 3) is printed as one line
 *
 *   row BACKING SHARING METHOD NS
 *
 * or, for a combination that does not apply or could not be set up,
 *
 *   row BACKING SHARING METHOD n/a REASON
 *
 * Backings: anon4k (anonymous memory), memfd4k (memfd_create), memfd2m (memfd_create with
 * MFD_HUGETLB), tmpfs (a file in TMPDIR, default /tmp), file (a file in FILEDIR, default /home),
 * hugetlbfs (anonymous MAP_HUGETLB memory).
 * Methods: Read (read one byte per page), Write (write one byte per page), Read/Write (read a byte,
 * then write it back, per page), POPULATE_READ and POPULATE_WRITE (one madvise call), FALLOCATE
 * (fallocate the whole backing file, mode 0) and FALLOCATE+<one of the others> (fallocate, then
 * that method; both are timed).
 *
 * File state: shared mappings start from fresh, empty backing, as in the posting's measurement
 * ("prefaulting page tables on completely empty mappings/files"): before every repetition of
 * every method the file's whole range is punched out (no blocks, no cached pages), and anonymous
 * memory is a new mapping each time. For private mappings the FALLOCATE methods start from an
 * empty file too, and every other method runs on a file whose pages are in the page cache: before
 * its first repetition the file is read once through a private mapping (untimed), which is the
 * state a file is in after one repetition of any method. FALLOCATE rows apply to shared mappings of a file only: a private mapping of a
 * file does not see what fallocate allocated once it has been written to (copy-on-write), and
 * anonymous memory has no file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4U
#endif
#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 1
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 2
#endif

#define PAGE 4096UL
#define HUGE (2UL << 20)

enum backing { ANON, MEMFD, MEMFD_HUGE, TMPFS, FILE_, HUGETLB, NBACKINGS };
static const char *backing_name[NBACKINGS] = {"anon4k", "memfd4k", "memfd2m", "tmpfs", "file", "hugetlbfs"};

enum access { NONE, READ, WRITE, READ_WRITE, POP_READ, POP_WRITE };
struct method {
	const char *name;
	int fallocate;
	enum access access;
};
static const struct method methods[] = {
	{"Read", 0, READ},
	{"Write", 0, WRITE},
	{"Read/Write", 0, READ_WRITE},
	{"POPULATE_READ", 0, POP_READ},
	{"POPULATE_WRITE", 0, POP_WRITE},
	{"FALLOCATE", 1, NONE},
	{"FALLOCATE+Read", 1, READ},
	{"FALLOCATE+Write", 1, WRITE},
	{"FALLOCATE+Read/Write", 1, READ_WRITE},
	{"FALLOCATE+POPULATE_READ", 1, POP_READ},
	{"FALLOCATE+POPULATE_WRITE", 1, POP_WRITE},
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

static unsigned long size;
static int reps = 3;
static const char *tmpdir = "/tmp", *filedir = "/home";
static int want_backing[NBACKINGS];
static int want_method[NMETHODS];
static volatile unsigned long sink;

/* A SIGBUS while touching (e.g. hugetlb memory without free huge pages) ends the row, not the run. */
static sigjmp_buf touch_env;
static volatile int touching;

static void on_sigbus(int sig)
{
	(void)sig;
	if (touching)
		siglongjmp(touch_env, 1);
	_exit(135);
}

static unsigned long parse_size(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end || !v) {
		fprintf(stderr, "populate_bench: bad size %s\n", s);
		exit(2);
	}
	return v;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void na(enum backing b, const char *sharing, const char *method, const char *why)
{
	printf("row %s %s %s n/a %s\n", backing_name[b], sharing, method, why);
}

/* Touch one byte per page; 0, or -1 on SIGBUS. */
static int touch(char *p, unsigned long len, enum access a)
{
	unsigned long sum = 0;
	touching = 1;
	if (sigsetjmp(touch_env, 1)) {
		touching = 0;
		return -1;
	}
	volatile char *v = p;
	switch (a) {
	case READ:
		for (unsigned long off = 0; off < len; off += PAGE)
			sum += v[off];
		break;
	case WRITE:
		for (unsigned long off = 0; off < len; off += PAGE)
			v[off] = 0;
		break;
	case READ_WRITE:
		for (unsigned long off = 0; off < len; off += PAGE)
			v[off] = v[off];
		break;
	default:
		break;
	}
	touching = 0;
	sink += sum;
	return 0;
}

/* The backing's file descriptor (-1 for anonymous memory), or -2 with *why set. */
static int open_backing(enum backing b, char *path, size_t pathlen, const char **why)
{
	int fd = -1;
	path[0] = 0;
	switch (b) {
	case ANON:
	case HUGETLB:
		return -1;
	case MEMFD:
	case MEMFD_HUGE:
		fd = (int)syscall(SYS_memfd_create, "populate_bench", b == MEMFD_HUGE ? MFD_HUGETLB : 0U);
		if (fd < 0) {
			*why = b == MEMFD_HUGE ? "no-hugetlb" : "memfd_create-failed";
			return -2;
		}
		break;
	case TMPFS:
	case FILE_:
		snprintf(path, pathlen, "%s/populate_bench.%d.dat", b == TMPFS ? tmpdir : filedir, (int)getpid());
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0) {
			*why = "open-failed";
			return -2;
		}
		break;
	default:
		return -2;
	}
	if (ftruncate(fd, (off_t)size)) {
		*why = "ftruncate-failed";
		close(fd);
		if (path[0])
			unlink(path);
		return -2;
	}
	return fd;
}

static void *map(enum backing b, int fd, int shared)
{
	int flags = shared ? MAP_SHARED : MAP_PRIVATE;
	if (fd < 0)
		flags |= MAP_ANONYMOUS | (b == HUGETLB ? MAP_HUGETLB : 0);
	return mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, 0);
}

/* Empty the file: give its whole range back (punch a hole), or truncate it to 0 and back. */
static int empty_file(int fd)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)size) == 0)
		return 0;
	if (ftruncate(fd, 0) || ftruncate(fd, (off_t)size))
		return -1;
	return 0;
}

/* Bring every page of the file into the page cache: read it once through a private mapping. */
static int warm_file(enum backing b, int fd)
{
	char *p = map(b, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	int r = touch(p, size, READ);
	munmap(p, size);
	return r;
}

/* One timed repetition: ns, or -1 with *why set. */
static long long one_rep(enum backing b, int fd, int shared, const struct method *m, const char **why)
{
	if ((m->fallocate || shared) && fd >= 0 && empty_file(fd)) {
		*why = "punch-failed";
		return -1;
	}
	char *p = map(b, fd, shared);
	if (p == MAP_FAILED) {
		*why = (b == HUGETLB || b == MEMFD_HUGE) ? "no-hugetlb" : "mmap-failed";
		return -1;
	}
	long long t0 = now_ns();
	int err = 0;
	if (m->fallocate && fallocate(fd, 0, 0, (off_t)size)) {
		err = 1;
		*why = "fallocate-failed";
	}
	if (!err) {
		switch (m->access) {
		case POP_READ:
		case POP_WRITE:
			if (madvise(p, size, m->access == POP_READ ? MADV_POPULATE_READ : MADV_POPULATE_WRITE)) {
				err = 1;
				*why = errno == EINVAL ? "madvise-EINVAL" : errno == ENOMEM ? "madvise-ENOMEM"
				       : errno == EFAULT ? "madvise-EFAULT" : "madvise-failed";
			}
			break;
		case NONE:
			break;
		default:
			if (touch(p, size, m->access)) {
				err = 1;
				*why = "SIGBUS";
			}
		}
	}
	long long t1 = now_ns();
	munmap(p, size);
	return err ? -1 : t1 - t0;
}

static void run_block(int shared)
{
	const char *sharing = shared ? "shared" : "private";
	for (int b = 0; b < NBACKINGS; b++) {
		if (!want_backing[b])
			continue;
		char path[512];
		const char *why = NULL;
		int fd = open_backing(b, path, sizeof(path), &why);
		int warm = 0;
		for (unsigned i = 0; i < NMETHODS; i++) {
			const struct method *m = &methods[i];
			if (!want_method[i])
				continue;
			if (m->fallocate && (fd == -1 || !shared)) {
				na(b, sharing, m->name, fd == -1 ? "no-file" : "private-mapping");
				continue;
			}
			if (fd == -2) {
				na(b, sharing, m->name, why);
				continue;
			}
			if (fd >= 0 && !shared && !m->fallocate && !warm) {
				if (warm_file(b, fd)) {
					na(b, sharing, m->name, b == MEMFD_HUGE ? "no-hugetlb" : "warm-up-failed");
					continue;
				}
				warm = 1;
			}
			long long best = -1;
			for (int r = 0; r < reps; r++) {
				long long t = one_rep(b, fd, shared, m, &why);
				if (t < 0) {
					best = -1;
					break;
				}
				if (best < 0 || t < best)
					best = t;
			}
			if (m->fallocate)
				warm = 0;
			if (best < 0)
				na(b, sharing, m->name, why);
			else
				printf("row %s %s %s %lld\n", backing_name[b], sharing, m->name, best);
			fflush(stdout);
		}
		if (fd >= 0)
			close(fd);
		if (path[0])
			unlink(path);
	}
}

static int select_names(char *list, const char *const *names, int n, int *want, const char *what)
{
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		int found = 0;
		for (int i = 0; i < n; i++)
			if (!strcmp(tok, names[i]))
				want[i] = found = 1;
		if (!found) {
			fprintf(stderr, "populate_bench: unknown %s %s\n", what, tok);
			return -1;
		}
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: populate_bench [-r REPS] [-s private|shared|both] [-b BACKING,...] "
		"[-m METHOD,...] [-t TMPDIR] [-f FILEDIR] SIZE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *sharing = "both";
	char *blist = NULL, *mlist = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "r:s:b:m:t:f:")) != -1) {
		switch (opt) {
		case 'r': reps = atoi(optarg); break;
		case 's': sharing = optarg; break;
		case 'b': blist = optarg; break;
		case 'm': mlist = optarg; break;
		case 't': tmpdir = optarg; break;
		case 'f': filedir = optarg; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || reps < 1)
		usage();
	size = parse_size(argv[optind]);
	if (size % HUGE)
		fprintf(stderr, "populate_bench: note: %lu is not a multiple of 2 MiB (hugetlb rows need it)\n", size);
	size = (size + PAGE - 1) & ~(PAGE - 1);
	if (blist) {
		if (select_names(blist, backing_name, NBACKINGS, want_backing, "backing"))
			return 2;
	} else {
		for (int b = 0; b < NBACKINGS; b++)
			want_backing[b] = 1;
	}
	if (mlist) {
		const char *names[NMETHODS];
		for (unsigned i = 0; i < NMETHODS; i++)
			names[i] = methods[i].name;
		if (select_names(mlist, names, NMETHODS, want_method, "method"))
			return 2;
	} else {
		for (unsigned i = 0; i < NMETHODS; i++)
			want_method[i] = 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigaction(SIGBUS, &sa, NULL);

	printf("size %lu\nreps %d\n", size, reps);
	if (strcmp(sharing, "shared"))
		run_block(0);
	if (strcmp(sharing, "private"))
		run_block(1);
	printf("done 1\n");
	return 0;
}
