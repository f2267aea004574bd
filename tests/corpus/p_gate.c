/* Opposite orders of A and B, but always under the gate lock G: the gate
 * serialises them, so no interleaving can hang. Must stay silent. */
// expect: silent
#include <pthread.h>
static pthread_mutex_t G = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t A = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t B = PTHREAD_MUTEX_INITIALIZER;
static void *ab(void *x) { pthread_mutex_lock(&G); pthread_mutex_lock(&A); pthread_mutex_lock(&B); pthread_mutex_unlock(&B); pthread_mutex_unlock(&A); pthread_mutex_unlock(&G); return x; }
static void *ba(void *x) { pthread_mutex_lock(&G); pthread_mutex_lock(&B); pthread_mutex_lock(&A); pthread_mutex_unlock(&A); pthread_mutex_unlock(&B); pthread_mutex_unlock(&G); return x; }
int main(void)
{
    pthread_t t1, t2;
    for (int i = 0; i < 100; i++) {
        pthread_create(&t1, NULL, ab, NULL);
        pthread_create(&t2, NULL, ba, NULL);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
    }
    return 0;
}
