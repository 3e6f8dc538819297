/* execve: a forked child and a vfork()ed one run hello with new arguments and environment; errors
 * (ENOENT, EACCES, EFAULT); then the program re-executes itself, keeping a plain descriptor and
 * losing a close-on-exec one, and exits 7 from the new image. Sibling programs are found next to
 * /proc/self/exe. The output must match a native run.  usage: execer */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char self[PATH_MAX], dir[PATH_MAX], hello[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        return 1;
    self[n] = 0;
    strcpy(dir, self);
    *strrchr(dir, '/') = 0;
    snprintf(hello, sizeof hello, "%s/hello", dir);
    if (argc > 1) {                  /* exec'd by ourselves: print what we got */
        printf("re-executed with %d args: %s %s, FAULTLAB_TEST=%s\n", argc, argv[1], argc > 2 ? argv[2] : "",
               getenv("FAULTLAB_TEST") ? getenv("FAULTLAB_TEST") : "(unset)");
        int fd = 3;
        printf("close-on-exec fd closed: %d, plain fd open: %d\n", fcntl(5, F_GETFD) == -1, fcntl(fd, F_GETFD) != -1);
        return 7;
    }
    char *hargv[] = {"hello", "one", "two", NULL};
    char *henv[] = {"FAULTLAB_TEST=from-exec", NULL};
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        execve(hello, hargv, henv);
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    printf("child exit %d\n", WEXITSTATUS(st));
    int r = execve("/nonexistent/prog", hargv, henv);
    printf("missing: %d %s\n", r, strerror(errno));
    r = execve("/proc/self/maps", hargv, henv);
    printf("not executable: %d %s\n", r, strerror(errno));
    char **volatile bad_argv = (char **)8;
    r = execve(hello, bad_argv, henv);
    printf("bad argv: %d %s\n", r, strerror(errno));
    c = vfork();
    if (c == 0) {
        execve(hello, hargv, henv);
        _exit(127);
    }
    waitpid(c, &st, 0);
    printf("vfork child exit %d\n", WEXITSTATUS(st));
    int keep = open("/proc/self/maps", O_RDONLY);
    int gone = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    printf("fds %d %d\n", keep, gone);
    char *sargv[] = {argv[0], "again", "x", NULL};
    fflush(stdout);
    execve(self, sargv, henv);
    printf("exec failed: %s\n", strerror(errno));
    return 1;
}
