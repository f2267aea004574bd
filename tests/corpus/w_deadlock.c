/* A real AB/BA deadlock with weft's timed lock: the wait returns -EDEADLK
 * promptly (long before its 30 s timeout) and the cycle is reported. */
// expect: deadlock lock-order-inversion
#include <pthread.h>
#include "weft.h"
static weft_mutex_t A = WEFT_MUTEX_INIT("A");
static weft_mutex_t B = WEFT_MUTEX_INIT("B");
static pthread_barrier_t bar;
static int r1, r2;
static void *t1(void *x)
{
    weft_mutex_lock(&A);
    pthread_barrier_wait(&bar);
    r1 = weft_mutex_timedlock(&B, 30000000000ll);
    if (r1 == 0)
        weft_mutex_unlock(&B);
    weft_mutex_unlock(&A);
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, t1, NULL);
    weft_mutex_lock(&B);
    pthread_barrier_wait(&bar);
    uint64_t t0 = weft_now_ns();
    r2 = weft_mutex_timedlock(&A, 30000000000ll);
    if (r2 == 0)
        weft_mutex_unlock(&A);
    weft_mutex_unlock(&B);
    pthread_join(t, NULL);
    uint64_t took = weft_now_ns() - t0;
    /* At least one side must have been told -EDEADLK, within seconds. */
    return (r1 == -EDEADLK || r2 == -EDEADLK) && took < 5000000000ull ? 0 : 1;
}
