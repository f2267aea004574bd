/*
 * once.c - weft_once_t: run an initialiser exactly once across threads.
 *
 * DESIGN
 * One 32-bit word, which is also the futex the waiters sleep on:
 *
 *   _state == 0                          new: fn has not run, or its last
 *                                        run failed (the next caller retries)
 *   _state == RUNNING | tid              thread `tid` is running fn
 *   _state == RUNNING | tid | WAITERS    ... and others may sleep on _state
 *   _state == DONE                       fn returned 0; final
 *
 * Linux thread ids are below 2^22, so bits 30 and 31 are free, and DONE (1)
 * never has RUNNING set, so it cannot be mistaken for a running state.
 *
 * The caller that moves the word from 0 to RUNNING | tid runs fn. When fn
 * returns, the runner stores DONE (success) or 0 (failure) with release and
 * wakes every sleeper if the WAITERS bit was set. After a failure the woken
 * waiters race to start a new run, so one of them retries and the others
 * wait again; nobody is left asleep on a word that will not change.
 *
 * Ordering: the DONE store is a release and every reader loads with acquire,
 * so fn's writes happen-before every return of 0. After completion the fast
 * path is one acquire load and one compare.
 *
 * Recursion: a caller that finds its own tid in a RUNNING word is inside fn
 * on the same once; it gets -EDEADLK instead of waiting for itself.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal/base.h"
#include "internal/instrument.h"
#include "weft/sync.h"

#define WEFT__ONCE_NEW 0u
#define WEFT__ONCE_DONE 1u
#define WEFT__ONCE_RUNNING 0x40000000u
#define WEFT__ONCE_WAITERS 0x80000000u
#define WEFT__ONCE_TID_MASK 0x3fffffffu

/* Run fn as the caller that claimed the once; publish the outcome. */
static int weft__once_run(weft_once_t *o, int (*fn)(void *), void *arg)
{
    int r = fn(arg);
    if (r == 0 && WEFT__INSTRUMENTED())
        weft__ann_release(o, &o->_state, sizeof o->_state);
    /* Release: pairs with the acquire loads in weft_once() and
     * weft__once_slow(), so fn's writes are visible to everyone who sees
     * DONE. On failure there is nothing to publish, but the exchange must
     * still read the WAITERS bit set by sleepers. */
    uint32_t prev = __atomic_exchange_n(&o->_state, r == 0 ? WEFT__ONCE_DONE : WEFT__ONCE_NEW,
                                        __ATOMIC_RELEASE);
    if (prev & WEFT__ONCE_WAITERS)
        weft__futex_wake(&o->_state, INT_MAX);
    return r;
}

/*
 * Sleep until the word changes from s (a RUNNING word), setting the WAITERS
 * bit first. Returns the word seen afterwards.
 *
 * Missed wake-up argument: we sleep only in futex_wait(&_state, s) with the
 * WAITERS bit in s, and the kernel re-checks the word. The runner's exchange
 * in weft__once_run() changes the word before its futex_wake; as the
 * exchange is an RMW after our CAS in the word's modification order, it
 * reads the bit and does wake. Either the kernel sees the new word and does
 * not sleep us, or we are asleep when the wake comes.
 */
static uint32_t weft__once_sleep(weft_once_t *o, uint32_t s)
{
    if (!(s & WEFT__ONCE_WAITERS)) {
        /* Relaxed: setting the bit publishes nothing; the reload after the
         * wait is an acquire. */
        if (!__atomic_compare_exchange_n(&o->_state, &s, s | WEFT__ONCE_WAITERS, false,
                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return s;
        s |= WEFT__ONCE_WAITERS;
    }
    (void)weft__futex_wait(&o->_state, s, NULL);
    /* Acquire: pairs with the release exchange in weft__once_run(). */
    return __atomic_load_n(&o->_state, __ATOMIC_ACQUIRE);
}

static WEFT__COLD int weft__once_slow(weft_once_t *o, int (*fn)(void *), void *arg)
{
    uint32_t tid = weft__tid();
    /* Acquire: pairs with the release exchange in weft__once_run(). */
    uint32_t s = __atomic_load_n(&o->_state, __ATOMIC_ACQUIRE);
    for (;;) {
        if (s == WEFT__ONCE_DONE) {
            if (WEFT__INSTRUMENTED())
                weft__ann_acquire(o, &o->_state, sizeof o->_state);
            return 0;
        }
        if (s == WEFT__ONCE_NEW) {
            /* Acquire on success: a retry after a failed run sees what the
             * failed run wrote, as a lock would provide. */
            if (__atomic_compare_exchange_n(&o->_state, &s, WEFT__ONCE_RUNNING | tid, false,
                                            __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
                return weft__once_run(o, fn, arg);
            continue;
        }
        if ((s & WEFT__ONCE_TID_MASK) == tid)
            return -EDEADLK;
        s = weft__once_sleep(o, s);
    }
}

int weft_once(weft_once_t *o, int (*fn)(void *), void *arg)
{
    if (o == NULL || fn == NULL)
        return -EINVAL;
    /* Acquire: pairs with the release exchange in weft__once_run(). */
    if (weft__likely(__atomic_load_n(&o->_state, __ATOMIC_ACQUIRE) == WEFT__ONCE_DONE)) {
        if (WEFT__INSTRUMENTED())
            weft__ann_acquire(o, &o->_state, sizeof o->_state);
        return 0;
    }
    return weft__once_slow(o, fn, arg);
}

bool weft_once_done(const weft_once_t *o)
{
    if (o == NULL)
        return false;
    /* Acquire: pairs with the release exchange in weft__once_run(), so a
     * caller that sees true may read what fn wrote. */
    bool done = __atomic_load_n(&o->_state, __ATOMIC_ACQUIRE) == WEFT__ONCE_DONE;
    if (done && WEFT__INSTRUMENTED())
        weft__ann_acquire((void *)o, (void *)&o->_state, sizeof o->_state);
    return done;
}
