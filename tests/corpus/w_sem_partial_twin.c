/* Every permit of "slots" is held and one holder is blocked on a mutex that
 * the waiter holds, but the other holder is running and releases its
 * permit: the waiter gets in, then lets go of the mutex. A semaphore waiter
 * needs only one release, so this is no deadlock (a walk that followed one
 * holder, as for a lock, would say it is). Must stay silent. */
// expect: silent
#include <pthread.h>
#include <time.h>
#include "weft.h"
static weft_sem_t slots = WEFT_SEM_INIT(2, "slots");
static weft_mutex_t state = WEFT_MUTEX_INIT("state");
static pthread_barrier_t bar;
static void pause_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000};
    nanosleep(&ts, NULL);
}
static void *blocked(void *x)
{
    weft_sem_acquire(&slots);
    pthread_barrier_wait(&bar);
    weft_mutex_lock(&state);
    weft_mutex_unlock(&state);
    weft_sem_release(&slots);
    return x;
}
static void *busy(void *x)
{
    weft_sem_acquire(&slots);
    pthread_barrier_wait(&bar);
    pause_ms(400); /* several slices of the waiter */
    weft_sem_release(&slots);
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 3);
    pthread_t a, b;
    pthread_create(&a, NULL, blocked, NULL);
    pthread_create(&b, NULL, busy, NULL);
    weft_mutex_lock(&state);
    pthread_barrier_wait(&bar);
    weft_sem_acquire(&slots);
    weft_mutex_unlock(&state);
    weft_sem_release(&slots);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return 0;
}
