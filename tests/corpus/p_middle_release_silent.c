/* Locks released out of LIFO order must really leave the held stack: x is
 * released while y is still held, then y; then w is taken with nothing
 * held. Repeated so the later rounds come from the thread's cache. If x
 * stayed on the stack, x -> w would be recorded and w then x would look
 * like an inversion. There is none: must stay silent.
 * p_middle_release.c is the twin that must report. */
// expect: silent
#include <pthread.h>
static pthread_mutex_t x = PTHREAD_MUTEX_INITIALIZER, y = PTHREAD_MUTEX_INITIALIZER,
                       w = PTHREAD_MUTEX_INITIALIZER;
int main(void)
{
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&x);
        pthread_mutex_lock(&y);
        pthread_mutex_unlock(&x); /* out of order */
        pthread_mutex_unlock(&y);
        pthread_mutex_lock(&w);
        pthread_mutex_unlock(&w);
    }
    pthread_mutex_lock(&w);
    pthread_mutex_lock(&x);
    pthread_mutex_unlock(&x);
    pthread_mutex_unlock(&w);
    return 0;
}
