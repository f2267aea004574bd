/* A retry loop with weft_backoff that never makes progress (the lock it
 * retries is held for the whole run): reported as a possible livelock. */
// expect: livelock
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include "weft.h"
static weft_mutex_t M = WEFT_MUTEX_INIT("resource");
static atomic_int done;
static weft_sem_t held = WEFT_SEM_INIT(0, "held");
static void *holder(void *x)
{
    weft_mutex_lock(&M);
    weft_sem_release(&held);
    while (!atomic_load(&done)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    weft_mutex_unlock(&M);
    return x;
}
int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
    weft_sem_acquire(&held);
    weft_backoff_t b;
    weft_backoff_init(&b, 42);
    weft_backoff_set_limits(&b, 1, 8);
    while (weft_mutex_trylock(&M) != 0 && weft_check_report_count() == 0)
        weft_backoff_pause(&b);
    atomic_store(&done, 1);
    pthread_join(t, NULL);
    return 0;
}
