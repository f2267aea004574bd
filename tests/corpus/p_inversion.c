/* Two locks taken in opposite orders by two threads, one after the other:
 * nothing hangs this time, but the inversion is a potential deadlock. */
// expect: lock-order-inversion
#include <pthread.h>
static pthread_mutex_t A = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t B = PTHREAD_MUTEX_INITIALIZER;
static void *ab(void *x) { pthread_mutex_lock(&A); pthread_mutex_lock(&B); pthread_mutex_unlock(&B); pthread_mutex_unlock(&A); return x; }
static void *ba(void *x) { pthread_mutex_lock(&B); pthread_mutex_lock(&A); pthread_mutex_unlock(&A); pthread_mutex_unlock(&B); return x; }
int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, ab, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, ba, NULL);
    pthread_join(t, NULL);
    return 0;
}
