/* MADV_COLLAPSE (madvise_collapse): 1 MiB written with a pattern under MADV_NOHUGEPAGE (4 KiB pages), then MADV_HUGEPAGE and MADV_COLLAPSE over two huge-page ranges: the populated one becomes a huge page with its contents (AnonHugePages 2048 kB), the empty one has no page table, so the call reports EINVAL as natively; with MADV_NOHUGEPAGE the VMA refuses (EINVAL). */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#define HPAGE (2UL<<20)
#define MADV_COLLAPSE 25
static long ahp(void *addr){char line[512];unsigned long lo,hi,a=(unsigned long)addr;int in=0;long v=-1;FILE*f=fopen("/proc/self/smaps","r");
 while(fgets(line,sizeof line,f)){if(sscanf(line,"%lx-%lx ",&lo,&hi)==2&&strchr(line,'-')<strchr(line,' ')){in=lo<=a&&a<hi;continue;} if(in) sscanf(line,"AnonHugePages: %ld",&v);} fclose(f); return v;}
int main(void)
{
  char *p = mmap(NULL, 2*HPAGE, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  madvise(p, 2*HPAGE, MADV_NOHUGEPAGE);
  for (size_t o=0;o<HPAGE;o+=4096) p[o]=(char)(o>>12);
  printf("before %ld\n", ahp(p));
  madvise(p, 2*HPAGE, MADV_HUGEPAGE);
  int r = madvise(p, 2*HPAGE, MADV_COLLAPSE);
  printf("collapse %d %s ahp %ld\n", r, r? strerror(errno):"", ahp(p));
  int bad=0; for (size_t o=0;o<HPAGE;o+=4096) if (p[o]!=(char)(o>>12)) bad++;
  for (size_t o=HPAGE;o<2*HPAGE;o+=4096) if (p[o]) bad++;
  printf("bad %d\n", bad);
  madvise(p, 2*HPAGE, MADV_NOHUGEPAGE);
  r = madvise(p, 2*HPAGE, MADV_COLLAPSE);
  printf("nohugepage collapse %d %s\n", r, r? strerror(errno):"");
  return 0;
}
