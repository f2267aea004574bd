/* pthread rwlocks: a writer waits for a lock held shared by a reader that
 * waits for a mutex the writer holds. The writer needs every reader gone;
 * this one never goes. The wait-for walk follows read holders too, so
 * under weft check this is reported and stopped (66) instead of hanging. */
// expect: deadlock lock-order-inversion
#include <pthread.h>
static pthread_rwlock_t table = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t journal = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t bar;
static void *reader(void *x)
{
    pthread_rwlock_rdlock(&table);
    pthread_barrier_wait(&bar);
    pthread_mutex_lock(&journal);
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    pthread_mutex_lock(&journal);
    pthread_barrier_wait(&bar);
    pthread_rwlock_wrlock(&table);
    return 1;
}
