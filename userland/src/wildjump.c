/*
 * wildjump
 *
 * Prints "before", then calls a function pointer aimed at the unmapped
 * address 0xdead0000.  The process is expected to die of SIGSEGV; if the
 * call somehow returns, it prints a FAIL line and exits 1.
 */
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    printf("before\n");
    fflush(stdout);

    /* volatile keeps the compiler from reasoning about the target. */
    volatile uintptr_t target = 0xdead0000;
    void (*fn)(void) = (void (*)(void))target;
    fn();

    printf("FAIL: returned from wild jump\n");
    return 1;
}
