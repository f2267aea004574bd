/*
 * fairlock.c - weft_fairlock_t: a FIFO lock with direct hand-off.
 *
 * DESIGN
 * The lock word says who owns the lock and whether anyone is queued:
 *
 *   _state == 0                  unlocked; the queue is empty
 *   _state == tid                locked by thread `tid`; the queue is empty
 *   _state == tid | WEFT__QUEUED locked by `tid`; threads are queued or about
 *                                to be, so unlock must go through _qlock and
 *                                hand the lock over
 *
 * Invariant: while the queue is non-empty, the QUEUED bit is set and there
 * is an owner, so _state never reads 0 while someone waits. The bit may also
 * be set with an empty queue: an arriving thread sets it before it takes
 * _qlock (see below), and a timed-out waiter leaves it set; an unlocker
 * that finds the queue empty clears it.
 * Linux thread ids are below 2^22, so bit 31 is free.
 *
 * The queue is a doubly linked list of weft__fair_waiter records that live
 * on the waiters' own stacks, guarded by _qlock, a tiny spin-then-futex lock
 * (0 free, 1 held, 2 held with sleepers). Each waiter sleeps on its own
 * `granted` word, so a hand-off wakes exactly the thread that gets the lock.
 *
 * Lock: one CAS 0 -> tid. Otherwise set QUEUED, take _qlock; if the lock
 * became free, take it; else append our record, drop _qlock and sleep until
 * `granted` becomes 1. The arrival order is the order of appends under
 * _qlock. Setting QUEUED before waiting for _qlock closes the window in
 * which the owner could release through its fast path and a newcomer take
 * the lock through its own, ahead of a thread already in the lock call.
 *
 * Unlock: one CAS tid -> 0, which fails when QUEUED is set. Then, under
 * _qlock, pop the head, store its tid (with QUEUED if more remain) into
 * _state, and set its `granted`: the lock passes from owner to owner and is
 * never free in between, so neither lock's fast path nor trylock can barge
 * ahead of a queued thread.
 *
 * Timeout: a waiter whose deadline passes takes _qlock. If it was granted
 * meanwhile, it owns the lock and reports success; otherwise it unlinks its
 * record and leaves.
 *
 * Waking a record that its owner may already have left: the waker calls
 * futex_wake(&w->granted) after w may have returned from the lock call.
 * A process-private futex wake only hashes the address and never touches
 * the memory, so the worst case is a spurious wake-up of whoever sleeps at
 * that address later, and every futex sleeper in weft re-checks its
 * condition. The same holds for weft_mutex_unlock().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal/base.h"
#include "internal/instrument.h"
#include "weft/sync.h"

#define WEFT__QUEUED 0x80000000u

/* Iterations of a contended _qlock spin before sleeping; its critical
 * sections are a few dozen instructions. */
#define WEFT__QSPIN 64u

/* A queued thread. Lives on the waiting thread's stack for the duration of
 * its lock call. */
struct weft__fair_waiter {
    struct weft__fair_waiter *next; /* protected by _qlock */
    struct weft__fair_waiter *prev; /* protected by _qlock */
    uint32_t tid;                   /* constant: the waiting thread */
    uint32_t granted;               /* atomic futex: 1 once the lock is ours */
};

static inline uint32_t weft__fair_owner(uint32_t s)
{
    return s & ~WEFT__QUEUED;
}

static const char *weft__fair_name(const weft_fairlock_t *l)
{
    return l->_name != NULL ? l->_name : "(unnamed)";
}

/* ---- the queue lock ------------------------------------------------------ */

/*
 * Missed wake-up argument: a thread sleeps only in futex_wait(q, 2) after it
 * stored 2 itself (the exchange), and the kernel re-checks *q == 2. The
 * holder's weft__qunlock() exchanges 0 in; if it reads 2, it wakes one
 * sleeper. Either the holder's exchange comes after ours in the word's
 * modification order, so it reads 2 and wakes us, or it comes before, and
 * our exchange reads 0: we own the lock and never sleep.
 */
