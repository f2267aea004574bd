/* The same fair-lock deadlock with untimed locks, a third thread queued
 * behind one of them: nothing can return an error, so the program is
 * stopped (WEFT_CHECK_ON_DEADLOCK=exit: status 66) instead of hanging. */
// expect: deadlock
// exit: 66
#include <pthread.h>
#include <time.h>
#include "weft.h"
static weft_fairlock_t A = WEFT_FAIRLOCK_INIT("ledger");
static weft_fairlock_t B = WEFT_FAIRLOCK_INIT("queue");
static pthread_barrier_t bar;
static void *t1(void *x)
{
    weft_fairlock_lock(&A);
    pthread_barrier_wait(&bar);
    weft_fairlock_lock(&B);
    return x;
}
static void *late(void *x)
{
    weft_fairlock_lock(&A); /* queued behind the cycle, not part of it */
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t, l;
    pthread_create(&t, NULL, t1, NULL);
    weft_fairlock_lock(&B);
    pthread_barrier_wait(&bar);
    pthread_create(&l, NULL, late, NULL);
    weft_fairlock_lock(&A);
    return 1; /* not reached */
}
