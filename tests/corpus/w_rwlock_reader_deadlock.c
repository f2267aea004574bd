/* A writer waits for a lock held shared by a reader, and that reader waits
 * for a lock the writer holds: the writer needs every reader to leave, and
 * this one never will. The wait-for walk follows the reader (owners of a
 * read-held lock are its readers); both timed calls may be told -EDEADLK. */
// expect: deadlock lock-order-inversion
#include <pthread.h>
#include "weft.h"
static weft_rwlock_t table = WEFT_RWLOCK_INIT("table");
static weft_mutex_t journal = WEFT_MUTEX_INIT("journal");
static weft_rwlock_t other = WEFT_RWLOCK_INIT("other");
static pthread_barrier_t bar;
static int r1, r2;
static void *reader(void *x)
{
    weft_rwlock_rdlock(&other); /* a second reader elsewhere changes nothing */
    weft_rwlock_rdlock(&table);
    pthread_barrier_wait(&bar);
    r1 = weft_mutex_timedlock(&journal, 30000000000ll);
    if (r1 == 0)
        weft_mutex_unlock(&journal);
    weft_rwlock_unlock(&table);
    weft_rwlock_unlock(&other);
    return x;
}
static void *bystander(void *x)
{
    /* Also holds the table shared for a while, then leaves: the writer
     * still waits for the first reader. */
    weft_rwlock_rdlock(&table);
    pthread_barrier_wait(&bar);
    weft_rwlock_unlock(&table);
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 3);
    pthread_t t, b;
    pthread_create(&t, NULL, reader, NULL);
    pthread_create(&b, NULL, bystander, NULL);
    weft_mutex_lock(&journal);
    pthread_barrier_wait(&bar);
    uint64_t t0 = weft_now_ns();
    r2 = weft_rwlock_timedwrlock(&table, 30000000000ll);
    if (r2 == 0)
        weft_rwlock_unlock(&table);
    weft_mutex_unlock(&journal);
    pthread_join(t, NULL);
    pthread_join(b, NULL);
    uint64_t took = weft_now_ns() - t0;
    return (r1 == -EDEADLK || r2 == -EDEADLK) && took < 5000000000ull ? 0 : 1;
}
