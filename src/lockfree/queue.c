/*
 * queue.c - weft_queue_t: bounded MPMC queue with blocking variants.
 *
 * DESIGN
 * A ring of cells, each with a sequence number (after Dmitry Vyukov's
 * bounded MPMC queue). Positions advance by STEP (see below); for the cell
 * of position pos, with cap the capacity:
 *
 *   cell.seq == pos               free: the producer that claims position
 *                                 pos may fill it
 *   cell.seq == pos + STEP        full: holds the item of position pos, for
 *                                 the consumer that claims position pos
 *   cell.seq == pos + cap * STEP  drained: free for the position one lap
 *                                 later
 *
 * A producer claims position _enq with one CAS once its cell reads free,
 * writes the item and publishes it with a release store of seq. A consumer
 * does the same on _deq. Producers and consumers touch different counters
 * and meet only on cells, so one CAS per operation is all the contention.
 * Not lock-free in the strict sense: a thread preempted between its CAS
 * and its seq store holds up its cell (never the others) until it runs.
 *
 * Positions count bytes, not items: each advances by the cell size
 * (STEP = WEFT__QSTEP, 16), and a cell's seq values are in the same unit. The
 * cell of position pos is then at byte offset pos & mask, so between the
 * load of a position and the load of its cell's seq there is one AND,
 * not a mask, a shift and an add. That chain runs once per operation,
 * between one CAS and the next, and is most of what an uncontended
 * operation costs besides the CAS itself.
 *
 * Layout. Three groups of fields, each on lines of its own (see the struct
 * in weft/lockfree.h): the producers' position with their copy of the cell
 * pointer and mask; the same for the consumers; the two futex words, read
 * by every operation but written only around sleeping. So a push touches
 * only lines that pushes write anyway, its cell, and a line that stays
 * shared in every cache while nobody sleeps.
 *
 * Blocking. Each direction has an eventcount: a futex word holding an
 * epoch and a "sleepers" bit (_not_full for pushers, _not_empty for
 * poppers). weft_queue_push() spins briefly (an adaptive budget, see
 * weft__queue_spin_adapt()) and yields the CPU once; then it sets the bit,
 * re-checks the positions and sleeps on the word only if they still say
 * full. Every
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
 * does not sleep, or the popper sees the bit and wakes it. (A sleeper that
 * sees the new _deq before the popper has released the cell finds the
 * queue still full when it retries; it yields and re-checks instead of
 * sleeping, until the release lands.) The popper loads the word after it
 * released its cell, off the path to its next CAS: on the fast path that
 * is one load of a line nobody writes while nobody sleeps (a plain load on
 * x86-64). The futex closes the last window: the sleeper waits for the
 * exact word it set; if the popper changed it in between, futex_wait
 * returns at once. No missed wake-up.
 *
 * A woken thread always tries its operation again before it looks at its
 * deadline, so a wake-up is never lost to a timeout.
 */
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>

#include "internal/base.h"
#include "lockfree/internal.h"

struct weft__qcell {
    size_t seq; /* atomic: see the state table above */
    void *data; /* written by the owner of the position, under seq */
};

/* The three groups of DESIGN's layout never share a line, wherever the
 * queue is placed. */
#define WEFT__QAPART(a, b) (offsetof(weft_queue_t, b) - offsetof(weft_queue_t, a) >= WEFT__LF_PAD)
_Static_assert(WEFT__QAPART(_pmask, _deq) && WEFT__QAPART(_cmask, _not_full),
               "queue layout: each group of fields on lines of its own");
_Static_assert(offsetof(weft_queue_t, _enq) >= WEFT__LF_PAD &&
                   sizeof(weft_queue_t) - offsetof(weft_queue_t, _not_empty) > WEFT__LF_PAD,
               "queue layout: no line shared with neighbouring objects");

/* Bounds of a blocked call's spin budget (attempts before it yields and
 * parks), which adapts: see weft__queue_wait(). */
#define WEFT__QSPIN_MAX 64
#define WEFT__QSPIN_MIN 4

#define WEFT__QSLEEPERS 1u

/* Positions count in bytes: each one advances by WEFT__QSTEP, so that the
 * cell of position pos is at byte offset pos & mask, one AND and no shift
 * between loading a position and loading its cell. */
#define WEFT__QSTEP sizeof(struct weft__qcell)

static inline struct weft__qcell *weft__qcell_at(struct weft__qcell *cells, size_t mask, size_t pos)
{
    return (struct weft__qcell *)((char *)cells + (pos & mask));
}

