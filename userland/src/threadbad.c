/* Bad input to the thread calls: futex on unmapped memory, clone with flags faultlab does not model,
 * a thread that exits while others fault, a timed futex wait, and wait4 with no child. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long sys_futex(void *addr, int op, int val, void *timeout)
{
    return syscall(SYS_futex, addr, op, val, timeout, NULL, 0);
}

static void *early_exit(void *arg)
{
    (void)arg;
    return (void *)7;                   /* ends while the main thread is faulting */
}

static void *faulter(void *arg)
{
    char *p = arg;
    for (int i = 0; i < 64; i++)
        p[i * 4096] = (char)i;
    return NULL;
}

int main(void)
{
    char *unmapped = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(unmapped, 4096);
    long r = sys_futex(unmapped, FUTEX_WAIT, 0, NULL);
    printf("futex_wait unmapped: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    r = sys_futex(unmapped, FUTEX_WAKE, 1, NULL);
    printf("futex_wake unmapped: %ld\n", r);
    int word = 5;
    r = sys_futex(&word, FUTEX_WAIT_PRIVATE, 4, NULL);
    printf("futex_wait value mismatch: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    struct timespec ts = {0, 200000};
    r = sys_futex(&word, FUTEX_WAIT_PRIVATE, 5, &ts);
    printf("futex_wait timeout: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    r = sys_futex((char *)&word + 1, FUTEX_WAIT_PRIVATE, 5, NULL);
    printf("futex_wait misaligned: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    r = sys_futex(&word, 99, 0, NULL);
    printf("futex bad op: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    r = syscall(SYS_clone, CLONE_THREAD, NULL, NULL, NULL, 0);
    printf("clone CLONE_THREAD without CLONE_SIGHAND: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    r = syscall(SYS_clone, CLONE_SIGHAND, NULL, NULL, NULL, 0);
    printf("clone CLONE_SIGHAND without CLONE_VM: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    r = wait4(-1, NULL, WNOHANG, NULL);
    printf("wait4 no child: %ld %s\n", r, r < 0 ? strerror(errno) : "");

    char *mem = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t a, b[4];
    pthread_create(&a, NULL, early_exit, NULL);
    for (int i = 0; i < 4; i++)
        pthread_create(&b[i], NULL, faulter, mem + (i << 20));
    for (int i = 0; i < 256; i++)
        mem[i * 4096 + 100] = 1;
    void *ret;
    pthread_join(a, &ret);
    for (int i = 0; i < 4; i++)
        pthread_join(b[i], NULL);
    long sum = 0;
    for (int i = 0; i < 4 << 20; i += 4096)
        sum += mem[i];
    printf("early exit returned %ld, sum %ld\n", (long)ret, sum);
    return 0;
}
