/* thpknobs: read and write /sys/kernel/mm/transparent_hugepage knobs, printing what each gave. */
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <errno.h>
static void show(const char *p) { char b[256] = {0}; int fd = open(p, O_RDONLY); int n = fd < 0 ? -1 : read(fd, b, 255); printf("%s: %s", p, n > 0 ? b : "?\n"); if (fd >= 0) close(fd); }
static void put(const char *p, const char *v) { int fd = open(p, O_WRONLY); int n = fd < 0 ? -1 : write(fd, v, strlen(v)); printf("write %s %s -> %d %d\n", p, v, n, n < 0 ? errno : 0); if (fd >= 0) close(fd); }
int main(void) {
  show("/sys/kernel/mm/transparent_hugepage/enabled");
  put("/sys/kernel/mm/transparent_hugepage/enabled", "always");
  show("/sys/kernel/mm/transparent_hugepage/enabled");
  put("/sys/kernel/mm/transparent_hugepage/enabled", "bogus");
  put("/sys/kernel/mm/transparent_hugepage/khugepaged/max_ptes_none", "600");
  put("/sys/kernel/mm/transparent_hugepage/khugepaged/max_ptes_none", "100");
  show("/sys/kernel/mm/transparent_hugepage/khugepaged/max_ptes_none");
  show("/sys/kernel/mm/transparent_hugepage/defrag");
  show("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size");
  return 0; }
