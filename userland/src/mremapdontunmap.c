/* mremap(MREMAP_MAYMOVE | MREMAP_DONTUNMAP) with the same size on private anonymous, shared
 * anonymous and private file mappings: the pages move to a new address, the old range stays mapped
 * (empty for private memory, the shared object for shared memory); EINVAL without MREMAP_MAYMOVE
 * or with a size change. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
static void try(const char *name, char *p, size_t len, int flags) {
    memset(p, 'x', len);
    char *q = mremap(p, len, len, flags, 0);
    if (q == MAP_FAILED) { printf("%s: %s\n", name, strerror(errno)); return; }
    printf("%s: moved=%d new[0]=%c old[0]=%d\n", name, q != p, q[0], p[0]);
}
int main(void) {
    size_t len = 3 * 4096;
    try("anon-private", mmap(0, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0), len, MREMAP_MAYMOVE|MREMAP_DONTUNMAP);
    try("anon-shared", mmap(0, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0), len, MREMAP_MAYMOVE|MREMAP_DONTUNMAP);
    int fd = open("mremapdontunmap.dat", O_RDWR|O_CREAT|O_TRUNC, 0600); ftruncate(fd, len);
    try("file-private", mmap(0, len, PROT_READ|PROT_WRITE, MAP_PRIVATE, fd, 0), len, MREMAP_MAYMOVE|MREMAP_DONTUNMAP);
    try("no-maymove", mmap(0, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0), len, MREMAP_DONTUNMAP);
    char *p = mmap(0, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    char *q = mremap(p, len, 2*len, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, 0);
    printf("grow: %s\n", q == MAP_FAILED ? strerror(errno) : "ok");
    return 0;
}
