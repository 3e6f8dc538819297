/* Memory-Deny-Write-Execute (prctl PR_SET_MDWE / PR_GET_MDWE): argument checks, what mmap and
 * mprotect refuse once it is set, and what fork and execve pass on. Argument "child" (after execve)
 * only reports what the new program inherited. Prints what Linux gives. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#define REFUSE 1L
#define NO_INHERIT 2L

static void show(const char *what, long r)
{
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "");
}

static void show_map(const char *what, void *p)
{
    printf("%s: %s\n", what, p == MAP_FAILED ? strerror(errno) : "mapped");
}

static void *map(int prot, int flags, void *at)
{
    return mmap(at, 4096, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void probe(const char *who)
{
    printf("[%s] get: %ld\n", who, (long)prctl(PR_GET_MDWE, 0L, 0L, 0L, 0L));
    show_map("  mmap rw", map(PROT_READ | PROT_WRITE, 0, NULL));
    show_map("  mmap rx", map(PROT_READ | PROT_EXEC, 0, NULL));
    show_map("  mmap wx", map(PROT_WRITE | PROT_EXEC, 0, NULL));
    show_map("  mmap x", map(PROT_EXEC, 0, NULL));
    char *r = map(PROT_READ, 0, NULL), *w = map(PROT_READ | PROT_WRITE, 0, NULL), *x = map(PROT_READ | PROT_EXEC, 0, NULL);
    show("  mprotect r->rx", mprotect(r, 4096, PROT_READ | PROT_EXEC));
    show("  mprotect rw->rwx", mprotect(w, 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
    show("  mprotect rx->rx", mprotect(x, 4096, PROT_READ | PROT_EXEC));
    show("  mprotect rx->r", mprotect(x, 4096, PROT_READ));
    show("  mprotect r(was rx)->rx", mprotect(x, 4096, PROT_READ | PROT_EXEC));
    show("  mprotect rx->rwx", mprotect(x, 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
    show_map("  MAP_FIXED rx over r", map(PROT_READ | PROT_EXEC, MAP_FIXED, r));
    show_map("  MAP_FIXED wx over rw", map(PROT_WRITE | PROT_EXEC, MAP_FIXED, w));
    /* three pages: the middle one executable; mprotect of all three to rx stops at the first */
    char *three = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(three + 4096, 4096, PROT_READ | PROT_EXEC);
    show("  mprotect r,rx,r -> rx", mprotect(three, 3 * 4096, PROT_READ | PROT_EXEC));
    show("  mprotect rx only", mprotect(three + 4096, 4096, PROT_READ | PROT_EXEC));
    fflush(stdout);
}

static void in_child(const char *who, char *self)
{
    pid_t pid = fork();
    if (pid == 0) {
        probe(who);
        if (self) {
            execl(self, self, "child", (char *)NULL);
            perror("execl");
        }
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "child")) {
        probe("after execve");
        return 0;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    show("set NO_INHERIT, arg5 7", prctl(PR_SET_MDWE, NO_INHERIT, 0L, 0L, 7L));
    show("set 7", prctl(PR_SET_MDWE, 7L, 0L, 0L, 0L));
    show("set NO_INHERIT alone", prctl(PR_SET_MDWE, NO_INHERIT, 0L, 0L, 0L));
    show("set 0, arg3 7", prctl(PR_SET_MDWE, 0L, 7L, 0L, 0L));
    show("get, arg2 7", prctl(PR_GET_MDWE, 7L, 0L, 0L, 0L));
    show("get, arg5 7", prctl(PR_GET_MDWE, 0L, 0L, 0L, 7L));
    show("set 0", prctl(PR_SET_MDWE, 0L, 0L, 0L, 0L));
    char *before = map(PROT_READ | PROT_WRITE | PROT_EXEC, 0, NULL);
    show_map("mmap rwx before MDWE", before);
    probe("off");

    int mode = argc > 1 && !strcmp(argv[1], "noinherit") ? REFUSE | NO_INHERIT : REFUSE;
    show("set", prctl(PR_SET_MDWE, (long)mode, 0L, 0L, 0L));
    show("set again", prctl(PR_SET_MDWE, (long)mode, 0L, 0L, 0L));
    show("set 0 after", prctl(PR_SET_MDWE, 0L, 0L, 0L, 0L));
    show("set other bits after", prctl(PR_SET_MDWE, mode ^ NO_INHERIT, 0L, 0L, 0L));
    show("mprotect the rwx made before", mprotect(before, 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
    probe("on");
    in_child("forked", "/proc/self/exe");
    return 0;
}
