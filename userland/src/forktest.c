/* fork, vfork and wait4: copy-on-write address spaces, shared anonymous memory, exit statuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    size_t n = 64 * 4096;
    char *priv = malloc(n);
    memset(priv, 'p', n);
    int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shared[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        int ok = priv[100] == 'p';          /* the child sees the parent's data ... */
        memset(priv, 'c', n);               /* ... and its writes stay its own */
        shared[0] = 42;                     /* except in shared memory */
        _exit(ok ? 7 : 1);
    }
    int status = 0;
    pid_t w = waitpid(pid, &status, 0);
    printf("wait: %s, exited %d, status %d\n", w == pid ? "child" : "other", WIFEXITED(status),
           WEXITSTATUS(status));
    printf("parent private still 'p': %d\n", priv[100] == 'p' && priv[n - 1] == 'p');
    printf("shared seen from the child: %d\n", shared[0]);
    priv[0] = 'q';                          /* the parent's copy-on-write page is its own again */
    pid = fork();
    if (pid == 0) {
        char *boom = NULL;
        *boom = 1;                          /* killed by SIGSEGV */
        _exit(0);
    }
    waitpid(pid, &status, 0);
    printf("second child signalled %d by %d\n", WIFSIGNALED(status), WTERMSIG(status));
    pid = vfork();
    if (pid == 0)
        _exit(3);
    waitpid(pid, &status, 0);
    printf("vfork child status %d\n", WEXITSTATUS(status));
    printf("no more children: %d\n", waitpid(-1, NULL, WNOHANG));
    return 0;
}
