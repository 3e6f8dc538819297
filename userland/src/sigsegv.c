/* SIGSEGV and SIGBUS handlers with siglongjmp: the address and si_code of each fault, as the kernel's
 * mm selftests use them to probe memory. */
#include <setjmp.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <fcntl.h>

static sigjmp_buf env;
static volatile void *fault_addr;
static volatile int fault_code, fault_sig;

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    fault_sig = sig;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    siglongjmp(env, 1);
}

static int probe_write(volatile char *p)
{
    if (sigsetjmp(env, 1))
        return 0;
    *p = 1;
    return 1;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int ok = probe_write(ro + 8);
    printf("read-only: written %d, sig %d, code %d, addr ok %d\n", ok, fault_sig, fault_code,
           fault_addr == ro + 8);
    char *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(none, 4096);
    ok = probe_write(none + 100);
    printf("unmapped: written %d, sig %d, code %d, addr ok %d\n", ok, fault_sig, fault_code,
           fault_addr == none + 100);
    char path[] = "/tmp/sigbusXXXXXX";
    int fd = mkstemp(path);
    ftruncate(fd, 4096);
    char *f = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ok = probe_write(f + 4096 + 1);
    printf("beyond EOF: written %d, sig %d, code %d, addr ok %d\n", ok, fault_sig, fault_code,
           fault_addr == f + 4096 + 1);
    unlink(path);
    char *rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("normal write still works: %d\n", probe_write(rw));
    return 0;
}
