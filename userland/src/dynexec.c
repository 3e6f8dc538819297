/* execve from a guest: each argument is a program run in a forked child with one argument; prints
 * its exit status, or the errno of a failed execve (ENOENT for a missing interpreter, ELIBBAD for
 * one that is not ELF). The output must match a native run.  usage: dynexec PROGRAM... */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            char *args[] = {argv[i], "from-dynexec", NULL};
            execv(argv[i], args);
            printf("%s: execve failed: errno %d (%s)\n", name, errno, strerror(errno));
            fflush(stdout);
            _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid)
            return 1;
        printf("%s: exit status %d\n", name, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    return 0;
}
