/*
 * barrier.c - weft_barrier_t: a reusable barrier for a fixed number of parties.
 *
 * DESIGN
 *   _arrived  atomic: SENSE bit | threads arrived in the current cycle.
 *             The last arrival resets the count and flips SENSE in one
 *             store; that store is what ends a cycle.
 *   _gen      atomic futex: bumped after every flip; waiters sleep on it.
 *   _inside   atomic: threads inside weft_barrier_wait(), so destroy can
 *             let the threads of a finished cycle leave before the memory
 *             goes away.
 *
 * A waiter remembers the SENSE its arrival saw and waits until SENSE
 * differs. Keeping the sense in the arrival word itself makes the arrival
 * and "which cycle am I in" one atomic step: a thread released from cycle k
 * that races into cycle k+1 cannot be counted in k (the flip happened
 * before it was released), and cannot mistake k's end for k+1's. SENSE can
 * flip only once while a party waits, since the next cycle needs that party.
 *
 * Exactly one thread per cycle, the one whose arrival completes the count,
 * returns WEFT_BARRIER_SERIAL; it flips SENSE, bumps _gen and wakes all.
 *
 * Ordering: every arrival is an acq_rel RMW on _arrived, so the last arrival
 * has seen every other arrival, and its release store of the flipped word is
 * read with acquire by every waiter: whatever any party wrote before the
 * barrier is visible to every party after it.
 */
#include <limits.h>
#include <sched.h>
#include <stdint.h>

#include "internal/base.h"
#include "internal/instrument.h"
#include "weft/sync.h"

#define WEFT__BAR_SENSE 0x80000000u
#define WEFT__BAR_COUNT_MASK 0x7fffffffu

int weft_barrier_init(weft_barrier_t *b, unsigned count, const char *name)
{
    if (b == NULL || count == 0 || count > WEFT__BAR_COUNT_MASK)
        return -EINVAL;
    b->_count = count;
    b->_arrived = 0;
    b->_gen = 0;
    b->_inside = 0;
    b->_name = name;
    return 0;
}

int weft_barrier_destroy(weft_barrier_t *b)
{
    if (b == NULL)
        return -EINVAL;
    /* Wait for the threads of a completed cycle that are still on their way
     * out (they are awake and need no one else). A thread that has arrived
     * in an unfinished cycle makes the barrier busy. Acquire: pairs with the
     * release decrement at the end of weft_barrier_wait(). */
    for (;;) {
        if (__atomic_load_n(&b->_arrived, __ATOMIC_ACQUIRE) & WEFT__BAR_COUNT_MASK)
            return -EBUSY;
        if (__atomic_load_n(&b->_inside, __ATOMIC_ACQUIRE) == 0)
            return 0;
        sched_yield();
    }
}

/*
 * Sleep until the cycle that our arrival (which saw `sense`) belongs to
 * has ended.
 *
 * Missed wake-up argument: we read _gen (g) before checking SENSE, and the
 * serial thread flips SENSE before it bumps _gen with release. If our g
 * already were the bumped value, our acquire load of g would make the flip
 * visible to the SENSE check that follows, and we would not sleep. So when
 * we sleep, g predates the bump: futex_wait(&_gen, g) either fails at once
 * because the bump has happened, or we are queued before the futex_wake
 * that follows the bump.
 */
static void weft__barrier_sleep(weft_barrier_t *b, uint32_t sense)
{
    for (;;) {
        /* Acquire: pairs with the release increment of _gen in
         * weft__barrier_release_all(). */
        uint32_t g = __atomic_load_n(&b->_gen, __ATOMIC_ACQUIRE);
        /* Acquire: pairs with the release store of the flipped word. */
        if ((__atomic_load_n(&b->_arrived, __ATOMIC_ACQUIRE) & WEFT__BAR_SENSE) != sense)
            return;
        (void)weft__futex_wait(&b->_gen, g, NULL);
    }
}

/* The last arrival: end the cycle and wake the others. */
static void weft__barrier_release_all(weft_barrier_t *b, uint32_t sense)
{
    /* Release: pairs with the acquire loads in weft__barrier_sleep(); with
     * the acq_rel arrivals before it, it carries every party's writes. */
    __atomic_store_n(&b->_arrived, sense ^ WEFT__BAR_SENSE, __ATOMIC_RELEASE);
    /* Release: pairs with the acquire load of _gen in weft__barrier_sleep(). */
    __atomic_fetch_add(&b->_gen, 1, __ATOMIC_RELEASE);
    weft__futex_wake(&b->_gen, INT_MAX);
}

int weft_barrier_wait(weft_barrier_t *b)
{
    if (b == NULL)
        return -EINVAL;
    /* Relaxed: the count is only read by destroy, after the arrivals and
     * the release decrement below. */
    __atomic_fetch_add(&b->_inside, 1, __ATOMIC_RELAXED);
    if (WEFT__INSTRUMENTED())
        weft__ann_release(b, &b->_arrived, 3 * sizeof b->_arrived);
    /* Acq_rel: the release half publishes our writes to the last arrival,
     * the acquire half lets the last arrival see all earlier ones. */
    uint32_t v = __atomic_fetch_add(&b->_arrived, 1, __ATOMIC_ACQ_REL);
    uint32_t sense = v & WEFT__BAR_SENSE;
    int r = 0;
    if ((v & WEFT__BAR_COUNT_MASK) + 1 == b->_count) {
        weft__barrier_release_all(b, sense);
        r = WEFT_BARRIER_SERIAL;
    } else {
        weft__barrier_sleep(b, sense);
    }
    if (WEFT__INSTRUMENTED())
        weft__ann_acquire(b, &b->_arrived, 3 * sizeof b->_arrived);
    /* Release: pairs with the acquire load in weft_barrier_destroy(); this
     * is our last access to *b. */
    __atomic_fetch_sub(&b->_inside, 1, __ATOMIC_RELEASE);
    return r;
}
