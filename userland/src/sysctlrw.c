/* Writes sysctl values and reads them back: arguments FILE=VALUE (under /proc/sys/vm/) are written
 * with open(O_WRONLY | O_TRUNC) + write, as `echo VALUE > FILE` does; FILE alone is only read. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char path[256], *eq = strchr(argv[i], '=');
        snprintf(path, sizeof path, "/proc/sys/vm/%.*s", eq ? (int)(eq - argv[i]) : (int)strlen(argv[i]), argv[i]);
        if (eq) {
            int fd = open(path, O_WRONLY | O_TRUNC);
            ssize_t n = fd < 0 ? -1 : write(fd, eq + 1, strlen(eq + 1));
            printf("write %s: %s\n", argv[i], n < 0 ? strerror(errno) : "ok");
            if (fd >= 0)
                close(fd);
        }
        char buf[64] = "";
        int fd = open(path, O_RDONLY);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
        if (n < 0)
            printf("read %s: %s\n", path + 13, strerror(errno));
        else
            printf("read %s: %s", path + 13, buf);
        if (fd >= 0)
            close(fd);
    }
    return 0;
}
