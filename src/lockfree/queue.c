/*
 * queue.c - weft_queue_t: bounded MPMC queue with blocking variants.
 *
 * DESIGN
 * A ring of cells, each with a sequence number (after Dmitry Vyukov's
 * bounded MPMC queue). For the cell at index i = pos & mask:
 *
 *   cell.seq == pos              free: the producer that claims position
 *                                pos may fill it
 *   cell.seq == pos + 1          full: holds the item of position pos, for
 *                                the consumer that claims position pos
 *   cell.seq == pos + capacity   drained: free for position pos + capacity
 *
 * A producer claims position _enq with one CAS once its cell reads free,
 * writes the item and publishes it with a release store of seq. A consumer
 * does the same on _deq. Producers and consumers touch different counters
 * and meet only on cells, so one CAS per operation is all the contention.
 * Not lock-free in the strict sense: a thread preempted between its CAS
 * and its seq store holds up its cell (never the others) until it runs.
 *
 * Blocking. weft_queue_push() spins briefly, then parks on the futex word
 * _popped, announced in _push_waiters; every pop that sees a waiter bumps
 * _popped and wakes one. Pop waits on _pushed / _pop_waiters the same way.
 * The parking side sleeps only if, after announcing itself, the positions
 * (seq_cst loads of _enq and _deq) still say full (or empty):
 *
 *   [W] _push_waiters++ (seq_cst)      [W] _deq CAS        (seq_cst)
 *   [R] _enq, _deq      (seq_cst)      [R] _push_waiters   (seq_cst)
 *
 * Store-buffering, all seq_cst: either the waiter sees the new _deq and
 * does not sleep, or the popper sees the waiter and wakes it. The futex
 * word closes the remaining window: the waiter reads _popped before its
 * position check and sleeps only while _popped is unchanged, and the popper
 * bumps _popped before futex_wake. So there is no missed wake-up.
 *
 * A woken waiter always tries again before giving up on its deadline, so a
 * wake-up is never swallowed while an item (or a free cell) it signals is
 * left behind.
 */
#include <limits.h>
#include <sched.h>
#include <stdlib.h>

#include "internal/base.h"
#include "weft/lockfree.h"

struct weft__qcell {
    size_t seq; /* atomic: see the state table above */
    void *data; /* written by the owner of the position, under seq */
};

/* Failed attempts before a blocking call parks. */
#define WEFT__QSPIN 64

int weft_queue_init(weft_queue_t *q, size_t capacity)
{
    if (q == NULL || capacity == 0 || capacity > ((size_t)1 << (sizeof(size_t) * 8 - 2)))
        return -EINVAL;
    size_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    struct weft__qcell *cells = malloc(cap * sizeof *cells);
    if (cells == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++) {
        cells[i].seq = i;
        cells[i].data = NULL;
    }
    q->_cells = cells;
    q->_mask = cap - 1;
    q->_enq = 0;
    q->_deq = 0;
    q->_push_waiters = 0;
    q->_pop_waiters = 0;
    q->_popped = 0;
    q->_pushed = 0;
    return 0;
}

void weft_queue_destroy(weft_queue_t *q)
{
    if (q == NULL || q->_cells == NULL)
        return;
    free(q->_cells);
    q->_cells = NULL;
}

/* Bumps the futex word and wakes one sleeper, if anyone announced itself.
 * Seq_cst load: the right-hand column of the diagram in DESIGN. */
static inline void weft__queue_signal(uint32_t *waiters, uint32_t *word)
{
    if (weft__likely(__atomic_load_n(waiters, __ATOMIC_SEQ_CST) == 0))
        return;
    __atomic_fetch_add(word, 1, __ATOMIC_SEQ_CST);
    weft__futex_wake(word, 1);
}

static int weft__queue_trypush(weft_queue_t *q, void *item)
{
    struct weft__qcell *cells = q->_cells;
    /* Relaxed: a stale position is caught by the cell's seq below. */
    size_t pos = __atomic_load_n(&q->_enq, __ATOMIC_RELAXED);
    for (;;) {
        struct weft__qcell *c = &cells[pos & q->_mask];
        /* Acquire: pairs with the release store of seq in trypop, so the
         * consumer's read of c->data is done before we overwrite it. */
        size_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            /* Seq_cst: the left-hand [W] of the store-buffering pair with
             * a parking popper (see DESIGN). */
            if (__atomic_compare_exchange_n(&q->_enq, &pos, pos + 1, true, __ATOMIC_SEQ_CST,
                                            __ATOMIC_RELAXED)) {
                c->data = item;
                /* Release: publishes c->data; pairs with the acquire load
                 * of seq in weft__queue_trypop(). */
                __atomic_store_n(&c->seq, pos + 1, __ATOMIC_RELEASE);
                return 0;
            }
        } else if (dif < 0) {
            return -EAGAIN; /* the cell still holds the item of pos - cap */
        } else {
            pos = __atomic_load_n(&q->_enq, __ATOMIC_RELAXED);
        }
    }
}