int weft__queue_init_at(weft_queue_t *q, size_t capacity, size_t first)
{
    if (q == NULL || capacity == 0 || capacity > ((size_t)1 << (sizeof(size_t) * 8 - 2)))
        return -EINVAL;
    size_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    /* Byte positions wrap around size_t, and the signed differences of
     * the state table need a ring of less than half of it. No ring that
     * large can be allocated anyway. */
    if (cap > SIZE_MAX / 2 / WEFT__QSTEP)
        return -ENOMEM;
    struct weft__qcell *cells = malloc(cap * WEFT__QSTEP);
    if (cells == NULL)
        return -ENOMEM;
    size_t pos = first * WEFT__QSTEP, mask = cap * WEFT__QSTEP - 1;
    for (size_t i = 0; i < cap; i++, pos += WEFT__QSTEP) {
        struct weft__qcell *c = weft__qcell_at(cells, mask, pos);
        c->seq = pos;
        c->data = NULL;
    }
    q->_enq = q->_deq = first * WEFT__QSTEP;
    q->_pcells = q->_ccells = cells;
    q->_pmask = q->_cmask = mask;
    q->_pspin = q->_cspin = WEFT__QSPIN_MAX;
    q->_not_full = q->_not_empty = 0;
    return 0;
}

int weft_queue_init(weft_queue_t *q, size_t capacity)
{
    return weft__queue_init_at(q, capacity, 0);
}

void weft_queue_destroy(weft_queue_t *q)
{
    if (q == NULL || q->_pcells == NULL)
        return;
    free(q->_pcells);
    q->_pcells = q->_ccells = NULL;
}

/* Someone sleeps on word (whose value was w): next epoch, bit clear, wake
 * them all. Relaxed on failure: another thread changed the word, and so
 * woke them (or they are awake and re-checking). */
WEFT__COLD static void weft__queue_wake(uint32_t *word, uint32_t w)
{
    if (__atomic_compare_exchange_n(word, &w, (w + 2) & ~WEFT__QSLEEPERS, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_RELAXED))
        weft__futex_wake(word, INT_MAX);
}

/* After a successful operation: wake the other side if anyone sleeps.
 * Seq_cst load: the right-hand column of the diagram in DESIGN. */
static inline void weft__queue_signal(uint32_t *word)
{
    uint32_t w = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    if (weft__unlikely(w & WEFT__QSLEEPERS))
        weft__queue_wake(word, w);
}

