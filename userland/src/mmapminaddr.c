/* MAP_FIXED below mmap_min_addr: root (CAP_SYS_RAWIO) may map there, even at address 0; with an
 * argument, again after setuid(65534) (natively: EPERM below the host's mmap_min_addr). */
#include <stdio.h>
#include <sys/mman.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
int main(int c,char**v){unsigned long a[]={0,0x1000,0x8000,0x10000};
for(int i=0;i<4;i++){void*p=mmap((void*)a[i],4096,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);printf("%lx -> %s\n",a[i],p==MAP_FAILED?strerror(errno):"ok");if(p!=MAP_FAILED)munmap(p,4096);}
if(c>1){setuid(65534);for(int i=0;i<4;i++){void*p=mmap((void*)a[i],4096,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);printf("nobody %lx -> %s\n",a[i],p==MAP_FAILED?strerror(errno):"ok");if(p!=MAP_FAILED)munmap(p,4096);}}
}
