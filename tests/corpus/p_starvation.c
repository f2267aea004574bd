/* glibc's default mutex is not fair: the thread that unlocks may lock again
 * before the waiter it woke has even run. A greedy thread holds the mutex
 * for 1 ms at a time and re-locks it at once; a victim on the other CPU
 * asks for it once, and keeps losing: starvation. The two threads are
 * pinned to different CPUs (where there are two), so the victim's wake-up
 * never preempts the greedy thread in the instant the mutex is free. The
 * victim retries (for at most eight seconds) until one of its waits has
 * lasted twice the threshold while the greedy thread took the mutex 400
 * times (four times the detector's 100, since only acquisitions after the
 * first slice count and a loaded machine slows the greedy thread down):
 * long enough for the report. The program always exits 0 by itself. */
// expect: starvation
// env: WEFT_CHECK_STARVE_MS=200
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
static pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop, started;
static atomic_ulong grabs; /* the greedy thread's acquisitions */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* one CPU: no-op */
}
static void *greedy(void *x)
{
    pin(0);
    while (!atomic_load(&stop)) {
        pthread_mutex_lock(&M);
        atomic_store(&started, 1);
        atomic_fetch_add(&grabs, 1);
        uint64_t until = now_ns() + 1000000;
        while (now_ns() < until)
            ;
        pthread_mutex_unlock(&M);
    }
    return x;
}
int main(void)
{
    pin(1);
    pthread_t g;
    pthread_create(&g, NULL, greedy, NULL);
    while (!atomic_load(&started))
        sched_yield();
    uint64_t end = now_ns() + 8000000000ull;
    bool starved = false;
    while (!starved && now_ns() < end) {
        uint64_t t0 = now_ns();
        unsigned long g0 = atomic_load(&grabs);
        pthread_mutex_lock(&M);
        uint64_t waited = now_ns() - t0;
        unsigned long overtaken = atomic_load(&grabs) - g0;
        pthread_mutex_unlock(&M);
        starved = waited >= 400000000u && overtaken >= 400;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    pthread_join(g, NULL);
    return 0;
}
