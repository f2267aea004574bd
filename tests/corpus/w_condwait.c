/* A consumer waits on a weft condition variable (the mutex is released
 * while it waits); the producer takes S then Q. Must stay silent. */
// expect: silent
#include <pthread.h>
#include "weft.h"
static weft_mutex_t Q = WEFT_MUTEX_INIT("queue");
static weft_mutex_t S = WEFT_MUTEX_INIT("stats");
static weft_cond_t C = WEFT_COND_INIT("not empty");
static int items, stats;
static void *consumer(void *x)
{
    for (int i = 0; i < 1000; i++) {
        weft_mutex_lock(&Q);
        while (items == 0)
            weft_cond_wait(&C, &Q);
        items--;
        weft_mutex_unlock(&Q);
        weft_mutex_lock(&S);
        stats++;
        weft_mutex_unlock(&S);
    }
    return x;
}
int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, consumer, NULL);
    for (int i = 0; i < 1000; i++) {
        weft_mutex_lock(&S);
        weft_mutex_lock(&Q);
        items++;
        weft_cond_signal(&C);
        weft_mutex_unlock(&Q);
        weft_mutex_unlock(&S);
    }
    pthread_join(t, NULL);
    return stats == 1000 ? 0 : 1;
}
