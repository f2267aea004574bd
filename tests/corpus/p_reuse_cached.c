/* A lock's second life at the same address, in a context this thread has
 * taken many times before: A then the first life of `slot`, cached. The
 * second life is taken in the opposite order with A, and then in the old
 * order again. The old-order acquisition must be seen as new (the first
 * life's knowledge is stale): A --> slot --> A in the second life.
 * Must report. */
// expect: lock-order-inversion
#include <pthread.h>
static pthread_mutex_t A = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t slot; /* the same address for both lives */
static void a_then_slot(void)
{
    pthread_mutex_lock(&A);
    pthread_mutex_lock(&slot);
    pthread_mutex_unlock(&slot);
    pthread_mutex_unlock(&A);
}
int main(void)
{
    pthread_mutex_init(&slot, NULL);
    for (int i = 0; i < 1000; i++)
        a_then_slot();
    pthread_mutex_destroy(&slot);
    pthread_mutex_init(&slot, NULL);
    pthread_mutex_lock(&slot);
    pthread_mutex_lock(&A);
    pthread_mutex_unlock(&A);
    pthread_mutex_unlock(&slot);
    a_then_slot();
    pthread_mutex_destroy(&slot);
    return 0;
}
