/* Two semaphores of one permit each, used as locks and taken in opposite
 * orders by two threads: each holds the only permit the other needs. The
 * permit ledger names the holders, both are blocked, so it is a deadlock:
 * reported, and the timed acquires return -EDEADLK. */
// expect: deadlock
#include <pthread.h>
#include "weft.h"
static weft_sem_t disk = WEFT_SEM_INIT(1, "disk slots");
static weft_sem_t net = WEFT_SEM_INIT(1, "net slots");
static pthread_barrier_t bar;
static int r1, r2;
static void *t1(void *x)
{
    weft_sem_acquire(&disk);
    pthread_barrier_wait(&bar);
    r1 = weft_sem_timedacquire(&net, 30000000000ll);
    if (r1 == 0)
        weft_sem_release(&net);
    weft_sem_release(&disk);
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, t1, NULL);
    weft_sem_acquire(&net);
    pthread_barrier_wait(&bar);
    uint64_t t0 = weft_now_ns();
    r2 = weft_sem_timedacquire(&disk, 30000000000ll);
    if (r2 == 0)
        weft_sem_release(&disk);
    weft_sem_release(&net);
    pthread_join(t, NULL);
    uint64_t took = weft_now_ns() - t0;
    return (r1 == -EDEADLK || r2 == -EDEADLK) && took < 5000000000ull ? 0 : 1;
}
