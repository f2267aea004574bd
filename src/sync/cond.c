/*
 * cond.c - weft_cond_t: a condition variable as a futex sequence counter.
 *
 * DESIGN
 *   _seq      bumped by every signal and broadcast; waiters sleep on it
 *   _waiters  number of threads between entering and leaving a wait, so
 *             signal and broadcast skip the system call when nobody waits
 *
 * Wait reads _seq while still holding the mutex, releases the mutex, and
 * sleeps only while _seq still has that value. A signal that comes after
 * the waiter released the mutex therefore changes _seq first, and the
 * kernel refuses to put the waiter to sleep (or it is already asleep and is
 * woken). Linux wakes futex sleepers of equal priority in FIFO order, so a
 * signal wakes the longest waiter, which was blocked when the signal came.
 * Wake-ups may be spurious, as POSIX allows; callers wait in a loop.
 */
#include <limits.h>
#include <stddef.h>

#include "internal/base.h"
#include "internal/instrument.h"
#include "weft/sync.h"

/* _seq and _waiters, adjacent: changed with atomics, so hidden from
 * Helgrind's race detector. The condition variable needs no happens-before
 * annotation of its own: what a waiter may rely on is ordered by the mutex,
 * whose annotations Helgrind and TSan already see. */
#define WEFT__COND_ATOMIC_BYTES ((unsigned)(offsetof(weft_cond_t, _waiters) + sizeof(uint32_t)))

static inline void weft__cond_annotate(weft_cond_t *c)
{
    if (WEFT__INSTRUMENTED())
        weft__ann_hide(&c->_seq, WEFT__COND_ATOMIC_BYTES);
}

int weft_cond_init(weft_cond_t *c, const char *name)
{
    if (c == NULL)
        return -EINVAL;
    c->_seq = 0;
    c->_waiters = 0;
    c->_name = name;
    c->_check = NULL;
    weft__cond_annotate(c);
    return 0;
}

int weft_cond_destroy(weft_cond_t *c)
{
    if (c == NULL)
        return -EINVAL;
    if (__atomic_load_n(&c->_waiters, __ATOMIC_SEQ_CST) != 0)
        return -EBUSY;
    return 0;
}

/* Exempt from clang's -Wthread-safety: the mutex is released and re-taken
 * inside, which the analysis cannot follow; callers see WEFT_REQUIRES(m). */
static WEFT_NO_THREAD_SAFETY_ANALYSIS int weft__cond_wait(weft_cond_t *c, weft_mutex_t *m,
                                                          const weft__deadline_t *d)
{
    if (!weft_mutex_held(m))
        return -EPERM;
    weft__cond_annotate(c); /* statically initialised ones never saw init */
    /*
     *  waiter                      signaller
     *  [W] _waiters += 1 (seq_cst) [W] _seq += 1 (seq_cst)
     *  [R] _seq (seq_cst)          [R] _waiters (seq_cst)
     * Pairs with weft__cond_wake(): either the signaller sees us counted
     * and wakes the futex, or we read its new _seq, and futex_wait returns
     * at once because the value differs.
     */
    __atomic_fetch_add(&c->_waiters, 1, __ATOMIC_SEQ_CST);
    uint32_t seq = __atomic_load_n(&c->_seq, __ATOMIC_SEQ_CST);
    (void)weft_mutex_unlock(m);
    int r = weft__futex_wait(&c->_seq, seq, d);
    /* Relaxed: the count only gates wake-ups; an early stale read costs one
     * unnecessary futex_wake in weft__cond_wake(). */
    __atomic_fetch_sub(&c->_waiters, 1, __ATOMIC_RELAXED);
    /* The mutex is re-acquired whatever happened, as POSIX specifies. */
    weft_mutex_lock(m);
    return r == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

int weft_cond_wait(weft_cond_t *c, weft_mutex_t *m)
{
    if (c == NULL || m == NULL)
        return -EINVAL;
    return weft__cond_wait(c, m, NULL);
}

int weft_cond_timedwait(weft_cond_t *c, weft_mutex_t *m, int64_t timeout_ns)
{
    if (c == NULL || m == NULL)
        return -EINVAL;
    weft__deadline_t d;
    if (weft__deadline_init(&d, timeout_ns) != 0)
        return -EINVAL;
    return weft__cond_wait(c, m, &d);
}

static int weft__cond_wake(weft_cond_t *c, int n)
{
    if (c == NULL)
        return -EINVAL;
    weft__cond_annotate(c);
    /* seq_cst: the store-buffering pair drawn in weft__cond_wait(). */
    __atomic_fetch_add(&c->_seq, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->_waiters, __ATOMIC_SEQ_CST) != 0)
        weft__futex_wake(&c->_seq, n);
    return 0;
}

int weft_cond_signal(weft_cond_t *c)
{
    return weft__cond_wake(c, 1);
}

int weft_cond_broadcast(weft_cond_t *c)
{
    return weft__cond_wake(c, INT_MAX);
}
