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
 * Blocking. Each direction has an eventcount: a futex word holding an
 * epoch and a "sleepers" bit (_not_full for pushers, _not_empty for
 * poppers). weft_queue_push() spins briefly; then it sets the bit, re-checks
 * the positions and sleeps on the word only if they still say full. Every
 * successful pop loads _not_full; if the bit is set it replaces the word by
 * the next epoch with the bit clear and wakes all sleepers, who re-check
 * (and set the bit again if they must sleep again). So a pop pays a system
 * call only for the first pop after someone went to sleep, not for every
 * pop while a sleeper is waking up. Pop waits on _not_empty the same way.
 *
 *   [W] word |= SLEEPERS (seq_cst)      [W] _deq CAS        (seq_cst)
 *   [R] _enq, _deq       (seq_cst)      [R] word            (seq_cst)
 *
 * Store-buffering, all seq_cst: either the sleeper sees the new _deq and
 * does not sleep, or the popper sees the bit and wakes it. The futex closes
 * the last window: the sleeper waits for the exact word it set; if the
 * popper changed it in between, futex_wait returns at once. No missed
 * wake-up.
 *
 * A woken thread always tries its operation again before it looks at its
 * deadline, so a wake-up is never lost to a timeout.
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
    q->_not_full = 0;
    q->_not_empty = 0;
    return 0;
}

void weft_queue_destroy(weft_queue_t *q)
{
    if (q == NULL || q->_cells == NULL)
        return;
    free(q->_cells);
    q->_cells = NULL;
}

#define WEFT__QSLEEPERS 1u

/* After a successful operation: wake the other side if anyone sleeps.
 * Seq_cst load: the right-hand column of the diagram in DESIGN. */
static inline void weft__queue_signal(uint32_t *word)
{
    uint32_t w = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    if (weft__likely(!(w & WEFT__QSLEEPERS)))
        return;
    /* Next epoch, bit clear. Relaxed on failure: someone else woke them. */
    if (__atomic_compare_exchange_n(word, &w, (w + 2) & ~WEFT__QSLEEPERS, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_RELAXED))
        weft__futex_wake(word, INT_MAX);
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
        weft__queue_signal(&q->_not_empty);
    return r;
}

int weft_queue_trypop(weft_queue_t *q, void **item)
{
    if (q == NULL || item == NULL)
        return -EINVAL;
    int r = weft__queue_trypop(q, item);
    if (r == 0)
        weft__queue_signal(&q->_not_full);
    return r;
}

/* The two directions of blocking, so one wait loop serves both. */
struct weft__qdir {
    int (*attempt)(weft_queue_t *q, void *arg);
    bool (*must_wait)(const weft_queue_t *q); /* seq_cst position check */
    uint32_t *word;                           /* the eventcount to sleep on */
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

/* Set the sleepers bit, re-check, sleep. Returns 0 after a wake-up (or a
 * change seen before sleeping), -ETIMEDOUT when the deadline passed. */
static int weft__queue_park(weft_queue_t *q, const struct weft__qdir *dir,
                            const weft__deadline_t *d)
{
    uint32_t w = __atomic_fetch_or(dir->word, WEFT__QSLEEPERS, __ATOMIC_SEQ_CST);
    if (!dir->must_wait(q)) {
        sched_yield(); /* a cell is in flight: let its owner finish */
        return 0;
    }
    return weft__futex_wait(dir->word, w | WEFT__QSLEEPERS, d) == -ETIMEDOUT ? -ETIMEDOUT : 0;
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
    if (weft__likely(weft_queue_trypush(q, item) == 0))
        return 0;
    struct weft__qdir dir = {weft__queue_attempt_push, weft__queue_full, &q->_not_full};
    return weft__queue_wait(q, &dir, &item, timeout_ns);
}

int weft_queue_pop(weft_queue_t *q, void **item, int64_t timeout_ns)
{
    if (q == NULL || item == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    if (weft__likely(weft_queue_trypop(q, item) == 0))
        return 0;
    struct weft__qdir dir = {weft__queue_attempt_pop, weft__queue_empty, &q->_not_empty};
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
