/*
 * badsys
 *
 * Makes system calls that must fail and prints the return value and errno
 * of each: an unknown system call number (ENOSYS), write() from an
 * unmapped buffer (EFAULT), read() on a negative fd (EBADF) and open() of
 * a path in a missing directory (ENOENT).  Exits 1 if any errno differs
 * from the expected one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>

static int failures;

static void report(const char *what, long ret, int err, int want)
{
    printf("%s: ret=%ld errno=%d\n", what, ret, err);
    if (ret != -1 || err != want) {
        printf("FAIL: %s: expected ret=-1 errno=%d\n", what, want);
        failures++;
    }
}

int main(void)
{
    long ret;

    errno = 0;
    ret = syscall(999);
    report("syscall(999)", ret, errno, ENOSYS);

    /* The address goes through a volatile so the compiler cannot see it. */
    volatile uintptr_t bad_addr = 16;
    errno = 0;
    ret = write(1, (const void *)bad_addr, 10);
    report("write(1, 16, 10)", ret, errno, EFAULT);

    char buf[16];
    errno = 0;
    ret = read(-5, buf, sizeof buf);
    report("read(-5)", ret, errno, EBADF);

    errno = 0;
    ret = open("/nonexistent/x", O_RDONLY);
    report("open(/nonexistent/x)", ret, errno, ENOENT);

    printf("done\n");
    return failures ? 1 : 0;
}
