/* A token semaphore passed between threads: main takes the token and a
 * courier gives it back (a release by a thread that did not take it: the
 * semaphore is a signal, not a lock). Later main holds the token and waits
 * for a mutex that a worker holds while the worker waits for the token;
 * the courier then returns the token and everything completes. Going by
 * the ledger alone (main holds the token, main is blocked on the worker)
 * this looks like a deadlock; the semaphore has no owner, so it is not
 * one. Must stay silent. */
// expect: silent
#include <pthread.h>
#include <time.h>
#include "weft.h"
static weft_sem_t token = WEFT_SEM_INIT(1, "token");
static weft_sem_t go = WEFT_SEM_INIT(0, "go");
static weft_mutex_t state = WEFT_MUTEX_INIT("state");
static pthread_barrier_t bar;
static void pause_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000};
    nanosleep(&ts, NULL);
}
static void *courier(void *x)
{
    weft_sem_acquire(&go);
    weft_sem_release(&token); /* the first hand-back */
    weft_sem_acquire(&go);
    pause_ms(400); /* main and the worker wait on each other meanwhile */
    weft_sem_release(&token);
    return x;
}
static void *worker(void *x)
{
    weft_mutex_lock(&state);
    pthread_barrier_wait(&bar);
    weft_sem_acquire(&token);
    weft_mutex_unlock(&state);
    weft_sem_release(&token);
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t c, w;
    pthread_create(&c, NULL, courier, NULL);
    weft_sem_acquire(&token);
    weft_sem_release(&go);
    weft_sem_acquire(&token); /* handed back by the courier */
    pthread_create(&w, NULL, worker, NULL);
    pthread_barrier_wait(&bar);
    weft_sem_release(&go);
    weft_mutex_lock(&state);
    weft_mutex_unlock(&state);
    pthread_join(c, NULL);
    pthread_join(w, NULL);
    return 0;
}
