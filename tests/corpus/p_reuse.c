/* A lock is destroyed; a new lock is initialised in the same memory and used
 * in the opposite order with A. A different lock: must stay silent. */
// expect: silent
#include <pthread.h>
static pthread_mutex_t A = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t slot; /* the same address for both lives */
int main(void)
{
    pthread_mutex_init(&slot, NULL);
    pthread_mutex_lock(&A); pthread_mutex_lock(&slot);
    pthread_mutex_unlock(&slot); pthread_mutex_unlock(&A);
    pthread_mutex_destroy(&slot);
    pthread_mutex_init(&slot, NULL);
    pthread_mutex_lock(&slot); pthread_mutex_lock(&A);
    pthread_mutex_unlock(&A); pthread_mutex_unlock(&slot);
    pthread_mutex_destroy(&slot);
    return 0;
}
