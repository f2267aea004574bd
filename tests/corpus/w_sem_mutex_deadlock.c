/* A semaphore and a mutex: a worker holds both permits of "workers" (two
 * jobs in flight) and waits for the mutex that main holds while it waits
 * for a permit. One release would let main in, but every permit is held by
 * a thread blocked on main: a deadlock. Main's untimed acquire cannot
 * return an error, so the program is stopped with status 66. */
// expect: deadlock
// exit: 66
#include <pthread.h>
#include "weft.h"
static weft_sem_t workers = WEFT_SEM_INIT(2, "workers");
static weft_mutex_t state = WEFT_MUTEX_INIT("state");
static pthread_barrier_t bar;
static void *worker(void *x)
{
    weft_sem_acquire(&workers);
    weft_sem_acquire(&workers);
    pthread_barrier_wait(&bar);
    weft_mutex_lock(&state);
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    weft_mutex_lock(&state);
    pthread_barrier_wait(&bar);
    weft_sem_acquire(&workers);
    return 1; /* not reached */
}
