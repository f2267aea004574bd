/* A three-lock cycle A -> B -> C -> A across three threads. */
// expect: lock-order-inversion
#include <pthread.h>
static pthread_mutex_t L[3] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER};
static void *pair(void *x)
{
    int i = (int)(long)x;
    pthread_mutex_lock(&L[i]);
    pthread_mutex_lock(&L[(i + 1) % 3]);
    pthread_mutex_unlock(&L[(i + 1) % 3]);
    pthread_mutex_unlock(&L[i]);
    return NULL;
}
int main(void)
{
    for (long i = 0; i < 3; i++) {
        pthread_t t;
        pthread_create(&t, NULL, pair, (void *)i);
        pthread_join(t, NULL);
    }
    return 0;
}
