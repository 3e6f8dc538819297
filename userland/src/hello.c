/*
 * hello: the smallest test program.
 *
 * Prints a greeting, the argument count, each argument and the value of
 * the FAULTLAB_TEST environment variable.  For argv[0] only the part after
 * the last '/' is printed, so the output does not depend on how the
 * program was invoked (relative path, absolute path, emulator loader).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    printf("hello, world\n");
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (i == 0) {
            const char *slash = strrchr(arg, '/');
            if (slash)
                arg = slash + 1;
        }
        printf("argv[%d]=%s\n", i, arg);
    }
    const char *env = getenv("FAULTLAB_TEST");
    printf("FAULTLAB_TEST=%s\n", env ? env : "(unset)");
    return 0;
}
