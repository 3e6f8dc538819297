/* /proc/self/status: prints every field name, and the values that do not depend on the C library's
 * start-up details: VmLck after mlock of 64 KiB, Threads with a second thread running, and the
 * bits of the SigBlk/SigIgn/SigCgt masks this program set (the rest depend on what the parent
 * ignored). The output must match a native run.  usage: procstatus */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile int stop;

static void *idle(void *arg)
{
    (void)arg;
    while (!stop)
        usleep(1000);
    return NULL;
}

static void on_usr2(int sig)
{
    (void)sig;
}

int main(void)
{
    char *p = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 1 << 20; i += 4096)
        p[i] = 1;
    mlock(p, 65536);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, on_usr2);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigprocmask(SIG_BLOCK, &s, 0);
    pthread_t th;
    pthread_create(&th, NULL, idle, NULL);
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 1;
    while (fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (!c)
            continue;
        *c = 0;
        if (!strcmp(line, "VmLck") || !strcmp(line, "Threads"))
            printf("%s:%s", line, c + 1);
        else if (!strcmp(line, "SigBlk") || !strcmp(line, "SigIgn") || !strcmp(line, "SigCgt")) {
            unsigned long mask = strtoul(c + 1, NULL, 16);
            int bit = !strcmp(line, "SigBlk") ? SIGTERM : !strcmp(line, "SigIgn") ? SIGUSR1 : SIGUSR2;
            printf("%s: signal %d %s\n", line, bit, mask >> (bit - 1) & 1 ? "set" : "clear");
        } else
            printf("%s\n", line);
    }
    fclose(f);
    stop = 1;
    pthread_join(th, NULL);
    return 0;
}
