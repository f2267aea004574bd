/* Two weft rwlocks write-locked in opposite orders by two threads, both
 * holding their first lock (a barrier makes sure): a real deadlock. The
 * timed write lock returns -EDEADLK within seconds (not after its 30 s
 * timeout) and the cycle is reported. */
// expect: deadlock lock-order-inversion
#include <pthread.h>
#include "weft.h"
static weft_rwlock_t A = WEFT_RWLOCK_INIT("routes");
static weft_rwlock_t B = WEFT_RWLOCK_INIT("peers");
static pthread_barrier_t bar;
static int r1, r2;
static void *t1(void *x)
{
    weft_rwlock_wrlock(&A);
    pthread_barrier_wait(&bar);
    r1 = weft_rwlock_timedwrlock(&B, 30000000000ll);
    if (r1 == 0)
        weft_rwlock_unlock(&B);
    weft_rwlock_unlock(&A);
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, t1, NULL);
    weft_rwlock_wrlock(&B);
    pthread_barrier_wait(&bar);
    uint64_t t0 = weft_now_ns();
    r2 = weft_rwlock_timedwrlock(&A, 30000000000ll);
    if (r2 == 0)
        weft_rwlock_unlock(&A);
    weft_rwlock_unlock(&B);
    pthread_join(t, NULL);
    uint64_t took = weft_now_ns() - t0;
    return (r1 == -EDEADLK || r2 == -EDEADLK) && took < 5000000000ull ? 0 : 1;
}