static WEFT__COLD void weft__qlock_slow(uint32_t *q)
{
    for (unsigned i = 0; i < WEFT__QSPIN; i++) {
        weft__cpu_relax();
        uint32_t z = 0;
        /* Acquire: pairs with the release exchange in weft__qunlock(). */
        if (__atomic_load_n(q, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(q, &z, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
    }
    /* Acquire: as above. Storing 2 makes the next unlock wake someone. */
    while (__atomic_exchange_n(q, 2, __ATOMIC_ACQUIRE) != 0)
        (void)weft__futex_wait(q, 2, NULL);
}

static inline void weft__qlock(uint32_t *q)
{
    uint32_t z = 0;
    /* Acquire: pairs with the release exchange in weft__qunlock(). */
    if (!__atomic_compare_exchange_n(q, &z, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        weft__qlock_slow(q);
}

static inline void weft__qunlock(uint32_t *q)
{
    /* Release: pairs with the acquiring CAS/exchange in weft__qlock(), so
     * the next holder sees our queue changes. */
    if (__atomic_exchange_n(q, 0, __ATOMIC_RELEASE) == 2)
        weft__futex_wake(q, 1);
}

/* ---- queue operations (caller holds _qlock) ------------------------------ */

static void weft__fair_append(weft_fairlock_t *l, struct weft__fair_waiter *w)
{
    w->next = NULL;
    w->prev = l->_tail;
    if (l->_tail != NULL)
        l->_tail->next = w;
    else
        l->_head = w;
    l->_tail = w;
}

static void weft__fair_unlink(weft_fairlock_t *l, struct weft__fair_waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        l->_head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        l->_tail = w->prev;
}

/* ---- init / destroy ------------------------------------------------------ */

int weft_fairlock_init(weft_fairlock_t *l, const char *name)
{
    if (l == NULL)
        return -EINVAL;
    l->_state = 0;
    l->_qlock = 0;
    l->_head = NULL;
    l->_tail = NULL;
    l->_name = name;
    l->_check = NULL;
    if (WEFT__INSTRUMENTED())
        weft__ann_lock_create(l, l, offsetof(weft_fairlock_t, _name), 0);
    return 0;
}

int weft_fairlock_destroy(weft_fairlock_t *l)
{
    if (l == NULL)
        return -EINVAL;
    /* Acquire: pairs with the release stores of _state in the unlock paths
     * and with weft__qunlock(), so the last user's writes are visible
     * before the memory is reused. */
    if (__atomic_load_n(&l->_state, __ATOMIC_ACQUIRE) != 0 ||
        __atomic_load_n(&l->_qlock, __ATOMIC_ACQUIRE) != 0)
        return -EBUSY;
    if (WEFT__INSTRUMENTED())
        weft__ann_lock_destroy(l, 0);
    return 0;
}

/* ---- locking ------------------------------------------------------------- */

static inline bool weft__fair_trylock_fast(weft_fairlock_t *l, uint32_t tid)
{
    uint32_t zero = 0;
    /* Acquire: pairs with the release CAS/store of _state in the unlock
     * paths. 0 implies an empty queue, so this never barges. */
    return __atomic_compare_exchange_n(&l->_state, &zero, tid, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

/*
 * Under _qlock: take the lock if it is free (return 0), give up if the
 * deadline has passed (-ETIMEDOUT), else set QUEUED (return 1; the caller
 * then appends itself before dropping _qlock).
 */
static int weft__fair_take_or_mark(weft_fairlock_t *l, uint32_t tid, const weft__deadline_t *d)
{
    uint32_t s = __atomic_load_n(&l->_state, __ATOMIC_RELAXED);
    for (;;) {
        if (s == 0) {
            /* Acquire: as in weft__fair_trylock_fast(). */
            if (__atomic_compare_exchange_n(&l->_state, &s, tid, false, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return 0;
            continue;
        }
        if (d != NULL && !d->forever && weft__deadline_passed(d))
            return -ETIMEDOUT;
        if (s & WEFT__QUEUED)
            return 1;
        /* Relaxed: the bit publishes nothing by itself. It makes the owner's
         * fast unlock CAS fail, sending it through _qlock, whose
         * release/acquire orders our append before its pop. If the owner's
         * CAS wins instead, ours fails and we see 0. */
        if (__atomic_compare_exchange_n(&l->_state, &s, s | WEFT__QUEUED, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return 1;
    }
}

/*
 * Before waiting for _qlock: if the lock is held and QUEUED is clear, set
 * it, so the owner's unlock goes through _qlock and finds us queued instead
 * of freeing the lock for the fast path. Best effort: a failed CAS means the
 * word changed, and weft__fair_take_or_mark() decides under _qlock.
 */
static void weft__fair_premark(weft_fairlock_t *l)
{
    uint32_t s = __atomic_load_n(&l->_state, __ATOMIC_RELAXED);
    /* Relaxed: as in weft__fair_take_or_mark(). */
    if (s != 0 && !(s & WEFT__QUEUED))
        (void)__atomic_compare_exchange_n(&l->_state, &s, s | WEFT__QUEUED, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED);
}

/*
 * Our deadline passed while queued. Under _qlock, either the hand-off
 * already happened (we own the lock: 0) or we unlink ourselves.
 */
static int weft__fair_leave(weft_fairlock_t *l, struct weft__fair_waiter *w)
{
    weft__qlock(&l->_qlock);
    /* Relaxed: `granted` is written under _qlock, which we now hold. */
    if (__atomic_load_n(&w->granted, __ATOMIC_RELAXED) != 0) {
        weft__qunlock(&l->_qlock);
        return 0;
    }
    /* QUEUED stays set even if the queue is now empty: the owner's unlock
     * then takes the slow path once and clears it. Clearing it here could
     * strip the bit from under a thread that set it and now waits for
     * _qlock, letting the fast path overtake that thread. */
    weft__fair_unlink(l, w);
    weft__qunlock(&l->_qlock);
    return -ETIMEDOUT;
}

/*
 * Queue up and sleep until the lock is handed to us or the deadline passes.
 *
 * Missed wake-up argument: we sleep only in futex_wait(&w.granted, 0), and
 * the kernel re-checks the word. The unlocker sets granted = 1 before it
 * calls futex_wake, so either the kernel sees 1 and does not sleep us, or we
 * are already asleep when the wake comes.
 */
static int weft__fair_wait(weft_fairlock_t *l, uint32_t tid, const weft__deadline_t *d)
{
    struct weft__fair_waiter w = {NULL, NULL, tid, 0};
    /* A spent deadline (timeout 0) gives up here, without making the
     * owner's unlock take the slow path for nobody. */
    if (d != NULL && !d->forever && weft__deadline_passed(d))
        return -ETIMEDOUT;
    weft__fair_premark(l);
    weft__qlock(&l->_qlock);
    int r = weft__fair_take_or_mark(l, tid, d);
    if (r == 1)
        weft__fair_append(l, &w);
    weft__qunlock(&l->_qlock);
    if (r != 1)
        return r;
    /* Acquire: pairs with the release store of `granted` in
     * weft__fair_handoff(), so the previous owner's critical section
     * happens-before ours. */
    while (__atomic_load_n(&w.granted, __ATOMIC_ACQUIRE) == 0) {
        if (weft__futex_wait(&w.granted, 0, d) == -ETIMEDOUT)
            return weft__fair_leave(l, &w);
    }
    return 0;
}

/* The contended path. -EDEADLK if the caller is the owner. */
static WEFT__COLD int weft__fair_lock_slow(weft_fairlock_t *l, uint32_t tid,
                                           const weft__deadline_t *d)
{
    if (weft__fair_owner(__atomic_load_n(&l->_state, __ATOMIC_RELAXED)) == tid)
        return -EDEADLK;
    return weft__fair_wait(l, tid, d);
}

static WEFT__COLD void weft__fair_self_deadlock(const weft_fairlock_t *l)
{
    weft__fatal("deadlock: thread %u locked fair lock '%s' (%p) that it already holds", weft__tid(),
                weft__fair_name(l), (const void *)l);
}

/* Locking with annotations for TSan/Helgrind (and the check layer). */
static WEFT__COLD int weft__fair_lock_instr(weft_fairlock_t *l, uint32_t tid,
                                            const weft__deadline_t *d, unsigned flags)
{
    weft__ann_pre_lock(l, l, offsetof(weft_fairlock_t, _name), flags);
    int r = weft__fair_trylock_fast(l, tid) ? 0 : weft__fair_lock_slow(l, tid, d);
    weft__ann_post_lock(l, r == 0 ? flags : flags | WEFT__ANN_FAILED);
    return r;
}

WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS void weft_fairlock_lock(weft_fairlock_t *l)
{
    if (weft__unlikely(l == NULL))
        weft__fatal("weft_fairlock_lock: NULL lock");
    uint32_t tid = weft__tid();
    int r;
    if (WEFT__INSTRUMENTED())
        r = weft__fair_lock_instr(l, tid, NULL, 0);
    else if (weft__likely(weft__fair_trylock_fast(l, tid)))
        return;
    else
        r = weft__fair_lock_slow(l, tid, NULL);
    if (weft__unlikely(r != 0))
        weft__fair_self_deadlock(l);
}

WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS int weft_fairlock_trylock(weft_fairlock_t *l)
{
    if (l == NULL)
        return -EINVAL;
    uint32_t tid = weft__tid();
    if (WEFT__INSTRUMENTED()) {
        weft__ann_pre_lock(l, l, offsetof(weft_fairlock_t, _name), WEFT__ANN_TRY);
        bool ok = weft__fair_trylock_fast(l, tid);
        weft__ann_post_lock(l, ok ? WEFT__ANN_TRY : WEFT__ANN_TRY | WEFT__ANN_FAILED);
        return ok ? 0 : -EBUSY;
    }
    return weft__fair_trylock_fast(l, tid) ? 0 : -EBUSY;
}

WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS int weft_fairlock_timedlock(weft_fairlock_t *l,
                                                                       int64_t timeout_ns)
{
    if (l == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    uint32_t tid = weft__tid();
    weft__deadline_t d;
    if (!WEFT__INSTRUMENTED() && weft__fair_trylock_fast(l, tid))
        return 0;
    (void)weft__deadline_init(&d, timeout_ns);
    if (WEFT__INSTRUMENTED())
        return weft__fair_lock_instr(l, tid, &d, WEFT__ANN_TRY);
    return weft__fair_lock_slow(l, tid, &d);
}

/* ---- unlocking ----------------------------------------------------------- */

/*
 * The caller owns the lock and QUEUED was set. Pass the lock to the head of
 * the queue, or free it if the queue is empty (timed-out waiters left, or
 * an arriving thread set the bit and has not appended itself yet: it will
 * find the lock free under _qlock).
 */
static WEFT__COLD void weft__fair_handoff(weft_fairlock_t *l)
{
    weft__qlock(&l->_qlock);
    struct weft__fair_waiter *w = l->_head;
    if (w == NULL) {
        /* Release: pairs with the acquire CAS in every lock path. Only the
         * owner and _qlock holders change a held word; we are both. */
        __atomic_store_n(&l->_state, 0, __ATOMIC_RELEASE);
        weft__qunlock(&l->_qlock);
        return;
    }
    weft__fair_unlink(l, w);
    uint32_t next = w->tid | (l->_head != NULL ? WEFT__QUEUED : 0);
    /* Release: the new owner reads `granted` with acquire (or takes _qlock
     * after a timeout), which orders our critical section before its. */
    __atomic_store_n(&l->_state, next, __ATOMIC_RELEASE);
    __atomic_store_n(&w->granted, 1, __ATOMIC_RELEASE);
    weft__qunlock(&l->_qlock);
    /* w may be gone already: see "Waking a record" at the top. */
    weft__futex_wake(&w->granted, 1);
}

WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS int weft_fairlock_unlock(weft_fairlock_t *l)
{
    if (l == NULL)
        return -EINVAL;
    uint32_t tid = weft__tid();
    bool instr = WEFT__INSTRUMENTED();
    if (instr) {
        if (weft__fair_owner(__atomic_load_n(&l->_state, __ATOMIC_RELAXED)) != tid)
            return -EPERM;
        weft__ann_pre_unlock(l, 0);
    }
    uint32_t s = tid;
    /* Release: pairs with the acquire CAS in every lock path. */
    if (!__atomic_compare_exchange_n(&l->_state, &s, 0, false, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED)) {
        if (weft__fair_owner(s) != tid)
            return -EPERM;
        weft__fair_handoff(l);
    }
    if (instr)
        weft__ann_post_unlock(l, 0);
    return 0;
}

bool weft_fairlock_held(const weft_fairlock_t *l)
{
    if (l == NULL)
        return false;
    /* Relaxed: only the caller can make this true or false for itself: its
     * own lock calls (a hand-off to it completes inside one) and unlock. */
    return weft__fair_owner(__atomic_load_n(&l->_state, __ATOMIC_RELAXED)) == weft__tid();
}
