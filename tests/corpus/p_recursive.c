/* A recursive mutex re-locked by its owner, and a default rwlock read-locked
 * twice by one thread: both allowed. Must stay silent. */
// expect: silent
#include <pthread.h>
static pthread_rwlock_t RW = PTHREAD_RWLOCK_INITIALIZER;
int main(void)
{
    pthread_mutex_t m;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&m, &a);
    pthread_mutex_lock(&m);
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
    pthread_mutex_unlock(&m);
    pthread_mutex_destroy(&m);
    pthread_rwlock_rdlock(&RW);
    pthread_rwlock_rdlock(&RW);
    pthread_rwlock_unlock(&RW);
    pthread_rwlock_unlock(&RW);
    return 0;
}
