/* weft's rwlock prefers writers: once a writer waits, new readers wait
 * behind it. A thread that read-locks again a lock it already holds shared
 * then waits for the writer, which waits for that very thread: a deadlock
 * for as long as the writer waits. Reported; the timed read gets -EDEADLK,
 * after which the thread lets go and the writer gets in. */
// expect: deadlock
// forbid: lock-order-inversion
#include <pthread.h>
#include <time.h>
#include "weft.h"
static weft_rwlock_t cfg = WEFT_RWLOCK_INIT("config");
static void *writer(void *x)
{
    weft_rwlock_wrlock(&cfg);
    weft_rwlock_unlock(&cfg);
    return x;
}
int main(void)
{
    weft_rwlock_rdlock(&cfg);
    pthread_t w;
    pthread_create(&w, NULL, writer, NULL);
    /* Let the writer queue up: then a new read hold must wait. */
    while (weft_rwlock_tryrdlock(&cfg) == 0) {
        weft_rwlock_unlock(&cfg);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int r = weft_rwlock_timedrdlock(&cfg, 30000000000ll);
    if (r == 0)
        weft_rwlock_unlock(&cfg);
    weft_rwlock_unlock(&cfg);
    pthread_join(w, NULL);
    return r == -EDEADLK ? 0 : 1;
}
