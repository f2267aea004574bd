/* A weft rwlock and a mutex taken in opposite orders: with a
 * writer-preferring rwlock even a read hold can be part of a deadlock
 * (a queued writer blocks the second reader), so it is reported. */
// expect: lock-order-inversion
#include <pthread.h>
#include "weft.h"
static weft_rwlock_t table = WEFT_RWLOCK_INIT("routing table");
static weft_mutex_t stats = WEFT_MUTEX_INIT("stats");
static void *reader(void *x)
{
    weft_rwlock_rdlock(&table);
    weft_mutex_lock(&stats);
    weft_mutex_unlock(&stats);
    weft_rwlock_unlock(&table);
    return x;
}
int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    pthread_join(t, NULL);
    weft_mutex_lock(&stats);
    weft_rwlock_wrlock(&table);
    weft_rwlock_unlock(&table);
    weft_mutex_unlock(&stats);
    return 0;
}
