/* fork with hugetlb mappings: a private mapping's huge pages are copy-on-write in parent and child
 * (copy_hugetlb_page_range copies the PMDs), a shared one's are the same pages in both. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <errno.h>

#define HPAGE (2UL << 20)

static void one(int shared)
{
    const char *kind = shared ? "shared" : "private";
    char *p = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE,
                   (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p == MAP_FAILED) {
        printf("%s mmap: %s\n", kind, strerror(errno));
        return;
    }
    strcpy(p, "parent data");               /* first huge page faulted in before the fork */
    pid_t c = fork();
    if (c == 0) {
        printf("%s child reads: '%s' second page '%s'\n", kind, p, p + HPAGE);
        p[0] = 'C';
        strcpy(p + HPAGE, "child second");
        printf("%s child wrote: '%s'\n", kind, p);
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("%s parent after child: '%s' second page '%s'\n", kind, p, p + HPAGE);
    p[1] = 'P';
    printf("%s parent wrote: '%s'\n", kind, p);
    munmap(p, 2 * HPAGE);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    one(0);
    one(1);
    return 0;
}
