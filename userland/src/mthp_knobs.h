/* The per-size knobs of multi-size THP (/sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/enabled)
 * read and written by the mTHP test programs, and the count of present pages pagemap shows. */
#ifndef FAULTLAB_MTHP_KNOBS_H
#define FAULTLAB_MTHP_KNOBS_H
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PG 4096

static void knob_path(char *path, size_t n, int kb)
{
	snprintf(path, n, "/sys/kernel/mm/transparent_hugepage/hugepages-%dkB/enabled", kb);
}

/* Write v to the knob of size kb kB: 0, or -1. */
static int knob(int kb, const char *v)
{
	char path[128];
	knob_path(path, sizeof(path), kb);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	int r = write(fd, v, strlen(v)) == (ssize_t)strlen(v) ? 0 : -1;
	close(fd);
	return r;
}

/* The selected value ("[always] inherit ...") of the knob of size kb kB into out (32 bytes): 0, or -1. */
static int knob_read(int kb, char out[32])
{
	char path[128], buf[128] = {0};
	knob_path(path, sizeof(path), kb);
	int fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		return -1;
	close(fd);
	char *l = strchr(buf, '['), *r = l ? strchr(l, ']') : NULL;
	if (!r || r - l - 1 >= 32)
		return -1;
	memset(out, 0, 32);
	memcpy(out, l + 1, r - l - 1);
	return 0;
}

/* How many of the n pages from p pagemap shows present. */
static int present(char *p, int n)
{
	int fd = open("/proc/self/pagemap", O_RDONLY), c = 0;
	for (int i = 0; i < n; i++) {
		uint64_t e;
		pread(fd, &e, 8, ((uintptr_t)(p + i * PG) / PG) * 8);
		c += (e >> 63) & 1;
	}
	close(fd);
	return c;
}
#endif
