/* For the debugger tests: a SIGUSR1 handler that says when it runs, and a function to stop in, so
 * that gdb's `signal SIGUSR1` there can be seen to run the handler before the program goes on.
 * usage: gdbsig */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile int got;

static void on_usr1(int sig)
{
    got = sig;
    static const char msg[] = "handler ran\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(1);
}

__attribute__((noinline)) void checkpoint(void)
{
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    checkpoint();
    printf("after: got %d\n", got);
    return 0;
}
