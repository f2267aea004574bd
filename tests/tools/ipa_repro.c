/*
 * ipa_repro.c - reproduces the gcc ipa-reference hazard with a lock of its
 * own, to prove the harness can see lost updates when they happen.
 *
 * The shape: a futex lock written as non-inlined functions in the same
 * translation unit as a *static* counter they protect. gcc's ipa-reference
 * pass sees that lock() and unlock() never touch `counter` and that its
 * address never escapes, so (single-threaded reasoning) it may keep the
 * counter in a register across the calls: gcc 12 at -O2 loads it once
 * before the loop and stores from the register, losing other threads'
 * updates. The atomics inside lock() do not help, because the analysis
 * decided they cannot concern `counter`. Built with -fno-ipa-reference, or
 * with the lock functions marked __attribute__((noipa)), it is correct.
 *
 * Exit status: 0 if no update was lost, 1 if some were (the bug shows).
 */
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { THREADS = 4, ITERS = 1000000 };

static uint32_t word; /* 0 free, 1 locked, 2 locked with sleepers */
static long counter;  /* protected by word, in intent */

__attribute__((noinline)) static void lock(void)
{
    uint32_t c = 0;
    /* Acquire: pairs with the release exchange in unlock(). */
    if (__atomic_compare_exchange_n(&word, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    if (c != 2)
        c = __atomic_exchange_n(&word, 2, __ATOMIC_ACQUIRE);
    while (c != 0) {
        syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
        c = __atomic_exchange_n(&word, 2, __ATOMIC_ACQUIRE);
    }
}

__attribute__((noinline)) static void unlock(void)
{
    /* Release: pairs with the acquire operations in lock(). */
    if (__atomic_exchange_n(&word, 0, __ATOMIC_RELEASE) == 2)
        syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        lock();
        counter++;
        unlock();
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
    printf("own futex lock, static counter: %ld of %ld updates (%ld lost)\n", counter, want,
           want - counter);
    return counter == want ? 0 : 1;
}
