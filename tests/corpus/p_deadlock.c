/* A real AB/BA deadlock: both threads hold one lock and wait for the other.
 * Under weft check the program is stopped (66) instead of hanging. */
// expect: deadlock lock-order-inversion
#include <pthread.h>
static pthread_mutex_t A = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t B = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t bar;
static void *t1(void *x) { pthread_mutex_lock(&A); pthread_barrier_wait(&bar); pthread_mutex_lock(&B); return x; }
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, t1, NULL);
    pthread_mutex_lock(&B);
    pthread_barrier_wait(&bar);
    pthread_mutex_lock(&A);
    return 0;
}
