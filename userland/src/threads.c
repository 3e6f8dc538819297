/* pthreads: mutex-protected counters, a condition-variable pipeline, atomics raced on purpose, joins,
 * thread-local storage and per-thread stacks. Prints results that must equal a native run. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#define MAXT 16
static int nthreads = 4, iters = 20000;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static atomic_long racy_atomic;
static __thread long tls_value;

/* a bounded queue handed from producers to consumers with condition variables */
#define QN 8
static int queue[QN], qhead, qtail, qcount, produced_done;
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notfull = PTHREAD_COND_INITIALIZER, notempty = PTHREAD_COND_INITIALIZER;
static long consumed_sum;

static void *adder(void *arg)
{
    long id = (long)arg;
    tls_value = id * 1000;
    char stackbuf[4096];
    memset(stackbuf, (int)id, sizeof stackbuf);     /* touches this thread's own stack */
    for (int i = 0; i < iters; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        atomic_fetch_add(&racy_atomic, 1);
        tls_value++;
    }
    if (tls_value != id * 1000 + iters || stackbuf[100] != (char)id)
        return (void *)-1L;
    return (void *)(id + 1);
}

static void *producer(void *arg)
{
    int n = (int)(long)arg;
    for (int i = 1; i <= n; i++) {
        pthread_mutex_lock(&qlock);
        while (qcount == QN)
            pthread_cond_wait(&notfull, &qlock);
        queue[qtail] = i;
        qtail = (qtail + 1) % QN;
        qcount++;
        pthread_cond_signal(&notempty);
        pthread_mutex_unlock(&qlock);
    }
    pthread_mutex_lock(&qlock);
    produced_done++;
    pthread_cond_broadcast(&notempty);
    pthread_mutex_unlock(&qlock);
    return NULL;
}

static int nproducers = 2;

static void *consumer(void *arg)
{
    (void)arg;
    long sum = 0;
    for (;;) {
        pthread_mutex_lock(&qlock);
        while (qcount == 0 && produced_done < nproducers)
            pthread_cond_wait(&notempty, &qlock);
        if (qcount == 0) {
            pthread_mutex_unlock(&qlock);
            break;
        }
        int v = queue[qhead];
        qhead = (qhead + 1) % QN;
        qcount--;
        pthread_cond_signal(&notfull);
        pthread_mutex_unlock(&qlock);
        sum += v;
    }
    pthread_mutex_lock(&qlock);
    consumed_sum += sum;
    pthread_mutex_unlock(&qlock);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        nthreads = atoi(argv[1]);
    if (argc > 2)
        iters = atoi(argv[2]);
    if (nthreads < 1 || nthreads > MAXT)
        return 2;
    pthread_t th[MAXT];
    for (long i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, adder, (void *)i) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    long retsum = 0;
    for (int i = 0; i < nthreads; i++) {
        void *r;
        pthread_join(th[i], &r);
        retsum += (long)r;
    }
    printf("counter %ld (expect %ld)\n", counter, (long)nthreads * iters);
    printf("atomic %ld\n", (long)atomic_load(&racy_atomic));
    printf("join values sum %ld (expect %ld)\n", retsum, (long)nthreads * (nthreads + 1) / 2);

    pthread_t p[2], c[3];
    int per = 500;
    for (int i = 0; i < 3; i++)
        pthread_create(&c[i], NULL, consumer, NULL);
    for (int i = 0; i < nproducers; i++)
        pthread_create(&p[i], NULL, producer, (void *)(long)per);
    for (int i = 0; i < nproducers; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(c[i], NULL);
    printf("pipeline sum %ld (expect %ld)\n", consumed_sum, (long)nproducers * per * (per + 1) / 2);
    printf("main tid==pid %d\n", (int)syscall(SYS_gettid) == getpid());
    int ok = counter == (long)nthreads * iters && atomic_load(&racy_atomic) == counter &&
             retsum == (long)nthreads * (nthreads + 1) / 2 &&
             consumed_sum == (long)nproducers * per * (per + 1) / 2;
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
