/*
 * ipa_weft.c - the shape of ipa_repro.c, with weft's mutex as the lock: a
 * static counter updated under weft_mutex_lock/unlock by several threads.
 * weft's lock functions carry WEFT__NOIPA, so no inter-procedural analysis
 * may conclude they leave `counter` alone, however the program is built
 * (-O2, -flto, static or shared libweft, or weft's sources compiled into
 * the same LTO unit). Exit status 0 if no update was lost, 1 otherwise.
 */
#include <pthread.h>
#include <stdio.h>

#include "weft.h"

enum { THREADS = 4, ITERS = 500000 };

static weft_mutex_t lock = WEFT_MUTEX_INIT("ipa");
static long counter;

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        weft_mutex_lock(&lock);
        counter++;
        (void)weft_mutex_unlock(&lock);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    long want = (long)THREADS * ITERS;
    printf("weft_mutex_t, static counter: %ld of %ld updates (%ld lost)\n", counter, want,
           want - counter);
    return counter == want ? 0 : 1;
}
