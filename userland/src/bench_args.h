/* What the bench programs share: a failed call ends the run with its errno's text (status 1), a bad
 * argument with the range it must be in (status 2, a usage error). */
#ifndef FAULTLAB_BENCH_ARGS_H
#define FAULTLAB_BENCH_ARGS_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what)
{
    fprintf(stderr, "FAIL: %s (%s)\n", what, strerror(errno));
    exit(1);
}

static long parse_long(const char *s, const char *what, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "FAIL: bad %s %s (expected %ld..%ld)\n", what, s, min, max);
        exit(2);
    }
    return v;
}
#endif