/* One push attempt, without the wake-up: 0 or -EAGAIN (full). */
static inline int weft__queue_put(weft_queue_t *q, void *item)
{
    struct weft__qcell *cells = q->_pcells;
    size_t mask = q->_pmask;
    /* Relaxed: a stale position is caught by the cell's seq below. */
    size_t pos = __atomic_load_n(&q->_enq, __ATOMIC_RELAXED);
    for (;;) {
        struct weft__qcell *c = weft__qcell_at(cells, mask, pos);
        /* Acquire: pairs with the release store of seq in weft__queue_get(),
         * so the consumer's read of c->data is done before we overwrite it. */
        size_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        if (seq == pos) {
            /* Seq_cst: the left-hand [W] of the store-buffering pair with a
             * parking popper (see DESIGN). On failure pos is reloaded. */
            if (__atomic_compare_exchange_n(&q->_enq, &pos, pos + WEFT__QSTEP, true,
                                            __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
                c->data = item;
                /* Release: publishes c->data; pairs with the acquire load of
                 * seq in weft__queue_get(). */
                __atomic_store_n(&c->seq, pos + WEFT__QSTEP, __ATOMIC_RELEASE);
                return 0;
            }
        } else if ((intptr_t)(seq - pos) < 0) {
            return -EAGAIN; /* the cell still holds the item of the last lap */
        } else {
            pos = __atomic_load_n(&q->_enq, __ATOMIC_RELAXED); /* raced: reload */
        }
    }
}

/* One pop attempt, without the wake-up: 0 or -EAGAIN (empty). */
static inline int weft__queue_get(weft_queue_t *q, void **item)
{
    struct weft__qcell *cells = q->_ccells;
    size_t mask = q->_cmask;
    /* Relaxed: a stale position is caught by the cell's seq below. */
    size_t pos = __atomic_load_n(&q->_deq, __ATOMIC_RELAXED);
    for (;;) {
        struct weft__qcell *c = weft__qcell_at(cells, mask, pos);
        /* Acquire: pairs with the release store of seq in weft__queue_put(). */
        size_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        size_t next = pos + WEFT__QSTEP;
        if (seq == next) {
            /* Seq_cst: the [W] of the store-buffering pair with a parking
             * pusher (see DESIGN). On failure pos is reloaded. */
            if (__atomic_compare_exchange_n(&q->_deq, &pos, next, true, __ATOMIC_SEQ_CST,
                                            __ATOMIC_RELAXED)) {
                *item = c->data;
                /* Release: our read of c->data happens-before the next
                 * producer's write; pairs with the acquire load in put. */
                __atomic_store_n(&c->seq, pos + mask + 1, __ATOMIC_RELEASE);
                return 0;
            }
        } else if ((intptr_t)(seq - next) < 0) {
            return -EAGAIN; /* not yet written: empty, or a push in flight */
        } else {
            pos = __atomic_load_n(&q->_deq, __ATOMIC_RELAXED); /* raced: reload */
        }
    }
}

int weft_queue_trypush(weft_queue_t *q, void *item)
{
    if (q == NULL)
        return -EINVAL;
    if (weft__queue_put(q, item) != 0)
        return -EAGAIN;
    weft__queue_signal(&q->_not_empty);
    return 0;
}

int weft_queue_trypop(weft_queue_t *q, void **item)
{
    if (q == NULL || item == NULL)
        return -EINVAL;
    if (weft__queue_get(q, item) != 0)
        return -EAGAIN;
    weft__queue_signal(&q->_not_full);
    return 0;
}

/* ---- blocking ---------------------------------------------------------------- */

/* The two directions of blocking, so one wait loop serves both. */
struct weft__qdir {
    int (*attempt)(weft_queue_t *q, void *arg); /* with the wake-up */
    bool (*must_wait)(const weft_queue_t *q);   /* seq_cst position check */
    uint32_t *word;                             /* the eventcount to sleep on */
    uint32_t *spin;                             /* this side's spin budget */
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
    return e - d > q->_pmask;
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
    /* Seq_cst: the left-hand [W] of the diagram in DESIGN. */
    uint32_t w = __atomic_fetch_or(dir->word, WEFT__QSLEEPERS, __ATOMIC_SEQ_CST);
    if (!dir->must_wait(q)) {
        sched_yield(); /* a cell is in flight: let its owner finish */
        return 0;
    }
    return weft__futex_wait(dir->word, w | WEFT__QSLEEPERS, d) == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

/*
 * Spinning pays only while the thread that will make room (or bring an
 * item) runs on another CPU. When the two take turns on one CPU, every
 * spin is time taken from that thread. So each side keeps a budget: grown
 * by a spin that succeeded, halved by one that did not. Relaxed: a hint,
 * read and written only by that side's blocked threads; a lost update
 * costs a few spins.
 */
static void weft__queue_spin_adapt(uint32_t *spin, uint32_t budget, bool worked)
{
    uint32_t next = worked ? budget + 8 : budget / 2;
    if (next > WEFT__QSPIN_MAX)
        next = WEFT__QSPIN_MAX;
    if (next < WEFT__QSPIN_MIN)
        next = WEFT__QSPIN_MIN;
    if (next != budget)
        __atomic_store_n(spin, next, __ATOMIC_RELAXED);
}

/* Spins up to the side's budget; true when the attempt succeeded. */
static bool weft__queue_spin(weft_queue_t *q, const struct weft__qdir *dir, void *arg)
{
    uint32_t budget = __atomic_load_n(dir->spin, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < budget; i++) {
        weft__cpu_relax();
        if (dir->attempt(q, arg) == 0) {
            weft__queue_spin_adapt(dir->spin, budget, true);
            return true;
        }
    }
    weft__queue_spin_adapt(dir->spin, budget, false);
    return false;
}

/* The slow path of push and pop, after one failed attempt: spin, then
 * park until the attempt succeeds or the deadline passes. */
static int weft__queue_wait(weft_queue_t *q, const struct weft__qdir *dir, void *arg,
                            int64_t timeout_ns)
{
    if (weft__queue_spin(q, dir, arg))
        return 0;
    /* Yield once before parking. When the thread that would make room
     * shares this CPU, it runs now and moves a whole batch; parking instead
     * costs it a wake-up system call, and the woken thread tends to take
     * the CPU back after a single item. With nothing else to run, this
     * returns at once. */
    sched_yield();
    if (dir->attempt(q, arg) == 0)
        return 0;
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

/* Out of line, so that the fast paths below need no stack frame. */
__attribute__((noinline)) static int weft__queue_push_slow(weft_queue_t *q, void *item,
                                                           int64_t timeout_ns)
{
    const struct weft__qdir dir = {weft__queue_attempt_push, weft__queue_full, &q->_not_full,
                                   &q->_pspin};
    return weft__queue_wait(q, &dir, &item, timeout_ns);
}

__attribute__((noinline)) static int weft__queue_pop_slow(weft_queue_t *q, void **item,
                                                          int64_t timeout_ns)
{
    const struct weft__qdir dir = {weft__queue_attempt_pop, weft__queue_empty, &q->_not_empty,
                                   &q->_cspin};
    return weft__queue_wait(q, &dir, item, timeout_ns);
}

int weft_queue_push(weft_queue_t *q, void *item, int64_t timeout_ns)
{
    if (q == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    if (weft__likely(weft__queue_put(q, item) == 0)) {
        weft__queue_signal(&q->_not_empty);
        return 0;
    }
    return timeout_ns == 0 ? -ETIMEDOUT : weft__queue_push_slow(q, item, timeout_ns);
}

int weft_queue_pop(weft_queue_t *q, void **item, int64_t timeout_ns)
{
    if (q == NULL || item == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    if (weft__likely(weft__queue_get(q, item) == 0)) {
        weft__queue_signal(&q->_not_full);
        return 0;
    }
    return timeout_ns == 0 ? -ETIMEDOUT : weft__queue_pop_slow(q, item, timeout_ns);
}

size_t weft_queue_capacity(const weft_queue_t *q)
{
    return q != NULL ? (q->_pmask + 1) / WEFT__QSTEP : 0;
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
    return (e - d > q->_pmask + 1 ? q->_pmask + 1 : e - d) / WEFT__QSTEP;
}
