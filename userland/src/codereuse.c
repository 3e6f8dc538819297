/* Code the kernel changes must run as changed, not as blocks translated from the old bytes. A page of
 * code is called, unmapped, and a new executable mapping at the same address is filled by read(2)
 * (so no user write fault happens) with different code, which is called; then read(2) rewrites the
 * code in place (the frame stays mapped) and it is called a third time.
 * usage: codereuse [DIR]  (a scratch file goes in DIR, default /tmp; prints the two return values) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const unsigned char ret1[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};    /* mov eax, 1; ret */
static const unsigned char ret2[] = {0xb8, 0x02, 0x00, 0x00, 0x00, 0xc3};    /* mov eax, 2; ret */
static const unsigned char ret3[] = {0x31, 0xc0, 0x83, 0xc0, 0x03, 0xc3};    /* xor eax, eax; add eax, 3; ret */

int main(int argc, char **argv)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/codereuse.bin", argc > 1 ? argv[1] : "/tmp");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, ret2, sizeof ret2) != sizeof ret2 || write(fd, ret3, sizeof ret3) != sizeof ret3) {
        perror("codereuse: temp file");
        return 1;
    }
    int prot = PROT_READ | PROT_WRITE | PROT_EXEC;
    unsigned char *p = mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    memcpy(p, ret1, sizeof ret1);
    int a = ((int (*)(void))p)();
    munmap(p, 4096);
    unsigned char *q = mmap(p, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (q != p)
        return 1;
    if (pread(fd, q, sizeof ret2, 0) != sizeof ret2)
        return 1;
    int b = ((int (*)(void))q)();
    if (pread(fd, q, sizeof ret3, sizeof ret2) != sizeof ret3)
        return 1;
    int c = ((int (*)(void))q)();
    printf("first %d second %d third %d\n", a, b, c);
    close(fd);
    unlink(path);
    return 0;
}
