/* A memfd (tmpfs) file written with write(): its pages are in the page cache, so mincore reports
 * them resident through a mapping that has not touched them, and fsync then `drop` (writing 3 to
 * /proc/sys/vm/drop_caches) changes nothing: shmem pages are not clean cache. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NPAGES 16

int main(int argc, char **argv)
{
    char buf[4096];
    unsigned char vec[NPAGES];
    int fd = memfd_create("tmpfsdrop", 0);
    if (fd < 0) {
        perror("memfd_create");
        return 1;
    }
    for (int i = 0; i < NPAGES; i++) {
        memset(buf, 'a' + i, sizeof buf);
        if (write(fd, buf, sizeof buf) != sizeof buf)
            return 2;
    }
    if (fsync(fd))                      /* noop_fsync: tmpfs has nothing to write back */
        return 5;
    if (argc > 1 && !strcmp(argv[1], "drop")) {
        int d = open("/proc/sys/vm/drop_caches", O_WRONLY);
        if (d < 0 || write(d, "3\n", 2) != 2) {
            perror("drop_caches");
            return 3;
        }
        close(d);
    }
    char *p = mmap(NULL, NPAGES * 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED || mincore(p, NPAGES * 4096, vec))
        return 4;
    int resident = 0;
    for (int i = 0; i < NPAGES; i++)
        resident += vec[i] & 1;
    printf("resident before touching: %d of %d\n", resident, NPAGES);
    int good = 0;
    for (int i = 0; i < NPAGES; i++)
        good += p[i * 4096 + 100] == 'a' + i;
    printf("pages with their data: %d\n", good);
    return 0;
}
