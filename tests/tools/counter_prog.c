/*
 * counter_prog.c - the program the race detectors are tested with.
 *
 * Worker threads update shared plain (non-atomic) data under weft locks:
 *   - a counter under a statically initialised mutex, taken with lock,
 *     trylock and timedlock;
 *   - a "baton" passed round the threads in turn, under a dynamically
 *     initialised mutex and a condition variable (each thread waits for its
 *     turn, writes the baton, and wakes the next);
 *   - a final tally the main thread reads after a cond_wait for "all done".
 * Built normally, every access is ordered by a weft lock, so a detector
 * that understands weft's annotations must stay silent. Built with
 * -DWEFT_RACY, the counter is updated without its mutex (everything else is
 * unchanged) and the detector must report the race.
 */
#include <stdio.h>
#include <pthread.h>

#include "weft.h"

enum { THREADS = 4, ITERS = 2000, ROUNDS = 50 };

static weft_mutex_t counter_lock = WEFT_MUTEX_INIT("counter");
static long counter WEFT_GUARDED_BY(counter_lock);

static weft_mutex_t turn_lock;
static weft_cond_t turn_cv;
static int turn WEFT_GUARDED_BY(turn_lock);
static long baton WEFT_GUARDED_BY(turn_lock);
static int finished WEFT_GUARDED_BY(turn_lock);

#ifdef WEFT_RACY
/* The deliberate bug: the counter's lock is gone. */
#define COUNTER_LOCK(i) ((void)(i))
#define COUNTER_UNLOCK() ((void)0)
#else
/* Takes the counter's lock, varying the way it is taken. */
static void counter_lock_by(int i) WEFT_ACQUIRE(counter_lock) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    if (i % 3 == 1 && weft_mutex_trylock(&counter_lock) == 0)
        return;
    if (i % 3 == 2 && weft_mutex_timedlock(&counter_lock, WEFT_FOREVER) == 0)
        return;
    weft_mutex_lock(&counter_lock);
}
#define COUNTER_LOCK(i) counter_lock_by(i)
#define COUNTER_UNLOCK() ((void)weft_mutex_unlock(&counter_lock))
#endif

static void *worker(void *arg) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    int me = (int)(long)arg;
    for (int i = 0; i < ITERS; i++) {
        COUNTER_LOCK(i);
        counter++;
        COUNTER_UNLOCK();
    }
    weft_mutex_lock(&turn_lock);
    for (int r = 0; r < ROUNDS; r++) {
        while (turn != me)
            (void)weft_cond_wait(&turn_cv, &turn_lock);
        baton += me;
        turn = (turn + 1) % THREADS;
        (void)weft_cond_broadcast(&turn_cv);
    }
    finished++;
    (void)weft_cond_broadcast(&turn_cv);
    (void)weft_mutex_unlock(&turn_lock);
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    weft_mutex_init(&turn_lock, "turn");
    weft_cond_init(&turn_cv, "turn");
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    weft_mutex_lock(&turn_lock);
    while (finished < THREADS)
        (void)weft_cond_wait(&turn_cv, &turn_lock);
    long b = baton;
    weft_mutex_unlock(&turn_lock);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    weft_mutex_lock(&counter_lock);
    long c = counter;
    weft_mutex_unlock(&counter_lock);
    printf("counter %ld (expected %d), baton %ld (expected %d)\n", c, THREADS * ITERS, b,
           ROUNDS * (0 + 1 + 2 + 3));
    weft_cond_destroy(&turn_cv);
    weft_mutex_destroy(&turn_lock);
    return 0;
}
