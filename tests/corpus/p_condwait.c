/* A consumer waits on a condition variable (its mutex Q is released while
 * it waits); meanwhile the producer takes S then Q. After waking, the
 * consumer takes S only after releasing Q. Must stay silent. */
// expect: silent
#include <pthread.h>
static pthread_mutex_t Q = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t S = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t C = PTHREAD_COND_INITIALIZER;
static int items, stats;
static void *consumer(void *x)
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&Q);
        while (items == 0)
            pthread_cond_wait(&C, &Q);
        items--;
        pthread_mutex_unlock(&Q);
        pthread_mutex_lock(&S);
        stats++;
        pthread_mutex_unlock(&S);
    }
    return x;
}
int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, consumer, NULL);
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&S);
        pthread_mutex_lock(&Q);
        items++;
        pthread_cond_signal(&C);
        pthread_mutex_unlock(&Q);
        pthread_mutex_unlock(&S);
    }
    pthread_join(t, NULL);
    return stats == 1000 ? 0 : 1;
}
