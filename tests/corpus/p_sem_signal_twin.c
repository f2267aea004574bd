/* The silent twin of p_sem_deadlock: the same two threads and the same
 * waits, but `ready` is a signalling semaphore (posted by a thread that
 * never took a permit of it) and the other is released before waiting.
 * Both threads block on a semaphore for a while, with a mutex held by the
 * poster: no cycle, nothing to report. */
// expect: silent
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
static sem_t ready, slots;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static void *poster(void *x)
{
    struct timespec pause = {0, 150000000}; /* 150 ms: a few slices */
    pthread_mutex_lock(&m);
    nanosleep(&pause, NULL);
    sem_post(&ready);
    pthread_mutex_unlock(&m);
    return x;
}
int main(void)
{
    sem_init(&ready, 0, 0);
    sem_init(&slots, 0, 1);
    sem_wait(&slots);
    pthread_t t;
    pthread_create(&t, NULL, poster, NULL);
    sem_wait(&ready); /* waits for the poster, which holds m */
    sem_post(&slots);
    pthread_join(t, NULL);
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
    return 0;
}
