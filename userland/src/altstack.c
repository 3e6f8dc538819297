/* sigaltstack: error codes, SS_ONSTACK reporting, a SIGSEGV from stack overflow handled on the
 * alternate stack, SS_AUTODISARM, and a new thread starting without the alternate stack.
 * Prints one line per check; the output must match a native run. usage: altstack */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static char altstack[64 * 1024];
static sigjmp_buf env;
static volatile int on_alt, flags_in_handler, eperm_in_handler;

static int on_alt_stack(void *p)
{
    return (char *)p >= altstack && (char *)p < altstack + sizeof altstack;
}

static void handler(int sig)
{
    int local;
    stack_t cur, again = {.ss_sp = altstack, .ss_size = sizeof altstack};
    on_alt = on_alt_stack(&local);
    sigaltstack(NULL, &cur);
    flags_in_handler = cur.ss_flags;
    eperm_in_handler = sigaltstack(&again, NULL) == -1 ? errno : 0;
    siglongjmp(env, sig);
}

static int depth(int n)
{
    volatile char pad[4096];
    pad[0] = (char)n;
    return n < 1 << 30 ? depth(n + 1) + pad[0] : 0;     /* recurses until the stack overflows */
}

static void *thread_main(void *arg)
{
    stack_t cur;
    (void)arg;
    sigaltstack(NULL, &cur);
    printf("new thread: ss_flags %d ss_size %zu\n", cur.ss_flags, cur.ss_size);
    return NULL;
}

int main(void)
{
    stack_t ss, old;
    memset(&old, 0, sizeof old);
    sigaltstack(NULL, &old);
    printf("initial: ss_flags %d ss_size %zu\n", old.ss_flags, old.ss_size);

    ss.ss_sp = altstack;
    ss.ss_size = 1024;
    ss.ss_flags = 0;
    int r = sigaltstack(&ss, NULL);
    printf("too small: %d %s\n", r, strerror(errno));
    ss.ss_size = sizeof altstack;
    ss.ss_flags = 7;
    r = sigaltstack(&ss, NULL);
    printf("bad flags: %d %s\n", r, strerror(errno));
    r = sigaltstack((stack_t *)8, NULL);
    printf("bad pointer: %d %s\n", r, strerror(errno));
    r = sigaltstack(NULL, (stack_t *)8);
    printf("bad old pointer: %d %s\n", r, strerror(errno));
    ss.ss_flags = 0;
    printf("set: %d\n", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    printf("now: ss_flags %d ss_size %zu same sp %d\n", old.ss_flags, old.ss_size, old.ss_sp == altstack);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    int sig = sigsetjmp(env, 1);
    if (!sig) {
        depth(0);                      /* overflow the main stack */
        printf("no overflow?\n");
    }
    printf("overflow: signal %d on alternate stack %d, ss_flags in handler %d, change there: %s\n",
           sig, on_alt, flags_in_handler, strerror(eperm_in_handler));

    sig = sigsetjmp(env, 1);
    if (!sig)
        raise(SIGSEGV);
    printf("raise: signal %d on alternate stack %d\n", sig, on_alt);

    ss.ss_flags = SS_AUTODISARM;
    printf("autodisarm set: %d\n", sigaltstack(&ss, NULL));
    sig = sigsetjmp(env, 1);
    if (!sig)
        raise(SIGSEGV);
    printf("autodisarm: on alternate stack %d, ss_flags in handler %d\n", on_alt, flags_in_handler);
    sigaltstack(NULL, &old);
    printf("after longjmp: ss_flags %#x\n", (unsigned)old.ss_flags);

    pthread_t th;
    pthread_create(&th, NULL, thread_main, NULL);
    pthread_join(th, NULL);

    ss.ss_flags = SS_DISABLE;
    printf("disable: %d\n", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    printf("disabled: ss_flags %d ss_size %zu\n", old.ss_flags, old.ss_size);
    return 0;
}
