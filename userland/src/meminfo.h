/*
 * meminfo.h: one field of /proc/meminfo (fs/proc/meminfo.c), for the userland programs that compare
 * memory accounting with a native run.
 *
 *   long meminfo(const char *field)
 *       the number after "field:" (kB for sizes, a count for HugePages_*), or -1 when there is no
 *       such line or /proc/meminfo cannot be read
 *
 * Header-only (a static function), for the userland programs that are built one .c file each.
 */
#ifndef FAULTLAB_MEMINFO_H
#define FAULTLAB_MEMINFO_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long meminfo(const char *field)
{
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

#endif
