/* Two POSIX semaphores of one permit each, used as locks and taken in
 * opposite orders by two threads: each holds the only permit the other
 * needs. Unmodified, this program hangs; under weft check the permit
 * ledger names the holders, both are blocked, so it is reported as a
 * deadlock and the run stops with status 66. */
// expect: deadlock
#include <pthread.h>
#include <semaphore.h>
static sem_t disk, net;
static pthread_barrier_t bar;
static void *t1(void *x)
{
    sem_wait(&disk);
    pthread_barrier_wait(&bar);
    sem_wait(&net);
    sem_post(&net);
    sem_post(&disk);
    return x;
}
int main(void)
{
    sem_init(&disk, 0, 1);
    sem_init(&net, 0, 1);
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, t1, NULL);
    sem_wait(&net);
    pthread_barrier_wait(&bar);
    sem_wait(&disk);
    sem_post(&disk);
    sem_post(&net);
    pthread_join(t, NULL);
    return 0;
}
