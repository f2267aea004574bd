/* After a lock is released out of LIFO order, the thread's held set is
 * smaller, and an acquisition must be judged in that smaller context even
 * when the larger one is in the thread's cache. Here b -> c is first taken
 * many times under the gate a (a, b, c nested), then once with a already
 * released (a, b, unlock a, c): from then on b -> c is not gated. c -> b
 * under a then closes b -> c -> b, and since one b -> c had no gate it is a
 * real inversion: must report. p_middle_release_silent.c is the twin that
 * must stay silent. */
// expect: lock-order-inversion
#include <pthread.h>
static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER,
                       c = PTHREAD_MUTEX_INITIALIZER;
static void nested(pthread_mutex_t *x, pthread_mutex_t *y, pthread_mutex_t *z)
{
    pthread_mutex_lock(x);
    pthread_mutex_lock(y);
    pthread_mutex_lock(z);
    pthread_mutex_unlock(z);
    pthread_mutex_unlock(y);
    pthread_mutex_unlock(x);
}
int main(void)
{
    for (int i = 0; i < 100; i++)
        nested(&a, &b, &c);
    pthread_mutex_lock(&a);
    pthread_mutex_lock(&b);
    pthread_mutex_unlock(&a); /* out of order: only b is held now */
    pthread_mutex_lock(&c);   /* b -> c without the gate */
    pthread_mutex_unlock(&c);
    pthread_mutex_unlock(&b);
    nested(&a, &c, &b); /* c -> b: closes b -> c -> b */
    return 0;
}
