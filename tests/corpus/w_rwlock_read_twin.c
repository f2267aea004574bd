/* Two rwlocks read-locked in opposite orders, with a writer queued on one
 * of them: the second reader of "index" waits behind the writer for a
 * while, but the thread holding "index" shared is not blocked (nobody
 * queues on "log"), finishes and lets everyone through. No actual deadlock
 * may be reported. The order inversion is reported, rightly: with weft's
 * writer preference, a writer queued on each lock would hang both readers. */
// expect: lock-order-inversion
// forbid: deadlock
#include <pthread.h>
#include <time.h>
#include "weft.h"
static weft_rwlock_t idx = WEFT_RWLOCK_INIT("index");
static weft_rwlock_t log_ = WEFT_RWLOCK_INIT("log");
static pthread_barrier_t bar;
static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}
static void *first(void *x)
{
    weft_rwlock_rdlock(&idx);
    pthread_barrier_wait(&bar);
    pause_ms(50);
    weft_rwlock_rdlock(&log_);
    pause_ms(300); /* the other reader waits all this while */
    weft_rwlock_unlock(&log_);
    weft_rwlock_unlock(&idx);
    return x;
}
static void *writer(void *x)
{
    weft_rwlock_wrlock(&idx);
    weft_rwlock_unlock(&idx);
    return x;
}
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t f, w;
    pthread_create(&f, NULL, first, NULL);
    weft_rwlock_rdlock(&log_);
    pthread_barrier_wait(&bar);
    pthread_create(&w, NULL, writer, NULL);
    while (weft_rwlock_tryrdlock(&idx) == 0) { /* until the writer queues */
        weft_rwlock_unlock(&idx);
        pause_ms(1);
    }
    int r = weft_rwlock_timedrdlock(&idx, 10000000000ll);
    if (r == 0)
        weft_rwlock_unlock(&idx);
    weft_rwlock_unlock(&log_);
    pthread_join(f, NULL);
    pthread_join(w, NULL);
    return r == 0 ? 0 : 1;
}
