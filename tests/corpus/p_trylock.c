/* A then B blocking; B then A only by trylock (backing off on failure):
 * the trylock can never wait, so there is no deadlock. Must stay silent. */
// expect: silent
#include <pthread.h>
#include <sched.h>
static pthread_mutex_t A = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t B = PTHREAD_MUTEX_INITIALIZER;
static void *ab(void *x)
{
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&A); pthread_mutex_lock(&B);
        pthread_mutex_unlock(&B); pthread_mutex_unlock(&A);
    }
    return x;
}
static void *ba(void *x)
{
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&B);
        if (pthread_mutex_trylock(&A) == 0)
            pthread_mutex_unlock(&A);
        pthread_mutex_unlock(&B);
        sched_yield();
    }
    return x;
}
int main(void)
{
    pthread_t t1, t2;
    pthread_create(&t1, NULL, ab, NULL);
    pthread_create(&t2, NULL, ba, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    return 0;
}
