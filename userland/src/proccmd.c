/* /proc/self/cmdline and /proc/self/environ: the strings execve put on the stack, read back through
 * /proc (small reads at offsets too), and cmdline after the program overwrote the NUL that ends its
 * arguments, as setproctitle does. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static ssize_t slurp(const char *path, char *buf, size_t size, size_t chunk)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, size - n < chunk ? size - n : chunk);
        if (r <= 0)
            break;
        n += r;
    }
    close(fd);
    return n;
}

static void show(const char *what, const char *buf, ssize_t n)
{
    printf("%s: %zd bytes:", what, n);
    for (ssize_t i = 0; i < n; i++)
        putchar(buf[i] ? buf[i] : '|');
    putchar('\n');
}

int main(int argc, char **argv)
{
    static char buf[65536];
    ssize_t n = slurp("/proc/self/cmdline", buf, sizeof buf, 4096);
    show("cmdline", buf, n);
    n = slurp("/proc/self/cmdline", buf, sizeof buf, 3);
    show("cmdline in 3-byte reads", buf, n);
    /* environ: the same bytes as the environment strings, in order */
    n = slurp("/proc/self/environ", buf, sizeof buf, 4096);
    size_t want = 0;
    int same = 1;
    for (char **e = environ; *e; e++) {
        size_t len = strlen(*e) + 1;
        if (want + len > (size_t)n || memcmp(buf + want, *e, len))
            same = 0;
        want += len;
    }
    printf("environ: %d bytes, same as the environment: %d\n", (int)(n == (ssize_t)want), same);
    /* setproctitle: argv[0] grows over the following strings and the final NUL is overwritten */
    char *end = argv[argc - 1] + strlen(argv[argc - 1]);
    size_t room = end - argv[0];
    memset(argv[0], 'x', room);
    memcpy(argv[0], "title: ", 7);
    *end = '!';
    n = slurp("/proc/self/cmdline", buf, sizeof buf, 4096);
    printf("after setproctitle: %zd bytes, starts %.7s, ends at the first NUL: %d\n", n, buf,
           n > 0 && memchr(buf, 0, n) == NULL);
    return 0;
}
