/* A pool of 2 permits; workers take and give back, one forgets and exits:
 * the leak is reported at its exit, and the later waiter is told who holds
 * the permits. */
// expect: permit-leak sem-exhausted
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <time.h>
static sem_t pool;
static void *good(void *x) { for (int i = 0; i < 100; i++) { sem_wait(&pool); sem_post(&pool); } return x; }
static void *leaky(void *x) { sem_wait(&pool); return x; }
int main(void)
{
    setenv("WEFT_CHECK_SEM_WAIT_MS", "200", 1);
    sem_init(&pool, 0, 2);
    pthread_t t;
    pthread_create(&t, NULL, good, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, leaky, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, leaky, NULL);
    pthread_join(t, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    sem_timedwait(&pool, &ts); /* times out: both permits leaked */
    return 0;
}
