/* Threads that race faults against address-space changes, to provoke each speculative-fault abort.
 * usage: spfrace MODE ROUNDS
 *   race     thread A maps, touches and unmaps chunks right next to thread B's chunks (same VMA after
 *            merging, same page table): spf_vma_changed, spf_pte_lock, spf_pmd_changed
 *   noanon   first touch of fresh anonymous mappings: spf_vma_noanon
 *   file     touch a file mapping (speculation is anonymous-only by default): spf_vma_notsup
 *   access   write to a read-only mapping: spf_vma_access, then SIGSEGV
 *   swap     2 threads touch more than RAM, then read it back: speculative do_swap_page */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int rounds = 200;
static char *base;                      /* a 2 MiB-aligned window both racers use */
static volatile int go;
#define CHUNK (64 << 10)

static void touch(char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 4096)
        p[i] = 1;
}

static void *racer(void *arg)
{
    long id = (long)arg;
    while (!go)
        ;
    for (int r = 0; r < rounds; r++) {
        /* each thread owns alternate chunks of the window: neighbours merge into one VMA */
        char *want = base + ((r % 8) * 2 + id) * CHUNK;
        char *p = mmap(want, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED)
            return (void *)1;
        touch(p, CHUNK);
        munmap(p, CHUNK);
    }
    return NULL;
}

static long sum_pages(char *p, size_t n)
{
    long s = 0;
    for (size_t i = 0; i < n; i += 4096)
        s += p[i];
    return s;
}

static char *region;
static size_t region_size;

static void *swapper(void *arg)
{
    long id = (long)arg;
    size_t half = region_size / 2;
    char *p = region + id * half;
    for (size_t i = 0; i < half; i += 4096)
        p[i] = (char)(i >> 12);
    long s = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < half; i += 4096)
            s += p[i] == (char)(i >> 12);
    return (void *)s;
}

static pthread_mutex_t hold = PTHREAD_MUTEX_INITIALIZER;

static void *idle_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&hold);          /* sleeps in the kernel until main lets go */
    pthread_mutex_unlock(&hold);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "race";
    if (argc > 2)
        rounds = atoi(argv[2]);
    pthread_t a, b;
    if (!strcmp(mode, "race")) {
        char *w = mmap(NULL, 4 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        base = (char *)(((unsigned long)w + (2 << 20) - 1) & ~((2UL << 20) - 1));
        munmap(w, 4 << 20);
        pthread_create(&a, NULL, racer, (void *)0);
        pthread_create(&b, NULL, racer, (void *)1);
        go = 1;
        void *ra, *rb;
        pthread_join(a, &ra);
        pthread_join(b, &rb);
        printf("race done %d\n", ra == NULL && rb == NULL);
        return 0;
    }
    /* the other modes need a second thread alive so the process is multi-threaded */
    pthread_mutex_lock(&hold);
    pthread_create(&a, NULL, idle_thread, NULL);
    if (!strcmp(mode, "noanon")) {
        long s = 0;
        for (int r = 0; r < rounds; r++) {
            char *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            touch(p, CHUNK);
            s += sum_pages(p, CHUNK);
            munmap(p, CHUNK);
        }
        printf("noanon sum %ld\n", s);
    } else if (!strcmp(mode, "file")) {
        int fd = open(argc > 3 ? argv[3] : "/proc/self/exe", O_RDONLY);
        if (fd < 0) {
            perror("open");
            return 1;
        }
        off_t size = lseek(fd, 0, SEEK_END) & ~4095L;
        char *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        printf("file sum %ld\n", sum_pages(p, size));
    } else if (!strcmp(mode, "access")) {
        char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 1;                        /* the VMA has its anon_vma: speculation is possible */
        mprotect(p, 8192, PROT_READ);
        printf("read %d\n", p[4096]);
        fflush(stdout);
        p[4096] = 1;                     /* SIGSEGV */
        printf("not reached\n");
    } else if (!strcmp(mode, "swap")) {
        region_size = (size_t)rounds << 20;
        region = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        touch(region, 4096);             /* anon_vma exists before the threads race */
        pthread_create(&b, NULL, swapper, (void *)1);
        long s0 = (long)swapper((void *)0);
        void *s1;
        pthread_join(b, &s1);
        printf("swap ok %d\n", s0 + (long)s1 == 2 * (long)(region_size / 4096));
    }
    pthread_mutex_unlock(&hold);
    pthread_join(a, NULL);
    return 0;
}
