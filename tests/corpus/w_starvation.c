/* weft's mutex is unfair on purpose (a running or spinning thread may take
 * it before a woken one). Three greedy threads pass one lock among
 * themselves; a fourth thread asks for it again and again. Whether a given
 * attempt starves depends on the scheduler, so the program retries (for at
 * most eight seconds) until the detector has reported one long wait. */
// expect: starvation
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include "weft.h"
static weft_mutex_t M = WEFT_MUTEX_INIT("hot lock");
static atomic_int stop;
static void *greedy(void *x)
{
    while (!atomic_load(&stop)) {
        weft_mutex_lock(&M);
        uint64_t t = weft_now_ns() + 50000; /* a 50 us critical section */
        while (weft_now_ns() < t)
            ;
        weft_mutex_unlock(&M);
    }
    return x;
}
int main(void)
{
    setenv("WEFT_CHECK_STARVE_MS", "20", 1);
    pthread_t g[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&g[i], NULL, greedy, NULL);
    uint64_t end = weft_now_ns() + 8000000000ull;
    while (weft_check_report_count() == 0 && weft_now_ns() < end) {
        weft_mutex_lock(&M);
        weft_mutex_unlock(&M);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(g[i], NULL);
    return 0;
}
