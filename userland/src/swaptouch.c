/*
 * swaptouch MIB [PASSES]
 *
 * Maps MIB MiB of private anonymous memory and touches it PASSES times (default 2), page by page in
 * address order: the first pass writes each page's first and last 8 bytes (a value made of the page
 * number), every later pass checks that both are still there and writes them again with the pass
 * number. With more memory than RAM every pass after the first swaps each page out and in again.
 * Prints the number of pages, the passes and a checksum; "FAIL: ..." and status 1 when a page
 * came back with other contents.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define PAGE 4096

static uint64_t value(long page, long pass)
{
	return (uint64_t)page * 0x9e3779b97f4a7c15ULL + (uint64_t)pass;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: swaptouch MIB [PASSES]\n");
		return 2;
	}
	long mib = atol(argv[1]);
	long passes = argc > 2 ? atol(argv[2]) : 2;
	if (mib <= 0 || passes <= 0) {
		fprintf(stderr, "swaptouch: MIB and PASSES must be positive\n");
		return 2;
	}
	long pages = mib << 8;
	char *p = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	uint64_t sum = 0;
	for (long pass = 0; pass < passes; pass++) {
		for (long i = 0; i < pages; i++) {
			uint64_t *head = (uint64_t *)(p + i * PAGE);
			uint64_t *tail = (uint64_t *)(p + i * PAGE + PAGE - 8);
			if (pass > 0 && (*head != value(i, pass - 1) || *tail != ~value(i, pass - 1))) {
				printf("FAIL: page %ld pass %ld: %llx %llx\n", i, pass,
				       (unsigned long long)*head, (unsigned long long)*tail);
				return 1;
			}
			*head = value(i, pass);
			*tail = ~value(i, pass);
			sum += *head >> 7;
		}
	}
	printf("pages %ld passes %ld sum %llx\n", pages, passes, (unsigned long long)sum);
	return 0;
}
