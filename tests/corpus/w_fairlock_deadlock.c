/* Two fair locks taken in opposite orders by two threads that both hold
 * their first one: a real deadlock. A queued fair-lock waiter now wakes
 * every slice for the wait-for walk, keeping its place in line, so the
 * timed lock returns -EDEADLK promptly and the cycle is reported. */
// expect: deadlock lock-order-inversion
#include <pthread.h>
#include "weft.h"
static weft_fairlock_t A = WEFT_FAIRLOCK_INIT("ledger");
static weft_fairlock_t B = WEFT_FAIRLOCK_INIT("queue");
static pthread_barrier_t bar;
static int r1, r2;
static void *t1(void *x)
{
    weft_fairlock_lock(&A);
    pthread_barrier_wait(&bar);
    r1 = weft_fairlock_timedlock(&B, 30000000000ll);
    if (r1 == 0)
        weft_fairlock_unlock(&B);
    weft_fairlock_unlock(&A);
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, t1, NULL);
    weft_fairlock_lock(&B);
    pthread_barrier_wait(&bar);
    uint64_t t0 = weft_now_ns();
    r2 = weft_fairlock_timedlock(&A, 30000000000ll);
    if (r2 == 0)
        weft_fairlock_unlock(&A);
    weft_fairlock_unlock(&B);
    pthread_join(t, NULL);
    uint64_t took = weft_now_ns() - t0;
    return (r1 == -EDEADLK || r2 == -EDEADLK) && took < 5000000000ull ? 0 : 1;
}
