/* The twin of p_starvation.c: the same greedy thread holding the mutex for
 * 1 ms at a time, but it sleeps for 1 ms outside the mutex between turns,
 * so the waiter it wakes gets in within one turn. The victim locks it 200
 * times; waits are short however often the greedy thread takes the lock.
 * Must stay silent. */
// expect: silent
// env: WEFT_CHECK_STARVE_MS=200
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
static pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop, started;
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
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
static void *greedy(void *x)
{
    pin(0);
    while (!atomic_load(&stop)) {
        pthread_mutex_lock(&M);
        atomic_store(&started, 1);
        uint64_t until = now_ns() + 1000000;
        while (now_ns() < until)
            ;
        pthread_mutex_unlock(&M);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
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
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&M);
        pthread_mutex_unlock(&M);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    pthread_join(g, NULL);
    return 0;
}
