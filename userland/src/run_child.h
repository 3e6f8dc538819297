/*
 * run_child.h: run a test step in a forked child, so that credential changes and the like stay
 * there.
 *
 *   int run_in_child(void (*fn)(void))
 *       stdout flushed, fn run in a child that flushes stdout and exits 0 after it; the child's
 *       wait status
 *
 * Header-only (a static function), for the userland programs that are built one .c file each.
 */
#ifndef FAULTLAB_RUN_CHILD_H
#define FAULTLAB_RUN_CHILD_H

#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int run_in_child(void (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return st;
}

#endif
