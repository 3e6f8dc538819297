/*
 * gdbtarget: a program to drive with gdb through faultlab's gdb stub.
 *
 * `gdbtarget [PAGES]` (default 4): sets the global `counter` to 3 through
 * several calls of `bump` (a function to break at and `finish`), reads
 * three bss pages that are never written (`read_zeros`: all three map the
 * zero page, so a read watchpoint must tell them apart), writes `watched`
 * (a variable to watch), then touches PAGES fresh pages of a
 * malloc'd buffer one by one (each first touch is a page fault) and prints
 * `counter=N watched=W sum=S`.  A debugger that sets `counter` (set var)
 * changes the first number printed, one that sets `scale` changes sum.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

volatile long counter;
volatile long watched;
volatile long scale = 1;

__attribute__((noinline)) long bump(long by)
{
    counter += by;
    return counter * 2;
}

__attribute__((noinline)) void set_watched(long v)
{
    watched = v;
}

/* pages only ever read: each maps the shared zero page */
static volatile char zeros[3][4096] __attribute__((aligned(4096)));

__attribute__((noinline)) long read_zeros(int rounds)
{
    long sum = 0;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < 3; i++)
            sum += zeros[i][100];
    return sum;
}

__attribute__((noinline)) long touch_pages(char *buf, long pages)
{
    long sum = 0;
    for (long i = 0; i < pages; i++) {
        buf[i * 4096] = (char)(i + 1);
        sum += buf[i * 4096] * scale;
    }
    return sum;
}

int main(int argc, char **argv)
{
    long pages = argc > 1 ? atol(argv[1]) : 4;
    long r = 0;
    for (int i = 0; i < 3; i++)
        r += bump(1);
    set_watched(r + read_zeros(2));
    /* big enough that malloc maps it with mmap: every page is fresh */
    char *buf = malloc((pages + 64) * 4096);
    if (!buf)
        return 1;
    long sum = touch_pages(buf, pages);
    printf("counter=%ld watched=%ld sum=%ld\n", counter, watched, sum);
    free(buf);
    return 0;
}
