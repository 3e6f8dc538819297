/*
 * compute [SCALE]
 *
 * A small CPU benchmark with no system calls in its hot loops: a sieve of
 * Eratosthenes, an integer matrix multiply and a bitwise CRC-32.  SCALE
 * (default 1) multiplies the amount of work of each part; at SCALE 1 the
 * program runs about 50 million instructions natively.  All results are
 * printed and depend only on SCALE.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIEVE_LIMIT   1000000   /* per unit of SCALE */
#define MATRIX_N      64
#define MATRIX_ROUNDS 2         /* per unit of SCALE */
#define CRC_BYTES     (384 * 1024) /* per unit of SCALE */

/* Counts the primes below limit and returns their sum in *sum. */
static long sieve(long limit, uint64_t *sum)
{
    unsigned char *composite = calloc((size_t)limit, 1);
    if (!composite) {
        printf("FAIL: calloc sieve\n");
        exit(1);
    }
    long count = 0;
    uint64_t s = 0;
    for (long i = 2; i < limit; i++) {
        if (composite[i])
            continue;
        count++;
        s += (uint64_t)i;
        for (long j = i * i; j < limit; j += i)
            composite[j] = 1;
    }
    free(composite);
    *sum = s;
    return count;
}

/* Simple linear congruential generator, so the inputs are reproducible. */
static uint32_t lcg_state;

static uint32_t lcg_next(void)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return lcg_state >> 8;
}

static int32_t a[MATRIX_N][MATRIX_N], b[MATRIX_N][MATRIX_N], c[MATRIX_N][MATRIX_N];

/* Multiplies random matrices `rounds` times and returns a checksum. */
static uint64_t matrix(int rounds)
{
    uint64_t check = 0;
    lcg_state = 42;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < MATRIX_N; i++)
            for (int j = 0; j < MATRIX_N; j++) {
                a[i][j] = (int32_t)(lcg_next() % 201) - 100;
                b[i][j] = (int32_t)(lcg_next() % 201) - 100;
            }
        for (int i = 0; i < MATRIX_N; i++)
            for (int j = 0; j < MATRIX_N; j++) {
                int32_t acc = 0;
                for (int k = 0; k < MATRIX_N; k++)
                    acc += a[i][k] * b[k][j];
                c[i][j] = acc;
            }
        for (int i = 0; i < MATRIX_N; i++)
            for (int j = 0; j < MATRIX_N; j++)
                check = check * 31 + (uint32_t)c[i][j];
    }
    return check;
}

/* Bitwise (table-free) CRC-32, reflected polynomial 0xEDB88320. */
static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

int main(int argc, char **argv)
{
    long scale = 1;
    if (argc > 1) {
        scale = strtol(argv[1], NULL, 10);
        if (scale < 1) {
            fprintf(stderr, "usage: compute [SCALE>=1]\n");
            return 2;
        }
    }
    printf("scale %ld\n", scale);

    /* Check the CRC against the well-known test vector first. */
    const char *vec = "123456789";
    uint32_t v = crc32_update(0, (const unsigned char *)vec, strlen(vec));
    if (v != 0xCBF43926u) {
        printf("FAIL: crc32 test vector gave %08x\n", v);
        return 1;
    }

    uint64_t psum;
    long limit = SIEVE_LIMIT * scale;
    long primes = sieve(limit, &psum);
    printf("sieve: %ld primes below %ld, sum %llu\n", primes, limit,
           (unsigned long long)psum);
    if (limit == SIEVE_LIMIT && primes != 78498) {
        printf("FAIL: prime count below 1000000\n");
        return 1;
    }

    int rounds = (int)(MATRIX_ROUNDS * scale);
    printf("matrix: %d rounds of %dx%d, checksum %016llx\n", rounds,
           MATRIX_N, MATRIX_N, (unsigned long long)matrix(rounds));

    size_t n = (size_t)CRC_BYTES * (size_t)scale;
    unsigned char *data = malloc(n);
    if (!data) {
        printf("FAIL: malloc crc data\n");
        return 1;
    }
    lcg_state = 7;
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)lcg_next();
    printf("crc32: %zu bytes, crc %08x\n", n, crc32_update(0, data, n));
    free(data);
    return 0;
}
