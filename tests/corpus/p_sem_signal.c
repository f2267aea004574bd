/* Semaphores used for signalling (posted by one thread, taken by another),
 * with the waiting thread exiting: not a leak. Must stay silent. */
// expect: silent
#include <pthread.h>
#include <semaphore.h>
static sem_t ready, done;
static void *worker(void *x) { sem_wait(&ready); sem_post(&done); return x; }
int main(void)
{
    sem_init(&ready, 0, 0);
    sem_init(&done, 0, 0);
    for (int i = 0; i < 20; i++) {
        pthread_t t;
        pthread_create(&t, NULL, worker, NULL);
        sem_post(&ready);
        sem_wait(&done);
        pthread_join(t, NULL);
    }
    return 0;
}
