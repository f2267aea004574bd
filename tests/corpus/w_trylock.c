/* A -> B blocking, B -> A only by trylock: must stay silent. */
// expect: silent
#include <pthread.h>
#include "weft.h"
static weft_mutex_t A = WEFT_MUTEX_INIT("A");
static weft_mutex_t B = WEFT_MUTEX_INIT("B");
static void *ab(void *x)
{
    for (int i = 0; i < 2000; i++) {
        weft_mutex_lock(&A); weft_mutex_lock(&B);
        weft_mutex_unlock(&B); weft_mutex_unlock(&A);
    }
    return x;
}
static void *ba(void *x)
{
    for (int i = 0; i < 2000; i++) {
        weft_mutex_lock(&B);
        if (weft_mutex_trylock(&A) == 0)
            weft_mutex_unlock(&A);
        weft_mutex_unlock(&B);
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