static int weft__queue_trypop(weft_queue_t *q, void **item)
{
    struct weft__qcell *cells = q->_cells;
    /* Relaxed: a stale position is caught by the cell's seq below. */
    size_t pos = __atomic_load_n(&q->_deq, __ATOMIC_RELAXED);
    for (;;) {
        struct weft__qcell *c = &cells[pos & q->_mask];
        /* Acquire: pairs with the release store of seq in trypush. */
        size_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
        if (dif == 0) {
            /* Seq_cst: the [W] of the store-buffering pair with a parking
             * pusher (see DESIGN). */
            if (__atomic_compare_exchange_n(&q->_deq, &pos, pos + 1, true, __ATOMIC_SEQ_CST,
                                            __ATOMIC_RELAXED)) {
                *item = c->data;
                /* Release: our read of c->data happens-before the next
                 * producer's write; pairs with the acquire load in trypush. */
                __atomic_store_n(&c->seq, pos + q->_mask + 1, __ATOMIC_RELEASE);
                return 0;
            }
        } else if (dif < 0) {
            return -EAGAIN; /* not yet written: empty, or a push in flight */
        } else {
            pos = __atomic_load_n(&q->_deq, __ATOMIC_RELAXED);
        }
    }
}

int weft_queue_trypush(weft_queue_t *q, void *item)
{
    if (q == NULL)
        return -EINVAL;
    int r = weft__queue_trypush(q, item);
    if (r == 0)
        weft__queue_signal(&q->_pop_waiters, &q->_pushed);
    return r;
}

int weft_queue_trypop(weft_queue_t *q, void **item)
{
    if (q == NULL || item == NULL)
        return -EINVAL;
    int r = weft__queue_trypop(q, item);
    if (r == 0)
        weft__queue_signal(&q->_push_waiters, &q->_popped);
    return r;
}

/* The two directions of blocking, so one wait loop serves both. */
struct weft__qdir {
    int (*attempt)(weft_queue_t *q, void *arg);
    bool (*must_wait)(const weft_queue_t *q); /* seq_cst position check */
    uint32_t *waiters;
    uint32_t *word;
};

static int weft__queue_attempt_push(weft_queue_t *q, void *arg)
{
    return weft_queue_trypush(q, *(void **)arg);
}

static int weft__queue_attempt_pop(weft_queue_t *q, void *arg)
{
    return weft_queue_trypop(q, (void **)arg);
}

/* Full: _enq first, then the (fresher) _deq, so the difference can only
 * overstate free room, never invent fullness. Seq_cst: see DESIGN. */
static bool weft__queue_full(const weft_queue_t *q)
{
    size_t e = __atomic_load_n(&q->_enq, __ATOMIC_SEQ_CST);
    size_t d = __atomic_load_n(&q->_deq, __ATOMIC_SEQ_CST);
    return e - d > q->_mask;
}

/* Empty: _deq first, then _enq, for the same reason. */
static bool weft__queue_empty(const weft_queue_t *q)
{
    size_t d = __atomic_load_n(&q->_deq, __ATOMIC_SEQ_CST);
    size_t e = __atomic_load_n(&q->_enq, __ATOMIC_SEQ_CST);
    return e == d;
}

/* Announce, re-check, sleep. Returns 0 after a wake-up (or a change seen
 * before sleeping), -ETIMEDOUT when the deadline passed. */
static int weft__queue_park(weft_queue_t *q, const struct weft__qdir *dir,
                            const weft__deadline_t *d)
{
    int r = 0;
    __atomic_fetch_add(dir->waiters, 1, __ATOMIC_SEQ_CST);
    uint32_t seen = __atomic_load_n(dir->word, __ATOMIC_SEQ_CST);
    if (dir->must_wait(q))
        r = weft__futex_wait(dir->word, seen, d);
    else
        sched_yield(); /* a cell is in flight: let its owner finish */
    /* Relaxed: a stale count only costs a signaller one futex_wake. */
    __atomic_fetch_sub(dir->waiters, 1, __ATOMIC_RELAXED);
    return r == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

static int weft__queue_wait(weft_queue_t *q, const struct weft__qdir *dir, void *arg,
                            int64_t timeout_ns)
{
    for (int i = 0; i < WEFT__QSPIN; i++) {
        if (dir->attempt(q, arg) == 0)
            return 0;
        if (timeout_ns == 0)
            return -ETIMEDOUT;
        weft__cpu_relax();
    }
    weft__deadline_t d;
    (void)weft__deadline_init(&d, timeout_ns);
    for (;;) {
        int r = weft__queue_park(q, dir, &d);
        if (dir->attempt(q, arg) == 0)
            return 0;
        if (r == -ETIMEDOUT || weft__deadline_passed(&d))
            return -ETIMEDOUT;
    }
}

int weft_queue_push(weft_queue_t *q, void *item, int64_t timeout_ns)
{
    if (q == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    struct weft__qdir dir = {weft__queue_attempt_push, weft__queue_full, &q->_push_waiters,
                             &q->_popped};
    return weft__queue_wait(q, &dir, &item, timeout_ns);
}

int weft_queue_pop(weft_queue_t *q, void **item, int64_t timeout_ns)
{
    if (q == NULL || item == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    struct weft__qdir dir = {weft__queue_attempt_pop, weft__queue_empty, &q->_pop_waiters,
                             &q->_pushed};
    return weft__queue_wait(q, &dir, item, timeout_ns);
}

size_t weft_queue_capacity(const weft_queue_t *q)
{
    return q != NULL ? q->_mask + 1 : 0;
}

size_t weft_queue_size(const weft_queue_t *q)
{
    if (q == NULL)
        return 0;
    /* Relaxed: a snapshot; _deq first so the difference is never negative. */
    size_t d = __atomic_load_n(&q->_deq, __ATOMIC_RELAXED);
    size_t e = __atomic_load_n(&q->_enq, __ATOMIC_RELAXED);
    if ((intptr_t)(e - d) < 0)
        return 0;
    return e - d > q->_mask + 1 ? q->_mask + 1 : e - d;
}
