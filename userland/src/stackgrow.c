/*
 * stackgrow
 *
 * Grows the stack a long way down: recursion 10000 calls deep with a
 * 256-byte local array in every frame, and at the deepest point a
 * function with a 2 MiB local array that is touched starting from its
 * lowest address (far below the pages already in use), then upwards one
 * page at a time.  Prints a checksum that depends only on the data.
 */
#include <stdint.h>
#include <stdio.h>

#define DEPTH     10000
#define BIG_SIZE  (2 * 1024 * 1024)
#define PAGE_SIZE 4096

static uint64_t __attribute__((noinline)) big_frame(uint64_t seed)
{
    volatile unsigned char big[BIG_SIZE];
    /* Lowest address first: the first touch is 2 MiB below the caller. */
    for (size_t i = 0; i < BIG_SIZE; i += PAGE_SIZE)
        big[i] = (unsigned char)(seed + i / PAGE_SIZE);
    big[BIG_SIZE - 1] = 0xaa;
    uint64_t sum = 0;
    for (size_t i = 0; i < BIG_SIZE; i += PAGE_SIZE)
        sum = sum * 33 + big[i];
    return sum + big[BIG_SIZE - 1];
}

static uint64_t __attribute__((noinline)) recurse(int depth)
{
    volatile unsigned char local[256];
    for (int i = 0; i < 256; i++)
        local[i] = (unsigned char)(depth * 3 + i);

    uint64_t below = depth == 0 ? big_frame(0x5a) : recurse(depth - 1);

    /* Use the array after the call so the frame stays live (no tail call). */
    uint64_t sum = 0;
    for (int i = 0; i < 256; i += 17)
        sum += local[i];
    return below * 31 + sum;
}

int main(void)
{
    uint64_t result = recurse(DEPTH);
    printf("depth %d, frame array 256 bytes, big array %d bytes\n",
           DEPTH, BIG_SIZE);
    printf("checksum %016llx\n", (unsigned long long)result);
    return 0;
}
