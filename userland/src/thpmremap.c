/* mremap of transparent huge pages: moved to a 2 MiB-aligned address the huge PMDs move whole (move_huge_pmd, AnonHugePages stays 8192 kB); to an unaligned one they are split and moved 4 KiB at a time (AnonHugePages 0); the contents survive both. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#define HPAGE (2UL<<20)
static long ahp(void *addr){char line[512];unsigned long lo,hi,a=(unsigned long)addr;int in=0;long v=-1;FILE*f=fopen("/proc/self/smaps","r");
 while(fgets(line,sizeof line,f)){if(sscanf(line,"%lx-%lx ",&lo,&hi)==2&&strchr(line,'-')<strchr(line,' ')){in=lo<=a&&a<hi;continue;} if(in) sscanf(line,"AnonHugePages: %ld",&v);} fclose(f); return v;}
int main(void){
  char *p = mmap(NULL, 4*HPAGE, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  char *q = mmap(NULL, 8*HPAGE, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  char *t = (char*)(((unsigned long)q + HPAGE-1) & ~(HPAGE-1));
  madvise(p, 4*HPAGE, MADV_HUGEPAGE);
  for (size_t o=0;o<4*HPAGE;o+=4096) p[o]=(char)(o>>12);
  char *n = mremap(p, 4*HPAGE, 4*HPAGE, MREMAP_MAYMOVE|MREMAP_FIXED, t);
  int bad=0; for (size_t o=0;o<4*HPAGE;o+=4096) if (n[o]!=(char)(o>>12)) bad++;
  printf("aligned move: ahp %ld bad %d\n", ahp(n), bad);
  char *m = mremap(n, 4*HPAGE, 4*HPAGE, MREMAP_MAYMOVE|MREMAP_FIXED, t + 4*HPAGE + 4096);
  bad=0; for (size_t o=0;o<4*HPAGE;o+=4096) if (m[o]!=(char)(o>>12)) bad++;
  printf("unaligned move: ahp %ld bad %d\n", ahp(m), bad);
  return 0;
}
